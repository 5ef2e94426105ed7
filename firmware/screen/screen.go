// Package screen draws the firmware's one-screen status: what the box is,
// whether it is on the network and what it is running.
//
// Render is a pure function from a State to text, so every line can be
// checked in tests against golden files. It fits 80x24 and uses plain ASCII,
// because the first thing a technician connects is often a serial cable to a
// VT100-class terminal. (The full console menu, in Chinese and English,
// replaces it with the console issue.)
package screen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/enrol"
	"github.com/onecloud-edu/onecloud/firmware/netup"
	"github.com/onecloud-edu/onecloud/hw"
	"github.com/onecloud-edu/onecloud/internal/atomicfile"
	"github.com/onecloud-edu/onecloud/internal/release"
	"github.com/onecloud-edu/onecloud/internal/units"
	"github.com/onecloud-edu/onecloud/noded/localapi"
	"github.com/onecloud-edu/onecloud/noded/nodecert"
)

// Width is the screen width the status is drawn for.
const Width = 80

// State is everything the status screen shows.
type State struct {
	Now       time.Time
	Release   release.Info
	Hostname  string
	Uptime    time.Duration
	Inventory *hw.Inventory
	NICs      []netup.NIC
	Services  []localapi.Service
	// Noded says whether noded answered; when not, why.
	NodedErr string
	// Enrolment is the enrolment client's state; its zero Phase means it has
	// not started (the box is not online yet), and then Role and School are
	// what the box was booted with.
	Enrolment enrol.State
	// Attestation is the node certificate's status (noded attest), nil
	// until the box attests.
	Attestation *nodecert.Status
	// Notes are short lines worth a technician's eye (failed modules,
	// unknown command-line options, inventory problems).
	Notes []string
	// ServiceLog holds the services' latest warnings and errors ("noded:
	// level=WARN msg=..."), oldest first, for the node console's log view;
	// this screen does not draw them.
	ServiceLog []string `json:",omitempty"`
}

// Render writes the status screen.
func Render(w io.Writer, s State) error {
	var b strings.Builder
	rule := strings.Repeat("=", Width) + "\n"
	thin := strings.Repeat("-", Width) + "\n"

	b.WriteString(rule)
	line(&b, fmt.Sprintf(" %s %s", s.Release.Product, s.Release.Version), "commit "+shortCommit(s.Release.Commit))
	line(&b, " host "+orDash(s.Hostname), "up "+s.Uptime.Round(time.Second).String())
	if inv := s.Inventory; inv != nil {
		fmt.Fprintf(&b, " %s\n", clip(inv.Summary(), Width-1))
		fmt.Fprintf(&b, " serial %s  uuid %s\n", orDash(inv.DMI.Serial), orDash(inv.DMI.UUID))
	}
	fmt.Fprintf(&b, " Role: %s\n", clip(role(s.Enrolment), Width-7))
	// A server's reason or a network error can be long: two lines of it
	// say more than one clipped line.
	for i, l := range wrap(enrolment(s.Enrolment, s.Now), Width-12, 2) {
		if i == 0 {
			fmt.Fprintf(&b, " Enrolment: %s\n", l)
		} else {
			fmt.Fprintf(&b, "            %s\n", l)
		}
	}
	if e := s.Enrolment; e.Message != "" && (e.Phase == enrol.PhasePending || e.Phase == enrol.PhaseApproved) {
		for _, l := range wrap(e.Message, Width-3, 2) {
			fmt.Fprintf(&b, "   %s\n", l)
		}
	}
	if a := s.Attestation; a != nil {
		for i, l := range wrap(Attestation(*a, s.Now), Width-14, 2) {
			if i == 0 {
				fmt.Fprintf(&b, " Attestation: %s\n", l)
			} else {
				fmt.Fprintf(&b, "              %s\n", l)
			}
		}
	}
	b.WriteString(thin)

	fmt.Fprintf(&b, " Network: %s\n", headline(s.NICs))
	for _, n := range s.NICs {
		fmt.Fprintf(&b, "   %-8s %-17s %-7s %s\n", clip(n.Name, 8), n.MAC, clip(driver(s.Inventory, n.Name), 7), clip(nicState(n, s.Now), Width-38))
		if n.Phase == netup.PhaseError {
			fmt.Fprintf(&b, "     %s\n", clip(n.LastError, Width-5))
		}
	}
	if len(s.NICs) == 0 {
		b.WriteString("   no network interface found: check the NIC and its driver (onecloud.modules.load=)\n")
	}
	b.WriteString(thin)

	if s.Inventory != nil {
		for _, d := range s.Inventory.Disks {
			fmt.Fprintf(&b, "   disk %-8s %9s %s\n", clip(d.Name, 8), units.Bytes(d.SizeBytes), clip(diskKind(d), Width-26))
		}
		if len(s.Inventory.Disks) == 0 {
			b.WriteString("   no disk (diskless terminal)\n")
		}
		b.WriteString("   " + clip(tpmLine(s.Inventory.TPM), Width-3) + "\n")
	}

	var parts []string
	for _, sv := range s.Services {
		p := fmt.Sprintf("%s %s", sv.Name, sv.State)
		if sv.Restarts > 0 {
			p += fmt.Sprintf(" (%d restarts)", sv.Restarts)
		}
		parts = append(parts, p)
	}
	if s.NodedErr != "" {
		parts = append(parts, "status API "+s.NodedErr)
	}
	services := strings.Join(parts, ", ")
	if services == "" {
		services = "none"
	}
	fmt.Fprintf(&b, " Services: %s\n", clip(services, Width-11))
	for _, n := range s.Notes {
		fmt.Fprintf(&b, " ! %s\n", clip(n, Width-3))
	}
	b.WriteString(rule)
	_, err := io.WriteString(w, b.String())
	return err
}

