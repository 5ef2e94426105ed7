package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// VendorClass is the DHCP option 60 our firmware sends, so that the bootstrap
// server can tell the onecloud firmware from a PXE ROM or an installed OS.
const VendorClass = "onecloud-firmware"

// NClient is the DHCP client on a box, on insomniacslk/dhcp's nclient4 (raw
// packet sockets, so it works before the NIC has an address).
type NClient struct {
	// Timeout bounds each of the two exchanges (DISCOVER/OFFER and
	// REQUEST/ACK) of one attempt; the Manager retries.
	Timeout time.Duration
	// Hostname, if set, is sent in option 12 so that the school's DHCP
	// server can show it.
	Hostname string
}

func (c NClient) modifiers() []dhcpv4.Modifier {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(VendorClass)),
		dhcpv4.WithRequestedOptions(
			dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionDomainName, dhcpv4.OptionHostName, dhcpv4.OptionNTPServers,
			dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue,
			dhcpv4.OptionVendorSpecificInformation,
		),
	}
	if c.Hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(c.Hostname)))
	}
	return mods
}

func (c NClient) client(iface string) (*nclient4.Client, error) {
	cl, err := nclient4.New(iface, nclient4.WithTimeout(c.Timeout), nclient4.WithRetry(1))
	if err != nil {
		return nil, fmt.Errorf("open DHCP socket on %s: %w", iface, err)
	}
	return cl, nil
}

// Acquire runs one DISCOVER..ACK exchange.
func (c NClient) Acquire(ctx context.Context, iface string, want netip.Addr) (Lease, error) {
	cl, err := c.client(iface)
	if err != nil {
		return Lease{}, err
	}
	defer cl.Close()
	mods := c.modifiers()
	if want.Is4() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(want.AsSlice())))
	}
	l, err := cl.Request(ctx, mods...)
	if err != nil {
		return Lease{}, quiet(ctx, err)
	}
	return fromACK(l)
}

// Renew asks the lease's server to extend it.
func (c NClient) Renew(ctx context.Context, iface string, l Lease) (Lease, error) {
	old, ok := l.Opaque.(*nclient4.Lease)
	if !ok {
		return Lease{}, fmt.Errorf("lease has no DHCP exchange to renew")
	}
	cl, err := c.client(iface)
	if err != nil {
		return Lease{}, err
	}
	defer cl.Close()
	nl, err := cl.Renew(ctx, old, c.modifiers()...)
	if err != nil {
		return Lease{}, quiet(ctx, err)
	}
	return fromACK(nl)
}

// quiet maps the client's timeout errors to context.DeadlineExceeded, which
// the Manager shows as "no answer from any DHCP server".
func quiet(ctx context.Context, err error) error {
	var nak *nclient4.ErrNak
	if errors.As(err, &nak) {
		return fmt.Errorf("DHCP server refused the request (NAK): %w", err)
	}
	if ctx.Err() != nil || errors.Is(err, nclient4.ErrNoResponse) {
		return fmt.Errorf("%w", context.DeadlineExceeded)
	}
	return err
}

func fromACK(l *nclient4.Lease) (Lease, error) {
	ack := l.ACK
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || !ip.IsValid() || ip.IsUnspecified() {
		return Lease{}, fmt.Errorf("DHCP ACK carries no address")
	}
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ip4DefaultMask(ip)
	}
	ones, _ := mask.Size()
	out := Lease{
		Addr:     netip.PrefixFrom(ip, ones),
		Domain:   ack.DomainName(),
		Hostname: ack.HostName(),
		Opaque:   l,
	}
	if r := ack.Router(); len(r) > 0 {
		out.Gateway, _ = netip.AddrFromSlice(r[0].To4())
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok {
			out.DNS = append(out.DNS, a)
		}
	}
	if s := ack.ServerIdentifier(); s != nil {
		out.Server, _ = netip.AddrFromSlice(s.To4())
	}
	out.BootServer, out.Cluster = vendorInfo(ack)
	out.Duration = ack.IPAddressLeaseTime(time.Hour)
	out.Renew = ack.IPAddressRenewalTime(out.Duration / 2)
	out.Rebind = ack.IPAddressRebindingTime(out.Duration * 7 / 8)
	return out, nil
}

func ip4DefaultMask(ip netip.Addr) net.IPMask {
	return net.IP(ip.AsSlice()).DefaultMask()
}

// Sub-options of option 43 that our bootstrap server sends (docs/bootstrap.md).
const (
	subBootServer = 1
	subCluster    = 2
)

// vendorInfo reads our bootstrap server's option 43 from an ACK: the boot
// server URL and the cluster address. Option 43's meaning belongs to whoever
// sent it: a PXE server uses sub-option 1 for a binary multicast address, a
// Wi-Fi controller for something else. So the values count as ours only when
// the ACK does not name another vendor class (option 60) and sub-option 1
// reads as an http(s) URL; otherwise both are empty. The firmware checks the
// URL fully before it uses it.
func vendorInfo(ack *dhcpv4.DHCPv4) (bootServer, cluster string) {
	if vc := ack.ClassIdentifier(); vc != "" && vc != VendorClass {
		return "", ""
	}
	subs := subOptions(ack.Options.Get(dhcpv4.OptionVendorSpecificInformation))
	server := string(subs[subBootServer])
	if !printable(server) || !(strings.HasPrefix(server, "http://") || strings.HasPrefix(server, "https://")) {
		return "", ""
	}
	cluster = string(subs[subCluster])
	if !printable(cluster) {
		cluster = ""
	}
	return server, cluster
}

// subOptions splits encapsulated vendor options (RFC 2132 section 8.4: code,
// length, value, with pad 0 and end 255). A sub-option given more than once is
// concatenated, as RFC 3396 does for options. A truncated one ends the parse:
// what came before it is still good.
func subOptions(b []byte) map[byte][]byte {
	out := map[byte][]byte{}
	for len(b) > 0 {
		code := b[0]
		if code == 0 {
			b = b[1:]
			continue
		}
		if code == 255 || len(b) < 2 || len(b) < 2+int(b[1]) {
			break
		}
		n := int(b[1])
		out[code] = append(out[code], b[2:2+n]...)
		b = b[2+n:]
	}
	return out
}

// printable reports whether s is plain ASCII text with no spaces or control
// characters: what a URL or an address looks like, and safe on a console.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
