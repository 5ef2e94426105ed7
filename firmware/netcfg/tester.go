package netcfg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/netup"
)

// Network is what the Tester changes: netup's Manager on a box.
type Network interface {
	NICs() []netup.NIC
	Configure(ctx context.Context, nic string, s netup.Setting) error
}

// Prober tells whether something answers at addr (HOST:PORT).
type Prober interface {
	// Probe returns nil when a connection was made. A refusal must wrap
	// syscall.ECONNREFUSED: for the gateway it still proves the way there
	// works.
	Probe(ctx context.Context, addr string) error
}

// TCPProber dials TCP.
type TCPProber struct {
	Timeout time.Duration // per dial; 2 s when zero
}

// Probe connects to addr and hangs up.
func (p TCPProber) Probe(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: p.Timeout}
	if d.Timeout <= 0 {
		d.Timeout = 2 * time.Second
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// Clock is the time as the Tester sees it; tests move it by hand.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Outcome is where a change stands.
type Outcome string

// Outcomes. Testing and Reverting are while the change is pending; the
// others end it.
const (
	Testing      Outcome = "testing"       // applied; probing until it passes, Confirm, or the deadline
	Reverting    Outcome = "reverting"     // the deadline passed; the previous configuration is going back
	Kept         Outcome = "kept"          // a probe passed
	Confirmed    Outcome = "confirmed"     // the technician kept it
	Reverted     Outcome = "reverted"      // the previous configuration is back; Reason says why
	RevertFailed Outcome = "revert-failed" // putting the previous configuration back failed too; Reason says how
	NotApplied   Outcome = "not-applied"   // the box refused the change; nothing changed
)

// ProbeResult is the last probe of one target.
type ProbeResult struct {
	Target string    `json:"target"` // "cluster" or "gateway"
	Addr   string    `json:"addr,omitempty"`
	OK     bool      `json:"ok"`
	Error  string    `json:"error,omitempty"`
	At     time.Time `json:"at"`
	Tries  int       `json:"tries"`
}

// Attempt is one change and what became of it.
type Attempt struct {
	Change   Change    `json:"change"`
	Previous Change    `json:"previous"` // what Revert puts back
	Applied  time.Time `json:"applied"`
	// Deadline is when the change is undone unless a probe passes or the
	// technician confirms it first.
	Deadline time.Time     `json:"deadline"`
	Probes   []ProbeResult `json:"probes,omitempty"`
	Outcome  Outcome       `json:"outcome"`
	Reason   string        `json:"reason,omitempty"`
	Ended    time.Time     `json:"ended,omitzero"`
}

// State is what the console's network screen shows.
type State struct {
	Pending *Attempt `json:"pending,omitempty"` // the change being tested, if any
	Last    *Attempt `json:"last,omitempty"`    // the last change that ended
}

// Errors the console can tell apart.
var (
	ErrBusy           = errors.New("another network change is being tested")
	ErrNothingPending = errors.New("no network change is waiting for confirmation")
	ErrNotRunning     = errors.New("the network tester is not running")
)

// Config sets up a Tester.
type Config struct {
	Network Network
	Prober  Prober
	// Cluster returns the cluster API's address (HOST:PORT), or "" while
	// the box knows none. It is asked once per change, before the change,
	// since the change may lose where it was learnt (a DHCP option).
	Cluster func() string
	// GatewayPort is the TCP port the gateway probe dials (default 53). A
	// refusal counts as an answer: it proves the gateway is reachable.
	GatewayPort int
	// RevertAfter is how long a change that no probe passed stays before it
	// is undone (default 60 s).
	RevertAfter time.Duration
	// ProbeEvery spaces probes while none passed (default 3 s): a switch
	// port or a DHCP server may take a few seconds after the change.
	ProbeEvery time.Duration
	Clock      Clock
	Log        *slog.Logger
}

// Tester applies one network change at a time and keeps or reverts it.
type Tester struct {
	cfg  Config
	jobs chan job

	mu        sync.Mutex
	running   bool
	pending   *Attempt
	last      *Attempt
	confirmed chan struct{} // closed when the pending change ends early
}

type job struct {
	a       *Attempt
	cluster string
	done    <-chan struct{}
}

// New returns a Tester; call Run to serve it.
func New(cfg Config) *Tester {
	if cfg.GatewayPort == 0 {
		cfg.GatewayPort = 53
	}
	if cfg.RevertAfter <= 0 {
		cfg.RevertAfter = 60 * time.Second
	}
	if cfg.ProbeEvery <= 0 {
		cfg.ProbeEvery = 3 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Cluster == nil {
		cfg.Cluster = func() string { return "" }
	}
	return &Tester{cfg: cfg, jobs: make(chan job, 1)}
}

// Run probes and reverts the changes Apply starts, until ctx ends. A change
// pending then stays as it is (the box is going down).
func (t *Tester) Run(ctx context.Context) {
	t.mu.Lock()
	t.running = true
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.running = false
		t.mu.Unlock()
	}()
	// Each change is watched in its own goroutine, so that a new change,
	// possible as soon as the last one ended, never waits for the last
	// probe of the one before.
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-t.jobs:
			wg.Go(func() { t.watch(ctx, j) })
		}
	}
}

