package server

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"time"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/cluster"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/verify"
)

// maxAttestBody bounds an attestation message: keys, an EK certificate, a
// certificate request and an event log of a few dozen events fit in a
// fraction of it.
const maxAttestBody = 1 << 20

// sweepAbove is the number of pending sessions above which expired ones
// are dropped at each new challenge.
const sweepAbove = 256

// pending is an attestation between challenge and proof, as far as the
// server (not the verifier) needs to know it.
type pending struct {
	machineID, serial string // as the box claimed them
	csr, peerCSR      []byte
	expires           time.Time
}

// challenge takes an api.AttestRequest. A refusal is 403 with an
// api.Result; a body that cannot be read is 400.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	addr := remoteIP(r)
	if !s.cfg.CA.CanIssue() {
		// Only the node holding the cluster CA's keys can sign what an
		// attestation earns; the others say so before a TPM spends a
		// session on them.
		s.log.Info("attestation turned away: this server node does not hold the cluster CA keys", "addr", addr)
		writeError(w, &httpError{http.StatusServiceUnavailable, "this server node does not hold the cluster CA keys and cannot issue certificates: attest at the server node that ran `noded init`"})
		return
	}
	var req api.AttestRequest
	if err := s.readJSON(w, r, maxAttestBody, &req); err != nil {
		s.log.Warn("attestation request unreadable", "addr", addr, "err", err)
		writeError(w, err)
		return
	}
	ctx := r.Context()
	for _, c := range []struct {
		what string
		csr  []byte
	}{{"certificate request", req.CSR}, {"etcd peer certificate request", req.PeerCSR}} {
		if len(c.csr) == 0 {
			continue
		}
		if err := checkCSR(c.csr); err != nil {
			ref := &api.Refusal{Reason: api.ReasonMalformed, Text: fmt.Sprintf("%s: %v", c.what, err)}
			s.log.Warn("attestation refused", "machine", req.MachineID, "serial", req.Serial, "addr", addr, "reason", ref.Reason, "text", ref.Text)
			s.refusedAt(ctx, req.MachineID, req.Serial, addr, ref, false)
			writeJSON(w, http.StatusForbidden, ref.Result())
			return
		}
	}
	ch, err := s.verifier.Challenge(ctx, req)
	var ref *api.Refusal
	switch {
	case errors.As(err, &ref):
		s.refusedAt(ctx, req.MachineID, req.Serial, addr, ref, false)
		writeJSON(w, http.StatusForbidden, ref.Result())
		return
	case errors.Is(err, verify.ErrBusy):
		w.Header().Set("Retry-After", "10")
		writeError(w, &httpError{http.StatusServiceUnavailable, err.Error()})
		return
	case err != nil:
		s.log.Error("attestation challenge failed", "machine", req.MachineID, "addr", addr, "err", err)
		writeError(w, fmt.Errorf("the verifier cannot answer now (retry later): %w", err))
		return
	}
	s.addPending(ch.SessionID, &pending{machineID: req.MachineID, serial: req.Serial, csr: req.CSR, peerCSR: req.PeerCSR, expires: ch.Expires})
	writeJSON(w, http.StatusOK, ch)
}

// checkCSR reads a certificate request before a session is spent on it.
func checkCSR(b []byte) error {
	if p, _ := pem.Decode(b); p != nil {
		if p.Type != "CERTIFICATE REQUEST" {
			return fmt.Errorf("PEM %q, want CERTIFICATE REQUEST", p.Type)
		}
		b = p.Bytes
	}
	req, err := x509.ParseCertificateRequest(b)
	if err != nil {
		return err
	}
	return req.CheckSignature()
}

func (s *Server) addPending(id string, p *pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) > sweepAbove {
		now := s.now()
		maps.DeleteFunc(s.sessions, func(_ string, p *pending) bool { return !now.Before(p.expires) })
	}
	s.sessions[id] = p
}

func (s *Server) takePending(id string) *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.sessions[id]
	delete(s.sessions, id)
	return p
}

