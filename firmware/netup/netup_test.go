package netup

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeNet is both the DHCP client and the host: a scripted world.
type fakeNet struct {
	mu       sync.Mutex
	links    []Link
	carrier  map[string]bool
	failures map[string]int // DHCP attempts to fail before answering, per NIC
	renewErr error
	acquired []string // "nic want=addr"
	renewed  int
	applied  []string // "nic addr metric"
	removed  []string
	upErr    map[string]error
	lease    func(nic string) Lease
	listed   int      // calls of Links
	vlans    []string // "add parent name id", "del name"
	vlanErr  error
	applyErr map[string]error
}

func (f *fakeNet) AddVLAN(parent, name string, id int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.vlanErr != nil {
		return f.vlanErr
	}
	f.vlans = append(f.vlans, fmt.Sprintf("add %s %s %d", parent, name, id))
	return nil
}
func (f *fakeNet) DelLink(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vlans = append(f.vlans, "del "+name)
	return nil
}

func (f *fakeNet) Links() ([]Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listed++
	return slices.Clone(f.links), nil
}
func (f *fakeNet) Up(name string) error { return f.upErr[name] }
func (f *fakeNet) Carrier(name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.carrier[name], nil
}
func (f *fakeNet) setCarrier(name string, c bool) {
	f.mu.Lock()
	f.carrier[name] = c
	f.mu.Unlock()
}
func (f *fakeNet) Apply(name string, l Lease, metric int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, fmt.Sprintf("%s %s %d", name, l.Addr, metric))
	return f.applyErr[name]
}
func (f *fakeNet) Remove(name string, l Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, name+" "+l.Addr.String())
	return nil
}
func (f *fakeNet) Acquire(ctx context.Context, iface string, want netip.Addr) (Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acquired = append(f.acquired, fmt.Sprintf("%s want=%v", iface, want))
	if f.failures[iface] > 0 {
		f.failures[iface]--
		return Lease{}, context.DeadlineExceeded
	}
	return f.lease(iface), nil
}
func (f *fakeNet) Renew(ctx context.Context, iface string, l Lease) (Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewed++
	if f.renewErr != nil {
		return Lease{}, f.renewErr
	}
	return l, nil
}
func (f *fakeNet) snapshot() (acquired, applied, removed []string, renewed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.acquired), slices.Clone(f.applied), slices.Clone(f.removed), f.renewed
}

func lab(addr string, leaseTime time.Duration) func(string) Lease {
	return func(string) Lease {
		return Lease{
			Addr: netip.MustParsePrefix(addr), Gateway: netip.MustParseAddr("10.77.1.1"),
			Server: netip.MustParseAddr("10.77.1.1"), Duration: leaseTime, Renew: leaseTime / 2, Rebind: leaseTime * 7 / 8,
		}
	}
}

func newFake() *fakeNet {
	return &fakeNet{
		links: []Link{
			{Name: "lo", MAC: "", Physical: false},
			{Name: "eth0", MAC: "52:54:00:00:00:01", Physical: true},
			{Name: "eth1", MAC: "52:54:00:00:00:02", Physical: true},
			{Name: "br0", MAC: "52:54:00:00:00:03", Physical: false},
		},
		carrier:  map[string]bool{},
		failures: map[string]int{},
		upErr:    map[string]error{},
		applyErr: map[string]error{},
		lease:    lab("10.77.1.50/24", time.Hour),
	}
}

func fastConfig() Config {
	return Config{
		AttemptTimeout: 50 * time.Millisecond,
		Backoff:        Backoff{Min: 4 * time.Millisecond, Max: 16 * time.Millisecond, Rand: func(int64) int64 { return 0 }},
		Poll:           2 * time.Millisecond,
	}
}

