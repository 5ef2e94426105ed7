package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/netup"
)

// fakeNet is one box's NICs: Configure records the change and takes it,
// unless errs scripts a failure for that call.
type fakeNet struct {
	mu    sync.Mutex
	nics  []netup.NIC
	calls []string      // Change.String() of every Configure
	errs  map[int]error // by call number, from 1
	// takeOnError says whether a failing Configure still changes the NIC
	// (netup keeps a static address the kernel refused).
	takeOnError bool
}

func (f *fakeNet) NICs() []netup.NIC {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.nics)
}

func (f *fakeNet) Configure(_ context.Context, nic string, s netup.Setting) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, FromSetting(nic, s).String())
	err := f.errs[len(f.calls)]
	if err != nil && !f.takeOnError {
		return err
	}
	for i := range f.nics {
		if f.nics[i].Name == nic {
			f.nics[i].Setting = s
		}
	}
	return err
}

func (f *fakeNet) configured() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// fakeProber answers from a table; addresses not in it time out.
type fakeProber struct {
	mu      sync.Mutex
	answers map[string]error
	probed  []string
}

func (p *fakeProber) Probe(_ context.Context, addr string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probed = append(p.probed, addr)
	if err, ok := p.answers[addr]; ok {
		return err
	}
	return fmt.Errorf("dial tcp %s: %w", addr, context.DeadlineExceeded)
}

func (p *fakeProber) set(addr string, err error) {
	p.mu.Lock()
	p.answers[addr] = err
	p.mu.Unlock()
}

// fakeClock moves only when told.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) sleepers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			keep = append(keep, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = keep
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type world struct {
	net    *fakeNet
	probe  *fakeProber
	clock  *fakeClock
	tester *Tester
}

const clusterAddr = "10.77.1.10:6443"

func newWorld(t *testing.T, cluster string) *world {
	w := &world{
		net: &fakeNet{nics: []netup.NIC{
			{Name: "eth0", MAC: "52:54:00:00:00:01", Phase: netup.PhaseBound, Iface: "eth0",
				Lease: &netup.Lease{Addr: netip.MustParsePrefix("10.77.1.50/24"), Gateway: netip.MustParseAddr("10.77.1.1")}},
			{Name: "eth1", MAC: "52:54:00:00:00:02", Phase: netup.PhaseNoCarrier, Iface: "eth1"},
		}, errs: map[int]error{}},
		probe: &fakeProber{answers: map[string]error{}},
		clock: &fakeClock{now: time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)},
	}
	w.tester = New(Config{
		Network: w.net, Prober: w.probe, Clock: w.clock,
		Cluster:     func() string { return cluster },
		RevertAfter: time.Minute, ProbeEvery: 3 * time.Second,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.tester.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "the tester running", func() bool {
		w.tester.mu.Lock()
		defer w.tester.mu.Unlock()
		return w.tester.running
	})
	return w
}

func (w *world) ended(t *testing.T) *Attempt {
	t.Helper()
	eventually(t, "the change to end", func() bool { return w.tester.State().Pending == nil })
	return w.tester.State().Last
}

// waitProbing returns once the tester has probed and sleeps until the next round.
func (w *world) waitProbing(t *testing.T) *Attempt {
	t.Helper()
	eventually(t, "a failed probe round", func() bool {
		p := w.tester.State().Pending
		return p != nil && len(p.Probes) > 0 && w.clock.sleepers() > 0
	})
	return w.tester.State().Pending
}

var toStatic = staticChange("10.9.8.7/24", "10.9.8.1", "10.9.8.53")

const (
	wantChange = "eth0 static 10.9.8.7/24 via 10.9.8.1 DNS [10.9.8.53]"
	wantRevert = "eth0 DHCP"
)