// Online reports whether any NIC has an address: the box is on the network.
func Online(nics []netup.NIC) bool {
	for _, n := range nics {
		if n.Lease != nil && (n.Phase == netup.PhaseBound || n.Phase == netup.PhaseStatic) {
			return true
		}
	}
	return false
}

// headline is the one line that says whether the box is on the network.
func headline(nics []netup.NIC) string {
	var addrs []string
	for _, n := range nics {
		if n.Lease != nil && (n.Phase == netup.PhaseBound || n.Phase == netup.PhaseStatic) {
			addrs = append(addrs, fmt.Sprintf("%s on %s", n.Lease.Addr, n.Name))
		}
	}
	if len(addrs) > 0 {
		return "connected, " + strings.Join(addrs, ", ")
	}
	carrier := 0
	for _, n := range nics {
		if n.Carrier {
			carrier++
		}
	}
	switch {
	case len(nics) == 0:
		return "NOT CONNECTED: no network interface"
	case carrier == 0:
		return "NOT CONNECTED: no link on any NIC (check the cable and switch port)"
	default:
		return "NOT CONNECTED: no DHCP answer yet, still trying"
	}
}

func nicState(n netup.NIC, now time.Time) string {
	switch n.Phase {
	case netup.PhaseBound:
		l := n.Lease
		s := l.Addr.String()
		if l.Gateway.IsValid() {
			s += " gw " + l.Gateway.String()
		}
		s += " dhcp"
		if l.Server.IsValid() && l.Server != l.Gateway {
			s += "@" + l.Server.String()
		}
		return s + " " + short(l.Duration)
	case netup.PhaseStatic:
		s := n.Lease.Addr.String()
		if n.Lease.Gateway.IsValid() {
			s += " gw " + n.Lease.Gateway.String()
		}
		return s + " (static)"
	case netup.PhaseNoCarrier:
		if n.Lease != nil {
			return "no link; keeps " + n.Lease.Addr.String()
		}
		return "no link"
	case netup.PhaseDiscovering:
		if n.Attempt == 0 {
			return "asking DHCP..."
		}
		wait := n.NextTry.Sub(now).Round(time.Second)
		if wait < 0 {
			wait = 0
		}
		return fmt.Sprintf("no DHCP answer (try %d), again in %s", n.Attempt, wait)
	case netup.PhaseError:
		return "ERROR, see below"
	}
	return string(n.Phase)
}

// role is the role line: what the box runs as, or will once approved.
func role(e enrol.State) string {
	if e.Role == "" {
		return "none yet"
	}
	if e.School == "" {
		return e.Role
	}
	return e.Role + "  school " + e.School
}

