package main

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/firmware/console/ui"
	"github.com/onecloud-edu/onecloud/firmware/enrol"
	"github.com/onecloud-edu/onecloud/firmware/netcfg"
	"github.com/onecloud-edu/onecloud/firmware/netup"
	"github.com/onecloud-edu/onecloud/firmware/screen"
	"github.com/onecloud-edu/onecloud/hw"
	"github.com/onecloud-edu/onecloud/internal/release"
	"github.com/onecloud-edu/onecloud/noded/nodecert"
)

var t0 = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

func TestFromFirmware(t *testing.T) {
	inv := &hw.Inventory{}
	inv.DMI.Serial = "SN-1"
	fw := screen.State{
		Now: t0, Release: release.Info{Product: "onecloud", Version: "0.1.0"}, Hostname: "oc-525400123456",
		Inventory: inv, Uptime: 42 * time.Second,
		NICs: []netup.NIC{
			{Name: "eth0", MAC: "52:54:00:12:34:56", Carrier: true, Phase: netup.PhaseBound,
				Lease: &netup.Lease{Addr: netip.MustParsePrefix("10.77.1.50/24"), Gateway: netip.MustParseAddr("10.77.1.1"), DNS: []netip.Addr{netip.MustParseAddr("10.77.1.53")}}},
			{Name: "eth1", MAC: "52:54:00:12:34:57"},
		},
		Enrolment: enrol.State{Phase: enrol.PhaseApproved, ID: "oc-525400123456", Role: "vdi", School: "s01", Server: "http://10.77.1.1:8080",
			Cluster: &enrolapi.Cluster{API: "https://10.77.1.1:9443"}},
		Attestation: &nodecert.Status{State: nodecert.Refused, Reason: "image-not-released", Text: "release it", Expires: t0.Add(time.Hour)},
		Notes:       []string{"module x not loaded"},
	}
	st := fromFirmware(fw)
	switch {
	case st.Serial != "SN-1" || st.Role != "vdi" || st.School != "s01" || st.Boot != ui.BootPXE:
		t.Errorf("identity: %+v", st)
	case len(st.NICs) != 2 || !st.NICs[0].Up || st.NICs[0].Addrs[0] != "10.77.1.50/24" || st.NICs[1].Up || len(st.NICs[1].Addrs) != 0:
		t.Errorf("NICs: %+v", st.NICs)
	case st.Gateway.Address != "10.77.1.1" || st.Cluster.Address != "10.77.1.1:9443" || len(st.DNS) != 1:
		t.Errorf("reachability targets: gateway %+v cluster %+v dns %v", st.Gateway, st.Cluster, st.DNS)
	case st.Enrolment.State != ui.EnrolApproved || st.Enrolment.ID != "oc-525400123456":
		t.Errorf("enrolment: %+v", st.Enrolment)
	case st.Attestation.State != ui.AttestRefused || st.Attestation.Reason != "image-not-released" || !st.CertExpires.Equal(t0.Add(time.Hour)):
		t.Errorf("attestation: %+v, expires %v", st.Attestation, st.CertExpires)
	case len(st.Log) != 1 || st.Log[0].Level != ui.LevelWarn:
		t.Errorf("log: %+v", st.Log)
	}
	// The enrolment states are the model's.
	for _, p := range []enrol.Phase{enrol.PhaseNoServer, enrol.PhaseContacting, enrol.PhasePending, enrol.PhaseApproved, enrol.PhaseRejected, enrol.PhaseError} {
		if got := fromFirmware(screen.State{Enrolment: enrol.State{Phase: p}}).Enrolment.State; got != string(p) {
			t.Errorf("phase %s became %q", p, got)
		}
	}
}

func TestConsoleSettings(t *testing.T) {
	fw := screen.State{}
	if pin, lang := consoleSettings(fw, "cmdhash", "en"); pin != "cmdhash" || lang != "en" {
		t.Errorf("from the command line: %q %q", pin, lang)
	}
	fw.Enrolment.Console = &enrolapi.Console{PINHash: "clusterhash"}
	if pin, lang := consoleSettings(fw, "cmdhash", "en"); pin != "clusterhash" || lang != "en" {
		t.Errorf("the cluster's PIN over the command line's: %q %q", pin, lang)
	}
}

