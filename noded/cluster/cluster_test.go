package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/onecloud-edu/onecloud/noded/pki"
)

// testLog sends slog output to the test's output until the test ends; etcd
// goroutines that log after that are silenced instead of panicking.
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

func newTestLogger(t *testing.T) *slog.Logger {
	l := &testLog{w: t.Output()}
	t.Cleanup(func() { // registered first, so it runs after the members close
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type testEnv struct {
	t   *testing.T
	ca  *pki.CA
	log *slog.Logger
}

func newEnv(t *testing.T) *testEnv {
	log := newTestLogger(t)
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, ca: ca, log: log}
}

// writePair issues a certificate of kind for name into dir as base.crt and
// base.key, with the etcd CA beside it.
func (e *testEnv) writePair(dir, base string, kind pki.Kind, name string) TLSFiles {
	e.t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		e.t.Fatal(err)
	}
	id := pki.Identity{Kind: kind, Name: name}
	if kind != pki.Admin {
		id.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	c, err := e.ca.Issue(&key.PublicKey, id)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := pki.WriteCert(dir, base+".crt", true, append([]*x509.Certificate{c}, e.ca.Chain(kind)...)...); err != nil {
		e.t.Fatal(err)
	}
	if err := pki.WriteKey(dir, base+".key", key, true); err != nil {
		e.t.Fatal(err)
	}
	if err := pki.WriteCert(dir, pki.EtcdCACertFile, true, e.ca.Etcd); err != nil {
		e.t.Fatal(err)
	}
	return TLSFiles{CA: filepath.Join(dir, pki.EtcdCACertFile), Cert: filepath.Join(dir, base+".crt"), Key: filepath.Join(dir, base+".key")}
}

// config lays out a node's state folder as noded init does and returns its
// member config on free loopback ports with fast raft timing.
func (e *testEnv) config(name string) Config {
	e.t.Helper()
	state := filepath.Join(e.t.TempDir(), name)
	e.writePair(pki.Dir(state), "etcd", pki.Peer, name)
	cfg := StateConfig(state, name, net.IPv4(127, 0, 0, 1), e.log)
	cfg.PeerAddr, cfg.ClientAddr = freeAddr(e.t), freeAddr(e.t)
	cfg.StartTimeout = 30 * time.Second
	// 50 ms heartbeat, 500 ms election: fast, yet tolerant of the race
	// detector on two loaded cores.
	cfg.tickMs, cfg.electionMs = 50, 500
	cfg.unsafeNoFsync = true
	return cfg
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

type machine struct {
	Serial string `json:"serial"`
	Role   string `json:"role"`
}

func TestSingleNode(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("srv1")
	m, err := Start(ctxT(t, 40*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			m.Close()
		}
	})
	if fi, err := os.Stat(cfg.DataDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data folder %v mode %v, want 0700", err, fi.Mode().Perm())
	}

	ctx := ctxT(t, 20*time.Second)
	machines, err := NewStore[machine](m.Client(), "machines")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := machines.Put(ctx, "SN-1", machine{Serial: "SN-1", Role: "vdi"}); err != nil {
		t.Fatal(err)
	}
	got, _, err := machines.Get(ctx, "SN-1")
	if err != nil || got.Role != "vdi" {
		t.Fatalf("Get = %+v, %v", got, err)
	}

	t.Run("refuses clients without an etcd certificate", func(t *testing.T) {
		dir := t.TempDir()
		tests := []struct {
			name  string
			files *TLSFiles
		}{
			{"no certificate", nil},
			{"terminal node certificate", ptr(e.writePair(dir, "node", pki.Node, "t-001"))},
			{"admin certificate", ptr(e.writePair(dir, "admin", pki.Admin, "li"))},
			{"peer certificate of another cluster", ptr(newEnv(t).writePair(t.TempDir(), "etcd", pki.Peer, "srv9"))},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				c := refusedClient(t, e, cfg, tt.files)
				defer c.Close()
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				if _, err := c.Put(cctx, "/onecloud/v1/machines/evil", "x"); err == nil {
					t.Fatal("write without a valid etcd certificate succeeded")
				}
			})
		}
	})

	t.Run("store", func(t *testing.T) { testStore(t, ctx, m.Client()) })

	t.Run("status", func(t *testing.T) {
		st, err := m.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Members) != 1 || st.Leader != "srv1" || !st.Members[0].Healthy || st.Members[0].Learner || st.RaftIndex == 0 {
			t.Fatalf("status %+v", st)
		}
	})

	t.Run("remove", func(t *testing.T) {
		if err := m.Remove(ctx, "srv1"); err == nil || !strings.Contains(err.Error(), "only voting member") {
			t.Errorf("removing the only member = %v", err)
		}
		if err := m.Remove(ctx, "nobody"); err == nil || !strings.Contains(err.Error(), "srv1") {
			t.Errorf("removing an unknown member = %v", err)
		}
	})

	t.Run("restart keeps data", func(t *testing.T) {
		m.Close()
		closed = true
		m2, err := Start(ctxT(t, 40*time.Second), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m2.Close()
		s2, _ := NewStore[machine](m2.Client(), "machines")
		if got, _, err := s2.Get(ctx, "SN-1"); err != nil || got.Role != "vdi" {
			t.Fatalf("after restart Get = %+v, %v", got, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// refusedClient dials cfg's member with files, or with no certificate at
// all, trusting the right CA so that only the client side is wrong.
func refusedClient(t *testing.T, e *testEnv, cfg Config, files *TLSFiles) *clientv3.Client {
	t.Helper()
	if files != nil {
		c, err := Dial([]string{cfg.ClientURL()}, *files, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Etcd)
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{cfg.ClientURL()},
		DialTimeout: 2 * time.Second,
		TLS:         &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13},
		Logger:      zapToSlog(e.log),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestThreeNodes(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 50*time.Second)
	cfgs := []Config{e.config("srv1"), e.config("srv2"), e.config("srv3")}
	members := make([]*Member, 3)
	t.Cleanup(func() {
		for _, m := range members {
			if m != nil {
				m.Close()
			}
		}
	})

	var err error
	if members[0], err = Start(ctx, cfgs[0]); err != nil {
		t.Fatal(err)
	}
	if members[1], err = Join(ctx, cfgs[1], []string{cfgs[0].ClientURL()}); err != nil {
		t.Fatal(err)
	}
	if members[1].etcd.Server.IsLearner() {
		t.Fatal("srv2 is still a learner after Join")
	}

	// srv3's entry is added by hand first, as if an earlier join had been
	// interrupted after the add: the status must show an unstarted learner,
	// and Join must reuse that entry and promote it.
	if _, err := addLearner(ctx, members[0].Client(), cfgs[2].PeerURL(), e.log); err != nil {
		t.Fatal(err)
	}
	st, err := members[0].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, l := countLearners(st); n != 3 || l != 1 {
		t.Fatalf("after adding a learner: %d members, %d learners, want 3 and 1: %+v", n, l, st)
	}
	if members[2], err = Join(ctx, cfgs[2], []string{cfgs[0].ClientURL(), cfgs[1].ClientURL()}); err != nil {
		t.Fatal(err)
	}
	st, err = members[2].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, l := countLearners(st); n != 3 || l != 0 || st.Leader == "" {
		t.Fatalf("formed cluster: %d members, %d learners, leader %q; want 3 voters and a leader: %+v", n, l, st.Leader, st)
	}
	for _, ms := range st.Members {
		if !ms.Healthy {
			t.Errorf("member %s unhealthy: %s", ms.Name, ms.Error)
		}
	}

	// A write on one member is read on another.
	s0, _ := NewStore[machine](members[0].Client(), "machines")
	s2, _ := NewStore[machine](members[2].Client(), "machines")
	if _, err := s0.Put(ctx, "SN-1", machine{Serial: "SN-1", Role: "server"}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s2.Get(ctx, "SN-1"); err != nil || got.Role != "server" {
		t.Fatalf("read on srv3 = %+v, %v", got, err)
	}

	// Kill the leader: the other two elect a new one and keep taking writes.
	dead := -1
	for i, m := range members {
		if m.Name() == st.Leader {
			dead = i
		}
	}
	members[dead].Close()
	members[dead] = nil
	var alive []*Member
	for _, m := range members {
		if m != nil {
			alive = append(alive, m)
		}
	}
	sa, _ := NewStore[machine](alive[0].Client(), "machines")
	sb, _ := NewStore[machine](alive[1].Client(), "machines")
	for i := range 20 {
		name := fmt.Sprintf("after-%d", i)
		if err := retryWrite(ctx, func(c context.Context) error {
			_, err := sa.Put(c, name, machine{Serial: name})
			return err
		}); err != nil {
			t.Fatalf("write %d after killing the leader: %v", i, err)
		}
	}
	recs, err := sb.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 21 {
		t.Fatalf("survivor lists %d records, want 21", len(recs))
	}

	// Remove the dead member; the cluster is two voters again.
	if err := alive[0].Remove(ctx, cfgs[dead].Name); err != nil {
		t.Fatal(err)
	}
	st, err = alive[1].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, l := countLearners(st); n != 2 || l != 0 {
		t.Fatalf("after removal: %d members %d learners: %+v", n, l, st)
	}
	for _, ms := range st.Members {
		if ms.Name == cfgs[dead].Name {
			t.Fatalf("removed member %s still listed", ms.Name)
		}
	}
	if _, err := sb.Put(ctx, "after-remove", machine{}); err != nil {
		t.Fatalf("write after removal: %v", err)
	}

	// The removed node cannot come back with its old data or name by
	// accident: a fresh join under the same name while the name is free is
	// fine, but a duplicate name is refused.
	dup := e.config(alive[0].Name())
	if _, err := Join(ctx, dup, []string{alive[0].cfg.ClientURL()}); err == nil || !strings.Contains(err.Error(), "already has a member named") {
		t.Fatalf("join under a taken name = %v", err)
	}

	// Stop both; one alone has no majority, so it never becomes ready and
	// Start must give up after StartTimeout with an error that says why.
	for i, m := range members {
		if m != nil {
			m.Close()
			members[i] = nil
		}
	}
	lone := alive[0].cfg
	lone.StartTimeout = 2 * time.Second
	began := time.Now()
	m, err := Start(ctx, lone)
	if err == nil {
		m.Close()
		t.Fatal("a member without a majority reported ready")
	}
	if !strings.Contains(err.Error(), "majority") || time.Since(began) > 15*time.Second {
		t.Fatalf("Start without a majority: %v after %v", err, time.Since(began))
	}
}

// retryWrite retries a write through the leader election that follows a
// lost leader; each try gets a short deadline.
func retryWrite(ctx context.Context, write func(context.Context) error) error {
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := write(c)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func countLearners(st Status) (members, learners int) {
	for _, m := range st.Members {
		if m.Learner {
			learners++
		}
	}
	return len(st.Members), learners
}

func TestInitialCluster(t *testing.T) {
	tests := []struct {
		name    string
		members []*etcdserverpb.Member
		want    string
		wantErr bool
	}{
		{"joiner gets its name", []*etcdserverpb.Member{
			{ID: 1, Name: "srv1", PeerURLs: []string{"https://10.0.0.1:2380"}},
			{ID: 2, PeerURLs: []string{"https://10.0.0.2:2380"}},
		}, "srv1=https://10.0.0.1:2380,srv2=https://10.0.0.2:2380", false},
		{"several peer URLs", []*etcdserverpb.Member{
			{ID: 1, Name: "srv1", PeerURLs: []string{"https://10.0.0.1:2380", "https://10.1.0.1:2380"}},
			{ID: 2, PeerURLs: []string{"https://10.0.0.2:2380"}},
		}, "srv1=https://10.0.0.1:2380,srv1=https://10.1.0.1:2380,srv2=https://10.0.0.2:2380", false},
		{"another unstarted member", []*etcdserverpb.Member{
			{ID: 1, Name: "srv1", PeerURLs: []string{"https://10.0.0.1:2380"}},
			{ID: 3, PeerURLs: []string{"https://10.0.0.3:2380"}},
			{ID: 2, PeerURLs: []string{"https://10.0.0.2:2380"}},
		}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := initialCluster(tt.members, 2, "srv2")
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("initialCluster = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	e := newEnv(t)
	good := e.config("srv1")
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "name"},
		{"no data", func(c *Config) { c.DataDir = "" }, "data folder"},
		{"bad address", func(c *Config) { c.PeerAddr = "127.0.0.1" }, "host:port"},
		{"missing cert", func(c *Config) { c.TLS.Cert = filepath.Join(t.TempDir(), "none.crt") }, "issue this node's etcd certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			_, err := Start(t.Context(), c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start = %v, want error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Join(t.Context(), good, nil); err == nil || !strings.Contains(err.Error(), "existing member") {
		t.Fatalf("Join without endpoints = %v", err)
	}
}

func testStore(t *testing.T, ctx context.Context, c *clientv3.Client) {
	s, err := NewStore[machine](c, "inventory")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Key("SN-9"); got != "/onecloud/v1/inventory/SN-9" {
		t.Errorf("key %q", got)
	}

	// Create-only, then a CAS chain where a stale revision loses.
	r1, err := s.CAS(ctx, "SN-9", machine{Role: "vdi"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CAS(ctx, "SN-9", machine{Role: "idv"}, 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create = %v, want ErrConflict", err)
	}
	r2, err := s.CAS(ctx, "SN-9", machine{Role: "idv"}, r1)
	if err != nil || r2 <= r1 {
		t.Fatalf("CAS at the current revision = %d, %v", r2, err)
	}
	if _, err := s.CAS(ctx, "SN-9", machine{Role: "tci"}, r1); !errors.Is(err, ErrConflict) {
		t.Fatalf("CAS at a stale revision = %v, want ErrConflict", err)
	}
	got, rev, err := s.Get(ctx, "SN-9")
	if err != nil || got.Role != "idv" || rev != r2 {
		t.Fatalf("Get = %+v rev %d, %v; want idv at %d", got, rev, err, r2)
	}
	r3, err := s.Put(ctx, "SN-9", machine{Role: "server"})
	if err != nil || r3 <= r2 {
		t.Fatalf("Put = %d, %v", r3, err)
	}

	// Records of another collection and outside the prefix stay invisible.
	if _, err := c.Put(ctx, "/onecloud/v1/inventory-old/x", "{}"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "SN-10", machine{Role: "vdi"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "SN-10" || list[1].Name != "SN-9" || list[1].Revision != r3 || list[1].Value.Role != "server" {
		t.Fatalf("List = %+v", list)
	}

	if err := s.Delete(ctx, "SN-9", r2); !errors.Is(err, ErrConflict) {
		t.Errorf("Delete at a stale revision = %v", err)
	}
	if err := s.Delete(ctx, "SN-9", r3); err != nil {
		t.Errorf("Delete = %v", err)
	}
	if _, _, err := s.Get(ctx, "SN-9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "SN-9", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete of a missing record = %v, want ErrNotFound", err)
	}

	// A corrupt record is reported with its key, not decoded as zero.
	if _, err := c.Put(ctx, s.Key("bad"), "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "bad"); err == nil || !strings.Contains(err.Error(), s.Key("bad")) {
		t.Errorf("Get of a corrupt record = %v", err)
	}
	if _, err := s.List(ctx); err == nil {
		t.Error("List with a corrupt record succeeded")
	}

	for _, name := range []string{"", "a/b", "../x", "sp ace", strings.Repeat("x", 254)} {
		if _, err := s.Put(ctx, name, machine{}); err == nil {
			t.Errorf("Put(%q) accepted a bad name", name)
		}
		if _, _, err := s.Get(ctx, name); err == nil {
			t.Errorf("Get(%q) accepted a bad name", name)
		}
	}
	for _, coll := range []string{"", "Machines", "a/b", "x y"} {
		if _, err := NewStore[machine](c, coll); err == nil {
			t.Errorf("NewStore(%q) accepted a bad collection", coll)
		}
	}
}
