package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/cmdline"
	"github.com/onecloud-edu/onecloud/firmware/enrol"
	"github.com/onecloud-edu/onecloud/firmware/netup"
	"github.com/onecloud-edu/onecloud/firmware/screen"
	"github.com/onecloud-edu/onecloud/firmware/supervise"
	"github.com/onecloud-edu/onecloud/noded/localapi"
	"github.com/onecloud-edu/onecloud/noded/nodecert"
)

// minRedraw keeps a flapping link from flooding a 115200-baud serial line.
const minRedraw = 2 * time.Second

// watch redraws the status screen when something changes, starts enrolment
// once the box is online, and announces readiness once (closing ready),
// until ctx ends. stop ends the boot (for a reboot into a new role).
func (b *boot) watch(ctx context.Context, stop func(), sup *supervise.Supervisor, nets *netup.Manager, readyCh chan<- struct{}) {
	ready, dirty := false, true
	// Enrolment starts once, when the box is first online; until then its
	// channel is nil and never fires.
	var enr *enrol.Client
	var enrChanged <-chan struct{}
	bootMAC := ""
	stopEnrol := func() {}
	defer func() { stopEnrol() }()
	trustStarted := false
	// The node certificate's status as noded attest last wrote it.
	var att *nodecert.Status
	var wg sync.WaitGroup
	defer wg.Wait()
	// Draw nothing until the NICs are listed: an empty list would read
	// "no network interface found" for the first fraction of a second.
	netsListed := b.opts.Network == "off"
	var lastDraw time.Time
	hostFromDHCP := ""
	// Until ready, look often: the ready line is what boot time is measured
	// by, and noded's socket appears a moment after its process starts.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-nets.Changed():
			dirty, netsListed = true, true
		case <-sup.Changed():
			dirty = true
		case <-enrChanged:
			dirty = true
		case <-b.reenrol:
			// The console asked to enrol again (with the boot server it
			// may have set): the running client stops, and a new one
			// starts below, as at the first time online.
			if enr != nil {
				stopEnrol()
				enr, enrChanged, dirty = nil, nil, true
			}
		case <-tick.C:
		}
		if !netsListed {
			continue
		}
		nics := nets.NICs()
		if enr == nil && screen.Online(nics) {
			// Readiness does not wait for it: a box waiting for approval
			// is online, its services answer, and it says that it waits.
			cfg := b.enrolConfig(nics, func() { b.reboot.Store(true); stop() })
			bootMAC = cfg.BootMAC
			enr = enrol.New(cfg)
			enrChanged = enr.Changed()
			enrCtx, cancel := context.WithCancel(ctx)
			stopEnrol = cancel
			client := enr
			wg.Go(func() {
				if err := client.Run(enrCtx); err != nil {
					b.note("enrolment stopped: %v", err)
				}
			})
		}
		if enr != nil {
			if c := enr.State().Cluster; c != nil {
				b.clusterAPI.Store(&c.API)
			}
		}
		if enr != nil && !trustStarted {
			trustStarted = b.startTrust(ctx, sup, enr.State(), bootMAC, nics)
		}
		if trustStarted {
			if a, changed := b.attestation(att); changed {
				att, dirty = a, true
			}
		}
		// A redraw is due when something changed and the last one is old
		// enough; a box that may just have become ready is checked at once.
		due := dirty && time.Since(lastDraw) >= minRedraw
		becomingReady := !ready && screen.Online(nics)
		if !due && !becomingReady {
			continue
		}
		if h := dhcpHostname(nics); h != "" && h != hostFromDHCP && b.opts.Hostname == "" {
			hostFromDHCP = h
			b.setHostname(h)
		}
		st, nodedOK := b.state(ctx, sup, nics)
		st.Enrolment = enrol.State{ID: b.opts.ID, Role: b.opts.Role, School: b.opts.School}
		if enr != nil {
			st.Enrolment = enr.State()
		}
		st.Attestation = att
		nowReady := becomingReady && (nodedOK || !b.opts.Noded)
		if !due && !nowReady {
			continue // waiting for noded's answer; nothing new to show
		}
		dirty, lastDraw = false, time.Now()
		if _, err := os.Stat(screen.MenuActivePath); err != nil { // no console menu open on the console
			if err := screen.Render(b.console, st); err != nil {
				b.log.Warn("drawing status screen", "err", err)
			}
		}
		if err := screen.Save(screen.StatePath, st); err != nil {
			b.log.Debug("the node console will not see this state", "err", err)
		}
		if nowReady {
			ready = true
			fmt.Fprintln(b.console, ReadyLine)
			close(readyCh)
		}
	}
}