// run starts the manager and returns a function that waits for a condition
// on the published state.
func run(t *testing.T, cfg Config, f *fakeNet) (*Manager, func(string, func([]NIC) bool) []NIC) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := New(cfg, f, f)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	wait := func(what string, cond func([]NIC) bool) []NIC {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			nics := m.NICs()
			if cond(nics) {
				return nics
			}
			select {
			case <-m.Changed():
			case <-time.After(5 * time.Millisecond):
			case <-deadline:
				t.Fatalf("timed out waiting for %s; NICs %+v", what, nics)
			}
		}
	}
	return m, wait
}

func find(nics []NIC, name string) NIC {
	for _, n := range nics {
		if n.Name == name {
			return n
		}
	}
	return NIC{}
}

func TestSecondNICWithLinkGetsTheAddress(t *testing.T) {
	f := newFake()
	f.carrier["eth1"] = true
	_, wait := run(t, fastConfig(), f)
	nics := wait("eth1 bound", func(n []NIC) bool { return find(n, "eth1").Phase == PhaseBound })
	if len(nics) != 2 {
		t.Errorf("handled %d NICs, want the 2 physical ones: %+v", len(nics), nics)
	}
	if p := find(nics, "eth0").Phase; p != PhaseNoCarrier {
		t.Errorf("eth0 phase = %s, want %s", p, PhaseNoCarrier)
	}
	acquired, applied, _, _ := f.snapshot()
	if !slices.Equal(applied, []string{"eth1 10.77.1.50/24 101"}) {
		t.Errorf("applied %q", applied)
	}
	for _, a := range acquired {
		if a[:4] != "eth1" {
			t.Errorf("DHCP asked on %s, which has no carrier", a)
		}
	}
}

func TestRetriesWithBackoffUntilAnswer(t *testing.T) {
	f := newFake()
	f.carrier["eth0"] = true
	f.failures["eth0"] = 3
	cfg := fastConfig()
	cfg.Only = []string{"eth0"}
	_, wait := run(t, cfg, f)

	sawRetry := wait("a failed attempt shown", func(n []NIC) bool {
		e := find(n, "eth0")
		return e.Phase == PhaseDiscovering && e.Attempt >= 1 && e.LastError == "no answer from any DHCP server" && !e.NextTry.IsZero()
	})
	if len(sawRetry) != 1 {
		t.Errorf("onecloud.ifaces=eth0 should leave eth1 alone, got %+v", sawRetry)
	}
	nics := wait("bound after 3 failures", func(n []NIC) bool { return find(n, "eth0").Phase == PhaseBound })
	if e := find(nics, "eth0"); e.Attempt != 0 || e.LastError != "" || e.Lease == nil {
		t.Errorf("bound NIC should clear attempts and error: %+v", e)
	}
	acquired, _, _, _ := f.snapshot()
	if len(acquired) != 4 {
		t.Errorf("DHCP attempts = %d (%q), want 4", len(acquired), acquired)
	}
}

func TestStaticAddressNeedsNoDHCP(t *testing.T) {
	f := newFake()
	f.carrier["eth0"] = true
	cfg := fastConfig()
	cfg.Only = []string{"eth1"} // static NICs are handled even when not listed
	cfg.Static = map[string]Lease{"eth0": {Addr: netip.MustParsePrefix("10.9.8.7/24")}}
	_, wait := run(t, cfg, f)
	wait("eth0 static", func(n []NIC) bool {
		e := find(n, "eth0")
		return e.Phase == PhaseStatic && e.Carrier
	})
	acquired, applied, _, _ := f.snapshot()
	if len(acquired) != 0 {
		t.Errorf("DHCP was asked %q on a static/no-carrier box", acquired)
	}
	if !slices.Equal(applied, []string{"eth0 10.9.8.7/24 100"}) {
		t.Errorf("applied %q", applied)
	}
}

func TestLinkUpFailureIsShown(t *testing.T) {
	f := newFake()
	f.upErr["eth0"] = errors.New("operation not permitted")
	_, wait := run(t, fastConfig(), f)
	wait("eth0 error", func(n []NIC) bool {
		e := find(n, "eth0")
		return e.Phase == PhaseError && e.LastError == "cannot bring the link up: operation not permitted"
	})
}