func TestTester(t *testing.T) {
	refused := fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
	for _, tc := range []struct {
		name    string
		cluster string
		setup   func(w *world)
		// act runs once the change is applied; it drives the clock or
		// the technician.
		act         func(t *testing.T, w *world)
		outcome     Outcome
		reason      string
		configured  []string
		wantProbeOK map[string]bool
	}{
		{
			name: "cluster answers: kept", cluster: clusterAddr,
			setup:       func(w *world) { w.probe.set(clusterAddr, nil) },
			outcome:     Kept,
			reason:      "the cluster answered at " + clusterAddr,
			configured:  []string{wantChange},
			wantProbeOK: map[string]bool{"cluster": true, "gateway": false},
		},
		{
			name: "cluster answers after a while: kept", cluster: clusterAddr,
			act: func(t *testing.T, w *world) {
				w.waitProbing(t)
				w.probe.set(clusterAddr, nil)
				w.clock.Advance(3 * time.Second)
			},
			outcome:    Kept,
			configured: []string{wantChange},
		},
		{
			name: "cluster silent, technician confirms: kept", cluster: clusterAddr,
			act: func(t *testing.T, w *world) {
				p := w.waitProbing(t)
				if p.Outcome != Testing || !strings.Contains(p.Reason, "the cluster at "+clusterAddr) {
					t.Errorf("pending shows %+v", p)
				}
				if err := w.tester.Confirm(context.Background()); err != nil {
					t.Errorf("Confirm: %v", err)
				}
				w.clock.Advance(2 * time.Minute) // the deadline passes harmlessly
			},
			outcome:    Confirmed,
			reason:     "confirmed by the technician",
			configured: []string{wantChange},
		},
		{
			name: "cluster silent until the deadline: reverted", cluster: clusterAddr,
			setup: func(w *world) { w.probe.set("10.9.8.1:53", refused) }, // the gateway answering does not save it
			act: func(t *testing.T, w *world) {
				w.waitProbing(t)
				w.clock.Advance(time.Minute)
			},
			outcome:     Reverted,
			reason:      "no answer within 1m0s (the cluster at " + clusterAddr,
			configured:  []string{wantChange, wantRevert},
			wantProbeOK: map[string]bool{"cluster": false, "gateway": true},
		},
		{
			name: "revert fails: reported", cluster: clusterAddr,
			setup: func(w *world) { w.net.errs[2] = errors.New("netlink: operation not permitted") },
			act: func(t *testing.T, w *world) {
				w.waitProbing(t)
				w.clock.Advance(time.Minute)
			},
			outcome:    RevertFailed,
			reason:     "putting back eth0 DHCP failed: netlink: operation not permitted: set the network by hand or reboot the box",
			configured: []string{wantChange, wantRevert},
		},
		{
			name:        "no cluster known, gateway refuses the port: kept",
			setup:       func(w *world) { w.probe.set("10.9.8.1:53", refused) },
			outcome:     Kept,
			reason:      "the gateway 10.9.8.1 answered (the box knows no cluster yet)",
			configured:  []string{wantChange},
			wantProbeOK: map[string]bool{"gateway": true},
		},
		{
			name: "no cluster known, gateway silent: reverted",
			act: func(t *testing.T, w *world) {
				w.waitProbing(t)
				w.clock.Advance(30 * time.Second)
				w.waitProbing(t)
				w.clock.Advance(30 * time.Second)
			},
			outcome:    Reverted,
			reason:     "no cluster is known and the gateway 10.9.8.1 does not answer",
			configured: []string{wantChange, wantRevert},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.cluster)
			if tc.setup != nil {
				tc.setup(w)
			}
			if err := w.tester.Apply(context.Background(), toStatic); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if tc.act != nil {
				tc.act(t, w)
			}
			last := w.ended(t)
			if last.Outcome != tc.outcome || !strings.Contains(last.Reason, tc.reason) {
				t.Errorf("outcome %s (%q), want %s containing %q", last.Outcome, last.Reason, tc.outcome, tc.reason)
			}
			if !last.Change.Equal(toStatic) || !last.Previous.Equal(Change{NIC: "eth0", Mode: ModeDHCP}) {
				t.Errorf("attempt change %s, previous %s", last.Change, last.Previous)
			}
			if last.Ended.Before(last.Applied) || last.Ended.After(w.clock.Now()) {
				t.Errorf("ended at %s, outside %s..%s", last.Ended, last.Applied, w.clock.Now())
			}
			if (last.Outcome == Reverted || last.Outcome == RevertFailed) && !last.Ended.Equal(last.Deadline) {
				t.Errorf("reverted at %s, want at the deadline %s", last.Ended, last.Deadline)
			}
			if got := w.net.configured(); !slices.Equal(got, tc.configured) {
				t.Errorf("configured %q, want %q", got, tc.configured)
			}
			for target, ok := range tc.wantProbeOK {
				i := slices.IndexFunc(last.Probes, func(p ProbeResult) bool { return p.Target == target })
				if i < 0 || last.Probes[i].OK != ok {
					t.Errorf("probe %s: %+v, want ok=%v", target, last.Probes, ok)
				}
			}
		})
	}
}

