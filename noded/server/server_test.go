package server_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/onecloud-edu/onecloud/bootstrap"
	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"github.com/onecloud-edu/onecloud/internal/pinhash"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
	"github.com/onecloud-edu/onecloud/noded/cluster"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/server"
	"github.com/onecloud-edu/onecloud/noded/server/servertest"
	"github.com/onecloud-edu/onecloud/noded/verify"
)

var tpms *attesttest.Factory

func TestMain(m *testing.M) { attesttest.Main(m, &tpms) }

var (
	releasedKernel = []byte("onecloud kernel 1.0, released")
	patchedKernel  = []byte("onecloud kernel 1.0, patched by someone")
)

// raw sends one request presenting cert (nil: none) and returns the status
// and body; err is a failure below HTTP (TLS).
func raw(t *testing.T, e *servertest.Env, cert *tls.Certificate, method, path, body string) (int, string, error) {
	t.Helper()
	tc := &tls.Config{RootCAs: e.Pool, Time: e.Clock.Now, MinVersion: tls.VersionTLS13}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: tc}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// Every route needs a certificate of the right kind, except the two
// attestation routes; a certificate from another CA is refused everywhere.
func TestAuthorization(t *testing.T) {
	e := servertest.Start(t)
	node := servertest.Pair(t, e.CA, pki.Identity{Kind: pki.Node, Name: "oc-525400000009"})
	other, err := pki.NewCA(servertest.T0)
	if err != nil {
		t.Fatal(err)
	}
	other.Now = e.Clock.Now
	foreign := servertest.Pair(t, other, pki.Identity{Kind: pki.Admin, Name: "li"})
	box := servertest.NewBox(t, tpms, "52:54:00:00:00:01", "SN-AUTH", releasedKernel)
	box.Enrol(t, e)

	type call struct{ method, path, body string }
	adminRoutes := []call{
		{"GET", api.Path(api.NodesRoute), ""},
		{"DELETE", api.Path(api.RemoveNodeRoute, "oc-525400000001"), ""},
		{"GET", api.Path(api.MachinesRoute), ""},
		{"GET", api.Path(api.MachineRoute, box.ID), ""},
		{"POST", api.Path(api.ApproveRoute, box.ID), `{"role":"vdi"}`},
		{"POST", api.Path(api.DeclareRoute), `{"mac":"52:54:00:00:00:77","role":"server"}`},
		{"POST", api.Path(api.RejectRoute, box.ID), `{"reason":"test"}`},
		{"GET", api.Path(api.ClusterStatusRoute), ""},
		{"GET", api.Path(api.ReleasesRoute), ""},
		{"POST", api.Path(api.AddReleaseRoute), `{"sha256":"` + strings.Repeat("ab", 32) + `"}`},
		{"GET", "/v1/no-such-route", ""},
	}
	self := call{"GET", api.Path(api.SelfRoute), ""}
	open := []call{
		{"POST", api.ChallengePath, `{"machine_id":"oc-525400000001","serial":"SN-AUTH","ek_public":"AAAA","ak_public":"AAAA"}`},
		{"POST", api.ProofPath, `{"session_id":"00"}`},
	}
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		// want says what a route answers: 0 means "anything but 401/403".
		admin, self int
	}{
		{"no certificate", nil, http.StatusUnauthorized, http.StatusUnauthorized},
		{"node certificate", &node, http.StatusForbidden, 0},
		{"admin certificate", &e.Admin, 0, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(c call, want int) {
				t.Helper()
				status, body, err := raw(t, e, tc.cert, c.method, c.path, c.body)
				if err != nil {
					t.Fatalf("%s %s: %v", c.method, c.path, err)
				}
				if want == 0 && (status == http.StatusUnauthorized || status == http.StatusForbidden) ||
					want != 0 && status != want {
					t.Errorf("%s %s: %d %s, want %d", c.method, c.path, status, body, want)
				}
			}
			for _, c := range adminRoutes {
				check(c, tc.admin)
			}
			check(self, tc.self)
			for _, c := range open {
				status, body, err := raw(t, e, tc.cert, c.method, c.path, c.body)
				if err != nil {
					t.Fatal(err)
				}
				// Open, but nothing for an unapproved box: a refusal, no
				// session.
				var res api.Result
				if status == http.StatusUnauthorized || json.Unmarshal([]byte(body), &res) != nil || res.Accepted || res.Reason == "" || strings.Contains(body, "session_id\":\"") {
					t.Errorf("%s %s: %d %s, want a refusal", c.method, c.path, status, body)
				}
			}
		})
	}
	t.Run("certificate from another CA", func(t *testing.T) {
		for _, c := range append(append(adminRoutes, self), open...) {
			status, body, err := raw(t, e, &foreign, c.method, c.path, c.body)
			if err == nil {
				t.Errorf("%s %s with a foreign certificate: %d %s", c.method, c.path, status, body)
			}
		}
	})
	t.Run("expired admin certificate", func(t *testing.T) {
		short := servertest.Pair(t, e.CA, pki.Identity{Kind: pki.Admin, Name: "li", TTL: time.Minute})
		e.Clock.Advance(2 * time.Minute)
		defer e.Clock.Advance(-2 * time.Minute)
		if status, body, err := raw(t, e, &short, "GET", api.Path(api.NodesRoute), ""); err == nil {
			t.Errorf("expired certificate: %d %s", status, body)
		}
	})
}

