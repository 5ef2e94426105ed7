package harness

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// TestLabDHCP runs a DHCP client on a veth of a lab bridge against the lab's dnsmasq: one MAC with a fixed
// address, one from the pool. Then it checks that dnsmasq and the namespace are gone after the test.
func TestLabDHCP(t *testing.T) {
	t.Parallel()
	left := &leftovers{}
	t.Run("lab", func(t *testing.T) {
		lab := NewLab(t)
		left.addLab(lab)
		lan := lab.Bridge(t, "lan", "10.77.3.1/24")
		fixedMAC, _ := net.ParseMAC("52:54:00:77:00:01")
		poolMAC, _ := net.ParseMAC("52:54:00:77:00:02")
		fixed := netip.MustParseAddr("10.77.3.50")
		srv := lan.DHCP(t, DHCPConfig{Hosts: []DHCPHost{{MAC: fixedMAC.String(), Addr: fixed, Name: "fixed"}}})
		left.addProcess(t, "dnsmasq", srv.PID())
		port := lan.Veth(t, "client0")

		for _, tc := range []struct {
			mac  net.HardwareAddr
			want func(netip.Addr) bool
		}{
			{fixedMAC, func(a netip.Addr) bool { return a == fixed }},
			{poolMAC, func(a netip.Addr) bool {
				return !a.Less(netip.MustParseAddr("10.77.3.100")) && !netip.MustParseAddr("10.77.3.199").Less(a)
			}},
		} {
			var lease *nclient4.Lease
			err := lab.Do(func() error {
				c, err := nclient4.New(port, nclient4.WithHWAddr(tc.mac))
				if err != nil {
					return err
				}
				defer c.Close()
				lease, err = c.Request(t.Context())
				return err
			})
			if err != nil {
				t.Fatalf("DHCP for %s: %v (dnsmasq log: %s)", tc.mac, err, tailFile(srv.LogPath(), 10))
			}
			got, _ := netip.AddrFromSlice(lease.ACK.YourIPAddr.To4())
			if !tc.want(got) {
				t.Errorf("%s got %s", tc.mac, got)
			}
			if mask := lease.ACK.SubnetMask(); mask.String() != "ffffff00" {
				t.Errorf("%s got netmask %s", tc.mac, mask)
			}
			if lease.ACK.MessageType() != dhcpv4.MessageTypeAck {
				t.Errorf("%s got %s, want an ACK", tc.mac, lease.ACK.MessageType())
			}
		}

		leases, err := srv.Leases()
		if err != nil {
			t.Fatal(err)
		}
		if len(leases) != 2 || leases[0].MAC != poolMAC.String() && leases[1].MAC != poolMAC.String() {
			t.Errorf("leases = %+v, want the two clients'", leases)
		}
		for _, l := range leases {
			if l.MAC == fixedMAC.String() && (l.Addr != fixed || l.Hostname != "fixed") {
				t.Errorf("fixed lease = %+v", l)
			}
		}

		// The school's DHCP goes away.
		if err := srv.Stop(t.Context()); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if st, err := readStat(srv.PID()); err == nil && st.state != 'Z' {
			t.Errorf("dnsmasq (pid %d) still runs after Stop", srv.PID())
		}
	})
	left.check(t)
}

// TestLabIsolated checks that the lab namespace is not the host's: its bridge is not among the host's
// interfaces and a process run with Lab.Command sees only the lab's.
func TestLabIsolated(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	lab.Bridge(t, "isolated0", "")
	if _, err := net.InterfaceByName("isolated0"); err == nil {
		t.Error("the lab's bridge is visible in the host namespace")
	}
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	out, err := lab.Command(t.Context(), "readlink", "/proc/self/ns/net").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got == host+"\n" {
		t.Errorf("Lab.Command ran in the host namespace %s", host)
	}
	var names []string
	if err := lab.Do(func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 { // lo and the bridge
		t.Errorf("interfaces in the lab = %v, want lo and isolated0", names)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, lab.Name())); err != nil {
		t.Error(err)
	}
}