func TestRenewsAndDropsExpiredLease(t *testing.T) {
	f := newFake()
	f.carrier["eth0"] = true
	f.lease = lab("10.77.1.60/24", 60*time.Millisecond)
	cfg := fastConfig()
	cfg.Only = []string{"eth0"}
	_, wait := run(t, cfg, f)
	wait("bound", func(n []NIC) bool { return find(n, "eth0").Phase == PhaseBound })
	// Let a couple of renewals succeed, then make the server go silent.
	for {
		if _, _, _, r := f.snapshot(); r >= 2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.mu.Lock()
	f.renewErr = context.DeadlineExceeded
	f.failures["eth0"] = 1 << 30
	f.mu.Unlock()
	wait("lease expired", func(n []NIC) bool {
		e := find(n, "eth0")
		return e.Phase == PhaseDiscovering && e.Lease == nil
	})
	_, _, removed, _ := f.snapshot()
	if !slices.Equal(removed, []string{"eth0 10.77.1.60/24"}) {
		t.Errorf("removed %q, want the expired address dropped", removed)
	}
}

func TestCarrierBackAsksForTheSameAddress(t *testing.T) {
	f := newFake()
	f.carrier["eth0"] = true
	cfg := fastConfig()
	cfg.Only = []string{"eth0"}
	_, wait := run(t, cfg, f)
	wait("bound", func(n []NIC) bool { return find(n, "eth0").Phase == PhaseBound })
	f.setCarrier("eth0", false)
	nics := wait("no carrier", func(n []NIC) bool { return find(n, "eth0").Phase == PhaseNoCarrier })
	if find(nics, "eth0").Lease == nil {
		t.Error("a pulled cable must not drop the lease at once")
	}
	f.setCarrier("eth0", true)
	wait("bound again", func(n []NIC) bool { return find(n, "eth0").Phase == PhaseBound && find(n, "eth0").Carrier })
	acquired, _, _, _ := f.snapshot()
	if want := []string{"eth0 want=invalid IP", "eth0 want=10.77.1.50"}; !slices.Equal(acquired, want) {
		t.Errorf("acquired %q, want %q", acquired, want)
	}
}

func TestBroadcast(t *testing.T) {
	for in, want := range map[string]string{
		"10.77.1.50/24":  "10.77.1.255",
		"10.0.0.1/8":     "10.255.255.255",
		"192.168.7.9/30": "192.168.7.11",
		"172.16.0.1/32":  "172.16.0.1",
	} {
		if got := broadcast(netip.MustParsePrefix(in)).String(); got != want {
			t.Errorf("broadcast(%s) = %s, want %s", in, got, want)
		}
	}
}

// A NIC whose driver loads after Run started (or a USB adapter plugged in
// later) is found and configured too.
func TestNICThatAppearsLater(t *testing.T) {
	f := newFake()
	f.links = f.links[:1] // only lo at first
	_, wait := run(t, fastConfig(), f)
	// Add the NIC only once the manager has listed the links without it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		f.mu.Lock()
		listed := f.listed
		f.mu.Unlock()
		if listed > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the manager never listed the links")
		}
	}
	f.mu.Lock()
	f.links = append(f.links, Link{Name: "eth0", MAC: "52:54:00:00:00:01", Physical: true})
	f.carrier["eth0"] = true
	f.mu.Unlock()
	nics := wait("eth0 bound", func(n []NIC) bool { return find(n, "eth0").Phase == PhaseBound })
	if len(nics) != 1 {
		t.Errorf("NICs = %+v", nics)
	}
	_, applied, _, _ := f.snapshot()
	if !slices.Equal(applied, []string{"eth0 10.77.1.50/24 100"}) {
		t.Errorf("applied %q", applied)
	}
}