func TestAttestation(t *testing.T) {
	e := servertest.Start(t)
	ctx := context.Background()
	admin := e.Client(t, &e.Admin)
	anon := e.Client(t, nil)
	e.Release(t, "onecloud 1.0", releasedKernel)

	good := servertest.NewBox(t, tpms, "52:54:00:00:00:01", "SN-GOOD", releasedKernel)
	pending := servertest.NewBox(t, tpms, "52:54:00:00:00:02", "SN-PENDING", releasedKernel)
	patched := servertest.NewBox(t, tpms, "52:54:00:00:00:03", "SN-PATCHED", patchedKernel)
	for _, b := range []*servertest.Box{good, pending, patched} {
		b.Enrol(t, e)
	}
	for _, b := range []*servertest.Box{good, patched} {
		if _, err := admin.Approve(ctx, b.ID, api.ApproveRequest{Role: api.RoleVDI, School: "s01", EKHash: b.EKHash(t)}); err != nil {
			t.Fatal(err)
		}
	}

	res, err := good.Attest(ctx, anon)
	if err != nil {
		t.Fatalf("approved box refused: %v", err)
	}
	cert, err := x509.ParseCertificate(res.NodeCertificate)
	if err != nil {
		t.Fatalf("node certificate: %v", err)
	}
	if err := pki.Verify(e.CA.Roots(pki.Node), []*x509.Certificate{cert}, pki.Node, e.Clock.Now()); err != nil {
		t.Errorf("node certificate does not verify against the cluster CA: %v", err)
	}
	if cert.Subject.CommonName != good.ID || !good.Key.PublicKey.Equal(cert.PublicKey) ||
		!cert.NotAfter.Equal(e.Clock.Now().Add(pki.DefaultNodeTTL)) || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("node certificate for %q, key %v, expires %v, IPs %v", cert.Subject.CommonName, cert.PublicKey, cert.NotAfter, cert.IPAddresses)
	}

	// With its new certificate the node reads its own record, and is
	// still no admin.
	nodeCert := tls.Certificate{Certificate: [][]byte{res.NodeCertificate}, PrivateKey: good.Key}
	me, err := e.Client(t, &nodeCert).Self(ctx)
	if err != nil || me.Name != good.ID || me.Role != api.RoleVDI || me.State != api.NodeReady || me.Image != "slot-a/vmlinuz sha256:"+sha256hex(releasedKernel)[:12] {
		t.Errorf("self = %+v, %v", me, err)
	}
	var se *api.StatusError
	if _, err := e.Client(t, &nodeCert).Nodes(ctx); !errors.As(err, &se) || se.Status != http.StatusForbidden {
		t.Errorf("node certificate on an admin route: %v", err)
	}

	var ref *api.Refusal
	if _, err := pending.Attest(ctx, anon); !errors.As(err, &ref) || ref.Reason != api.ReasonNotApproved {
		t.Errorf("unapproved box: %v", err)
	}
	if _, err := patched.Attest(ctx, anon); !errors.As(err, &ref) || ref.Reason != api.ReasonImageNotReleased {
		t.Errorf("unreleased image: %v", err)
	}

	nodes, err := admin.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].Name != good.ID || nodes[0].State != api.NodeReady || nodes[0].Member != api.MemberNone {
		t.Fatalf("nodes = %+v, %v", nodes, err)
	}
	ms, err := admin.Machines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*api.AttestationStatus{}
	for _, m := range ms {
		got[m.ID] = m.Attestation
	}
	want := map[string]api.Reason{good.ID: "", pending.ID: api.ReasonNotApproved, patched.ID: api.ReasonImageNotReleased}
	for id, reason := range want {
		a := got[id]
		if a == nil || a.Accepted != (reason == "") || a.Reason != reason || (reason != "" && a.Text == "") {
			t.Errorf("machine %s attestation %+v, want reason %q", id, a, reason)
		}
	}
	audit, err := e.Member.Client().Get(ctx, cluster.Prefix+"audit/", clientv3.WithPrefix())
	if err != nil || len(audit.Kvs) != 2 {
		t.Errorf("audit holds %v entries (%v), want 2", audit, err)
	}
	st := e.Server.Stats()
	if st.Refused[api.ReasonNotApproved] != 1 || st.Refused[api.ReasonImageNotReleased] != 1 {
		t.Errorf("stats %+v", st)
	}

	// The certificate runs out and the node is NotReady until it attests
	// again.
	e.Clock.Advance(pki.DefaultNodeTTL + time.Minute)
	nodes, _ = admin.Nodes(ctx)
	if len(nodes) != 1 || nodes[0].State != api.NodeNotReady || !strings.Contains(nodes[0].Reason, "expired") {
		t.Errorf("after expiry: %+v", nodes)
	}
	res, err = good.Attest(ctx, anon)
	if err != nil {
		t.Fatalf("re-attestation: %v", err)
	}
	nodeCert.Certificate = [][]byte{res.NodeCertificate}
	nodes, _ = admin.Nodes(ctx)
	if len(nodes) != 1 || nodes[0].State != api.NodeReady {
		t.Errorf("after re-attestation: %+v", nodes)
	}

	// A rejected machine is refused, and its node shows it.
	if _, err := admin.Reject(ctx, good.ID, api.RejectRequest{Reason: "stolen"}); err != nil {
		t.Fatal(err)
	}
	if _, err := good.Attest(ctx, anon); !errors.As(err, &ref) || ref.Reason != api.ReasonNotApproved {
		t.Errorf("rejected box: %v", err)
	}
	nodes, _ = admin.Nodes(ctx)
	if len(nodes) != 1 || nodes[0].State != api.NodeRefused || !strings.Contains(nodes[0].Reason, string(api.ReasonNotApproved)) {
		t.Errorf("after rejection: %+v", nodes)
	}
	if _, err := e.Client(t, &nodeCert).Self(ctx); !errors.As(err, &se) || se.Status != http.StatusForbidden {
		t.Errorf("rejected node reads its record: %v", err)
	}
}

