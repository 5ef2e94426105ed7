package nodecert

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/server/servertest"
)

var tpms *attesttest.Factory

func TestMain(m *testing.M) { attesttest.Main(m, &tpms) }

var (
	releasedKernel = []byte("onecloud kernel 1.0, released")
	laterKernel    = []byte("onecloud kernel 1.1, not released yet")
)

// fakeClock is the cluster's test clock plus timers that fire when the
// test moves it.
type fakeClock struct {
	*servertest.Clock
	mu      sync.Mutex
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waiters = append(c.waiters, waiter{c.Now().Add(d), ch})
	c.mu.Unlock()
	return ch
}

// advance moves the clock by d once the Keeper sleeps (so that it cannot
// miss the move), and wakes it when its timer is due.
func (c *fakeClock) advance(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.waiters)
		c.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Keeper never went to sleep")
		}
		time.Sleep(time.Millisecond)
	}
	c.Clock.Advance(d)
	now := c.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- now
	}
	c.waiters = kept
}

// box is an approved machine with its event log on disk.
type box struct {
	*servertest.Box
	logPath string
}

func approvedBox(t *testing.T, e *servertest.Env, mac, serial string, kernel []byte) box {
	t.Helper()
	b := servertest.NewBox(t, tpms, mac, serial, kernel)
	b.Enrol(t, e)
	if _, err := e.Client(t, &e.Admin).Approve(t.Context(), b.ID, api.ApproveRequest{Role: api.RoleVDI, School: "s01", EKHash: b.EKHash(t)}); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "measurements.log")
	if err := os.WriteFile(logPath, b.EventLog(), 0o644); err != nil {
		t.Fatal(err)
	}
	return box{b, logPath}
}

// countingTPM counts the commands sent to a TPM.
type countingTPM struct {
	transport.TPM
	n atomic.Int64
}

func (c *countingTPM) Send(cmd []byte) ([]byte, error) {
	c.n.Add(1)
	return c.TPM.Send(cmd)
}

// keeper is a Keeper running in the test.
type keeper struct {
	*Keeper
	clock    *fakeClock
	dir      string
	statuses chan Status
}

// start runs a Keeper for b against server until the test ends.
func start(t *testing.T, e *servertest.Env, b box, server string, tpm transport.TPM, dir string) *keeper {
	t.Helper()
	k := &keeper{clock: &fakeClock{Clock: e.Clock}, dir: dir, statuses: make(chan Status, 100)}
	var err error
	k.Keeper, err = New(Config{
		Server: server, Root: e.CA.Root, Name: b.ID, Serial: b.Serial, EventLog: b.logPath,
		TPM: tpm, Dir: dir, Timeout: 10 * time.Second, Logger: servertest.Logger(t, slog.LevelInfo),
		Clock: k.clock, OnChange: func(s Status) { k.statuses <- s },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("the Keeper did not stop within 20 s of its context ending")
		}
	})
	return k
}

// next returns the next status that is not Attesting, after checking that
// an attempt came first when attempt is set.
func (k *keeper) next(t *testing.T, attempt bool) Status {
	t.Helper()
	attested := false
	for {
		select {
		case s := <-k.statuses:
			if s.State == Attesting {
				attested = true
				continue
			}
			if attempt && !attested {
				t.Fatalf("status %+v without an attestation before it", s)
			}
			if disk, err := Read(k.dir); err != nil || !sameStatus(disk, s) {
				t.Errorf("status.json = %+v, %v; want %+v", disk, err, s)
			}
			return s
		case <-time.After(30 * time.Second):
			t.Fatal("no new status within 30 s")
		}
	}
}

func sameStatus(a, b Status) bool {
	return a.State == b.State && a.Reason == b.Reason && a.Text == b.Text && a.LastAccepted.Equal(b.LastAccepted) &&
		a.Expires.Equal(b.Expires) && a.NextAttempt.Equal(b.NextAttempt)
}

