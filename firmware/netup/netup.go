// Package netup brings the box onto the network.
//
// Every physical NIC is brought up; each one that has (or later gets) a
// carrier asks DHCP, retrying with jittered exponential backoff for as long as
// the box runs, and keeps its lease renewed. An address given on the kernel
// command line replaces DHCP on its NIC. The Manager publishes each NIC's
// state for the status screen: a box without network says so plainly and
// keeps trying; nothing here ends the boot.
package netup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Phase is where a NIC is in getting an address.
type Phase string

// Phases, in the order a healthy NIC passes them.
const (
	PhaseNoCarrier   Phase = "no-carrier"  // cable out, switch port down, or link still negotiating
	PhaseDiscovering Phase = "discovering" // asking DHCP, no answer yet
	PhaseBound       Phase = "bound"       // has a DHCP lease
	PhaseStatic      Phase = "static"      // address from onecloud.ip=
	PhaseError       Phase = "error"       // cannot configure the NIC at all
)

// Lease is what a DHCP server granted.
type Lease struct {
	Addr     netip.Prefix
	Gateway  netip.Addr // zero when the server gave no router
	DNS      []netip.Addr
	Domain   string
	Hostname string
	Server   netip.Addr
	// Duration is the lease time; Renew (T1) and Rebind (T2) count from the
	// moment it was granted.
	Duration, Renew, Rebind time.Duration
	// BootServer and Cluster come from DHCP option 43 when the server is our
	// bootstrap server (sub-options 1 and 2): where to enrol
	// ("http://10.77.1.1:8080") and the cluster's address. Empty otherwise.
	BootServer, Cluster string
	// Opaque is the client's own record of the exchange, kept for renewals.
	Opaque any
}

// Link is a network interface as the host sees it.
type Link struct {
	Name     string
	MAC      string
	Physical bool // backed by a device (not lo, not a bridge or tunnel)
}

// Setting is how one NIC gets its address. It starts from Config.Static
// (DHCP otherwise) and changes while the box runs through Configure, which is
// how the node console's network screen acts.
type Setting struct {
	// VLAN, 1-4094, puts the address on an 802.1Q link NIC.VLAN ("eth0.42")
	// made on top of the NIC, for a school whose terminals sit on a tagged
	// port; the NIC itself then carries no address. 0 leaves it untagged.
	VLAN int
	// Static, when set, is the address (with its Gateway and DNS) used
	// instead of DHCP; nil asks DHCP.
	Static *Lease
}

// MaxVLAN is the highest 802.1Q VLAN id (4095 is reserved).
const MaxVLAN = 4094

// Iface is the interface that carries the address of NIC nic.
func (s Setting) Iface(nic string) string {
	if s.VLAN == 0 {
		return nic
	}
	return fmt.Sprintf("%s.%d", nic, s.VLAN)
}

// Check refuses a setting the kernel cannot take on NIC nic. It checks
// shape only; whether the address suits the school's network is the
// caller's business.
func (s Setting) Check(nic string) error {
	if s.VLAN < 0 || s.VLAN > MaxVLAN {
		return fmt.Errorf("VLAN %d is out of range: use 1-%d, or 0 for none", s.VLAN, MaxVLAN)
	}
	// IFNAMSIZ is 16 bytes with the terminating NUL.
	if name := s.Iface(nic); len(name) > 15 {
		return fmt.Errorf("the VLAN interface name %q is longer than the kernel's 15 characters", name)
	}
	if s.Static != nil && (!s.Static.Addr.IsValid() || !s.Static.Addr.Addr().Is4()) {
		return fmt.Errorf("static address %q is not an IPv4 ADDR/PREFIX", s.Static.Addr)
	}
	return nil
}

func (s Setting) clone() Setting {
	if s.Static != nil {
		l := *s.Static
		s.Static = &l
	}
	return s
}

// NIC is one interface's published state.
type NIC struct {
	Name string
	MAC  string
	// Setting is how the NIC is configured now; Iface is the interface that
	// carries its address (Name, or the VLAN link).
	Setting   Setting
	Iface     string
	Carrier   bool
	Phase     Phase
	Attempt   int       // failed DHCP attempts since the last success
	NextTry   time.Time // when discovering: the next attempt
	LastError string
	Lease     *Lease // when bound or static
	BoundAt   time.Time
}

// DHCP performs one exchange at a time; the Manager owns retries and timing.
type DHCP interface {
	// Acquire runs one DISCOVER..ACK exchange on iface. want, if valid, asks
	// for the address held before (after a cable was pulled and put back).
	Acquire(ctx context.Context, iface string, want netip.Addr) (Lease, error)
	// Renew extends a lease with its server.
	Renew(ctx context.Context, iface string, l Lease) (Lease, error)
}