func TestAdminRequests(t *testing.T) {
	e := servertest.Start(t)
	ctx := context.Background()
	admin := e.Client(t, &e.Admin)
	box := servertest.NewBox(t, tpms, "52:54:00:00:00:07", "SN-ADMIN", releasedKernel)
	box.Enrol(t, e)

	for _, tc := range []struct {
		name   string
		id     string
		req    api.ApproveRequest
		status int
		want   string
	}{
		{"unknown role", box.ID, api.ApproveRequest{Role: "desktop"}, 400, `role "desktop"`},
		{"bad school", box.ID, api.ApproveRequest{Role: "vdi", School: "a school"}, 400, "school"},
		{"bad EK hash", box.ID, api.ApproveRequest{Role: "vdi", EKHash: "abc"}, 400, "EK hash"},
		{"unknown machine", "oc-525400000099", api.ApproveRequest{Role: "vdi"}, 404, "no machine"},
		{"not an id", "../../etc", api.ApproveRequest{Role: "vdi"}, 404, "no machine"},
		{"by MAC", "52-54-00-00-00-07", api.ApproveRequest{Role: "tci", School: "s02"}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := admin.Approve(ctx, tc.id, tc.req)
			var se *api.StatusError
			switch {
			case tc.status == 200:
				if err != nil || m.ID != box.ID || m.State != enrolapi.Approved || m.Role != api.RoleTCI || m.DecidedBy != "admin:li" {
					t.Fatalf("approve = %+v, %v", m, err)
				}
			case !errors.As(err, &se) || se.Status != tc.status || !strings.Contains(se.Message, tc.want):
				t.Fatalf("err = %v, want %d %q", err, tc.status, tc.want)
			}
		})
	}

	m, err := admin.Machine(ctx, box.ID)
	if err != nil || m.Serial != "SN-ADMIN" || m.Vendor != "QEMU" {
		t.Errorf("show = %+v, %v", m, err)
	}
	if _, err := admin.AddRelease(ctx, api.ReleaseRequest{SHA256: "sha256:" + strings.Repeat("AB", 32), Name: "1.0"}); err != nil {
		t.Fatal(err)
	}
	if rs, err := admin.Releases(ctx); err != nil || len(rs) != 1 || rs[0].SHA256 != strings.Repeat("ab", 32) || rs[0].AddedBy != "li" {
		t.Errorf("releases = %+v, %v", rs, err)
	}
	var se *api.StatusError
	if _, err := admin.AddRelease(ctx, api.ReleaseRequest{SHA256: "1234"}); !errors.As(err, &se) || se.Status != 400 {
		t.Errorf("short digest: %v", err)
	}

	st, err := admin.ClusterStatus(ctx)
	if err != nil || st.Leader != "server-1" || !st.Healthy || len(st.Members) != 1 || st.Members[0].Role != api.MemberVoter {
		t.Errorf("cluster status = %+v, %v", st, err)
	}
	// The only voter cannot be removed; a node that is not there is not
	// found.
	if err := admin.RemoveNode(ctx, "server-1"); !errors.As(err, &se) || se.Status != http.StatusConflict || !strings.Contains(se.Message, "only voting member") {
		t.Errorf("remove the only voter: %v", err)
	}
	if err := admin.RemoveNode(ctx, "oc-525400000099"); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Errorf("remove an unknown node: %v", err)
	}

	// A terminal node goes away.
	e.Release(t, "1.0", releasedKernel)
	if _, err := admin.Approve(ctx, box.ID, api.ApproveRequest{Role: "tci", EKHash: box.EKHash(t)}); err != nil {
		t.Fatal(err)
	}
	if _, err := box.Attest(ctx, e.Client(t, nil)); err != nil {
		t.Fatal(err)
	}
	if err := admin.RemoveNode(ctx, box.ID); err != nil {
		t.Fatal(err)
	}
	if nodes, err := admin.Nodes(ctx); err != nil || len(nodes) != 0 {
		t.Errorf("after removal: %+v, %v", nodes, err)
	}
}

