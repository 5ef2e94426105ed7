package netup

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

func ack(t *testing.T, mods ...dhcpv4.Modifier) *nclient4.Lease {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return &nclient4.Lease{ACK: m}
}

func TestFromACK(t *testing.T) {
	full := ack(t,
		dhcpv4.WithYourIP(net.ParseIP("10.77.1.50")),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithRouter(net.ParseIP("10.77.1.1")),
		dhcpv4.WithDNS(net.ParseIP("10.77.1.53"), net.ParseIP("10.77.1.54")),
		dhcpv4.WithServerIP(net.ParseIP("10.77.1.1")),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.77.1.2"))),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(2*time.Hour)),
		dhcpv4.WithOption(dhcpv4.OptHostName("room3-pc07")),
		dhcpv4.WithOption(dhcpv4.OptDomainName("school7.edu.cn")),
	)
	l, err := fromACK(full)
	if err != nil {
		t.Fatal(err)
	}
	if l.Addr != netip.MustParsePrefix("10.77.1.50/24") || l.Gateway != netip.MustParseAddr("10.77.1.1") ||
		l.Server != netip.MustParseAddr("10.77.1.2") || l.Hostname != "room3-pc07" || l.Domain != "school7.edu.cn" {
		t.Errorf("lease = %+v", l)
	}
	if !slices.Equal(l.DNS, []netip.Addr{netip.MustParseAddr("10.77.1.53"), netip.MustParseAddr("10.77.1.54")}) {
		t.Errorf("DNS = %v", l.DNS)
	}
	if l.Duration != 2*time.Hour || l.Renew != time.Hour || l.Rebind != 105*time.Minute {
		t.Errorf("times = %v %v %v, want 2h, T1 1h and T2 1h45m by default", l.Duration, l.Renew, l.Rebind)
	}

	// A bare answer: no mask (the class default applies), no router.
	bare, err := fromACK(ack(t, dhcpv4.WithYourIP(net.ParseIP("172.16.5.9"))))
	if err != nil {
		t.Fatal(err)
	}
	if bare.Addr != netip.MustParsePrefix("172.16.5.9/16") || bare.Gateway.IsValid() || bare.Duration != time.Hour {
		t.Errorf("bare lease = %+v", bare)
	}

	if _, err := fromACK(ack(t)); err == nil || !strings.Contains(err.Error(), "no address") {
		t.Errorf("ACK without yiaddr: err = %v", err)
	}
}