// Host changes the kernel's network configuration.
type Host interface {
	Links() ([]Link, error)
	Up(name string) error
	Carrier(name string) (bool, error)
	// Apply sets the lease's address (dropping other IPv4 addresses of the
	// NIC), its default route with the given metric, and its resolvers.
	Apply(name string, l Lease, metric int) error
	// Remove drops a lease's address and routes when it expired.
	Remove(name string, l Lease) error
	// AddVLAN makes the 802.1Q link name with the given id on top of
	// parent, unless it is there already, and sets it up.
	AddVLAN(parent, name string, id int) error
	// DelLink deletes a link that AddVLAN made.
	DelLink(name string) error
}

// Config says which NICs to handle and how.
type Config struct {
	// Only, when not empty, restricts DHCP to these interfaces.
	Only []string
	// Static addresses by interface name; those NICs do no DHCP.
	Static map[string]Lease
	// AttemptTimeout bounds one DHCP exchange.
	AttemptTimeout time.Duration
	Backoff        Backoff
	// FirstJitter is the upper bound of a random wait before the very first
	// DISCOVER, so that boxes powered on together do not ask together.
	FirstJitter time.Duration
	// Poll is how often carrier is checked (default 200 ms: a netlink query,
	// cheap even on a thin terminal, and short next to a DHCP exchange).
	Poll time.Duration
	// BootWindow is how long after Run starts new NICs are looked for every
	// Poll (default 30 s, while drivers load); after it, every 20 Polls.
	BootWindow time.Duration
	Log        *slog.Logger
}

// Manager runs the NICs.
type Manager struct {
	cfg     Config
	dhcp    DHCP
	host    Host
	changed chan struct{}
	reqs    chan configReq // Configure's requests, served by Run

	mu      sync.Mutex
	nics    map[string]*NIC
	runs    map[string]*nicRun // the goroutine of each NIC that has one
	running bool               // Run is serving reqs
}

// nicRun is one NIC's goroutine: cancel and wait for done to stop it.
type nicRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	metric int // kept across Configure: the NIC's place among default routes
}

type configReq struct {
	nic   string
	s     Setting
	reply chan error
}

// New returns a Manager; call Run to start it.
func New(cfg Config, dhcp DHCP, host Host) *Manager {
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.BootWindow <= 0 {
		cfg.BootWindow = 30 * time.Second
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 4 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		cfg: cfg, dhcp: dhcp, host: host,
		changed: make(chan struct{}, 1), reqs: make(chan configReq),
		nics: map[string]*NIC{}, runs: map[string]*nicRun{},
	}
}

// Changed receives a value (coalesced) whenever a NIC's state changes.
func (m *Manager) Changed() <-chan struct{} { return m.changed }

// NICs returns every handled NIC's state, sorted by name.
func (m *Manager) NICs() []NIC {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]NIC, 0, len(m.nics))
	for _, n := range m.nics {
		c := *n
		c.Setting = n.Setting.clone()
		if n.Lease != nil {
			l := *n.Lease
			c.Lease = &l
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b NIC) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Run brings up every physical NIC and handles each until ctx ends. NICs
// that appear later (a driver still loading, a USB adapter plugged in) are
// picked up too: the list is read again every Poll during the first
// BootWindow, when drivers are still loading, and every few seconds after.
// Run also serves Configure. It returns an error only when the NICs cannot
// even be listed at first.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	m.setRunning(true)
	defer m.setRunning(false)
	started := time.Now()
	metric := 100
	for first := true; ; first = false {
		links, err := m.host.Links()
		if err != nil && first {
			return fmt.Errorf("list network interfaces: %w", err)
		}
		if err != nil {
			m.cfg.Log.Warn("listing network interfaces", "err", err)
		}
		for _, l := range links {
			if m.handle(ctx, &wg, l, metric) {
				metric++
			}
		}
		if first {
			m.notify() // the list is known, even if empty
		}
		every := m.cfg.Poll
		if time.Since(started) > m.cfg.BootWindow {
			every = 20 * m.cfg.Poll
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case r := <-m.reqs:
			t.Stop()
			r.reply <- m.reconfigure(ctx, &wg, r.nic, r.s)
		case <-t.C:
		}
	}
}

func (m *Manager) setRunning(v bool) {
	m.mu.Lock()
	m.running = v
	m.mu.Unlock()
}