// The inbox in the cluster store: a sighting creates a pending machine, a
// second one with another serial flags a conflict.
func TestSeen(t *testing.T) {
	e := servertest.Start(t)
	ctx := context.Background()
	box := servertest.NewBox(t, tpms, "52:54:00:00:00:05", "SN-ONE", releasedKernel)
	box.Enrol(t, e)
	m, err := e.Client(t, &e.Admin).Machine(ctx, box.ID)
	if err != nil || m.State != enrolapi.Pending || m.Serial != "SN-ONE" || !m.FirstSeen.Equal(servertest.T0) {
		t.Fatalf("machine = %+v, %v", m, err)
	}
	box.Serial = "SN-TWO"
	e.Clock.Advance(time.Second)
	box.Enrol(t, e)
	m, _ = e.Client(t, &e.Admin).Machine(ctx, box.ID)
	if !m.Conflict || m.Serial != "SN-ONE" || !strings.Contains(m.Reason, "identity conflict") {
		t.Errorf("after a new serial: %+v", m)
	}
}

// Rules approve new machines at first sight, the first match wins, and
// never a machine with an identity conflict.
func TestSeenRules(t *testing.T) {
	e := servertest.StartWith(t, func(c *server.Config) {
		c.Rules = []machines.Rule{
			{Name: "lab-servers", Serials: []string{"SN-SRV"}, Role: "server"},
			{Name: "lab", MACPrefixes: []string{"52:54:00:0c"}, Role: "vdi", School: "s01"},
			{Name: "lenovo", Vendor: "LENOVO", Role: "tci"},
		}
	})
	ctx := context.Background()
	for _, tc := range []struct {
		mac, serial        string
		state              enrolapi.State
		role, school, rule string
	}{
		{"52:54:00:0c:00:01", "SN-SRV", enrolapi.Approved, "server", "", "rule:lab-servers"},
		{"52:54:00:0c:00:02", "SN-T1", enrolapi.Approved, "vdi", "s01", "rule:lab"},
		{"52:54:00:0d:00:03", "SN-T2", enrolapi.Pending, "", "", ""},
	} {
		m, err := e.Server.Seen(ctx, machines.Sighting{MAC: tc.mac, Serial: tc.serial}, servertest.T0)
		if err != nil || m.State != tc.state || m.Role != tc.role || m.School != tc.school || m.DecidedBy != tc.rule {
			t.Errorf("%s (%s): %+v, %v; want %s %s %s by %q", tc.mac, tc.serial, m, err, tc.state, tc.role, tc.school, tc.rule)
		}
	}
	// A box whose MAC was first seen with another serial is a suspect:
	// pending until a technician looks, whatever the rules say.
	if m, err := e.Server.Seen(ctx, machines.Sighting{MAC: "52:54:00:0d:00:04", Serial: "SN-FIRST"}, servertest.T0); err != nil || m.State != enrolapi.Pending {
		t.Fatalf("first sight: %+v, %v", m, err)
	}
	m, err := e.Server.Seen(ctx, machines.Sighting{MAC: "52:54:00:0d:00:04", Serial: "SN-OTHER", Vendor: "LENOVO"}, servertest.T0.Add(time.Second))
	if err != nil || m.State != enrolapi.Pending || !m.Conflict {
		t.Errorf("a conflicting box: %+v, %v; want pending with a conflict", m, err)
	}
}

