package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/console/ui"
	"github.com/onecloud-edu/onecloud/firmware/enrol"
	"github.com/onecloud-edu/onecloud/firmware/netup"
	"github.com/onecloud-edu/onecloud/firmware/screen"
	"github.com/onecloud-edu/onecloud/noded/nodecert"
)

// fromFirmware turns what the firmware drew last (screen.State, read from
// screen.StatePath) into the console's Status. It is pure: the parts that
// read /proc or dial the network are added by the gatherer.
func fromFirmware(fw screen.State) ui.Status {
	st := ui.Status{
		Now:      fw.Now,
		Product:  fw.Release.Product,
		Version:  fw.Release.Version,
		Boot:     ui.BootPXE, // slots come with the upgrades issue
		Hostname: fw.Hostname,
		Role:     fw.Enrolment.Role,
		School:   fw.Enrolment.School,
		Uptime:   fw.Uptime,
		Notes:    fw.Notes,
		Roles:    []string{"server", "vdi", "idv", "tci"},
	}
	if inv := fw.Inventory; inv != nil {
		st.Serial = inv.DMI.Serial
		st.CPUs = inv.CPU.Threads
		for _, d := range inv.Disks {
			st.Disks = append(st.Disks, ui.Disk{Name: d.Name, Size: d.SizeBytes})
		}
	}
	st.BootServer = fw.Enrolment.Server
	for _, n := range fw.NICs {
		nic := ui.NIC{Name: n.Name, MAC: n.MAC, Up: n.Carrier, DHCP: n.Phase != netup.PhaseStatic}
		if l := n.Lease; l != nil && (n.Phase == netup.PhaseBound || n.Phase == netup.PhaseStatic) {
			nic.Addrs = []string{l.Addr.String()}
			if l.Gateway.IsValid() && st.Gateway.Address == "" {
				st.Gateway.Address = l.Gateway.String()
			}
			for _, d := range l.DNS {
				st.DNS = append(st.DNS, d.String())
			}
		}
		st.NICs = append(st.NICs, nic)
	}
	e := fw.Enrolment
	st.Enrolment = ui.Enrolment{State: string(e.Phase), ID: e.ID, Detail: e.Message}
	if e.Phase == enrol.PhaseError {
		st.Enrolment.Detail = e.LastError
	}
	if e.Cluster != nil {
		if u, err := url.Parse(e.Cluster.API); err == nil {
			st.Cluster.Address = u.Host
		}
	}
	if a := fw.Attestation; a != nil {
		st.Attestation = ui.Attestation{State: string(a.State), Reason: a.Reason, Detail: a.Text}
		if a.State != nodecert.Attesting || !a.Expires.IsZero() {
			st.CertExpires = a.Expires
		}
	}
	for _, n := range fw.Notes {
		st.Log = append(st.Log, ui.LogLine{Time: fw.Now, Level: ui.LevelWarn, Text: n})
	}
	for _, l := range fw.ServiceLog {
		st.Log = append(st.Log, serviceLine(l, fw.Now))
	}
	return st
}

// serviceLine reads a service's log line as the firmware kept it
// ("noded: time=2026-11-28T08:00:00Z level=WARN msg=..."): its level, its
// time when it says one, the rest as text.
func serviceLine(l string, now time.Time) ui.LogLine {
	ll := ui.LogLine{Time: now, Level: ui.LevelWarn, Text: l}
	if strings.Contains(l, "level=ERROR") {
		ll.Level = ui.LevelError
	}
	name, rest, ok := strings.Cut(l, ": ")
	if !ok {
		return ll
	}
	if ts, after, ok := strings.Cut(strings.TrimPrefix(rest, "time="), " "); ok && strings.HasPrefix(rest, "time=") {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			ll.Time, rest = t, after
		}
	}
	rest = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(rest, "level=WARN "), "level=ERROR "), "msg=")
	ll.Text = name + ": " + rest
	return ll
}

// consoleSettings are the PIN hash and language the console uses: the
// cluster's (from enrolment) over the command line's.
func consoleSettings(fw screen.State, cmdPIN, cmdLang string) (pinHash, lang string) {
	pinHash, lang = cmdPIN, cmdLang
	if c := fw.Enrolment.Console; c != nil {
		if c.PINHash != "" {
			pinHash = c.PINHash
		}
		if c.Lang != "" {
			lang = c.Lang
		}
	}
	return pinHash, lang
}

// memory reads MemTotal and MemAvailable from /proc/meminfo.
func memory(meminfo []byte) ui.Usage {
	var total, avail uint64
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			total = kb * 1024
		case "MemAvailable:":
			avail = kb * 1024
		}
	}
	if avail > total {
		avail = total
	}
	return ui.Usage{Used: total - avail, Total: total}
}

// cpuTimes are the busy and total jiffies of /proc/stat's "cpu" line.
func cpuTimes(stat []byte) (busy, total uint64) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0
		}
		total += n
		if i != 3 && i != 4 { // idle and iowait
			busy += n
		}
	}
	return busy, total
}

// probe says whether something answers on addr (host:port) over TCP.
func probe(ctx context.Context, addr string) ui.Reach {
	r := ui.Reach{Address: addr}
	if addr == "" {
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		r.State, r.Error = ui.ReachFail, err.Error()
		return r
	}
	c.Close()
	r.State, r.RTT = ui.ReachOK, time.Since(start)
	return r
}

func readFile(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}
