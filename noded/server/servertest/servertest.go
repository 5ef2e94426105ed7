// Package servertest runs a whole cluster API in a test: a single-node
// cluster (embedded etcd, noded/cluster) with a cluster CA (noded/pki), the
// server on loopback, an administrator's files as `noded init` leaves them,
// a clock the test moves, and boxes with software TPMs that enrol and
// attest. Everything is removed when the test ends.
package servertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"github.com/onecloud-edu/onecloud/firmware/measure"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest"
	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
	"github.com/onecloud-edu/onecloud/noded/cluster"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/server"
)

// Admin files in an administrator's folder, as occtl reads them by default.
const (
	AdminCertFile = "admin.crt"
	AdminKeyFile  = "admin.key"
)

// T0 is the fixed time tests start at, so that their output is golden. It
// lies in the past: etcd checks its peer certificates at the real time.
var T0 = time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)

// Clock is a clock the test moves.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Env is a running cluster API.
type Env struct {
	Clock  *Clock
	CA     *pki.CA
	Pool   *x509.CertPool // the cluster CA, as clients trust it
	Member *cluster.Member
	Server *server.Server
	URL    string // https://127.0.0.1:PORT
	// AdminDir holds ca.crt, admin.crt and admin.key of administrator "li".
	AdminDir string
	Admin    tls.Certificate
	Log      *slog.Logger
}

// Start runs a cluster of one and its cluster API until the test ends.
func Start(t attesttest.T) *Env {
	t.Helper()
	return StartWith(t, nil)
}