// The server is a backend for the bootstrap server.
var _ bootstrap.Backend = (*server.Server)(nil)

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Two server nodes verifying one serial at once: the second Save, made on
// a record the other changed since it was loaded, fails.
func TestAttestationStoreCAS(t *testing.T) {
	e := servertest.Start(t)
	ctx := context.Background()
	a := server.NewAttestationStore(e.Member.Client())
	b := server.NewAttestationStore(e.Member.Client())
	const serial = "SN 1/2" // not a store name as it is

	if err := a.Save(ctx, serial, verify.Record{}); err == nil {
		t.Error("Save without Load accepted")
	}
	for _, s := range []verify.Store{a, b} {
		if _, ok, err := s.Load(ctx, serial); ok || err != nil {
			t.Fatalf("Load of a new serial: %v, %v", ok, err)
		}
	}
	if err := a.Save(ctx, serial, verify.Record{EKHash: "a", Clock: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, serial, verify.Record{EKHash: "b", Clock: 1}); !errors.Is(err, cluster.ErrConflict) {
		t.Fatalf("concurrent Save: %v, want a conflict", err)
	}
	r, ok, err := b.Load(ctx, serial)
	if err != nil || !ok || r.EKHash != "a" {
		t.Fatalf("Load = %+v, %v, %v", r, ok, err)
	}
	if err := b.Save(ctx, serial, verify.Record{EKHash: "a", Clock: 2}); err != nil {
		t.Fatalf("Save after a fresh Load: %v", err)
	}
}

// TestDeclare: a technician approves a server node from its label before it
// ever boots; a bad MAC or role is refused and records nothing.
func TestDeclare(t *testing.T) {
	e := servertest.Start(t)
	ctx := context.Background()
	admin := e.Client(t, &e.Admin)

	m, err := admin.Declare(ctx, api.DeclareRequest{MAC: "52:54:00:AA:00:01", Serial: "SN-NEW-SERVER",
		ApproveRequest: api.ApproveRequest{Role: api.RoleServer, School: "hq", EKHash: strings.Repeat("ab", 32)}})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "oc-525400aa0001" || m.State != enrolapi.Approved || m.Role != api.RoleServer || m.Serial != "SN-NEW-SERVER" || m.EKHash == "" {
		t.Errorf("declared machine = %+v", m)
	}
	if got, err := admin.Machine(ctx, "52:54:00:aa:00:01"); err != nil || got.ID != m.ID || got.State != enrolapi.Approved {
		t.Errorf("machine by MAC after declare = %+v, %v", got, err)
	}
	for _, bad := range []api.DeclareRequest{
		{MAC: "not-a-mac", ApproveRequest: api.ApproveRequest{Role: api.RoleServer}},
		{MAC: "52:54:00:aa:00:02", ApproveRequest: api.ApproveRequest{Role: "desktop"}},
	} {
		_, err := admin.Declare(ctx, bad)
		var se *api.StatusError
		if !errors.As(err, &se) || se.Status != 400 {
			t.Errorf("Declare(%+v) = %v, want a 400", bad, err)
		}
	}
	list, err := admin.Machines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Errorf("machines after one good and two bad declarations: %+v", list)
	}
}

