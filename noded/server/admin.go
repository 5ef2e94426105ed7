package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/cluster"
)

const maxAdminBody = 64 << 10

// resolveMachine finds a machine by its id or by its boot MAC (any form a
// technician types).
func (s *Server) resolveMachine(ctx context.Context, id string) (api.Machine, error) {
	key := strings.ToLower(strings.TrimSpace(id))
	if mac, err := machines.NormalizeMAC(strings.TrimPrefix(key, "oc-")); err == nil {
		key = machines.IDFor(mac)
	}
	if !strings.HasPrefix(key, "oc-") || len(key) != len("oc-")+12 {
		return api.Machine{}, notFound("no machine %q: give a machine id (oc-525400123456) or its boot MAC; see `occtl machines`", id)
	}
	m, _, err := s.state.machines.Get(ctx, key)
	if errors.Is(err, cluster.ErrNotFound) {
		return api.Machine{}, notFound("no machine %q: see `occtl machines`", id)
	}
	return m, err
}

func (s *Server) listMachines(w http.ResponseWriter, r *http.Request, _ string) {
	recs, err := s.state.machines.List(r.Context())
	out := make([]api.Machine, 0, len(recs))
	for _, rec := range recs {
		m := rec.Value
		m.Inventory = nil // a list of a thousand inventories is megabytes; show gives it
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b api.Machine) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	s.reply(w, r, api.MachineList{Machines: out}, err)
}

func (s *Server) showMachine(w http.ResponseWriter, r *http.Request, _ string) {
	m, err := s.resolveMachine(r.Context(), r.PathValue("id"))
	s.reply(w, r, m, err)
}

// checkSchool keeps to what survives the kernel command line
// (onecloud.school=), as the bootstrap inbox does.
func checkSchool(s string) error {
	if len(s) > 63 {
		return badRequest("school %q is longer than 63 characters", s)
	}
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && strings.ContainsRune("-_.", c)) {
			return badRequest("school %q: use letters, digits, '-', '_' and '.' only (it goes on the kernel command line)", s)
		}
	}
	return nil
}

// normalizeHash accepts a SHA-256 in hex, with or without "sha256:", in
// either case.
func normalizeHash(what, h string) (string, error) {
	h = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(h), "sha256:"))
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
		return "", badRequest("%s %q is not a SHA-256 in hex (64 hex digits)", what, h)
	}
	return h, nil
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, caller string) {
	var req api.ApproveRequest
	if err := s.readJSON(w, r, maxAdminBody, &req); err != nil {
		writeError(w, err)
		return
	}
	m, err := s.doApprove(r.Context(), r.PathValue("id"), req, caller)
	s.reply(w, r, m, err)
}

// declare records a machine the technician knows before it boots and
// approves it: the same record a first boot would make, then the approval.
func (s *Server) declare(w http.ResponseWriter, r *http.Request, caller string) {
	var req api.DeclareRequest
	if err := s.readJSON(w, r, maxAdminBody, &req); err != nil {
		writeError(w, err)
		return
	}
	if !machines.ValidRole(string(req.Role)) {
		writeError(w, badRequest("role %q: want one of %s", req.Role, machines.Roles))
		return
	}
	seen, err := s.Seen(r.Context(), machines.Sighting{MAC: req.MAC, Serial: req.Serial, Source: "technician"}, s.now())
	if err != nil {
		if errors.Is(err, machines.ErrInvalid) {
			err = badRequest("%v", err)
		}
		writeError(w, err)
		return
	}
	m, err := s.doApprove(r.Context(), seen.ID, req.ApproveRequest, caller)
	s.reply(w, r, m, err)
}