func TestProc(t *testing.T) {
	m := memory([]byte("MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     250 kB\n"))
	if m.Total != 1000*1024 || m.Used != 750*1024 {
		t.Errorf("memory = %+v", m)
	}
	busy, total := cpuTimes([]byte("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 1 2 3\n"))
	if busy != 15 || total != 100 {
		t.Errorf("cpu = %d busy of %d", busy, total)
	}
	if busy, total := cpuTimes([]byte("garbage")); busy != 0 || total != 0 {
		t.Errorf("cpu of garbage = %d %d", busy, total)
	}
	if up := uptimeOf([]byte("123.45 99.0\n")); up != 123450*time.Millisecond {
		t.Errorf("uptime = %v", up)
	}
}

func TestPending(t *testing.T) {
	a := &netcfg.Attempt{Change: netcfg.Change{NIC: "eth0", Mode: netcfg.ModeStatic, Address: netip.MustParsePrefix("10.9.0.5/24")},
		Deadline: time.Now().Add(time.Minute), Outcome: netcfg.Testing}
	p := pending(netcfg.State{Pending: a})
	if p == nil || p.Config.DHCP || p.Config.Address.String() != "10.9.0.5/24" || p.Confirmed || p.Reverted {
		t.Fatalf("pending = %+v", p)
	}
	done := *a
	done.Outcome, done.Reason, done.Ended = netcfg.Reverted, "the cluster did not answer", time.Now()
	if p := pending(netcfg.State{Last: &done}); p == nil || !p.Reverted || p.Reason == "" {
		t.Errorf("a reverted change = %+v", p)
	}
	done.Ended = time.Now().Add(-time.Hour)
	if p := pending(netcfg.State{Last: &done}); p != nil {
		t.Errorf("an old outcome is still shown: %+v", p)
	}
}

func TestFileLock(t *testing.T) {
	l := fileLock{path: filepath.Join(t.TempDir(), "lock.json")}
	if s, err := l.Load(); err != nil || s != (ui.LockState{}) {
		t.Fatalf("a missing lock file: %+v, %v", s, err)
	}
	want := ui.LockState{Failures: 3, Rounds: 1, Until: t0}
	if err := l.Save(want); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Load(); err != nil || got.Failures != 3 || got.Rounds != 1 || !got.Until.Equal(t0) {
		t.Errorf("round trip: %+v, %v", got, err)
	}
}

func TestServersOf(t *testing.T) {
	got := serversOf(ui.SetServers{Boot: "10.77.1.1:8080", Cluster: "10.77.1.1:9443"})
	if got.Boot != "http://10.77.1.1:8080" || got.Cluster != "https://10.77.1.1:9443" {
		t.Errorf("serversOf = %+v", got)
	}
	if got := serversOf(ui.SetServers{}); got.Boot != "" || got.Cluster != "" {
		t.Errorf("empty servers = %+v", got)
	}
}

func TestIsScreen(t *testing.T) {
	for tty, want := range map[string]bool{"tty1": true, "tty12": true, "ttyS0": false, "ttyS1": false, "ttyUSB0": false, "tty": false} {
		if isScreen(tty) != want {
			t.Errorf("isScreen(%s) = %v", tty, !want)
		}
	}
}

func TestServiceLine(t *testing.T) {
	for _, tc := range []struct {
		in    string
		level string
		text  string
		at    time.Time
	}{
		{`noded: time=2026-11-28T08:00:01Z level=WARN msg="status API slow" took=3s`, ui.LevelWarn, `noded: "status API slow" took=3s`, t0.Add(time.Second)},
		{`attest: time=2026-11-28T08:00:02.5Z level=ERROR msg=refused reason=image-not-released`, ui.LevelError, `attest: refused reason=image-not-released`, t0.Add(2500 * time.Millisecond)},
		{`console-tty1: supervisor: console-tty1 exited after 1s; restarting in 2s`, ui.LevelWarn, `console-tty1: supervisor: console-tty1 exited after 1s; restarting in 2s`, t0},
	} {
		got := serviceLine(tc.in, t0)
		if got.Level != tc.level || got.Text != tc.text || !got.Time.Equal(tc.at) {
			t.Errorf("serviceLine(%q) = %+v, want %s %q at %v", tc.in, got, tc.level, tc.text, tc.at)
		}
	}
}