func TestSecondChangeRefused(t *testing.T) {
	w := newWorld(t, clusterAddr)
	if err := w.tester.Apply(context.Background(), toStatic); err != nil {
		t.Fatal(err)
	}
	p := w.waitProbing(t)
	if want := w.clock.Now().Add(time.Minute); !p.Deadline.Equal(want) {
		t.Errorf("deadline %s, want %s", p.Deadline, want)
	}
	err := w.tester.Apply(context.Background(), Change{NIC: "eth1", Mode: ModeStatic, Address: netip.MustParsePrefix("10.2.0.2/16")})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "eth0 static 10.9.8.7/24") || !strings.Contains(err.Error(), "08:01:00") {
		t.Errorf("second Apply = %v, want ErrBusy naming the pending change and its deadline", err)
	}
	if got := w.net.configured(); len(got) != 1 {
		t.Errorf("configured %q: the refused change touched the box", got)
	}
	// Once the first ended, a new change is taken.
	if err := w.tester.Confirm(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.probe.set(clusterAddr, nil)
	if err := w.tester.Apply(context.Background(), Change{NIC: "eth0", Mode: ModeDHCP, VLAN: 42}); err != nil {
		t.Fatalf("Apply after confirm: %v", err)
	}
	if last := w.ended(t); last.Outcome != Kept || last.Previous.String() != wantChange {
		t.Errorf("second change ended %+v", last)
	}
}

func TestApplyRefusals(t *testing.T) {
	w := newWorld(t, clusterAddr)
	for _, tc := range []struct {
		name string
		c    Change
		want string
	}{
		{"invalid", staticChange("10.9.8.7/24", "10.9.9.1"), "is outside the subnet"},
		{"unknown NIC", Change{NIC: "eth7", Mode: ModeDHCP}, `this box has no network interface "eth7" (it has: [eth0 eth1])`},
		{"no change", Change{NIC: "eth0", Mode: ModeDHCP}, "eth0 is configured that way already"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := w.tester.Apply(context.Background(), tc.c)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Apply = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
	if err := w.tester.Confirm(context.Background()); !errors.Is(err, ErrNothingPending) {
		t.Errorf("Confirm with nothing pending = %v", err)
	}
	if got := w.net.configured(); len(got) != 0 {
		t.Errorf("refused changes configured %q", got)
	}
	if New(Config{Network: w.net}).Apply(context.Background(), toStatic) != ErrNotRunning {
		t.Error("Apply without Run should say the tester is not running")
	}
}

// A change the box refuses either changed nothing (not applied), or
// changed the NIC halfway and is put back at once.
func TestApplyFailure(t *testing.T) {
	for _, take := range []bool{false, true} {
		t.Run(fmt.Sprintf("takeOnError=%v", take), func(t *testing.T) {
			w := newWorld(t, clusterAddr)
			w.net.errs[1] = errors.New("file exists")
			w.net.takeOnError = take
			err := w.tester.Apply(context.Background(), toStatic)
			if err == nil || !strings.Contains(err.Error(), "file exists") {
				t.Fatalf("Apply = %v", err)
			}
			last := w.tester.State().Last
			want, calls := NotApplied, []string{wantChange}
			if take {
				want, calls = Reverted, []string{wantChange, wantRevert}
			}
			if w.tester.State().Pending != nil || last == nil || last.Outcome != want {
				t.Errorf("state after a refused change: %+v", w.tester.State())
			}
			if got := w.net.configured(); !slices.Equal(got, calls) {
				t.Errorf("configured %q, want %q", got, calls)
			}
		})
	}
}

func TestTCPProber(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p := TCPProber{Timeout: time.Second}
	if err := p.Probe(context.Background(), ln.Addr().String()); err != nil {
		t.Errorf("probe of a listener: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := p.Probe(context.Background(), addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("probe of a closed port = %v, want ECONNREFUSED", err)
	}
}