func (s *Server) doApprove(ctx context.Context, id string, req api.ApproveRequest, caller string) (api.Machine, error) {
	if !machines.ValidRole(string(req.Role)) {
		return api.Machine{}, badRequest("role %q: want one of %s", req.Role, machines.Roles)
	}
	if err := checkSchool(req.School); err != nil {
		return api.Machine{}, err
	}
	ek := ""
	if req.EKHash != "" {
		var err error
		if ek, err = normalizeHash("EK hash", req.EKHash); err != nil {
			return api.Machine{}, err
		}
	}
	found, err := s.resolveMachine(ctx, id)
	if err != nil {
		return api.Machine{}, err
	}
	m, err := update(ctx, s.state.machines, found.ID, func(m *api.Machine, exists bool) error {
		if !exists {
			return notFound("machine %s was forgotten meanwhile", found.ID)
		}
		m.State, m.Role, m.School, m.DecidedBy = enrolapi.Approved, req.Role, req.School, "admin:"+caller
		m.EKHash = ek
		// An approval answers the box's request for a role, whichever.
		m.RequestedRole, m.RequestedAt = "", time.Time{}
		if !m.Conflict {
			m.Reason = ""
		}
		return nil
	})
	if err != nil {
		return api.Machine{}, err
	}
	if err := s.indexSerial(ctx, m); err != nil {
		return m, err
	}
	s.log.Info("machine approved", "id", m.ID, "mac", bootMAC(m), "role", m.Role, "school", m.School, "ek_recorded", ek != "", "by", caller)
	return m, nil
}

// indexSerial lets the verifier find an approved machine by its serial.
func (s *Server) indexSerial(ctx context.Context, m api.Machine) error {
	if m.State != enrolapi.Approved || m.Serial == "" {
		return nil
	}
	e := serialEntry{Serial: m.Serial, MachineID: m.ID}
	if _, err := s.state.serials.Put(ctx, serialKey(m.Serial), e); err != nil {
		return fmt.Errorf("machine %s is approved, but its serial could not be indexed for attestation (approve it again): %w", m.ID, err)
	}
	return nil
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request, caller string) {
	var req api.RejectRequest
	if err := s.readJSON(w, r, maxAdminBody, &req); err != nil {
		writeError(w, err)
		return
	}
	reason := strings.TrimSpace(strings.ToValidUTF8(req.Reason, "?"))
	if reason == "" {
		reason = "rejected by " + caller
	}
	if len(reason) > 256 || strings.ContainsFunc(reason, func(c rune) bool { return c < 0x20 || c == 0x7f }) || !utf8.ValidString(reason) {
		writeError(w, badRequest("reason: at most 256 printable characters"))
		return
	}
	found, err := s.resolveMachine(r.Context(), r.PathValue("id"))
	if err != nil {
		s.reply(w, r, nil, err)
		return
	}
	m, err := update(r.Context(), s.state.machines, found.ID, func(m *api.Machine, exists bool) error {
		if !exists {
			return notFound("machine %s was forgotten meanwhile", found.ID)
		}
		m.State, m.Role, m.School, m.DecidedBy, m.Reason = enrolapi.Rejected, "", "", "admin:"+caller, reason
		return nil
	})
	if err == nil && m.Serial != "" {
		// The machine record alone already refuses the serial (see
		// Approval); the index entry goes so that it does not linger.
		if derr := s.state.serials.Delete(r.Context(), serialKey(m.Serial), 0); derr != nil && !errors.Is(derr, cluster.ErrNotFound) {
			s.log.Warn("rejected machine's serial index not removed", "id", m.ID, "err", derr)
		}
	}
	if err == nil {
		s.log.Info("machine rejected", "id", m.ID, "mac", bootMAC(m), "reason", reason, "by", caller)
	}
	s.reply(w, r, m, err)
}

func bootMAC(m api.Machine) string {
	if len(m.MACs) == 0 {
		return ""
	}
	return m.MACs[0]
}

