package main

import (
	"net/netip"
	"testing"

	"github.com/onecloud-edu/onecloud/firmware/netup"
)

func TestProbeTarget(t *testing.T) {
	lease := func(boot, cluster string) netup.NIC {
		return netup.NIC{Name: "eth0", Lease: &netup.Lease{Addr: netip.MustParsePrefix("10.77.1.50/24"), BootServer: boot, Cluster: cluster}}
	}
	for _, tc := range []struct {
		name   string
		server string
		nics   []netup.NIC
		want   string
	}{
		{"nothing known", "", []netup.NIC{{Name: "eth0"}}, ""},
		{"cluster from option 43", "http://10.0.0.1:8080", []netup.NIC{lease("http://10.77.1.1:8080", "https://10.77.1.10:6443")}, "10.77.1.10:6443"},
		{"cluster as host:port", "", []netup.NIC{lease("", "10.77.1.10:6443")}, "10.77.1.10:6443"},
		{"command line server before DHCP's", "http://10.0.0.1:8080", []netup.NIC{lease("http://10.77.1.1:8080", "")}, "10.0.0.1:8080"},
		{"DHCP's boot server, default port", "", []netup.NIC{lease("http://10.77.1.1", "")}, "10.77.1.1:80"},
		{"unusable cluster value", "", []netup.NIC{lease("https://boot.example", "not a url")}, "boot.example:443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := probeTarget(tc.server, tc.nics); got != tc.want {
				t.Errorf("probeTarget = %q, want %q", got, tc.want)
			}
		})
	}
}
