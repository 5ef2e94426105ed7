package netcfg

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/firmware/netup"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func staticChange(addr, gw string, dns ...string) Change {
	c := Change{NIC: "eth0", Mode: ModeStatic, Address: netip.MustParsePrefix(addr), DNS: addrs(dns...)}
	if gw != "" {
		c.Gateway = netip.MustParseAddr(gw)
	}
	return c
}

func TestValidate(t *testing.T) {
	vlan := func(c Change, id int) Change { c.VLAN = id; return c }
	for _, tc := range []struct {
		name string
		c    Change
		want string // "" when valid
	}{
		{"dhcp", Change{NIC: "eth0", Mode: ModeDHCP}, ""},
		{"dhcp on VLAN", Change{NIC: "eth0", Mode: ModeDHCP, VLAN: 42}, ""},
		{"static", staticChange("10.1.2.3/24", "10.1.2.1", "10.1.2.53", "9.9.9.9"), ""},
		{"static /32 without gateway", staticChange("10.1.2.3/32", ""), ""},
		{"static on VLAN 4094", vlan(staticChange("10.1.2.3/24", "10.1.2.1"), 4094), ""},
		{"no NIC", Change{Mode: ModeDHCP}, "name the network interface"},
		{"NIC with a slash", Change{NIC: "../eth0", Mode: ModeDHCP}, "name the network interface"},
		{"no mode", Change{NIC: "eth0"}, `mode "": choose "dhcp" or "static"`},
		{"VLAN 4095", Change{NIC: "eth0", Mode: ModeDHCP, VLAN: 4095}, "VLAN 4095 is out of range: use 1-4094"},
		{"VLAN -1", Change{NIC: "eth0", Mode: ModeDHCP, VLAN: -1}, "VLAN -1 is out of range"},
		{"VLAN name too long", Change{NIC: "enx001122334455", Mode: ModeDHCP, VLAN: 42}, "15 characters"},
		{"dhcp with an address", Change{NIC: "eth0", Mode: ModeDHCP, Address: netip.MustParsePrefix("10.1.2.3/24")}, "with DHCP, leave address"},
		{"dhcp with DNS", Change{NIC: "eth0", Mode: ModeDHCP, DNS: addrs("9.9.9.9")}, "with DHCP, leave address"},
		{"static without address", Change{NIC: "eth0", Mode: ModeStatic}, "needs ADDRESS/PREFIX in IPv4"},
		{"static IPv6", staticChange("fd00::2/64", ""), "needs ADDRESS/PREFIX in IPv4"},
		{"prefix /0", staticChange("10.1.2.3/0", ""), "prefix /0 is not a subnet"},
		{"network address", staticChange("10.1.2.0/24", ""), "10.1.2.0 is the network address of 10.1.2.0/24, not a host in it: use e.g. 10.1.2.1"},
		{"broadcast address", staticChange("10.1.2.255/24", ""), "10.1.2.255 is the broadcast address of 10.1.2.0/24"},
		{"loopback address", staticChange("127.0.0.2/8", ""), "127.0.0.2 cannot be a NIC's address"},
		{"multicast address", staticChange("224.0.0.5/24", ""), "cannot be a NIC's address"},
		{"gateway outside", staticChange("10.1.2.3/24", "10.1.3.1"), "gateway 10.1.3.1 is outside the subnet 10.1.2.0/24"},
		{"gateway is us", staticChange("10.1.2.3/24", "10.1.2.3"), "is the box's own address"},
		{"gateway is broadcast", staticChange("10.1.2.3/24", "10.1.2.255"), "cannot be a router's address"},
		{"gateway IPv6", staticChange("10.1.2.3/24", "fd00::1"), "gateway fd00::1 is not an IPv4 address"},
		{"four DNS", staticChange("10.1.2.3/24", "", "1.1.1.1", "1.0.0.1", "9.9.9.9", "8.8.8.8"), "4 DNS servers given; at most 3"},
		{"DNS unspecified", staticChange("10.1.2.3/24", "", "0.0.0.0"), `DNS server "0.0.0.0" is not a usable address`},
		{"DNS twice", staticChange("10.1.2.3/24", "", "9.9.9.9", "9.9.9.9"), "DNS server 9.9.9.9 is given twice"},
		{"DNS zero", Change{NIC: "eth0", Mode: ModeStatic, Address: netip.MustParsePrefix("10.1.2.3/24"), DNS: []netip.Addr{{}}}, "is not a usable address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Errorf("Validate(%s) = %v, want nil", tc.c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate(%s) = %v, want ErrInvalid containing %q", tc.c, err, tc.want)
			}
		})
	}
}

func TestChangeJSONAndSetting(t *testing.T) {
	c := staticChange("10.1.2.3/24", "10.1.2.1", "10.1.2.53")
	c.VLAN = 42
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"nic":"eth0","mode":"static","vlan":42,"address":"10.1.2.3/24","gateway":"10.1.2.1","dns":["10.1.2.53"]}`
	if string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	var back Change
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(c) {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	if b, _ := json.Marshal(Change{NIC: "eth1", Mode: ModeDHCP}); string(b) != `{"nic":"eth1","mode":"dhcp"}` {
		t.Errorf("DHCP JSON %s", b)
	}
	s := c.Setting()
	if s.VLAN != 42 || s.Static == nil || s.Static.Gateway != c.Gateway || s.Iface("eth0") != "eth0.42" {
		t.Errorf("Setting = %+v", s)
	}
	if got := FromSetting("eth0", s); !got.Equal(c) {
		t.Errorf("FromSetting(Setting) = %+v, want %+v", got, c)
	}
	if got := FromSetting("eth0", netup.Setting{}); !got.Equal(Change{NIC: "eth0", Mode: ModeDHCP}) {
		t.Errorf("FromSetting(DHCP) = %+v", got)
	}
	if got, want := c.String(), "eth0 VLAN 42 static 10.1.2.3/24 via 10.1.2.1 DNS [10.1.2.53]"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
