package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/netup"
	"github.com/onecloud-edu/onecloud/firmware/screen"
	"github.com/onecloud-edu/onecloud/firmware/supervise"
	"github.com/onecloud-edu/onecloud/noded/localapi"
)

// minRedraw keeps a flapping link from flooding a 115200-baud serial line.
const minRedraw = 2 * time.Second

// watch redraws the status screen when something changes and announces
// readiness once (closing ready), until ctx ends.
func (b *boot) watch(ctx context.Context, sup *supervise.Supervisor, nets *netup.Manager, readyCh chan<- struct{}) {
	ready, dirty := false, true
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
		case <-tick.C:
		}
		if !netsListed {
			continue
		}
		nics := nets.NICs()
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
		nowReady := becomingReady && (nodedOK || !b.opts.Noded)
		if !due && !nowReady {
			continue // waiting for noded's answer; nothing new to show
		}
		dirty, lastDraw = false, time.Now()
		if err := screen.Render(b.console, st); err != nil {
			b.log.Warn("drawing status screen", "err", err)
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

func dhcpHostname(nics []netup.NIC) string {
	for _, n := range nics {
		if n.Phase == netup.PhaseBound && n.Lease != nil && n.Lease.Hostname != "" {
			return n.Lease.Hostname
		}
	}
	return ""
}
