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

// sub builds one encapsulated sub-option.
func sub(code byte, val string) []byte { return append([]byte{code, byte(len(val))}, val...) }

func opt43(parts ...[]byte) dhcpv4.Modifier {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, b))
}

func TestVendorInfoFromACK(t *testing.T) {
	ours := dhcpv4.WithOption(dhcpv4.OptClassIdentifier(VendorClass))
	for _, tc := range []struct {
		name          string
		mods          []dhcpv4.Modifier
		boot, cluster string
	}{
		{name: "no option 43"},
		{
			name: "ours, vendor class echoed",
			mods: []dhcpv4.Modifier{ours, opt43(sub(1, "http://10.77.1.1:8080"), sub(2, "10.77.1.1:7443"))},
			boot: "http://10.77.1.1:8080", cluster: "10.77.1.1:7443",
		},
		{
			name: "ours, no vendor class in the answer, cluster empty",
			mods: []dhcpv4.Modifier{opt43(sub(1, "https://boot.school7.edu.cn"), sub(2, ""))},
			boot: "https://boot.school7.edu.cn",
		},
		{
			name: "pad, unknown sub-options and end are skipped",
			mods: []dhcpv4.Modifier{opt43([]byte{0, 0}, sub(9, "x"), sub(1, "http://10.0.0.1"), []byte{255}, sub(2, "after-end"))},
			boot: "http://10.0.0.1",
		},
		{
			name: "a long URL split over two sub-options is joined",
			mods: []dhcpv4.Modifier{opt43(sub(1, "http://boot."), sub(1, "example.org:8080"))},
			boot: "http://boot.example.org:8080",
		},
		{
			name: "PXE server: sub-option 1 is a binary multicast address",
			mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient")), opt43(sub(1, "\xe0\x01\x02\x03"))},
		},
		{
			name: "another vendor's answer, even with a URL",
			mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Cisco AP c3700")), opt43(sub(1, "http://10.0.0.9"))},
		},
		{
			name: "not a URL",
			mods: []dhcpv4.Modifier{opt43(sub(1, "10.77.1.1"))},
		},
		{
			name: "control characters are never taken",
			mods: []dhcpv4.Modifier{opt43(sub(1, "http://10.0.0.1\x1b[2J"), sub(2, "10.0.0.1"))},
		},
		{
			name: "a bad cluster address alone is dropped",
			mods: []dhcpv4.Modifier{opt43(sub(1, "http://10.0.0.1"), sub(2, "10.0.0.1 \n"))},
			boot: "http://10.0.0.1",
		},
		{
			name: "truncated sub-option",
			mods: []dhcpv4.Modifier{opt43(sub(1, "http://10.0.0.1"), []byte{2, 40, 'x'})},
			boot: "http://10.0.0.1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := fromACK(ack(t, append([]dhcpv4.Modifier{dhcpv4.WithYourIP(net.ParseIP("10.77.1.50"))}, tc.mods...)...))
			if err != nil {
				t.Fatal(err)
			}
			if l.BootServer != tc.boot || l.Cluster != tc.cluster {
				t.Errorf("BootServer, Cluster = %q, %q; want %q, %q", l.BootServer, l.Cluster, tc.boot, tc.cluster)
			}
		})
	}
}

func FuzzSubOptions(f *testing.F) {
	f.Add([]byte{1, 3, 'a', 'b', 'c', 0, 2, 1, 'x', 255})
	f.Add([]byte{1, 200, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		for _, v := range subOptions(b) {
			total += len(v)
		}
		if total > len(b) {
			t.Fatalf("sub-options hold %d bytes, more than the %d given", total, len(b))
		}
	})
}