// state gathers the screen's contents: noded's view of the node when it
// answers, the firmware's own otherwise.
func (b *boot) state(ctx context.Context, sup *supervise.Supervisor, nics []netup.NIC) (screen.State, bool) {
	st := screen.State{
		Now:       time.Now(),
		Release:   b.rel,
		Uptime:    uptime(),
		Inventory: &b.inv,
		NICs:      nics,
		Services:  sup.States(),
		Notes:     b.currentNotes(),
	}
	for _, svc := range st.Services {
		st.ServiceLog = append(st.ServiceLog, important(svc.Name, sup.Logs(svc.Name, 200))...)
	}
	if n := len(st.ServiceLog); n > maxServiceLog {
		st.ServiceLog = st.ServiceLog[n-maxServiceLog:]
	}
	st.Hostname, _ = os.Hostname()
	if !b.opts.Noded {
		st.NodedErr = "off (onecloud.noded=0)"
		return st, false
	}
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	ns, err := localapi.Get(qctx, localapi.SocketPath)
	if err != nil {
		st.NodedErr = "not answering yet"
		b.log.Debug("noded status", "err", err)
		return st, false
	}
	st.Hostname, st.Services = ns.Hostname, ns.Services
	st.Uptime = time.Duration(ns.UptimeSec * float64(time.Second))
	if ns.Inventory != nil {
		st.Inventory = ns.Inventory
	}
	return st, true
}

// attestation reads the node certificate's status and says on the
// console when the cluster's verdict changed: accepted, refused and why,
// or unreachable. It reports whether anything changed since last.
func (b *boot) attestation(last *nodecert.Status) (*nodecert.Status, bool) {
	a, err := nodecert.Read(nodeCertDir)
	if err != nil {
		return last, false // not written yet (or a server node, which joins instead)
	}
	if last != nil && *last == a {
		return last, false
	}
	if a.State != nodecert.Attesting && (last == nil || last.State != a.State || last.Reason != a.Reason) {
		fmt.Fprintf(b.console, "onecloud: attestation %s\n", screen.Attestation(a, time.Now()))
	}
	return &a, true
}

// maxServiceLog bounds the service lines the console gets.
const maxServiceLog = 40

// important keeps a service's warnings, errors and the supervisor's own
// lines (restarts), named by the service.
func important(name string, lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.HasPrefix(l, "supervisor:") {
			out = append(out, name+": "+l)
		}
	}
	return out
}

func dhcpHostname(nics []netup.NIC) string {
	for _, n := range nics {
		if n.Phase == netup.PhaseBound && n.Lease != nil && n.Lease.Hostname != "" {
			return n.Lease.Hostname
		}
	}
	return ""
}

// enrolConfig says whom the enrolment client asks, as which NIC. The server
// is onecloud.server=, else the one our bootstrap server's DHCP answer named
// (option 43); with neither the client only says so. The boot MAC is the NIC
// whose DHCP answer named the server, else the first NIC with an address.
func (b *boot) enrolConfig(nics []netup.NIC, reboot func()) enrol.Config {
	server, mac := b.opts.Server, ""
	if s := b.servers.Load(); s != nil && s.Boot != "" {
		server = s.Boot // set at the console: it wins over the command line and DHCP
	}
	for _, n := range nics {
		if n.Lease == nil || (n.Phase != netup.PhaseBound && n.Phase != netup.PhaseStatic) {
			continue
		}
		if mac == "" {
			mac = n.MAC
		}
		if server != "" || n.Lease.BootServer == "" {
			continue
		}
		if err := cmdline.CheckServer(n.Lease.BootServer); err != nil {
			b.note("DHCP on %s names boot server %q, which is unusable: %v", n.Name, n.Lease.BootServer, err)
			continue
		}
		server, mac = n.Lease.BootServer, n.MAC
	}
	return enrol.Config{
		Server:    server,
		BootMAC:   mac,
		ID:        b.opts.ID,
		Role:      b.opts.Role,
		School:    b.opts.School,
		Inventory: &b.inv,
		// The same backoff as DHCP: both wait for the same boot server.
		Backoff: netup.Backoff{Min: b.opts.BackoffMin, Max: b.opts.BackoffMax, Rand: rand.Int64N},
		Reboot:  reboot,
		Console: b.console,
		Log:     b.log,
	}
}