// nodeView is a stored node as it stands now: NotReady once its
// certificate expired, and its etcd role from the member list.
func (s *Server) nodeView(n api.Node, members map[string]api.MemberRole, now time.Time) api.Node {
	if n.State == api.NodeReady && !n.CertExpiry.IsZero() && !now.Before(n.CertExpiry) {
		n.State = api.NodeNotReady
		n.Reason = fmt.Sprintf("its certificate expired at %s and it has not attested since: is it off, or cut off from the cluster?", n.CertExpiry.UTC().Format(time.RFC3339))
	}
	n.Member = api.MemberNone
	if role, ok := members[n.Name]; ok {
		n.Member = role
	}
	return n
}

// memberRoles maps member names to their roles; empty (every node "none")
// when this node is not a member or the status cannot be had.
func (s *Server) memberRoles(ctx context.Context) map[string]api.MemberRole {
	out := map[string]api.MemberRole{}
	if s.cfg.Members == nil {
		return out
	}
	st, err := s.cfg.Members.Status(ctx)
	if err != nil {
		s.log.Warn("cluster status unavailable for the node list", "err", err)
		return out
	}
	for _, m := range st.Members {
		out[m.Name] = memberRole(m)
	}
	return out
}

func memberRole(m cluster.MemberStatus) api.MemberRole {
	if m.Learner {
		return api.MemberLearner
	}
	return api.MemberVoter
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request, _ string) {
	recs, err := s.state.nodes.List(r.Context())
	if err != nil {
		s.reply(w, r, nil, err)
		return
	}
	roles := s.memberRoles(r.Context())
	now := s.now()
	out := make([]api.Node, 0, len(recs))
	for _, rec := range recs {
		out = append(out, s.nodeView(rec.Value, roles, now))
	}
	s.reply(w, r, api.NodeList{Nodes: out}, nil)
}

// self answers a node with its own record, as long as its machine is still
// approved: a rejected box keeps its certificate until it expires, but
// learns nothing more.
func (s *Server) self(w http.ResponseWriter, r *http.Request, caller string) {
	m, _, err := s.state.machines.Get(r.Context(), caller)
	if err == nil && m.State != enrolapi.Approved {
		err = &httpError{http.StatusForbidden, fmt.Sprintf("machine %s is %s, not approved", caller, m.State)}
	}
	var n api.Node
	if err == nil {
		n, _, err = s.state.nodes.Get(r.Context(), caller)
	}
	if errors.Is(err, cluster.ErrNotFound) {
		err = notFound("no node %q", caller)
	}
	if err == nil {
		n = s.nodeView(n, s.memberRoles(r.Context()), s.now())
	}
	s.reply(w, r, n, err)
}

// requestRole records a box's request, from its console, for another
// role. The box names itself by its node certificate; only the technician
// grants the role (occtl approve), so a request changes nothing else.
func (s *Server) requestRole(w http.ResponseWriter, r *http.Request, caller string) {
	var req api.RoleRequest
	if err := s.readJSON(w, r, maxAdminBody, &req); err != nil {
		writeError(w, err)
		return
	}
	if !machines.ValidRole(string(req.Role)) {
		writeError(w, badRequest("role %q: want server, vdi, idv or tci", req.Role))
		return
	}
	m, err := update(r.Context(), s.state.machines, caller, func(m *api.Machine, exists bool) error {
		if !exists {
			return notFound("no machine %q", caller)
		}
		if m.State != enrolapi.Approved {
			return &httpError{http.StatusForbidden, fmt.Sprintf("machine %s is %s, not approved", caller, m.State)}
		}
		m.RequestedRole, m.RequestedAt = req.Role, s.now().UTC()
		return nil
	})
	if err == nil {
		s.log.Info("a box asks for another role", "machine", caller, "role", req.Role, "now", m.Role, "addr", r.RemoteAddr)
	}
	s.reply(w, r, m, err)
}