// handle starts the goroutine of a NIC not seen before; it reports whether
// it did.
func (m *Manager) handle(ctx context.Context, wg *sync.WaitGroup, l Link, metric int) bool {
	if !l.Physical {
		return false
	}
	var s Setting
	if static, ok := m.cfg.Static[l.Name]; ok {
		s.Static = &static
	}
	if s.Static == nil && len(m.cfg.Only) > 0 && !slices.Contains(m.cfg.Only, l.Name) {
		return false
	}
	m.mu.Lock()
	_, known := m.nics[l.Name]
	if !known {
		m.nics[l.Name] = &NIC{Name: l.Name, MAC: l.MAC, Phase: PhaseNoCarrier, Setting: s, Iface: l.Name}
	}
	m.mu.Unlock()
	if known {
		return false
	}
	m.cfg.Log.Debug("NIC found", "nic", l.Name, "mac", l.MAC)
	if err := m.host.Up(l.Name); err != nil {
		m.update(l.Name, func(n *NIC) { n.Phase, n.LastError = PhaseError, fmt.Sprintf("cannot bring the link up: %v", err) })
		m.cfg.Log.Error("cannot bring NIC up", "nic", l.Name, "mac", l.MAC, "err", err)
		m.mu.Lock()
		m.runs[l.Name] = &nicRun{metric: metric} // no goroutine; Configure tries again
		m.mu.Unlock()
		return true
	}
	m.notify()
	m.start(ctx, wg, l.Name, s, metric, false)
	return true
}

// start runs a NIC's goroutine for setting s; applied says that its static
// address is set already.
func (m *Manager) start(ctx context.Context, wg *sync.WaitGroup, name string, s Setting, metric int, applied bool) {
	rctx, cancel := context.WithCancel(ctx)
	run := &nicRun{cancel: cancel, done: make(chan struct{}), metric: metric}
	m.mu.Lock()
	m.runs[name] = run
	m.mu.Unlock()
	iface := s.Iface(name)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(run.done)
		if s.Static != nil {
			m.runStatic(rctx, name, iface, *s.Static, metric, applied)
			return
		}
		m.runDHCP(rctx, name, iface, metric)
	}()
}

// Configure changes how NIC nic gets its address, at once: its goroutine
// stops, its address (and a VLAN link it no longer uses) goes, and the new
// setting starts. The new setting is in force when Configure returns,
// even with an error, unless the error is that the NIC is unknown, the
// setting is malformed or the VLAN link cannot be made: then nothing
// changed. A static address that the kernel refused is retried, as at boot,
// and the NIC shows the error; DHCP goes on in the background, so its
// outcome is in NICs, not here. Configure needs Run to be running.
func (m *Manager) Configure(ctx context.Context, nic string, s Setting) error {
	if err := s.Check(nic); err != nil {
		return err
	}
	m.mu.Lock()
	running := m.running
	m.mu.Unlock()
	if !running {
		return errors.New("the firmware does not manage the network on this box now (onecloud.net=off, or still starting)")
	}
	r := configReq{nic: nic, s: s.clone(), reply: make(chan error, 1)}
	select {
	case m.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		// Run finishes the change regardless; the caller reads the result
		// from NICs.
		return ctx.Err()
	}
}

// reconfigure is Configure's work, in Run's goroutine so that it never
// races with a NIC being found.
func (m *Manager) reconfigure(ctx context.Context, wg *sync.WaitGroup, name string, s Setting) error {
	m.mu.Lock()
	n, ok := m.nics[name]
	var old Setting
	if ok {
		old = n.Setting
	}
	run := m.runs[name]
	known := make([]string, 0, len(m.nics))
	for k := range m.nics {
		known = append(known, k)
	}
	m.mu.Unlock()
	if !ok {
		slices.Sort(known)
		return fmt.Errorf("no network interface %q is handled here (known: %v)", name, known)
	}
	if run == nil { // not expected: handle records every NIC it keeps
		run = &nicRun{metric: 100}
	}
	log := m.cfg.Log.With("nic", name, "mac", n.MAC)
	iface, oldIface := s.Iface(name), old.Iface(name)
	if s.VLAN != 0 {
		if err := m.host.AddVLAN(name, iface, s.VLAN); err != nil {
			return fmt.Errorf("cannot make VLAN %d on %s (is the 8021q module loaded?): %w", s.VLAN, name, err)
		}
	}
	if run.cancel != nil {
		run.cancel()
		<-run.done
	} else if err := m.host.Up(name); err != nil {
		// The link did not come up at boot; it may now.
		log.Warn("cannot bring NIC up", "err", err)
	}
	metric := run.metric
	m.mu.Lock()
	oldLease := n.Lease // read once the old goroutine stopped changing it
	m.mu.Unlock()
	if oldLease != nil {
		if err := m.host.Remove(oldIface, *oldLease); err != nil {
			log.Warn("cannot drop the old address", "iface", oldIface, "addr", oldLease.Addr, "err", err)
		}
	}
	if old.VLAN != 0 && oldIface != iface {
		if err := m.host.DelLink(oldIface); err != nil {
			log.Warn("cannot delete the old VLAN link", "iface", oldIface, "err", err)
		}
	}
	m.update(name, func(n *NIC) {
		n.Setting, n.Iface, n.Phase, n.Lease, n.Attempt, n.LastError, n.NextTry = s, iface, PhaseNoCarrier, nil, 0, "", time.Time{}
	})
	var err error
	if s.Static != nil {
		if err = m.host.Apply(iface, *s.Static, metric); err != nil {
			err = fmt.Errorf("cannot set %s on %s: %w", s.Static.Addr, iface, err)
		}
	}
	mode := "dhcp"
	if s.Static != nil {
		mode = "static " + s.Static.Addr.String()
	}
	if err != nil {
		log.Error("NIC reconfigured, but its address is not set; retrying", "iface", iface, "mode", mode, "err", err)
	} else {
		log.Info("NIC reconfigured", "iface", iface, "mode", mode)
	}
	m.start(ctx, wg, name, s, metric, s.Static != nil && err == nil)
	return err
}