// kept reads and checks the pair in dir: this cluster's, for b, key 0600.
func kept(t *testing.T, e *servertest.Env, dir, name string) *x509.Certificate {
	t.Helper()
	certs, err := pki.ReadCerts(filepath.Join(dir, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ReadKey(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c := certs[0]
	if err := pki.Verify(e.CA.Roots(pki.Node), certs, pki.Node, e.Clock.Now()); err != nil {
		t.Errorf("kept certificate: %v", err)
	}
	if c.Subject.CommonName != name || !key.(*ecdsa.PrivateKey).PublicKey.Equal(c.PublicKey) {
		t.Errorf("kept certificate names %q, matches the key: %v", c.Subject.CommonName, key.(*ecdsa.PrivateKey).PublicKey.Equal(c.PublicKey))
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v, %v; want 0600", fi.Mode(), err)
	}
	return c
}

// TestKeeper runs boxes against one cluster; the subtests share its clock
// and run in order.
func TestKeeper(t *testing.T) {
	e := servertest.Start(t)
	e.Release(t, "1.0", releasedKernel)

	t.Run("attest and renew", func(t *testing.T) {
		b := approvedBox(t, e, "52:54:00:00:01:01", "SN-RENEW", releasedKernel)
		dir := filepath.Join(t.TempDir(), "node")
		k := start(t, e, b, e.URL, b.TPM.Conn, dir)
		s := k.next(t, true)
		first := kept(t, e, dir, b.ID)
		if s.State != Accepted || s.Reason != "" || !s.LastAccepted.Equal(e.Clock.Now()) || !s.Expires.Equal(first.NotAfter) {
			t.Fatalf("status %+v, want accepted now, expiring %v", s, first.NotAfter)
		}
		lifetime := first.NotAfter.Sub(first.NotBefore)
		if latest, earliest := first.NotBefore.Add(lifetime*2/3), first.NotBefore.Add(lifetime*7/12); s.NextAttempt.After(latest) || s.NextAttempt.Before(earliest) ||
			!s.NextAttempt.Equal(renewal(first, spreadOf(b.ID))) {
			t.Errorf("next attempt %v, want between %v and %v (7/12 to 2/3 of the lifetime)", s.NextAttempt, earliest, latest)
		}
		if c := k.Certificate(); c == nil || !c.Leaf.Equal(first) {
			t.Error("Certificate() is not the kept certificate")
		}

		// Nothing happens a minute before renewal time ...
		k.clock.advance(t, s.NextAttempt.Sub(e.Clock.Now())-time.Minute)
		select {
		case s := <-k.statuses:
			t.Fatalf("status %+v before renewal time", s)
		case <-time.After(50 * time.Millisecond):
		}
		// ... and the certificate is renewed once it is passed.
		k.clock.advance(t, 2*time.Minute)
		s = k.next(t, true)
		second := kept(t, e, dir, b.ID)
		if s.State != Accepted || second.Equal(first) || !second.NotAfter.After(first.NotAfter) || !s.Expires.Equal(second.NotAfter) {
			t.Errorf("after renewal: status %+v, certificate expiring %v (first %v)", s, second.NotAfter, first.NotAfter)
		}
	})

	t.Run("refused until released", func(t *testing.T) {
		b := approvedBox(t, e, "52:54:00:00:01:02", "SN-REFUSED", laterKernel)
		dir := t.TempDir()
		k := start(t, e, b, e.URL, b.TPM.Conn, dir)
		for range 2 {
			s := k.next(t, true)
			if s.State != Refused || s.Reason != string(api.ReasonImageNotReleased) || s.Text == "" || !s.Expires.IsZero() {
				t.Fatalf("status %+v, want refused: %s", s, api.ReasonImageNotReleased)
			}
			// Refusals wait the longest backoff.
			if d := s.NextAttempt.Sub(e.Clock.Now()); d < DefaultBackoff.Max/2 || d > DefaultBackoff.Max {
				t.Errorf("retry in %v, want %v..%v", d, DefaultBackoff.Max/2, DefaultBackoff.Max)
			}
			if _, err := os.Stat(filepath.Join(dir, CertFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused machine has %s (%v)", CertFile, err)
			}
			k.clock.advance(t, DefaultBackoff.Max)
		}
		// The technician releases the image; the next attempt succeeds.
		s := k.next(t, true)
		if s.State != Refused {
			t.Fatalf("status %+v, want a third refusal", s)
		}
		e.Release(t, "1.1", laterKernel)
		k.clock.advance(t, DefaultBackoff.Max)
		if s = k.next(t, true); s.State != Accepted || s.Reason != "" {
			t.Errorf("after the release: %+v", s)
		}
		kept(t, e, dir, b.ID)
	})

	t.Run("server down", func(t *testing.T) {
		b := approvedBox(t, e, "52:54:00:00:01:03", "SN-DOWN", releasedKernel)
		p := newProxy(t, e.URL)
		k := start(t, e, b, p.url, b.TPM.Conn, t.TempDir())
		for n := 1; n <= 3; n++ {
			s := k.next(t, true)
			if s.State != Error || s.Reason != ReasonUnreachable || s.Text == "" {
				t.Fatalf("status %+v, want error: %s", s, ReasonUnreachable)
			}
			// The backoff doubles from its minimum.
			limit := DefaultBackoff.Min << (n - 1)
			if d := s.NextAttempt.Sub(e.Clock.Now()); d < limit/2 || d > limit {
				t.Errorf("retry %d in %v, want %v..%v", n, d, limit/2, limit)
			}
			k.clock.advance(t, limit)
		}
		p.up.Store(true)
		if s := k.next(t, true); s.State != Accepted {
			t.Errorf("with the server back: %+v", s)
		}
	})

	t.Run("server without CA keys", func(t *testing.T) {
		b := approvedBox(t, e, "52:54:00:00:01:04", "SN-503", releasedKernel)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"error":"this node holds no CA key: attest at server-1"}`, http.StatusServiceUnavailable)
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{
			servertest.Pair(t, e.CA, pki.Identity{Kind: pki.Node, Name: "server-2", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, TTL: 30 * 24 * time.Hour}),
		}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		k := start(t, e, b, srv.URL, b.TPM.Conn, t.TempDir())
		s := k.next(t, true)
		if s.State != Error || s.Reason != ReasonServer {
			t.Fatalf("status %+v, want error: %s", s, ReasonServer)
		}
		k.clock.advance(t, DefaultBackoff.Max)
		if s := k.next(t, true); s.State != Error {
			t.Errorf("second attempt: %+v", s)
		}
	})

	t.Run("kept certificate reused", func(t *testing.T) {
		b := approvedBox(t, e, "52:54:00:00:01:05", "SN-KEPT", releasedKernel)
		dir := t.TempDir()
		pair := servertest.Pair(t, e.CA, pki.Identity{Kind: pki.Node, Name: b.ID})
		servertest.WritePair(t, dir, CertFile, KeyFile, pair)
		// An earlier run in this boot knew when it was earned.
		earned := e.Clock.Now().Add(-time.Minute).Truncate(time.Second) // RFC 3339 below keeps seconds
		if err := os.WriteFile(filepath.Join(dir, StatusFile), []byte(`{"state":"accepted","last_accepted":"`+
			earned.Format(time.RFC3339)+`","expires":"`+pair.Leaf.NotAfter.Format(time.RFC3339)+`"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		tpm := &countingTPM{TPM: b.TPM.Conn}
		k := start(t, e, b, e.URL, tpm, dir)
		s := k.next(t, false)
		if s.State != Accepted || !s.Expires.Equal(pair.Leaf.NotAfter) || !s.NextAttempt.Equal(renewal(pair.Leaf, spreadOf(b.ID))) || !s.LastAccepted.Equal(earned) {
			t.Fatalf("status %+v, want accepted with the kept certificate (renewal %v)", s, renewal(pair.Leaf, spreadOf(b.ID)))
		}
		k.clock.advance(t, time.Hour)
		if n := tpm.n.Load(); n != 0 {
			t.Errorf("%d TPM commands before renewal time", n)
		}
		k.clock.advance(t, s.NextAttempt.Sub(e.Clock.Now()))
		if s := k.next(t, true); s.State != Accepted || tpm.n.Load() == 0 {
			t.Errorf("at renewal time: %+v, %d TPM commands", s, tpm.n.Load())
		}
		if c := kept(t, e, dir, b.ID); c.Equal(pair.Leaf) {
			t.Error("the kept certificate was not renewed")
		}
	})

	t.Run("kept certificate ignored", func(t *testing.T) {
		b := approvedBox(t, e, "52:54:00:00:01:06", "SN-FOREIGN", releasedKernel)
		other, err := pki.NewCA(e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		other.Now = e.Clock.Now // only the CA differs
		for name, ca := range map[string]*pki.CA{"another CA": other, "another name": e.CA} {
			t.Run(name, func(t *testing.T) {
				id := pki.Identity{Kind: pki.Node, Name: b.ID}
				if ca == e.CA {
					id.Name = "oc-525400999999"
				}
				dir := t.TempDir()
				pair := servertest.Pair(t, ca, id)
				servertest.WritePair(t, dir, CertFile, KeyFile, pair)
				k := start(t, e, b, e.URL, b.TPM.Conn, dir)
				if s := k.next(t, true); s.State != Accepted {
					t.Fatalf("status %+v", s)
				}
				if c := kept(t, e, dir, b.ID); c.Equal(pair.Leaf) {
					t.Error("the foreign certificate is still kept")
				}
			})
		}
	})
}

// proxy forwards TCP to a server while up, and drops connections while
// down.
type proxy struct {
	url string
	up  atomic.Bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{url: "https://" + l.Addr().String()}
	addr := target[len("https://"):]
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if !p.up.Load() {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			track(c)
			track(s)
			wg.Go(func() { io.Copy(s, c); s.Close() })
			wg.Go(func() { io.Copy(c, s); c.Close() })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

func TestRenewal(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		lifetime time.Duration
		spread   float64
		want     time.Duration // after NotBefore
	}{
		{"a day", 24 * time.Hour, 0, 16 * time.Hour},
		{"a day, spread to the middle", 24 * time.Hour, 0.5, 15 * time.Hour},
		{"a day, spread to the end", 24 * time.Hour, 0.999, 14*time.Hour + 7200*time.Millisecond},
		{"an hour", time.Hour, 0, 40 * time.Minute},
		{"margin bounds it", 15 * time.Minute, 0, 5 * time.Minute},
		{"shorter than the margin", 5 * time.Minute, 0, -5 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &x509.Certificate{NotBefore: t0, NotAfter: t0.Add(tt.lifetime)}
			if got := renewal(c, tt.spread).Sub(t0); got != tt.want {
				t.Errorf("renewal after %v, want %v", got, tt.want)
			}
		})
	}
}

// A fleet's machines are spread over the renewal window, each always at
// the same place.
func TestSpread(t *testing.T) {
	seen := map[int]bool{}
	for i := range 1000 {
		name := fmt.Sprintf("oc-5254000c%04x", i)
		s := spreadOf(name)
		if s < 0 || s >= 1 || s != spreadOf(name) {
			t.Fatalf("spreadOf(%s) = %v: want a fixed value in [0, 1)", name, s)
		}
		seen[int(s*10)] = true
	}
	if len(seen) != 10 {
		t.Errorf("1,000 machines fall in %d of 10 tenths of the window: not spread", len(seen))
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 5 * time.Second, Max: time.Minute}
	for _, tt := range []struct {
		n    int
		want time.Duration // the un-jittered delay
	}{
		{1, 5 * time.Second},
		{2, 10 * time.Second},
		{4, 40 * time.Second},
		{5, time.Minute},
		{100, time.Minute},
	} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := b.Delay(tt.n)
			if d < tt.want/2 || d > tt.want {
				t.Errorf("Delay(%d) = %v, want %v..%v", tt.n, d, tt.want/2, tt.want)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("Delay(%d) is not jittered: always %v", tt.n, seen)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}}
	good := Config{Server: "https://127.0.0.1:9443", Root: root, Name: "oc-525400000001", Serial: "SN",
		EventLog: "/run/onecloud/measurements.log", TPM: &countingTPM{}, Dir: t.TempDir()}
	if _, err := New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, change := range map[string]func(*Config){
		"no server":         func(c *Config) { c.Server = "" },
		"no root":           func(c *Config) { c.Root = nil },
		"no name":           func(c *Config) { c.Name = "" },
		"no serial":         func(c *Config) { c.Serial = "" },
		"no TPM":            func(c *Config) { c.TPM = nil },
		"no dir":            func(c *Config) { c.Dir = "" },
		"backoff min > max": func(c *Config) { c.Backoff = Backoff{Min: time.Minute, Max: time.Second} },
	} {
		c := good
		change(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// An address that is not a cluster API is the one error Run returns.
	c := good
	c.Server = "http://127.0.0.1:9443"
	k, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Run(t.Context()); err == nil {
		t.Error("Run with an http:// server: no error")
	}
}

// The node that holds the cluster CA issues its own certificate, with its
// address, and renews it the same way, without a TPM or a server.
func TestLocalIssue(t *testing.T) {
	e := servertest.Start(t)
	dir := t.TempDir()
	k := &keeper{clock: &fakeClock{Clock: e.Clock}, dir: dir, statuses: make(chan Status, 100)}
	var err error
	k.Keeper, err = New(Config{Local: e.CA, Name: "srv1", IPs: []net.IP{net.ParseIP("10.0.0.11")}, Dir: dir,
		Logger: servertest.Logger(t, slog.LevelInfo), Clock: k.clock, OnChange: func(s Status) { k.statuses <- s }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	s := k.next(t, true)
	first := kept(t, e, dir, "srv1")
	if s.State != Accepted || !slices.ContainsFunc(first.IPAddresses, net.ParseIP("10.0.0.11").Equal) {
		t.Fatalf("status %+v, certificate for %v: want accepted, naming 10.0.0.11", s, first.IPAddresses)
	}
	k.clock.advance(t, s.NextAttempt.Sub(e.Clock.Now())+time.Second)
	if s := k.next(t, true); s.State != Accepted {
		t.Fatalf("after renewal time: %+v", s)
	}
	if second := kept(t, e, dir, "srv1"); !second.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed certificate expires %v, the first %v", second.NotAfter, first.NotAfter)
	}

	// Without the CA's keys there is nothing to issue with.
	if _, err := New(Config{Local: &pki.CA{Root: e.CA.Root}, Name: "srv1", Dir: dir}); err == nil {
		t.Error("New with a CA that has no keys: no error")
	}
}