// The console settings take only a PIN hash of the right form and a known
// language; a change of one keeps the other.
func TestConsoleSettingsValidation(t *testing.T) {
	e := servertest.Start(t)
	c := e.Client(t, &e.Admin)
	ctx := context.Background()
	hash, err := pinhash.HashWith("1357", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []api.ConsoleSettings{{PINHash: "1357"}, {PINHash: "pbkdf2-sha256$1$AA$AA"}, {Lang: "fr"}} {
		var se *api.StatusError
		if _, err := c.SetConsole(ctx, bad); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
			t.Errorf("SetConsole(%+v) = %v, want 400", bad, err)
		}
	}
	if _, err := c.SetConsole(ctx, api.ConsoleSettings{PINHash: hash}); err != nil {
		t.Fatal(err)
	}
	cs, err := c.SetConsole(ctx, api.ConsoleSettings{Lang: "en"})
	if err != nil || cs.PINHash != hash || cs.Lang != "en" || cs.SetBy != "li" {
		t.Errorf("after setting the language: %+v, %v", cs, err)
	}
	// Nothing refused was kept.
	if got, err := c.Console(ctx); err != nil || got.PINHash != hash {
		t.Errorf("Console = %+v, %v", got, err)
	}
}

// A box asks from its console for another role; the request waits on the
// machine for the technician, and an approval answers it.
func TestRoleRequest(t *testing.T) {
	e := servertest.Start(t)
	ctx := context.Background()
	admin := e.Client(t, &e.Admin)
	m, err := admin.Declare(ctx, api.DeclareRequest{MAC: "52:54:00:00:07:01", ApproveRequest: api.ApproveRequest{Role: api.RoleVDI}})
	if err != nil {
		t.Fatal(err)
	}
	nodeCert := servertest.Pair(t, e.CA, pki.Identity{Kind: pki.Node, Name: m.ID})
	box := e.Client(t, &nodeCert)
	got, err := box.RequestRole(ctx, api.RoleTCI)
	if err != nil || got.RequestedRole != api.RoleTCI || got.Role != api.RoleVDI || got.RequestedAt.IsZero() {
		t.Fatalf("RequestRole = %+v, %v; want the request recorded and the role unchanged", got, err)
	}
	var se *api.StatusError
	if _, err := box.RequestRole(ctx, "printer"); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Errorf("an unknown role: %v, want 400", err)
	}
	if _, err := admin.RequestRole(ctx, api.RoleTCI); !errors.As(err, &se) || se.Status != http.StatusForbidden {
		t.Errorf("an administrator asking as a node: %v, want 403", err)
	}
	other := servertest.Pair(t, e.CA, pki.Identity{Kind: pki.Node, Name: "oc-525400000799"})
	if _, err := e.Client(t, &other).RequestRole(ctx, api.RoleTCI); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Errorf("a node no machine knows: %v, want 404", err)
	}
	if m, err := admin.Approve(ctx, m.ID, api.ApproveRequest{Role: api.RoleTCI}); err != nil || m.RequestedRole != "" || m.Role != api.RoleTCI {
		t.Errorf("after the approval: %+v, %v", m, err)
	}
}
