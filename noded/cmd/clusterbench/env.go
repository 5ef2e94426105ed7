package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
	"github.com/onecloud-edu/onecloud/noded/cluster"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/server"
	"github.com/onecloud-edu/onecloud/noded/server/servertest"
)

// tb is the attesttest.T the bench gives the test helpers (attesttest's
// swtpm TPMs, servertest's boxes), so that it measures exactly the boxes
// the tests attest with. Fatal panics with a fatal, recovered by guard;
// helpers are called from the goroutine that runs guard only.
type tb struct {
	ctx context.Context
	dir string

	mu       sync.Mutex
	cleanups []func()
}

type fatal struct{ msg string }

var _ attesttest.T = (*tb)(nil)

func newTB() (*tb, error) {
	dir, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		return nil, fmt.Errorf("make a temporary folder (is $TMPDIR writable?): %w", err)
	}
	return &tb{ctx: context.Background(), dir: dir}, nil
}

func (t *tb) Helper()                           {}
func (t *tb) Context() context.Context          { return t.ctx }
func (t *tb) Output() io.Writer                 { return io.Discard }
func (t *tb) Fatal(args ...any)                 { panic(fatal{fmt.Sprint(args...)}) }
func (t *tb) Fatalf(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }
func (t *tb) Errorf(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }

func (t *tb) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *tb) TempDir() string {
	d, err := os.MkdirTemp(t.dir, "d")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// close runs the cleanups, last first (swtpm processes, etcd, servers),
// then removes the temporary folder.
func (t *tb) close() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	os.RemoveAll(t.dir)
}

// guard runs f and turns a helper's Fatal (or any panic) into an error.
func guard(f func() error) (err error) {
	defer func() {
		switch p := recover().(type) {
		case nil:
		case fatal:
			err = fmt.Errorf("%s", p.msg)
		default:
			err = fmt.Errorf("bench setup panicked: %v", p)
		}
	}()
	return f()
}

// env is a cluster of one and its cluster API on loopback, like
// servertest.Start but at the real time: a joining node's etcd checks its
// peer certificate at the real time, and the bench times real operations.
type env struct {
	ca     *pki.CA
	pool   *x509.CertPool
	member *cluster.Member
	srv    *server.Server
	url    string
	admin  *api.Client
	tpms   *attesttest.Factory
	kernel []byte // the image every box measured; released
}

// startEnv runs the cluster until t is closed.
func startEnv(ctx context.Context, t *tb, name string) *env {
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	dir := pki.Dir(state)
	lo := net.IPv4(127, 0, 0, 1)
	peer := servertest.Pair(t, ca, pki.Identity{Kind: pki.Peer, Name: name, IPs: []net.IP{lo}})
	must(t, pki.WriteCert(dir, pki.EtcdCertFile, false, peer.Leaf, ca.Etcd))
	must(t, pki.WriteKey(dir, pki.EtcdKeyFile, peer.PrivateKey, false))
	must(t, pki.WriteCert(dir, pki.EtcdCACertFile, false, ca.Etcd))

	cfg := cluster.StateConfig(state, name, lo, slog.New(slog.DiscardHandler))
	cfg.PeerAddr, cfg.ClientAddr = freeAddr(t), freeAddr(t)
	member, err := cluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(member.Close)

	serving := servertest.Pair(t, ca, pki.Identity{Kind: pki.Node, Name: name, IPs: []net.IP{lo}})
	srv, err := server.New(server.Config{
		Addr: "127.0.0.1:0", CA: ca, Certificate: serving, KV: member.Client(), Members: member,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	e := &env{ca: ca, pool: ca.Roots(pki.Admin), member: member, srv: srv, url: "https://" + srv.Addr().String(),
		tpms: attesttest.NewFactory(t.TempDir()), kernel: []byte("clusterbench kernel " + name)}
	admin := servertest.Pair(t, ca, pki.Identity{Kind: pki.Admin, Name: "bench"})
	e.admin = e.client(t, &admin)
	sum := sha256.Sum256(e.kernel)
	if _, err := e.admin.AddRelease(ctx, api.ReleaseRequest{SHA256: hex.EncodeToString(sum[:]), Name: "bench"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// client is a cluster API client presenting cert (nil for none).
func (e *env) client(t *tb, cert *tls.Certificate) *api.Client {
	c, err := api.NewClient(api.ClientConfig{Server: e.url, CA: e.pool, Certificate: cert, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// newBox starts a box with its own swtpm, shows it to the inbox and
// approves it in role with its EK fingerprint, as a technician does.
func (e *env) newBox(ctx context.Context, t *tb, n int, role api.Role) *servertest.Box {
	mac := fmt.Sprintf("52:54:00:be:%02x:%02x", n>>8&0xff, n&0xff)
	b := servertest.NewBox(t, e.tpms, mac, fmt.Sprintf("SN-BENCH-%d", n), e.kernel)
	if err := e.enrol(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Approve(ctx, b.ID, api.ApproveRequest{Role: role, EKHash: b.EKHash(t)}); err != nil {
		t.Fatal(err)
	}
	return b
}

// enrol shows b to the inbox as bootstrap does when its firmware enrols.
func (e *env) enrol(ctx context.Context, b *servertest.Box) error {
	_, err := e.srv.Seen(ctx, machines.Sighting{MAC: b.MAC, Serial: b.Serial, Vendor: "QEMU", Product: "Standard PC",
		Addr: netip.MustParseAddr("127.0.0.1"), Source: machines.SourceFirmware}, time.Now())
	if err != nil {
		return fmt.Errorf("enrol %s: %w", b.MAC, err)
	}
	return nil
}

func freeAddr(t *tb) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func must(t *tb, err error) {
	if err != nil {
		t.Fatal(err)
	}
}

// stateDir is a fresh state folder for a joining node.
func stateDir(t *tb) string { return filepath.Join(t.TempDir(), "state") }
