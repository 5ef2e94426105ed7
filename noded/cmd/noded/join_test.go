package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
	"github.com/onecloud-edu/onecloud/noded/join"
	"github.com/onecloud-edu/onecloud/noded/nodecert"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/server"
	"github.com/onecloud-edu/onecloud/noded/server/servertest"
)

// node is a `noded server` running in the test.
type node struct {
	api   string   // https://127.0.0.1:PORT
	ports []string // peer, client, API
	done  chan error
	stop  context.CancelFunc
}

// startNode runs `noded server` with args on loopback, until the test
// ends or halt is called. ports are the peer, client and API ports; nil
// means fresh ones.
func startNode(t *testing.T, args []string, deps serverDeps, ports []string) *node {
	t.Helper()
	for len(ports) < 3 {
		_, p, _ := net.SplitHostPort(freeAddr(t))
		ports = append(ports, p)
	}
	args = append(args, "-addr", "127.0.0.1", "-peer-port", ports[0], "-client-port", ports[1], "-api-port", ports[2])
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{api: "https://127.0.0.1:" + ports[2], ports: ports, done: make(chan error, 1), stop: cancel}
	log := servertest.Logger(t, slog.LevelWarn)
	go func() { n.done <- runServerWith(ctx, args, io.Discard, log, deps) }()
	t.Cleanup(func() { n.halt(t) })
	return n
}

// halt stops the node and waits for it; a second call does nothing.
func (n *node) halt(t *testing.T) {
	t.Helper()
	if n.stop == nil {
		return
	}
	n.stop()
	n.stop = nil
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("noded server %s: %v", n.api, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("noded server %s did not stop within 30 s of its context ending", n.api)
	}
}

// nopClose leaves the test's software TPM open when noded closes it.
type nopClose struct{ transport.TPM }

func (nopClose) Close() error { return nil }

