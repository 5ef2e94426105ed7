package main

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/cmdline"
	"github.com/onecloud-edu/onecloud/firmware/control"
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

func TestEnrolConfig(t *testing.T) {
	bound := func(name, mac, bootServer string) netup.NIC {
		return netup.NIC{Name: name, MAC: mac, Phase: netup.PhaseBound,
			Lease: &netup.Lease{Addr: netip.MustParsePrefix("10.77.1.50/24"), BootServer: bootServer}}
	}
	const (
		mac0, mac1 = "52:54:00:00:00:01", "52:54:00:00:00:02"
		srv        = "http://10.77.1.1:8080"
	)
	for _, tc := range []struct {
		name        string
		line        string
		nics        []netup.NIC
		server, mac string
		notes       int
		console     string // the boot server set at the node console
	}{
		{
			name:   "command line wins over DHCP; boot MAC is the first NIC with an address",
			line:   "onecloud.server=http://10.9.9.9 onecloud.id=oc-525400000001 onecloud.role=vdi onecloud.school=s01",
			nics:   []netup.NIC{{Name: "eth0", MAC: "52:54:00:00:00:09", Phase: netup.PhaseNoCarrier}, bound("eth1", mac0, ""), bound("eth2", mac1, srv)},
			server: "http://10.9.9.9", mac: mac0,
		},
		{
			name:   "server from the DHCP answer that named it, and that NIC's MAC",
			nics:   []netup.NIC{bound("eth0", mac0, ""), bound("eth1", mac1, srv)},
			server: srv, mac: mac1,
		},
		{
			name: "a bad URL from DHCP is noted and not used",
			nics: []netup.NIC{bound("eth0", mac0, "http://10.77.1.1:8080/boot")},
			mac:  mac0, notes: 1,
		},
		{
			name:    "the boot server set at the console wins over the command line and DHCP",
			line:    "onecloud.server=http://10.9.9.9",
			nics:    []netup.NIC{bound("eth0", mac0, srv)},
			console: "http://10.8.8.8:8080", server: "http://10.8.8.8:8080", mac: mac0,
		},
		{
			name: "neither",
			nics: []netup.NIC{{Name: "eth0", MAC: mac0, Phase: netup.PhaseStatic, Lease: &netup.Lease{}}},
			mac:  mac0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, warn := cmdline.Parse(tc.line)
			if len(warn) != 0 {
				t.Fatal(warn)
			}
			b := &boot{opts: opts, log: slog.New(slog.DiscardHandler)}
			if tc.console != "" {
				b.servers.Store(&control.Servers{Boot: tc.console})
			}
			rebooted := false
			c := b.enrolConfig(tc.nics, func() { rebooted = true })
			if c.Server != tc.server || c.BootMAC != tc.mac {
				t.Errorf("server, boot MAC = %q, %q; want %q, %q", c.Server, c.BootMAC, tc.server, tc.mac)
			}
			if c.ID != opts.ID || c.Role != opts.Role || c.School != opts.School || c.Inventory != &b.inv || c.Backoff.Rand == nil {
				t.Errorf("config = %+v", c)
			}
			if c.Reboot(); !rebooted {
				t.Error("the reboot function given is not the one configured")
			}
			if n := len(b.currentNotes()); n != tc.notes {
				t.Errorf("%d notes (%q), want %d", n, b.currentNotes(), tc.notes)
			}
		})
	}
}

func TestImportant(t *testing.T) {
	got := important("noded", []string{
		`time=x level=INFO msg=started`,
		`time=x level=WARN msg="slow"`,
		`supervisor: noded exited after 2s; restarting in 1s`,
		`time=x level=ERROR msg=broken`,
	})
	want := []string{`noded: time=x level=WARN msg="slow"`, `noded: supervisor: noded exited after 2s; restarting in 1s`, `noded: time=x level=ERROR msg=broken`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("important = %q, want %q", got, want)
	}
}