// enrolment says where the box is with the bootstrap server, and what it
// does next.
// Attestation words the node certificate's status for the screen and the
// console: whether the cluster trusts this box, until when, and if not why.
func Attestation(a nodecert.Status, now time.Time) string {
	in := func(t time.Time) string { return max(t.Sub(now), 0).Round(time.Second).String() }
	why := a.Reason
	if a.Text != "" {
		why += ": " + a.Text
	}
	switch a.State {
	case nodecert.Accepted:
		s := "accepted, certificate until " + a.Expires.UTC().Format("2006-01-02 15:04 UTC")
		if !a.NextAttempt.IsZero() {
			s += ", renewed in " + in(a.NextAttempt)
		}
		return s
	case nodecert.Refused:
		return "REFUSED by the cluster: " + why + "; asking again in " + in(a.NextAttempt)
	case nodecert.Error:
		return why + ", retrying in " + in(a.NextAttempt)
	default:
		if a.Reason != "" {
			return "attesting to the cluster (last time: " + a.Reason + ")"
		}
		return "attesting to the cluster"
	}
}

func enrolment(e enrol.State, now time.Time) string {
	in := func(t time.Time) string { return max(t.Sub(now), 0).Round(time.Second).String() }
	switch e.Phase {
	case "":
		return "waiting for the network"
	case enrol.PhaseNoServer:
		return "no boot server known (onecloud.server=)"
	case enrol.PhaseContacting:
		return "asking " + e.Server
	case enrol.PhasePending:
		s := "waiting for approval"
		if e.ID != "" {
			s += " (id " + e.ID + ")"
		}
		if !e.NextTry.IsZero() {
			s += ", asking again in " + in(e.NextTry)
		}
		return s
	case enrol.PhaseApproved:
		if e.Rebooting {
			return "approved as " + e.Role + ", rebooting into it"
		}
		return "approved"
	case enrol.PhaseRejected:
		if e.Message == "" {
			return "REJECTED by the boot server"
		}
		return "REJECTED: " + e.Message
	case enrol.PhaseError:
		return e.LastError + ", retrying in " + in(e.NextTry)
	}
	return string(e.Phase)
}

func driver(inv *hw.Inventory, name string) string {
	if inv == nil {
		return ""
	}
	for _, n := range inv.NICs {
		if n.Name == name {
			return n.Driver
		}
	}
	return ""
}

func diskKind(d hw.Disk) string {
	var parts []string
	if d.Model != "" {
		parts = append(parts, d.Model)
	}
	if d.Rotational {
		parts = append(parts, "rotational")
	} else {
		parts = append(parts, "solid-state")
	}
	if d.Removable {
		parts = append(parts, "removable")
	}
	return strings.Join(parts, ", ")
}

func tpmLine(t hw.TPM) string {
	if !t.Present {
		return "TPM: none (attestation will not be possible)"
	}
	s := "TPM " + t.Version
	if t.Manufacturer != "" {
		s += " " + t.Manufacturer
		if t.ManufacturerName != "" && t.ManufacturerName != t.Manufacturer {
			s += " (" + t.ManufacturerName + ")"
		}
	}
	return s
}

// short writes a lease time the way a technician says it: 1h, 30m, 90s.
func short(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.Round(time.Second).String()
}

// line writes left and right parts on one line, the right part flush right.
func line(b *strings.Builder, left, right string) {
	pad := Width - len(left) - len(right)
	if pad < 1 {
		pad = 1
	}
	b.WriteString(left + strings.Repeat(" ", pad) + right + "\n")
}

// wrap breaks s at spaces into at most maxLines lines of at most width
// columns; what does not fit is clipped.
func wrap(s string, width, maxLines int) []string {
	var out []string
	for len(s) > width && len(out) < maxLines-1 {
		cut := strings.LastIndexByte(s[:width+1], ' ')
		if cut <= 0 {
			cut = width // one long word: break it
		}
		out = append(out, strings.TrimRight(s[:cut], " "))
		s = strings.TrimLeft(s[cut:], " ")
	}
	return append(out, clip(s, width))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 3 {
		return s[:n]
	}
	return s[:n-3] + "..."
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// MenuActivePath, while it exists, says a node console menu is open on a
// serial console: the firmware then stops drawing this status screen on
// the console, which would draw over the menu.
const MenuActivePath = "/run/onecloud/console-active"

// StatePath is where the firmware keeps the State it last drew, as JSON,
// for the node console (a process of its own) to show. Only root reads
// it: it holds the console PIN's hash from the cluster.
const StatePath = "/run/onecloud/firmware-state.json"

// Save writes s to path atomically (readers see the old or the new state).
func Save(path string, s State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode the firmware state: %w", err)
	}
	return atomicfile.WriteFile(path, b, 0o600)
}

// Load reads a State that Save wrote.
func Load(path string) (State, error) {
	var s State
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("the firmware state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("the firmware state %s: %w", path, err)
	}
	return s, nil
}