func (m *Manager) update(name string, fn func(*NIC)) {
	m.mu.Lock()
	fn(m.nics[name])
	m.mu.Unlock()
	m.notify()
}

func (m *Manager) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// runStatic sets a static address on iface (unless applied says it is set)
// and then keeps NIC name's carrier shown.
func (m *Manager) runStatic(ctx context.Context, name, iface string, l Lease, metric int, applied bool) {
	for {
		var err error
		if !applied {
			err = m.host.Apply(iface, l, metric)
		}
		if err == nil {
			m.cfg.Log.Info("static address set", "nic", name, "iface", iface, "addr", l.Addr, "gateway", l.Gateway)
			m.update(name, func(n *NIC) { n.Phase, n.Lease, n.BoundAt, n.LastError = PhaseStatic, &l, time.Now(), "" })
			break
		}
		m.update(name, func(n *NIC) { n.Phase, n.LastError = PhaseError, err.Error() })
		m.cfg.Log.Error("cannot set static address; retrying", "nic", name, "err", err)
		if !sleep(ctx, m.cfg.Backoff.Max) {
			return
		}
	}
	// Keep the carrier shown current.
	for {
		m.refreshCarrier(name)
		if !sleep(ctx, m.cfg.Poll) {
			return
		}
	}
}

func (m *Manager) refreshCarrier(name string) bool {
	c, err := m.host.Carrier(name)
	if err != nil {
		c = false
	}
	m.mu.Lock()
	n := m.nics[name]
	changed := n.Carrier != c
	n.Carrier = c
	m.mu.Unlock()
	if changed {
		m.notify()
	}
	return c
}

// runDHCP is one NIC's life: wait for carrier, acquire, renew, and start
// over when the lease is lost.
// The carrier is NIC name's; DHCP runs and the lease goes on iface (name,
// or its VLAN link).
func (m *Manager) runDHCP(ctx context.Context, name, iface string, metric int) {
	log := m.cfg.Log.With("nic", name)
	if iface != name {
		log = log.With("iface", iface)
	}
	first := true
	var held netip.Addr // the address of the last lease, asked for again
	for ctx.Err() == nil {
		if !m.waitCarrier(ctx, name) {
			return
		}
		log.Debug("carrier up")
		if first && m.cfg.FirstJitter > 0 {
			first = false
			if !sleep(ctx, time.Duration(m.cfg.Backoff.Rand(int64(m.cfg.FirstJitter)))) {
				return
			}
		}
		lease, ok := m.acquire(ctx, name, iface, held, log)
		if !ok {
			continue // carrier lost or ctx done
		}
		if err := m.host.Apply(iface, lease, metric); err != nil {
			log.Error("cannot apply DHCP lease; asking again", "err", err)
			m.update(name, func(n *NIC) { n.LastError = fmt.Sprintf("cannot apply lease %s: %v", lease.Addr, err) })
			if !sleep(ctx, m.cfg.Backoff.Delay(1)) {
				return
			}
			continue
		}
		held = lease.Addr.Addr()
		attrs := []any{"addr", lease.Addr, "gateway", lease.Gateway, "server", lease.Server, "lease", lease.Duration}
		if lease.BootServer != "" {
			attrs = append(attrs, "boot_server", lease.BootServer)
		}
		log.Info("DHCP lease bound", attrs...)
		m.update(name, func(n *NIC) {
			n.Phase, n.Lease, n.BoundAt, n.Attempt, n.LastError, n.NextTry = PhaseBound, &lease, time.Now(), 0, "", time.Time{}
		})
		m.keep(ctx, name, iface, lease, metric, log)
	}
}

