package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/console/ui"
	"github.com/onecloud-edu/onecloud/firmware/control"
	"github.com/onecloud-edu/onecloud/firmware/netcfg"
	"github.com/onecloud-edu/onecloud/firmware/screen"
	"github.com/onecloud-edu/onecloud/internal/atomicfile"
)

// probeEvery spaces the reachability probes of the gateway and cluster.
const probeEvery = 10 * time.Second

// gatherer builds the Status every couple of seconds: the firmware's state,
// /proc, the control API's network change, and the probes, which run in
// the background so that a dead gateway never slows the screen.
type gatherer struct {
	mu          sync.Mutex
	gateway     ui.Reach
	cluster     ui.Reach
	lastProbe   time.Time
	busy, total uint64 // /proc/stat at the last gather
	cpu         float64
	diagnostics []ui.DiagResult
	messages    []ui.LogLine // what the console's own actions said
	probing     bool
}

func (g *gatherer) gather(ctx context.Context, ctl *control.Client) (ui.Status, screen.State) {
	fw, err := screen.Load(screen.StatePath)
	if err != nil {
		fw.Notes = append(fw.Notes, "the firmware has not drawn its state yet")
	}
	st := fromFirmware(fw)
	st.Now = time.Now()
	if up := uptimeOf(readFile("/proc/uptime")); up > 0 {
		st.Uptime = up
	}
	st.Memory = memory(readFile("/proc/meminfo"))
	busy, total := cpuTimes(readFile("/proc/stat"))

	g.mu.Lock()
	if total > g.total && g.total > 0 {
		g.cpu = 100 * float64(busy-g.busy) / float64(total-g.total)
	}
	g.busy, g.total = busy, total
	st.CPUPercent = g.cpu
	st.Gateway, st.Cluster = merge(st.Gateway, g.gateway), merge(st.Cluster, g.cluster)
	st.Diagnostics = append([]ui.DiagResult(nil), g.diagnostics...)
	st.Log = append(st.Log, g.messages...)
	due := !g.probing && time.Since(g.lastProbe) > probeEvery
	if due {
		g.probing = true
	}
	g.mu.Unlock()
	if due {
		gw, cl := st.Gateway.Address, st.Cluster.Address
		go g.probe(ctx, gw, cl)
	}

	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if cs, err := ctl.State(cctx); err == nil {
		st.Network = pending(cs.Network)
		for i := range st.NICs {
			for _, n := range cs.NICs {
				if n.Name == st.NICs[i].Name {
					st.NICs[i].VLAN = n.Config.VLAN
					st.NICs[i].DHCP = n.Config.Mode != netcfg.ModeStatic
				}
			}
		}
	}
	return st, fw
}

// merge keeps the address the firmware knows with the probe's verdict on
// it (a verdict on another address is stale).
func merge(known, probed ui.Reach) ui.Reach {
	if known.Address == "" || probed.Address != known.Address {
		return known
	}
	return probed
}

func (g *gatherer) probe(ctx context.Context, gateway, cluster string) {
	var gw, cl ui.Reach
	if gateway != "" {
		gw = gatewayReach(ctx, gateway)
	}
	if cluster != "" {
		cl = probe(ctx, cluster)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gateway, g.cluster, g.lastProbe, g.probing = gw, cl, time.Now(), false
}

// gatewayReach says whether a gateway answers on its DNS port; a refusal
// is an answer too: the way there works (the firmware's network tester
// judges a change the same way).
func gatewayReach(ctx context.Context, gateway string) ui.Reach {
	r := ui.Reach{Address: gateway, State: ui.ReachOK}
	start := time.Now()
	if err := (netcfg.TCPProber{Timeout: 2 * time.Second}).Probe(ctx, net.JoinHostPort(gateway, "53")); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
		r.State, r.Error = ui.ReachFail, err.Error()
		return r
	}
	r.RTT = time.Since(start)
	return r
}

// pending is the control API's network change as the model shows it.
func pending(s netcfg.State) *ui.PendingChange {
	a := s.Pending
	if a == nil {
		a = s.Last
	}
	if a == nil {
		return nil
	}
	p := &ui.PendingChange{
		Config: ui.NetConfig{
			NIC: a.Change.NIC, DHCP: a.Change.Mode != netcfg.ModeStatic, Address: a.Change.Address,
			Gateway: a.Change.Gateway, DNS: a.Change.DNS, VLAN: a.Change.VLAN,
		},
		Deadline:  a.Deadline,
		Confirmed: a.Outcome == netcfg.Confirmed || a.Outcome == netcfg.Kept,
		Reverted:  a.Outcome == netcfg.Reverted || a.Outcome == netcfg.RevertFailed || a.Outcome == netcfg.NotApplied,
		Reason:    a.Reason,
	}
	if s.Pending == nil && time.Since(a.Ended) > 2*time.Minute {
		return nil // an old outcome is no longer news
	}
	return p
}

// say keeps a line of the console's own for the log view.
func (g *gatherer) say(level, text string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.messages = append(g.messages, ui.LogLine{Time: time.Now(), Level: level, Text: text})
	if len(g.messages) > 50 {
		g.messages = g.messages[len(g.messages)-50:]
	}
}

func (g *gatherer) setDiagnostics(d []ui.DiagResult) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.diagnostics = d
}

// fileLock keeps the PIN lockout in a file, so that the screen's console
// and the serial console count wrong PINs together.
type fileLock struct{ path string }

func (l fileLock) Load() (ui.LockState, error) {
	var s ui.LockState
	b, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

func (l fileLock) Save(s ui.LockState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(l.path, b, 0o600)
}

// uptimeOf reads /proc/uptime.
func uptimeOf(b []byte) time.Duration {
	var secs float64
	if _, err := fmt.Sscanf(string(b), "%f", &secs); err != nil {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}