// State returns copies of the pending and the last change.
func (t *Tester) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return State{Pending: t.pending.clone(), Last: t.last.clone()}
}

// NICs returns every NIC's configuration and address.
func (t *Tester) NICs() []NICStatus { return Status(t.cfg.Network.NICs()) }

func (a *Attempt) clone() *Attempt {
	if a == nil {
		return nil
	}
	c := *a
	c.Probes = slices.Clone(a.Probes)
	return &c
}

// Apply validates c, applies it at once and starts testing it. It returns
// when the change is applied (or refused); whether it stays shows in State.
func (t *Tester) Apply(ctx context.Context, c Change) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var nic *netup.NIC
	nics := t.cfg.Network.NICs()
	names := make([]string, 0, len(nics))
	for i := range nics {
		names = append(names, nics[i].Name)
		if nics[i].Name == c.NIC {
			nic = &nics[i]
		}
	}
	if nic == nil {
		return invalid("this box has no network interface %q (it has: %v)", c.NIC, names)
	}
	prev := FromSetting(nic.Name, nic.Setting)
	if prev.Equal(c) {
		return invalid("%s is configured that way already", c.NIC)
	}
	log := t.cfg.Log.With("nic", nic.Name, "mac", nic.MAC)

	now := t.cfg.Clock.Now()
	a := &Attempt{Change: c, Previous: prev, Applied: now, Deadline: now.Add(t.cfg.RevertAfter), Outcome: Testing}
	t.mu.Lock()
	switch {
	case !t.running:
		t.mu.Unlock()
		return ErrNotRunning
	case t.pending != nil:
		p := t.pending
		t.mu.Unlock()
		return fmt.Errorf("%w (%s, undone at %s unless confirmed): confirm it or wait for it to end", ErrBusy, p.Change, p.Deadline.Format(time.TimeOnly))
	}
	t.pending = a
	done := make(chan struct{})
	t.confirmed = done
	t.mu.Unlock()

	cluster := t.cfg.Cluster()
	log.Info("network change: applying", "change", c.String(), "previous", prev.String(), "cluster", cluster)
	// A console that hangs up must not leave the change half-known: once
	// asked, the change is seen through.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := t.cfg.Network.Configure(cctx, c.NIC, c.Setting()); err != nil {
		// A change that did not take leaves the NIC as it was; one that took
		// halfway (a static address the kernel refused) is put back now.
		if t.current(c.NIC).Equal(prev) {
			t.end(a, NotApplied, fmt.Sprintf("the box refused the change: %v", err), log)
			return fmt.Errorf("%s was not changed: %w", c.NIC, err)
		}
		t.mu.Lock()
		a.Outcome = Reverting
		t.mu.Unlock()
		t.revert(context.WithoutCancel(ctx), a, fmt.Sprintf("applying it failed: %v", err), log)
		return fmt.Errorf("%s could not be changed, the previous configuration is put back: %w", c.NIC, err)
	}
	t.jobs <- job{a: a, cluster: cluster, done: done}
	return nil
}

// Confirm keeps the pending change, whatever the probes say.
func (t *Tester) Confirm(ctx context.Context) error {
	t.mu.Lock()
	a := t.pending
	if a == nil {
		t.mu.Unlock()
		return ErrNothingPending
	}
	if a.Outcome != Testing {
		t.mu.Unlock()
		return fmt.Errorf("%w: too late, the change is being undone", ErrNothingPending)
	}
	t.mu.Unlock()
	t.end(a, Confirmed, "confirmed by the technician", t.cfg.Log.With("nic", a.Change.NIC))
	return nil
}

func (t *Tester) current(nic string) Change {
	for _, n := range t.cfg.Network.NICs() {
		if n.Name == nic {
			return FromSetting(n.Name, n.Setting)
		}
	}
	return Change{}
}

// end finishes a if it is still the pending change; it reports whether it
// did (Confirm and the deadline may race).
func (t *Tester) end(a *Attempt, o Outcome, reason string, log *slog.Logger) bool {
	t.mu.Lock()
	if t.pending != a {
		t.mu.Unlock()
		return false
	}
	a.Outcome, a.Reason, a.Ended = o, reason, t.cfg.Clock.Now()
	t.last, t.pending = a, nil
	close(t.confirmed)
	t.mu.Unlock()
	lvl := slog.LevelInfo
	if o == Reverted || o == RevertFailed || o == NotApplied {
		lvl = slog.LevelWarn
	}
	log.Log(context.Background(), lvl, "network change: "+string(o), "change", a.Change.String(), "reason", reason)
	return true
}