func (s *Server) removeNode(w http.ResponseWriter, r *http.Request, caller string) {
	name := r.PathValue("name")
	ctx := r.Context()
	if !validNodeName(name) {
		s.reply(w, r, nil, notFound("no node %q: see `occtl nodes`", name))
		return
	}
	n, _, err := s.state.nodes.Get(ctx, name)
	known := err == nil
	if err != nil && !errors.Is(err, cluster.ErrNotFound) {
		s.reply(w, r, nil, err)
		return
	}
	member := false
	if s.cfg.Members != nil {
		st, err := s.cfg.Members.Status(ctx)
		if err != nil {
			s.reply(w, r, nil, &httpError{http.StatusServiceUnavailable, fmt.Sprintf("cannot tell whether %s is an etcd member: %v", name, err)})
			return
		}
		for _, m := range st.Members {
			member = member || m.Name == name
		}
	} else if known && n.Role == api.RoleServer {
		s.reply(w, r, nil, &httpError{http.StatusServiceUnavailable, fmt.Sprintf("%s is a server node, and this node is not an etcd member that could remove it: ask another server node", name)})
		return
	}
	if !known && !member {
		s.reply(w, r, nil, notFound("no node %q: see `occtl nodes`", name))
		return
	}
	if member {
		if err := s.cfg.Members.Remove(ctx, name); err != nil {
			s.reply(w, r, nil, &httpError{http.StatusConflict, err.Error()})
			return
		}
	}
	if known {
		if err := s.state.nodes.Delete(ctx, name, 0); err != nil && !errors.Is(err, cluster.ErrNotFound) {
			s.reply(w, r, nil, err)
			return
		}
	}
	s.log.Info("node removed", "node", name, "etcd_member", member, "by", caller)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request, _ string) {
	if s.cfg.Members == nil {
		s.reply(w, r, nil, &httpError{http.StatusServiceUnavailable, "this node is not an etcd member: ask a server node of the cluster"})
		return
	}
	st, err := s.cfg.Members.Status(r.Context())
	if err != nil {
		s.reply(w, r, nil, &httpError{http.StatusServiceUnavailable, err.Error()})
		return
	}
	out := api.ClusterStatus{Leader: st.Leader, RaftIndex: st.RaftIndex, Healthy: st.Leader != ""}
	for _, m := range st.Members {
		cm := api.ClusterMember{
			Name: m.Name, ID: fmt.Sprintf("%x", m.ID), Role: memberRole(m), Leader: m.Leader, Healthy: m.Healthy,
			PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, RaftIndex: m.RaftIndex, RaftTerm: m.RaftTerm, DBSize: m.DBSize, Error: m.Error,
		}
		if m.Learner {
			out.Learners = append(out.Learners, m.Name)
		}
		out.Healthy = out.Healthy && m.Healthy
		out.Members = append(out.Members, cm)
	}
	s.reply(w, r, out, nil)
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, _ string) {
	recs, err := s.state.releases.List(r.Context())
	out := make([]api.Release, 0, len(recs))
	for _, rec := range recs {
		out = append(out, rec.Value)
	}
	s.reply(w, r, api.ReleaseList{Releases: out}, err)
}

func (s *Server) addRelease(w http.ResponseWriter, r *http.Request, caller string) {
	var req api.ReleaseRequest
	if err := s.readJSON(w, r, maxAdminBody, &req); err != nil {
		writeError(w, err)
		return
	}
	sum, err := normalizeHash("image digest", req.SHA256)
	if err != nil {
		writeError(w, err)
		return
	}
	name := strings.TrimSpace(req.Name)
	if len(name) > 128 || strings.ContainsFunc(name, func(c rune) bool { return c < 0x20 || c == 0x7f }) || !utf8.ValidString(name) {
		writeError(w, badRequest("release name: at most 128 printable characters"))
		return
	}
	rel := api.Release{SHA256: sum, Name: name, Added: s.now().UTC(), AddedBy: caller}
	if _, err := s.state.releases.Put(r.Context(), sum, rel); err != nil {
		s.reply(w, r, nil, err)
		return
	}
	s.log.Info("image released", "sha256", sum, "name", name, "by", caller)
	s.reply(w, r, rel, nil)
}

// validNodeName is a host name: node names are machine ids or the names
// server nodes were given at init, both host names.
func validNodeName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