// waitCarrier returns when the NIC has carrier (true) or ctx ends (false).
func (m *Manager) waitCarrier(ctx context.Context, name string) bool {
	for {
		if m.refreshCarrier(name) {
			return true
		}
		m.update(name, func(n *NIC) {
			if n.Phase != PhaseNoCarrier {
				n.Phase = PhaseNoCarrier
			}
		})
		if !sleep(ctx, m.cfg.Poll) {
			return false
		}
	}
}

// acquire retries DHCP with backoff until it gets a lease. It gives up (false)
// when the carrier goes or ctx ends.
func (m *Manager) acquire(ctx context.Context, name, iface string, want netip.Addr, log *slog.Logger) (Lease, bool) {
	for {
		m.update(name, func(n *NIC) { n.Phase, n.NextTry = PhaseDiscovering, time.Time{} })
		actx, cancel := context.WithTimeout(ctx, 2*m.cfg.AttemptTimeout)
		log.Debug("DHCP attempt", "want", want)
		lease, err := m.dhcp.Acquire(actx, iface, want)
		cancel()
		if err == nil {
			return lease, true
		}
		if ctx.Err() != nil {
			return Lease{}, false
		}
		var attempt int
		m.mu.Lock()
		m.nics[name].Attempt++
		attempt = m.nics[name].Attempt
		m.mu.Unlock()
		wait := m.cfg.Backoff.Delay(attempt)
		msg := describe(err)
		log.Warn("no DHCP lease yet; retrying", "attempt", attempt, "retry_in", wait.Round(100*time.Millisecond), "err", msg)
		m.update(name, func(n *NIC) { n.LastError, n.NextTry = msg, time.Now().Add(wait) })
		if !m.sleepWithCarrier(ctx, name, wait) {
			return Lease{}, false
		}
	}
}

// keep renews the lease at T1 and retries until it expires; it returns when
// the lease is gone (expired, or carrier lost) or ctx ends.
func (m *Manager) keep(ctx context.Context, name, iface string, l Lease, metric int, log *slog.Logger) {
	granted := time.Now()
	renewAt := granted.Add(l.Renew)
	for {
		if !m.sleepWithCarrier(ctx, name, time.Until(renewAt)) {
			// Carrier lost: keep the address (a cable pulled for a second must
			// not cut the box off) and confirm the lease when it returns.
			if ctx.Err() == nil {
				log.Warn("carrier lost; will confirm the lease when it returns")
			}
			return
		}
		actx, cancel := context.WithTimeout(ctx, 2*m.cfg.AttemptTimeout)
		nl, err := m.dhcp.Renew(actx, iface, l)
		cancel()
		if err == nil {
			if err := m.host.Apply(iface, nl, metric); err != nil {
				log.Error("cannot apply renewed lease", "err", err)
			}
			l, granted = nl, time.Now()
			renewAt = granted.Add(l.Renew)
			m.update(name, func(n *NIC) { n.Lease, n.BoundAt, n.LastError = &nl, granted, "" })
			log.Debug("lease renewed", "addr", l.Addr, "lease", l.Duration)
			continue
		}
		expiry := granted.Add(l.Duration)
		if time.Now().After(expiry) {
			log.Warn("lease expired; dropping the address", "addr", l.Addr)
			if err := m.host.Remove(iface, l); err != nil {
				log.Error("cannot remove expired address", "err", err)
			}
			m.update(name, func(n *NIC) { n.Phase, n.Lease, n.LastError = PhaseDiscovering, nil, "lease expired" })
			return
		}
		// Retry at half the remaining time, as RFC 2131 suggests, but not
		// more often than every few seconds.
		renewAt = time.Now().Add(max(time.Until(expiry)/2, m.cfg.Backoff.Min))
		m.update(name, func(n *NIC) { n.LastError = "renewal failed: " + describe(err) })
	}
}

// sleepWithCarrier waits d, checking carrier; false if carrier went or ctx ended.
func (m *Manager) sleepWithCarrier(ctx context.Context, name string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		if !sleep(ctx, min(left, m.cfg.Poll)) {
			return false
		}
		if !m.refreshCarrier(name) {
			m.update(name, func(n *NIC) { n.Phase = PhaseNoCarrier })
			return false
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// describe turns a DHCP error into words for the status screen.
func describe(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer from any DHCP server"
	}
	return err.Error()
}
