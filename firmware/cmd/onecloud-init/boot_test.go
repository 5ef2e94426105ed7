package main

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/cmdline"
	"github.com/onecloud-edu/onecloud/firmware/netup"
	"github.com/onecloud-edu/onecloud/hw"
)

func TestDefaultHostname(t *testing.T) {
	for _, tc := range []struct {
		nics []hw.NIC
		want string
	}{
		{nil, "onecloud"},
		{[]hw.NIC{{Name: "wlan0"}, {Name: "eth0", MAC: "52:54:00:0c:10:01"}}, "oc-5254000c1001"},
	} {
		if got := defaultHostname(hw.Inventory{NICs: tc.nics}); got != tc.want {
			t.Errorf("defaultHostname(%+v) = %q, want %q", tc.nics, got, tc.want)
		}
	}
}

func TestNetConfigFromCommandLine(t *testing.T) {
	opts, warn := cmdline.Parse("onecloud.ifaces=eth1 onecloud.dhcp.backoff=2s,30s onecloud.dhcp.timeout=3s onecloud.ip=eth0:10.1.2.3/24:10.1.2.1:10.1.2.53")
	if len(warn) != 0 {
		t.Fatal(warn)
	}
	b := &boot{opts: opts, log: slog.New(slog.DiscardHandler)}
	c := b.netConfig()
	if len(c.Only) != 1 || c.Only[0] != "eth1" || c.AttemptTimeout != 3*time.Second ||
		c.Backoff.Min != 2*time.Second || c.Backoff.Max != 30*time.Second || c.Backoff.Rand == nil {
		t.Errorf("netConfig = %+v", c)
	}
	want := netup.Lease{Addr: netip.MustParsePrefix("10.1.2.3/24"), Gateway: netip.MustParseAddr("10.1.2.1"), DNS: []netip.Addr{netip.MustParseAddr("10.1.2.53")}}
	got := c.Static["eth0"]
	if got.Addr != want.Addr || got.Gateway != want.Gateway || len(got.DNS) != 1 || got.DNS[0] != want.DNS[0] {
		t.Errorf("static eth0 = %+v, want %+v", got, want)
	}
}

func TestDHCPHostname(t *testing.T) {
	nics := []netup.NIC{
		{Name: "eth0", Phase: netup.PhaseDiscovering},
		{Name: "eth1", Phase: netup.PhaseBound, Lease: &netup.Lease{Hostname: "room3-pc07"}},
	}
	if got := dhcpHostname(nics); got != "room3-pc07" {
		t.Errorf("dhcpHostname = %q", got)
	}
	if got := dhcpHostname(nics[:1]); got != "" {
		t.Errorf("dhcpHostname without a lease = %q", got)
	}
}

func TestNotesAreSafeFromGoroutines(t *testing.T) {
	b := &boot{log: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() {
		for range 100 {
			b.note("module %d failed", 1)
		}
		close(done)
	}()
	for range 100 {
		_ = b.currentNotes()
	}
	<-done
	if n := len(b.currentNotes()); n != 100 {
		t.Errorf("%d notes, want 100", n)
	}
}
