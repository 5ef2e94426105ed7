package harness

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// Bridge is a lab network: a Linux bridge in the lab namespace that VM taps and veths join.
type Bridge struct {
	lab  *Lab
	name string
	addr netip.Prefix
}

// Bridge makes a bridge named name (at most 15 characters) in the lab. cidr, such as "10.77.1.1/24", is
// the lab side's own address on it (where dnsmasq or a test server answers); "" leaves it without one,
// a plain switch. The bridge is deleted when t ends.
func (l *Lab) Bridge(t T, name, cidr string) *Bridge {
	t.Helper()
	b, err := l.bridge(t, name, cidr)
	if err != nil {
		t.Fatalf("harness: lab bridge %q: %v", name, err)
	}
	return b
}

func (l *Lab) bridge(t T, name, cidr string) (*Bridge, error) {
	if err := checkIfName(name); err != nil {
		return nil, err
	}
	b := &Bridge{lab: l, name: name}
	if cidr != "" {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return nil, fmt.Errorf("bridge address: %w", err)
		}
		b.addr = p
	}
	ctx := t.Context()
	// No STP, so ports forward at once instead of after 2 x 15 s of listening and learning.
	if err := l.ipn(ctx, "link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
		return nil, err
	}
	t.Cleanup(func() { l.deleteLink(t, name) })
	if b.addr.IsValid() {
		if err := l.ipn(ctx, "addr", "add", b.addr.String(), "dev", name); err != nil {
			return nil, err
		}
	}
	if err := l.ipn(ctx, "link", "set", name, "up"); err != nil {
		return nil, err
	}
	l.log.Info("lab bridge ready", "bridge", name, "addr", cidr)
	return b, nil
}

// deleteLink removes a bridge, tap or veth the harness made, as a cleanup step.
func (l *Lab) deleteLink(t T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), labCleanupTimeout)
	defer cancel()
	if err := l.ipn(ctx, "link", "del", name); err != nil {
		t.Errorf("harness: %v", err)
	}
}

// Name is the bridge's interface name inside the lab namespace.
func (b *Bridge) Name() string { return b.name }

// Lab is the lab the bridge is in.
func (b *Bridge) Lab() *Lab { return b.lab }

// Addr is the lab side's address on the bridge; not valid if it has none.
func (b *Bridge) Addr() netip.Prefix { return b.addr }

// Veth plugs a lab-side port into the bridge: a veth pair in the lab namespace whose one end joins the
// bridge and whose other end, named name and returned, is left free for a client run with Lab.Do or
// Lab.Command (a DHCP client, perfdhcp). Both ends are up; the pair is deleted when t ends.
func (b *Bridge) Veth(t T, name string) string {
	t.Helper()
	if err := b.veth(t, name); err != nil {
		t.Fatalf("harness: veth %q on bridge %s: %v", name, b.name, err)
	}
	return name
}

func (b *Bridge) veth(t T, name string) error {
	if err := checkIfName(name); err != nil {
		return err
	}
	ctx := t.Context()
	port := b.lab.newIfName("ocv")
	if err := b.lab.ipn(ctx, "link", "add", name, "type", "veth", "peer", "name", port); err != nil {
		return err
	}
	t.Cleanup(func() { b.lab.deleteLink(t, name) }) // deleting one end deletes the pair
	for _, args := range [][]string{
		{"link", "set", port, "master", b.name, "up"},
		{"link", "set", name, "up"},
	} {
		if err := b.lab.ipn(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// addTap makes a tap device in the lab namespace, joined to the bridge and up, for one VM NIC; QEMU, run
// in the namespace, attaches to it by name. It is deleted when t ends.
func (b *Bridge) addTap(t T) (string, error) {
	ctx := t.Context()
	tap := b.lab.newIfName("tap")
	if err := b.lab.ipn(ctx, "tuntap", "add", "dev", tap, "mode", "tap"); err != nil {
		return "", err
	}
	t.Cleanup(func() { b.lab.deleteLink(t, tap) })
	if err := b.lab.ipn(ctx, "link", "set", tap, "master", b.name, "up"); err != nil {
		return "", err
	}
	return tap, nil
}

// checkIfName checks a caller's interface name: the kernel takes at most 15 characters, and the prefixes
// of the harness's own tap and veth names are reserved.
func checkIfName(name string) error {
	if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t") {
		return fmt.Errorf("interface name %q: use 1 to 15 characters without spaces or '/'", name)
	}
	if strings.HasPrefix(name, "tap") || strings.HasPrefix(name, "ocv") {
		return fmt.Errorf("interface name %q: names starting with tap or ocv are the harness's", name)
	}
	return nil
}
