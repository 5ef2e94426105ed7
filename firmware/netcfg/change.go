// Package netcfg changes a box's network from its console without cutting
// the box off: a change is tested and undone by itself when it breaks the
// way to the cluster.
//
// A technician at a school sets a static address, or a VLAN, on a box
// whose network they cannot see. A wrong gateway or a VLAN the switch port
// does not carry would leave the box unreachable until someone comes back
// with a keyboard. So the Tester applies the change, probes the cluster (or,
// before the box knows its cluster, the gateway), keeps the change when the
// probe passes, and otherwise puts the previous configuration back after a
// minute unless the technician confirms the change first (they may know
// the cluster is down).
package netcfg

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/onecloud-edu/onecloud/firmware/netup"
)

// Mode is how a NIC gets its address.
type Mode string

// Modes.
const (
	ModeDHCP   Mode = "dhcp"
	ModeStatic Mode = "static"
)

// maxDNS is resolv.conf's limit (MAXNS): the C library ignores more.
const maxDNS = 3

// Change is one NIC's whole configuration, as the console sends it; it
// replaces the NIC's configuration, it is not a patch. The same shape
// describes each NIC's configuration now (NICStatus.Config).
type Change struct {
	NIC  string `json:"nic"`  // the physical NIC, "eth0"
	Mode Mode   `json:"mode"` // "dhcp" or "static"
	// VLAN, 1-4094, puts the address on the 802.1Q link "eth0.42" made on
	// the NIC; 0 (or absent) leaves the NIC untagged.
	VLAN int `json:"vlan,omitempty"`
	// Static only: ADDR/PREFIX, the default gateway (optional) and the DNS
	// servers (optional, at most 3).
	Address netip.Prefix `json:"address,omitzero"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	DNS     []netip.Addr `json:"dns,omitempty"`
}

// ErrInvalid marks a change that cannot be applied as given; the message
// says what to correct.
var ErrInvalid = errors.New("invalid network change")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks the change on its own, without looking at the box.
func (c Change) Validate() error {
	if c.NIC == "" || len(c.NIC) > 15 || strings.ContainsAny(c.NIC, "/ \t\n:") || !printable(c.NIC) {
		return invalid("name the network interface to change, e.g. eth0")
	}
	if c.VLAN < 0 || c.VLAN > netup.MaxVLAN {
		return invalid("VLAN %d is out of range: use 1-%d, or none", c.VLAN, netup.MaxVLAN)
	}
	if err := (netup.Setting{VLAN: c.VLAN}).Check(c.NIC); err != nil {
		return invalid("%v", err)
	}
	switch c.Mode {
	case ModeDHCP:
		if c.Address.IsValid() || c.Gateway.IsValid() || len(c.DNS) > 0 {
			return invalid("with DHCP, leave address, gateway and DNS empty: the DHCP server gives them")
		}
		return nil
	case ModeStatic:
	default:
		return invalid("mode %q: choose %q or %q", c.Mode, ModeDHCP, ModeStatic)
	}
	a, p := c.Address.Addr(), c.Address.Masked()
	switch {
	case !c.Address.IsValid() || !a.Is4():
		return invalid("a static address needs ADDRESS/PREFIX in IPv4, e.g. 10.1.2.3/24")
	case c.Address.Bits() < 1:
		return invalid("prefix /%d is not a subnet: use e.g. /24", c.Address.Bits())
	case !usable(a):
		return invalid("%s cannot be a NIC's address", a)
	case c.Address.Bits() <= 30 && a == p.Addr():
		return invalid("%s is the network address of %s, not a host in it: use e.g. %s", a, p, p.Addr().Next())
	case c.Address.Bits() <= 30 && a == lastAddr(p):
		return invalid("%s is the broadcast address of %s, not a host in it", a, p)
	}
	if c.Gateway.IsValid() {
		g := c.Gateway
		switch {
		case !g.Is4():
			return invalid("gateway %s is not an IPv4 address", g)
		case !p.Contains(g):
			return invalid("gateway %s is outside the subnet %s: the box could not reach it (check the address's prefix)", g, p)
		case g == a:
			return invalid("gateway %s is the box's own address", g)
		case !usable(g) || (p.Bits() <= 30 && (g == p.Addr() || g == lastAddr(p))):
			return invalid("gateway %s cannot be a router's address in %s", g, p)
		}
	}
	if len(c.DNS) > maxDNS {
		return invalid("%d DNS servers given; at most %d are used", len(c.DNS), maxDNS)
	}
	for i, d := range c.DNS {
		if !d.IsValid() || !usable(d) {
			return invalid("DNS server %q is not a usable address", d)
		}
		if slices.Contains(c.DNS[:i], d) {
			return invalid("DNS server %s is given twice", d)
		}
	}
	return nil
}

// usable is false for addresses no host can have.
func usable(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Setting is the change as netup takes it.
func (c Change) Setting() netup.Setting {
	s := netup.Setting{VLAN: c.VLAN}
	if c.Mode == ModeStatic {
		s.Static = &netup.Lease{Addr: c.Address, Gateway: c.Gateway, DNS: slices.Clone(c.DNS)}
	}
	return s
}

// FromSetting describes NIC nic's netup setting as a Change.
func FromSetting(nic string, s netup.Setting) Change {
	c := Change{NIC: nic, Mode: ModeDHCP, VLAN: s.VLAN}
	if s.Static != nil {
		c.Mode, c.Address, c.Gateway, c.DNS = ModeStatic, s.Static.Addr, s.Static.Gateway, slices.Clone(s.Static.DNS)
	}
	return c
}

// Equal reports whether two changes configure the same thing.
func (c Change) Equal(o Change) bool {
	return c.NIC == o.NIC && c.Mode == o.Mode && c.VLAN == o.VLAN && c.Address == o.Address &&
		c.Gateway == o.Gateway && slices.Equal(c.DNS, o.DNS)
}

// String is the change in a technician's words, for logs and messages.
func (c Change) String() string {
	var b strings.Builder
	b.WriteString(c.NIC)
	if c.VLAN != 0 {
		fmt.Fprintf(&b, " VLAN %d", c.VLAN)
	}
	if c.Mode != ModeStatic {
		b.WriteString(" DHCP")
		return b.String()
	}
	fmt.Fprintf(&b, " static %s", c.Address)
	if c.Gateway.IsValid() {
		fmt.Fprintf(&b, " via %s", c.Gateway)
	}
	if len(c.DNS) > 0 {
		fmt.Fprintf(&b, " DNS %v", c.DNS)
	}
	return b.String()
}

// NICStatus is one NIC as the console shows it: how it is configured and
// what it has now.
type NICStatus struct {
	Name    string `json:"name"`
	MAC     string `json:"mac"`
	Carrier bool   `json:"carrier"`
	Phase   string `json:"phase"` // netup's: no-carrier, discovering, bound, static, error
	// Config is how the NIC is configured; Iface carries its address
	// ("eth0", or "eth0.42" on a VLAN).
	Config  Change       `json:"config"`
	Iface   string       `json:"iface"`
	Address netip.Prefix `json:"address,omitzero"` // the address it has now
	Gateway netip.Addr   `json:"gateway,omitzero"`
	DNS     []netip.Addr `json:"dns,omitempty"`
	Error   string       `json:"error,omitempty"`
}

// Status describes netup's NICs for the console.
func Status(nics []netup.NIC) []NICStatus {
	out := make([]NICStatus, 0, len(nics))
	for _, n := range nics {
		s := NICStatus{
			Name: n.Name, MAC: n.MAC, Carrier: n.Carrier, Phase: string(n.Phase),
			Config: FromSetting(n.Name, n.Setting), Iface: n.Iface, Error: n.LastError,
		}
		if n.Lease != nil {
			s.Address, s.Gateway, s.DNS = n.Lease.Addr, n.Lease.Gateway, slices.Clone(n.Lease.DNS)
		}
		out = append(out, s)
	}
	return out
}
