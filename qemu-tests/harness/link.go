package harness

import (
	"context"
	"fmt"
	"net/netip"
)

// Link is a cable from a bridge to another lab: a veth pair whose bridge end is a port of the bridge and
// whose other end is an interface of the other lab's namespace, addressed and up. A test that runs a
// daemon in each of several labs joined by one bridge uses it to cut a lab off (SetUp false) and to heal
// it, as a pulled cable would: the far end keeps its address and its local traffic, and loses the rest.
type Link struct {
	bridge *Bridge
	far    *Lab
	port   string // the bridge end, in the bridge's lab
	name   string // the far end, in far
	addr   netip.Prefix
}

// Connect plugs lab into the bridge: the far end, named name (at most 15 characters) in lab's namespace,
// gets cidr, such as "10.78.0.2/24", and is up. The pair is deleted when t ends; call Connect after
// NewLab(lab) so that this happens before the lab's namespace goes.
func (b *Bridge) Connect(t T, lab *Lab, name, cidr string) *Link {
	t.Helper()
	l, err := b.connect(t, lab, name, cidr)
	if err != nil {
		t.Fatalf("harness: connect lab %s to bridge %s: %v", lab.name, b.name, err)
	}
	return l
}

func (b *Bridge) connect(t T, lab *Lab, name, cidr string) (*Link, error) {
	if err := checkIfName(name); err != nil {
		return nil, err
	}
	addr, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("link address: %w", err)
	}
	ctx := t.Context()
	port := b.lab.newIfName("ocv")
	// The far end is made in the bridge's lab under a harness name, unique there, then moved and renamed:
	// several labs may each want theirs called eth0.
	tmp := b.lab.newIfName("ocv")
	if err := b.lab.ipn(ctx, "link", "add", port, "type", "veth", "peer", "name", tmp); err != nil {
		return nil, err
	}
	// Deleting the bridge end deletes the pair; if the far lab's namespace went first, the pair is gone
	// already and there is nothing to report.
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), labCleanupTimeout)
		defer cancel()
		if b.lab.ipn(cctx, "link", "show", port) == nil {
			b.lab.deleteLink(t, port)
		}
	})
	if err := b.lab.ipn(ctx, "link", "set", tmp, "netns", lab.name); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"link", "set", tmp, "name", name},
		{"addr", "add", addr.String(), "dev", name},
		{"link", "set", name, "up"},
	} {
		if err := lab.ipn(ctx, args...); err != nil {
			return nil, err
		}
	}
	if err := b.lab.ipn(ctx, "link", "set", port, "master", b.name, "up"); err != nil {
		return nil, err
	}
	b.lab.log.Info("lab connected", "bridge", b.name, "port", port, "lab", lab.name, "iface", name, "addr", cidr)
	return &Link{bridge: b, far: lab, port: port, name: name, addr: addr}, nil
}

// Addr is the far end's address.
func (l *Link) Addr() netip.Prefix { return l.addr }

// Port is the bridge end's interface name, in the bridge's lab.
func (l *Link) Port() string { return l.port }

// SetUp plugs the cable in (up) or pulls it (down). It switches the bridge end, so the far lab sees its
// carrier go and keeps its own address reachable from inside.
func (l *Link) SetUp(ctx context.Context, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	if err := l.bridge.lab.ipn(ctx, "link", "set", l.port, state); err != nil {
		return err
	}
	l.bridge.lab.log.Info("link "+state, "bridge", l.bridge.name, "port", l.port, "lab", l.far.name)
	return nil
}