// proof takes an api.Proof and answers an api.Result, accepted with the
// node certificate or refused with the reason.
func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
	addr := remoteIP(r)
	var proof api.Proof
	if err := s.readJSON(w, r, maxAttestBody, &proof); err != nil {
		s.log.Warn("attestation proof unreadable", "addr", addr, "err", err)
		writeError(w, err)
		return
	}
	ctx := r.Context()
	p := s.takePending(proof.SessionID)
	attested, err := s.verifier.Verify(ctx, proof)
	var ref *api.Refusal
	switch {
	case errors.As(err, &ref):
		if p != nil {
			s.refusedAt(ctx, p.machineID, p.serial, addr, ref, true)
		} else {
			s.countRefusal(ref.Reason)
		}
		writeJSON(w, http.StatusOK, ref.Result())
		return
	case err != nil:
		s.log.Error("attestation proof failed", "addr", addr, "err", err)
		writeError(w, fmt.Errorf("the verifier cannot answer now (attest again later): %w", err))
		return
	case p == nil:
		// The verifier knew the session and this server did not: only a
		// session issued by another Server sharing the verifier.
		writeError(w, errors.New("attestation session unknown to this server: attest again"))
		return
	}
	res, err := s.accept(ctx, attested, p, addr)
	if errors.As(err, &ref) {
		s.refusedAt(ctx, p.machineID, p.serial, addr, ref, true)
		writeJSON(w, http.StatusOK, ref.Result())
		return
	}
	if err != nil {
		s.log.Error("attestation accepted but not recorded", "machine", attested.MachineID, "addr", addr, "err", err)
		writeError(w, fmt.Errorf("attestation accepted, but the cluster could not record it (attest again): %w", err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// accept issues the node certificate of an accepted attestation and
// records the node as Ready.
func (s *Server) accept(ctx context.Context, a *verify.Attested, p *pending, addr string) (api.Result, error) {
	approval, ok, err := s.state.Approval(ctx, a.Serial)
	if err != nil {
		return api.Result{}, err
	}
	if !ok {
		return api.Result{}, &api.Refusal{Reason: api.ReasonNotApproved, Text: fmt.Sprintf("serial %q was rejected or forgotten during its attestation", a.Serial)}
	}
	m, _, err := s.state.machines.Get(ctx, approval.MachineID)
	if err != nil {
		return api.Result{}, err
	}
	if a.MachineID != m.ID {
		// The node is named after the approved machine, whatever the box
		// calls itself.
		s.log.Warn("attesting box names itself differently from its approved machine", "machine", m.ID, "claimed", a.MachineID, "serial", a.Serial, "addr", addr)
	}
	now := s.now()
	var res api.Result
	var expiry time.Time
	if len(p.csr) > 0 {
		id := pki.Identity{Kind: pki.Node, Name: m.ID, TTL: s.cfg.NodeCertTTL}
		if ip := net.ParseIP(addr); ip != nil {
			id.IPs = []net.IP{ip}
		}
		cert, err := s.cfg.CA.IssueCSR(p.csr, id)
		if err != nil {
			return api.Result{}, &api.Refusal{Reason: api.ReasonMalformed, Text: fmt.Sprintf("certificate request: %v", err)}
		}
		res.NodeCertificate, expiry = cert.Raw, cert.NotAfter
	} else {
		s.log.Warn("attestation accepted without a certificate request: no node certificate issued", "machine", m.ID, "addr", addr)
	}
	switch {
	case len(p.peerCSR) == 0:
	case m.Role != api.RoleServer:
		// A terminal must never hold a member certificate: etcd trusts
		// every certificate of the etcd CA.
		s.log.Warn("etcd peer certificate requested by a machine not approved as a server node: none issued", "machine", m.ID, "addr", addr, "role", m.Role)
	default:
		if err := s.joinKit(ctx, &res, m.ID, addr, p.peerCSR); err != nil {
			return api.Result{}, err
		}
	}
	var images []api.Image
	for _, img := range a.Images {
		images = append(images, api.Image{Name: img.Name, SHA256: hex.EncodeToString(img.SHA256)})
	}
	if _, err := update(ctx, s.state.nodes, m.ID, func(n *api.Node, exists bool) error {
		n.Name, n.Role, n.School, n.Serial = m.ID, m.Role, m.School, m.Serial
		if addr != "" {
			n.Addresses = []string{addr}
		}
		n.State, n.Reason, n.LastAttested = api.NodeReady, "", now
		if !expiry.IsZero() {
			n.CertExpiry = expiry
		}
		n.Images, n.Image = images, imageLabel(images)
		return nil
	}); err != nil {
		return api.Result{}, err
	}
	if _, err := update(ctx, s.state.machines, m.ID, func(mm *api.Machine, exists bool) error {
		if !exists {
			return errSkip
		}
		mm.Attestation = &api.AttestationStatus{At: now, Accepted: true}
		return nil
	}); err != nil {
		return api.Result{}, err
	}
	res.Accepted = true
	s.log.Info("node attested", "machine", m.ID, "addr", addr, "role", m.Role, "certificate_expires", expiry, "image", imageLabel(images))
	return res, nil
}

// joinKit fills in what a new server node needs to join the cluster store:
// its etcd member certificate for the address it attested from, the CA
// certificates, and where the voting members take clients.
func (s *Server) joinKit(ctx context.Context, res *api.Result, name, addr string, csr []byte) error {
	if s.cfg.Members == nil {
		return errors.New("this server node is not an etcd member and cannot tell a new server node where to join")
	}
	st, err := s.cfg.Members.Status(ctx)
	if err != nil {
		return fmt.Errorf("list the etcd members for the joining server node %s: %w", name, err)
	}
	for _, mem := range st.Members {
		// Learners refuse membership changes; they are no use to a joiner.
		if !mem.Learner {
			res.EtcdEndpoints = append(res.EtcdEndpoints, mem.ClientURLs...)
		}
	}
	if len(res.EtcdEndpoints) == 0 {
		return errors.New("no voting etcd member advertises a client URL")
	}
	id := pki.Identity{Kind: pki.Peer, Name: name}
	if ip := net.ParseIP(addr); ip != nil {
		id.IPs = []net.IP{ip}
	}
	cert, err := s.cfg.CA.IssueCSR(csr, id)
	if err != nil {
		return &api.Refusal{Reason: api.ReasonMalformed, Text: fmt.Sprintf("etcd peer certificate request: %v", err)}
	}
	res.PeerCertificate = cert.Raw
	res.EtcdCACertificate = s.cfg.CA.Etcd.Raw
	res.CACertificate = s.cfg.CA.Root.Raw
	s.log.Info("etcd peer certificate issued to a joining server node", "machine", name, "addr", addr, "expires", cert.NotAfter, "endpoints", res.EtcdEndpoints)
	return nil
}

// imageLabel is the short form of the last image a node's firmware ran.
func imageLabel(images []api.Image) string {
	if len(images) == 0 {
		return ""
	}
	img := images[len(images)-1]
	return img.Name + " sha256:" + img.SHA256[:min(12, len(img.SHA256))]
}

// refusedAt records a refusal on the machine it concerns, on its node and
// in the audit. The box named itself without proof, so the refusal is
// pinned to a machine only when the claim fits: the serial is approved for
// it, or the named machine has that serial. Other refusals (made-up ids
// and serials) are only logged and counted, so that nobody can fill the
// store through the open attestation routes. verified says the refusal
// came after the challenge, from a box the verifier already challenged.
func (s *Server) refusedAt(ctx context.Context, machineID, serial, addr string, ref *api.Refusal, verified bool) {
	s.countRefusal(ref.Reason)
	if serial == "" {
		return
	}
	id := ""
	if a, ok, err := s.state.Approval(ctx, serial); err == nil && ok {
		id = a.MachineID
	} else if machineID != "" && validNodeName(machineID) {
		if m, _, err := s.state.machines.Get(ctx, machineID); err == nil && m.Serial == serial {
			id = m.ID
		}
	}
	if id == "" {
		return
	}
	now := s.now()
	status := &api.AttestationStatus{At: now, Reason: ref.Reason, Text: ref.Text}
	if _, err := update(ctx, s.state.machines, id, func(m *api.Machine, exists bool) error {
		if !exists {
			return errSkip
		}
		m.Attestation = status
		return nil
	}); err != nil {
		s.log.Warn("attestation refusal not recorded on its machine", "machine", id, "addr", addr, "err", err)
	}
	if _, err := update(ctx, s.state.nodes, id, func(n *api.Node, exists bool) error {
		if !exists {
			return errSkip
		}
		n.State, n.Reason = api.NodeRefused, fmt.Sprintf("%s: %s", ref.Reason, ref.Text)
		return nil
	}); err != nil && !errors.Is(err, cluster.ErrNotFound) {
		s.log.Warn("attestation refusal not recorded on its node", "machine", id, "addr", addr, "err", err)
	}
	entry := AuditEntry{At: now, MachineID: id, Serial: serial, Addr: addr, Reason: ref.Reason, Text: ref.Text}
	if _, err := s.state.audit.Put(ctx, auditName(now), entry); err != nil {
		s.log.Warn("attestation refusal not audited", "machine", id, "addr", addr, "err", err)
	}
	s.log.Info("attestation refusal recorded", "machine", id, "addr", addr, "reason", ref.Reason, "after_challenge", verified)
}

// remoteIP is the client's address without its port.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