// StartWith is Start with the server's configuration changed by adjust
// (rules, say) before it starts.
func StartWith(t attesttest.T, adjust func(*server.Config)) *Env {
	t.Helper()
	log := Logger(t, slog.LevelInfo)
	clock := &Clock{t: T0}
	ca, err := pki.NewCA(T0)
	if err != nil {
		t.Fatal(err)
	}
	// etcd checks its certificates at the real time, everything else at
	// the test's clock.
	ca.Now = time.Now
	state := t.TempDir()
	dir := pki.Dir(state)
	peerKey := newKey(t)
	peer, err := ca.Issue(&peerKey.PublicKey, pki.Identity{Kind: pki.Peer, Name: "server-1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	must(t, pki.WriteCert(dir, pki.EtcdCertFile, false, peer, ca.Etcd))
	must(t, pki.WriteKey(dir, pki.EtcdKeyFile, peerKey, false))
	must(t, pki.WriteCert(dir, pki.EtcdCACertFile, false, ca.Etcd))
	ca.Now = clock.Now

	// etcd's own lines (including the noise of every shutdown) stay out of
	// the test's output.
	cfg := cluster.StateConfig(state, "server-1", net.IPv4(127, 0, 0, 1), slog.New(slog.DiscardHandler))
	cfg.PeerAddr, cfg.ClientAddr = freeAddr(t), freeAddr(t)
	cfg.StartTimeout = 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	member, err := cluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(member.Close)

	// The serving certificate outlives the clock moves of a test.
	serving := Pair(t, ca, pki.Identity{Kind: pki.Node, Name: "server-1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, TTL: 30 * 24 * time.Hour})
	scfg := server.Config{
		Addr:        "127.0.0.1:0",
		CA:          ca,
		Certificate: serving,
		KV:          member.Client(),
		Members:     member,
		Now:         clock.Now,
		Logger:      log,
	}
	if adjust != nil {
		adjust(&scfg)
	}
	srv, err := server.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})

	e := &Env{Clock: clock, CA: ca, Pool: ca.Roots(pki.Admin), Member: member, Server: srv,
		URL: "https://" + srv.Addr().String(), AdminDir: t.TempDir(), Log: log}
	e.Admin = Pair(t, ca, pki.Identity{Kind: pki.Admin, Name: "li"})
	WritePair(t, e.AdminDir, AdminCertFile, AdminKeyFile, e.Admin)
	must(t, pki.WriteCert(e.AdminDir, pki.CACertFile, false, ca.Root))
	return e
}

// Client is a client of the server presenting cert (nil for none), at the
// test's clock.
func (e *Env) Client(t attesttest.T, cert *tls.Certificate) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.ClientConfig{Server: e.URL, CA: e.Pool, Certificate: cert, Now: e.Clock.Now, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Release adds the digest of image to the released ones.
func (e *Env) Release(t attesttest.T, name string, image []byte) {
	t.Helper()
	sum := sha256.Sum256(image)
	if _, err := e.Client(t, &e.Admin).AddRelease(context.Background(), api.ReleaseRequest{SHA256: hex.EncodeToString(sum[:]), Name: name}); err != nil {
		t.Fatal(err)
	}
}

// Pair issues a certificate with a new key.
func Pair(t attesttest.T, ca *pki.CA, id pki.Identity) tls.Certificate {
	t.Helper()
	key := newKey(t)
	c, err := ca.Issue(&key.PublicKey, id)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

// WritePair writes a certificate and its key as PEM files in dir.
func WritePair(t attesttest.T, dir, certFile, keyFile string, c tls.Certificate) {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	must(t, pki.WriteCert(dir, certFile, true, leaf))
	must(t, pki.WriteKey(dir, keyFile, c.PrivateKey, true))
}

// Box is a machine with a software TPM whose firmware measured one kernel.
type Box struct {
	ID, MAC, Serial string
	TPM             *attesttest.Swtpm
	Key             *ecdsa.PrivateKey // its TLS key, for the certificate request
	client          *attest.Client
	log             []byte
}

// NewBox starts a software TPM (no EK certificate), measures kernel into it
// as the firmware does, and returns the box. mac is its boot MAC.
func NewBox(t attesttest.T, tpms *attesttest.Factory, mac, serial string, kernel []byte) *Box {
	t.Helper()
	tpm := tpms.Plain(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "vmlinuz")
	must(t, os.WriteFile(img, kernel, 0o600))
	logPath := filepath.Join(dir, "measurements.log")
	ctx := context.Background()
	m, err := measure.NewMeasurer(ctx, measure.Device{TPM: tpm.Conn}, logPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	must(t, m.MeasureFile(ctx, img, "slot-a/vmlinuz"))
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := machines.NormalizeMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	return &Box{ID: machines.IDFor(norm), MAC: norm, Serial: serial, TPM: tpm, Key: newKey(t),
		client: attest.New(tpm.Conn, attest.Options{}), log: log}
}

// Enrol shows the box to the server's inbox, as bootstrap does when the
// firmware enrols.
func (b *Box) Enrol(t attesttest.T, e *Env) {
	t.Helper()
	addr := netip.MustParseAddr("127.0.0.1")
	if _, err := e.Server.Seen(context.Background(), machines.Sighting{
		MAC: b.MAC, Serial: b.Serial, Vendor: "QEMU", Product: "Standard PC", Addr: addr, Source: machines.SourceFirmware,
	}, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
}

// EKHash is the fingerprint of the box's EK, as a technician records it.
func (b *Box) EKHash(t attesttest.T) string {
	t.Helper()
	s, err := b.client.Begin(context.Background(), b.ID, b.Serial)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := api.EKHash(s.Request().EKPublic)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Attest runs a whole attestation through c with a certificate request for
// the box's key.
func (b *Box) Attest(ctx context.Context, c *api.Client) (api.Result, error) {
	csr, err := pki.NewCSR(b.Key, b.ID)
	if err != nil {
		return api.Result{}, err
	}
	return b.client.Attest(ctx, api.Attestation{Client: c, CSR: csr}, b.ID, b.Serial, b.log)
}

// AttestWith runs a whole attestation through v, which adds what it
// wants to the request (api.Attestation with its certificate requests).
func (b *Box) AttestWith(ctx context.Context, v attest.Verifier) (api.Result, error) {
	return b.client.Attest(ctx, v, b.ID, b.Serial, b.log)
}

// EventLog is the event log of what the box's firmware measured.
func (b *Box) EventLog() []byte { return b.log }

// Logger logs to the test's output at level until the test ends; etcd's
// goroutines that log later are silenced.
func Logger(t attesttest.T, level slog.Level) *slog.Logger {
	l := &testLog{w: t.Output()}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: level}))
}

type testLog struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return len(p), nil
	}
	return l.w.Write(p)
}

func newKey(t attesttest.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func freeAddr(t attesttest.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func must(t attesttest.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
