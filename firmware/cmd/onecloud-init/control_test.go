package main

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/firmware/control"
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

// The console's servers are kept for the next enrolment, and a re-enrolment
// asked twice before the watch loop takes it is one.
func TestControlServersAndReenrol(t *testing.T) {
	var console strings.Builder
	b := &boot{console: &console, reenrol: make(chan struct{}, 1)}
	c := &controlBox{b: b}
	ctx := context.Background()
	if err := c.SetServers(ctx, control.Servers{Boot: "http://10.8.8.8:8080", Cluster: "https://10.8.8.9:9443"}); err != nil {
		t.Fatal(err)
	}
	if s := b.servers.Load(); s == nil || s.Boot != "http://10.8.8.8:8080" {
		t.Errorf("servers kept: %+v", s)
	}
	if api := b.clusterAPI.Load(); api == nil || hostPort(*api) != "10.8.8.9:9443" {
		t.Errorf("the cluster a network change must reach: %v", api)
	}
	for range 2 {
		if err := c.Reenrol(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.reenrol) != 1 {
		t.Errorf("%d re-enrolments queued, want 1", len(b.reenrol))
	}
	if !strings.Contains(console.String(), "enrol again") {
		t.Errorf("console: %q", console.String())
	}
}

// A box that knows no cluster yet cannot ask it for a role, and says so.
func TestRequestRoleBeforeTheCluster(t *testing.T) {
	c := &controlBox{b: &boot{reenrol: make(chan struct{}, 1)}}
	err := c.RequestRole(context.Background(), "tci")
	if !errors.Is(err, control.ErrNotRunning) || !strings.Contains(err.Error(), "knows no cluster yet") {
		t.Errorf("RequestRole before enrolment = %v", err)
	}
}