// watch probes a's targets until one passes, the technician confirms, or
// the deadline passes and the change is reverted.
func (t *Tester) watch(ctx context.Context, j job) {
	a := j.a
	log := t.cfg.Log.With("nic", a.Change.NIC)
	for {
		pass, why := t.probe(ctx, j)
		if pass {
			t.end(a, Kept, why, log)
			return
		}
		left := a.Deadline.Sub(t.cfg.Clock.Now())
		if left <= 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-j.done:
			return
		case <-t.cfg.Clock.After(min(left, t.cfg.ProbeEvery)):
		}
	}
	t.mu.Lock()
	if t.pending != a || a.Outcome != Testing {
		t.mu.Unlock()
		return // confirmed while probing
	}
	a.Outcome = Reverting
	reason := a.Reason
	t.mu.Unlock()
	t.revert(ctx, a, fmt.Sprintf("no answer within %s (%s)", t.cfg.RevertAfter, reason), log)
}

// revert puts a's previous configuration back and ends a.
func (t *Tester) revert(ctx context.Context, a *Attempt, why string, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := t.cfg.Network.Configure(rctx, a.Change.NIC, a.Previous.Setting()); err != nil {
		t.end(a, RevertFailed, fmt.Sprintf("%s; putting back %s failed: %v: set the network by hand or reboot the box", why, a.Previous, err), log)
		return
	}
	t.end(a, Reverted, why+"; "+a.Previous.String()+" is back", log)
}

// probe runs one round: the cluster when known (it decides), and the
// gateway (it decides when no cluster is known). It records the results.
func (t *Tester) probe(ctx context.Context, j job) (bool, string) {
	a := j.a
	var results []ProbeResult
	pass, why := false, ""
	if j.cluster != "" {
		err := t.probeOne(ctx, j.cluster)
		results = append(results, result("cluster", j.cluster, err == nil, err))
		if err == nil {
			pass, why = true, "the cluster answered at "+j.cluster
		} else {
			why = fmt.Sprintf("the cluster at %s: %v", j.cluster, err)
		}
	}
	gw, missing := t.gateway(a.Change)
	switch {
	case gw.IsValid():
		addr := net.JoinHostPort(gw.String(), strconv.Itoa(t.cfg.GatewayPort))
		err := t.probeOne(ctx, addr)
		answered := err == nil || errors.Is(err, syscall.ECONNREFUSED)
		results = append(results, result("gateway", addr, answered, err))
		if j.cluster == "" {
			if answered {
				pass, why = true, fmt.Sprintf("the gateway %s answered (the box knows no cluster yet)", gw)
			} else {
				why = fmt.Sprintf("no cluster is known and the gateway %s does not answer: %v", gw, err)
			}
		}
	case j.cluster == "":
		why = "no cluster is known and " + missing + ": nothing to test against, confirm the change to keep it"
		results = append(results, ProbeResult{Target: "gateway", Error: missing, At: t.cfg.Clock.Now()})
	default:
		results = append(results, ProbeResult{Target: "gateway", Error: missing, At: t.cfg.Clock.Now()})
	}
	t.mu.Lock()
	if t.pending == a {
		for i := range results {
			results[i].At = t.cfg.Clock.Now()
			results[i].Tries = 1
			for _, old := range a.Probes {
				if old.Target == results[i].Target {
					results[i].Tries = old.Tries + 1
				}
			}
		}
		a.Probes = results
		if !pass {
			a.Reason = why
		}
	}
	t.mu.Unlock()
	return pass, why
}

func (t *Tester) probeOne(ctx context.Context, addr string) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return t.cfg.Prober.Probe(pctx, addr)
}

func result(target, addr string, ok bool, err error) ProbeResult {
	r := ProbeResult{Target: target, Addr: addr, OK: ok}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// gateway is the change's gateway: the static one, or the DHCP lease's
// once there is one. Without one it says why.
func (t *Tester) gateway(c Change) (netip.Addr, string) {
	if c.Mode == ModeStatic {
		if c.Gateway.IsValid() {
			return c.Gateway, ""
		}
		return netip.Addr{}, "the change sets no gateway"
	}
	for _, n := range t.cfg.Network.NICs() {
		if n.Name != c.NIC {
			continue
		}
		if n.Lease == nil {
			return netip.Addr{}, "no DHCP lease yet"
		}
		if !n.Lease.Gateway.IsValid() {
			return netip.Addr{}, "the DHCP lease names no gateway"
		}
		return n.Lease.Gateway, ""
	}
	return netip.Addr{}, "the NIC is gone"
}
