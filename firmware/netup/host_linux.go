package netup

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/onecloud-edu/onecloud/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// Kernel configures the running kernel through netlink
// (github.com/vishvananda/netlink) and writes /etc/resolv.conf.
type Kernel struct {
	// SysDir is "/sys"; a NIC is physical when sysfs shows a device behind it.
	SysDir string
	// ResolvConf is "/etc/resolv.conf".
	ResolvConf string
}

// Links lists the interfaces.
func (k Kernel) Links() ([]Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var out []Link
	for _, l := range links {
		a := l.Attrs()
		_, err := os.Stat(filepath.Join(k.SysDir, "class/net", a.Name, "device"))
		out = append(out, Link{
			Name:     a.Name,
			MAC:      a.HardwareAddr.String(),
			Physical: err == nil && a.Flags&net.FlagLoopback == 0,
		})
	}
	return out, nil
}

// Up sets the link administratively up.
func (k Kernel) Up(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

// Carrier reports whether the link has a carrier (IFF_LOWER_UP).
func (k Kernel) Carrier(name string) (bool, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return false, err
	}
	return l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0, nil
}

// Apply sets the address, drops other IPv4 addresses of the NIC, sets the
// default route through the gateway and writes the resolvers.
func (k Kernel) Apply(name string, ls Lease, metric int) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	ipnet := &net.IPNet{IP: ls.Addr.Addr().AsSlice(), Mask: net.CIDRMask(ls.Addr.Bits(), 32)}
	addr := &netlink.Addr{IPNet: ipnet, Broadcast: broadcast(ls.Addr)}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("set address %s on %s: %w", ls.Addr, name, err)
	}
	old, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", name, err)
	}
	for _, o := range old {
		if !o.IP.Equal(ipnet.IP) {
			if err := netlink.AddrDel(l, &o); err != nil {
				return fmt.Errorf("drop old address %s from %s: %w", o.IPNet, name, err)
			}
		}
	}
	if ls.Gateway.IsValid() {
		r := &netlink.Route{
			LinkIndex: l.Attrs().Index,
			Dst:       &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)},
			Gw:        ls.Gateway.AsSlice(),
			Priority:  metric,
		}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("set default route via %s on %s: %w", ls.Gateway, name, err)
		}
	}
	if len(ls.DNS) > 0 && k.ResolvConf != "" {
		if err := writeResolvConf(k.ResolvConf, ls); err != nil {
			return fmt.Errorf("write %s: %w", k.ResolvConf, err)
		}
	}
	return nil
}

// Remove drops the lease's address; its routes go with it.
func (k Kernel) Remove(name string, ls Lease) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	ipnet := &net.IPNet{IP: ls.Addr.Addr().AsSlice(), Mask: net.CIDRMask(ls.Addr.Bits(), 32)}
	if err := netlink.AddrDel(l, &netlink.Addr{IPNet: ipnet}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return err
	}
	return nil
}

func broadcast(p netip.Prefix) net.IP {
	a := p.Addr().As4()
	bits := p.Bits()
	for i := range 4 {
		for b := range 8 {
			if i*8+b >= bits {
				a[i] |= 0x80 >> b
			}
		}
	}
	return net.IP(a[:])
}

func writeResolvConf(path string, ls Lease) error {
	var b strings.Builder
	b.WriteString("# written by the onecloud firmware from its DHCP lease\n")
	if ls.Domain != "" {
		fmt.Fprintf(&b, "search %s\n", ls.Domain)
	}
	for _, d := range ls.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", d)
	}
	return atomicfile.WriteFile(path, []byte(b.String()), 0o644)
}

// AddVLAN makes the 802.1Q link name (id on parent) and sets it up. A link
// of that name that is already the same VLAN is kept; anything else by that
// name is an error, never replaced.
func (k Kernel) AddVLAN(parent, name string, id int) error {
	p, err := netlink.LinkByName(parent)
	if err != nil {
		return err
	}
	l, err := netlink.LinkByName(name)
	if err == nil {
		v, ok := l.(*netlink.Vlan)
		if !ok || v.VlanId != id || v.Attrs().ParentIndex != p.Attrs().Index {
			return fmt.Errorf("an interface %s exists already and is not VLAN %d on %s", name, id, parent)
		}
	} else {
		v := &netlink.Vlan{
			LinkAttrs:    netlink.LinkAttrs{Name: name, ParentIndex: p.Attrs().Index},
			VlanId:       id,
			VlanProtocol: netlink.VLAN_PROTOCOL_8021Q,
		}
		if err := netlink.LinkAdd(v); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) {
				return fmt.Errorf("add VLAN link %s: this kernel has no 802.1Q VLAN support (module 8021q): %w", name, err)
			}
			return fmt.Errorf("add VLAN link %s: %w", name, err)
		}
		l = v
	}
	return netlink.LinkSetUp(l)
}

// DelLink deletes a VLAN link; one already gone is not an error, and any
// other kind of link is refused, so that a mistake cannot take a NIC away.
func (k Kernel) DelLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	if _, ok := l.(*netlink.Vlan); !ok {
		return fmt.Errorf("%s is a %s link, not a VLAN: not deleting it", name, l.Type())
	}
	return netlink.LinkDel(l)
}