// TestServerJoin is a second server node's life: node 1 from `noded
// init`; the technician approves a machine as a server node and releases
// its image; `noded server -join` attests with the machine's TPM, joins
// etcd as a learner and is promoted, so the cluster shows two voters. A
// machine approved as a terminal gets a node certificate but no etcd
// certificate, and cannot join.
func TestServerJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two etcd members")
	}
	tpms := attesttest.NewFactory(t.TempDir())
	state1 := filepath.Join(t.TempDir(), "state")
	var out bytes.Buffer
	if err := runInit([]string{"-state", state1, "-name", "srv1", "-addr", "127.0.0.1"}, &out, time.Now()); err != nil {
		t.Fatal(err)
	}
	ready := make(chan *server.Server, 1)
	n1 := startNode(t, []string{"-state", state1, "-name", "srv1"}, serverDeps{ready: func(s *server.Server) { ready <- s }}, nil)
	var srv1 *server.Server
	select {
	case srv1 = <-ready:
	case err := <-n1.done:
		t.Fatalf("node 1 stopped: %v", err)
	case <-time.After(40 * time.Second):
		t.Fatal("node 1 did not start within 40 s")
	}

	adminDir := filepath.Join(state1, "admin-admin")
	caFile := filepath.Join(adminDir, pki.CACertFile)
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(caFile)
	if err != nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("cluster CA: %v", err)
	}
	adminCert, err := tls.LoadX509KeyPair(filepath.Join(adminDir, adminCertFile), filepath.Join(adminDir, adminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	client := func(url string, cert *tls.Certificate) *api.Client {
		c, err := api.NewClient(api.ClientConfig{Server: url, CA: roots, Certificate: cert, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	admin1 := client(n1.api, &adminCert)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	kernel := []byte("server kernel 6.12")
	sum := sha256.Sum256(kernel)
	if _, err := admin1.AddRelease(ctx, api.ReleaseRequest{SHA256: hex.EncodeToString(sum[:]), Name: "6.12"}); err != nil {
		t.Fatal(err)
	}
	// newMachine makes a box, shows it to the inbox as the firmware does
	// at enrolment, and approves it in role (recording its EK, since a
	// plain software TPM has no EK certificate).
	newMachine := func(mac, serial string, role api.Role) *servertest.Box {
		b := servertest.NewBox(t, tpms, mac, serial, kernel)
		if _, err := srv1.Seen(ctx, machines.Sighting{MAC: b.MAC, Serial: b.Serial, Addr: netip.MustParseAddr("127.0.0.1"), Source: machines.SourceFirmware}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := admin1.Approve(ctx, b.ID, api.ApproveRequest{Role: role, EKHash: b.EKHash(t)}); err != nil {
			t.Fatal(err)
		}
		return b
	}
	joinArgs := func(b *servertest.Box, state string) ([]string, serverDeps) {
		logFile := filepath.Join(t.TempDir(), "measurements.log")
		if err := os.WriteFile(logFile, b.EventLog(), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"-state", state, "-name", b.ID, "-join", n1.api, "-ca", caFile,
			"-tpm", "swtpm", "-serial", b.Serial, "-event-log", logFile}
		deps := serverDeps{openTPM: func(path string) (transport.TPMCloser, error) {
			if path != "swtpm" {
				return nil, errors.New("the -tpm path did not reach the opener")
			}
			return nopClose{b.TPM.Conn}, nil
		}}
		return args, deps
	}

	srvBox := newMachine("52:54:00:00:00:02", "SN-SERVER-2", api.RoleServer)
	state2 := filepath.Join(t.TempDir(), "state")
	args, deps := joinArgs(srvBox, state2)
	n2 := startNode(t, args, deps, nil)
	st := twoVoters(ctx, t, admin1, n2)
	names := st.Members[0].Name + "," + st.Members[1].Name
	if !strings.Contains(names, "srv1") || !strings.Contains(names, srvBox.ID) {
		t.Errorf("members %s, want srv1 and %s", names, srvBox.ID)
	}
	// Node 2 serves the cluster API over the shared store, with the
	// certificate it earned; not holding the CA keys, it turns
	// attestations away.
	admin2 := client(n2.api, &adminCert)
	var st2 api.ClusterStatus
	for {
		if st2, err = admin2.ClusterStatus(ctx); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || voters(st2) != 2 {
		t.Errorf("cluster status from node 2: %+v, %v", st2, err)
	}
	var se *api.StatusError
	if _, err := client(n2.api, nil).Challenge(ctx, api.AttestRequest{MachineID: "oc-525400000009", Serial: "x"}); !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable {
		t.Errorf("attestation at a node without the CA keys: %v, want 503", err)
	}
	// Node 2 keeps its certificate fresh by attesting again where it joined.
	if server, err := join.ReadServer(state2); err != nil || server != n1.api {
		t.Errorf("node 2 re-attests through %q (%v), want %s", server, err, n1.api)
	}
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := nodecert.Read(pki.Dir(state2))
		if err == nil && st.State == nodecert.Accepted && !st.NextAttempt.IsZero() {
			break
		}
		if time.Now().After(wait) {
			t.Errorf("node 2's certificate keeper: %+v, %v; want accepted with a renewal time", st, err)
			break
		}
	}
	if nodes, err := admin1.Nodes(ctx); err != nil || !hasNode(nodes, srvBox.ID, api.MemberVoter) {
		t.Errorf("nodes = %+v, %v; want %s as a voter", nodes, err, srvBox.ID)
	}

	// A terminal asks for an etcd certificate as well and gets none.
	vdi := newMachine("52:54:00:00:00:03", "SN-VDI-3", api.RoleVDI)
	key, peerKey := newTestKey(t), newTestKey(t)
	csr, err := pki.NewCSR(key, vdi.ID)
	if err != nil {
		t.Fatal(err)
	}
	peerCSR, err := pki.NewCSR(peerKey, vdi.ID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := vdi.AttestWith(ctx, api.Attestation{Client: client(n1.api, nil), CSR: csr, PeerCSR: peerCSR})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.NodeCertificate) == 0 || len(res.PeerCertificate) != 0 || len(res.EtcdEndpoints) != 0 || len(res.EtcdCACertificate) != 0 {
		t.Errorf("terminal's result: node certificate %d bytes, peer certificate %d bytes, endpoints %v; want only a node certificate",
			len(res.NodeCertificate), len(res.PeerCertificate), res.EtcdEndpoints)
	}
	// ... and `noded server -join` on it stops before writing anything.
	state3 := filepath.Join(t.TempDir(), "state")
	args, deps = joinArgs(vdi, state3)
	// Fresh ports and a short deadline, so that even a wrongly accepted
	// terminal would not take etcd's well-known ports or hang the test.
	for _, flag := range []string{"-peer-port", "-client-port", "-api-port"} {
		_, p, _ := net.SplitHostPort(freeAddr(t))
		args = append(args, flag, p)
	}
	args = append(args, "-addr", "127.0.0.1")
	jctx, jcancel := context.WithTimeout(ctx, 20*time.Second)
	err = runServerWith(jctx, args, io.Discard, slog.New(slog.DiscardHandler), deps)
	jcancel()
	if err == nil || !strings.Contains(err.Error(), "not as a server node") {
		t.Errorf("terminal joining: %v, want a refusal naming the role", err)
	}
	if _, err := os.Stat(state3); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused join left %s behind (%v)", state3, err)
	}

	// Restarted with its state folder, node 2 neither attests nor joins
	// anew: it rejoins as the voter it is.
	n2.halt(t)
	n2 = startNode(t, []string{"-state", state2, "-name", srvBox.ID}, serverDeps{}, n2.ports)
	twoVoters(ctx, t, admin1, n2)
	n2.halt(t)
	n1.halt(t)
}

// twoVoters waits until the cluster status at c shows two voting members
// and no learner.
func twoVoters(ctx context.Context, t *testing.T, c *api.Client, n *node) api.ClusterStatus {
	t.Helper()
	for {
		st, err := c.ClusterStatus(ctx)
		if err == nil && st.Healthy && voters(st) == 2 && len(st.Members) == 2 && len(st.Learners) == 0 {
			return st
		}
		select {
		case err := <-n.done:
			t.Fatalf("node %s stopped: %v", n.api, err)
		case <-ctx.Done():
			t.Fatalf("the cluster never showed two voters: %+v, %v", st, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func voters(st api.ClusterStatus) int {
	n := 0
	for _, m := range st.Members {
		if m.Role == api.MemberVoter {
			n++
		}
	}
	return n
}

func hasNode(nodes []api.Node, name string, role api.MemberRole) bool {
	for _, n := range nodes {
		if n.Name == name && n.Member == role {
			return true
		}
	}
	return false
}

func newTestKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
