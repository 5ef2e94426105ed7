package netup

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func static(addr, gw string) *Lease {
	l := &Lease{Addr: netip.MustParsePrefix(addr)}
	if gw != "" {
		l.Gateway = netip.MustParseAddr(gw)
	}
	return l
}

func (f *fakeNet) vlanLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.vlans)
}

func configure(t *testing.T, m *Manager, nic string, s Setting) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.Configure(ctx, nic, s)
}

// A technician moves a DHCP NIC to a static address, then onto VLAN 42
// with DHCP, then back to untagged DHCP: each step drops what the last one
// set and shows the new setting.
func TestConfigureDHCPStaticVLANAndBack(t *testing.T) {
	f := newFake()
	f.carrier["eth0"] = true
	cfg := fastConfig()
	cfg.Only = []string{"eth0"}
	m, wait := run(t, cfg, f)
	wait("bound", func(n []NIC) bool { return find(n, "eth0").Phase == PhaseBound })

	if err := configure(t, m, "eth0", Setting{Static: static("10.9.8.7/24", "10.9.8.1")}); err != nil {
		t.Fatalf("to static: %v", err)
	}
	nics := wait("static", func(n []NIC) bool { return find(n, "eth0").Phase == PhaseStatic })
	e := find(nics, "eth0")
	if e.Setting.Static == nil || e.Setting.Static.Addr.String() != "10.9.8.7/24" || e.Iface != "eth0" {
		t.Errorf("static NIC shows %+v", e)
	}
	acquired, applied, removed, _ := f.snapshot()
	if want := []string{"eth0 10.77.1.50/24 100", "eth0 10.9.8.7/24 100"}; !slices.Equal(applied, want) {
		t.Errorf("applied %q, want %q (static applied once, same metric)", applied, want)
	}
	if want := []string{"eth0 10.77.1.50/24"}; !slices.Equal(removed, want) {
		t.Errorf("removed %q, want the DHCP address dropped", removed)
	}
	dhcpAsks := len(acquired)

	// Static to DHCP on VLAN 42: the lease goes on eth0.42.
	if err := configure(t, m, "eth0", Setting{VLAN: 42}); err != nil {
		t.Fatalf("to VLAN 42: %v", err)
	}
	nics = wait("bound on the VLAN", func(n []NIC) bool {
		e := find(n, "eth0")
		return e.Phase == PhaseBound && e.Iface == "eth0.42"
	})
	if e := find(nics, "eth0"); e.Setting.VLAN != 42 || e.Setting.Static != nil {
		t.Errorf("VLAN NIC shows setting %+v", e.Setting)
	}
	acquired, applied, removed, _ = f.snapshot()
	if got := acquired[dhcpAsks:]; len(got) == 0 || got[0] != "eth0.42 want=invalid IP" {
		t.Errorf("DHCP after the change asked %q, want on eth0.42", got)
	}
	if applied[len(applied)-1] != "eth0.42 10.77.1.50/24 100" {
		t.Errorf("applied %q, want the lease on eth0.42", applied)
	}
	if removed[len(removed)-1] != "eth0 10.9.8.7/24" {
		t.Errorf("removed %q, want the static address dropped", removed)
	}

	// Back to untagged DHCP: the VLAN link goes.
	if err := configure(t, m, "eth0", Setting{}); err != nil {
		t.Fatalf("back to DHCP: %v", err)
	}
	wait("bound untagged", func(n []NIC) bool {
		e := find(n, "eth0")
		return e.Phase == PhaseBound && e.Iface == "eth0"
	})
	if want := []string{"add eth0 eth0.42 42", "del eth0.42"}; !slices.Equal(f.vlanLog(), want) {
		t.Errorf("VLAN links %q, want %q", f.vlanLog(), want)
	}
	_, _, removed, _ = f.snapshot()
	if removed[len(removed)-1] != "eth0.42 10.77.1.50/24" {
		t.Errorf("removed %q, want the VLAN's lease dropped", removed)
	}
}

func TestConfigureRefusals(t *testing.T) {
	f := newFake()
	f.carrier["eth0"] = true
	cfg := fastConfig()
	cfg.Only = []string{"eth0"}
	m, wait := run(t, cfg, f)
	wait("bound", func(n []NIC) bool { return find(n, "eth0").Phase == PhaseBound })

	for _, tc := range []struct {
		name, nic string
		s         Setting
		want      string
	}{
		{"unknown NIC", "eth9", Setting{}, `no network interface "eth9" is handled here (known: [eth0])`},
		{"VLAN 0 is none, 4095 reserved", "eth0", Setting{VLAN: 4095}, "VLAN 4095 is out of range"},
		{"negative VLAN", "eth0", Setting{VLAN: -1}, "VLAN -1 is out of range"},
		{"VLAN 1 fits", "eth0", Setting{VLAN: 1}, ""},
		{"IPv6 static", "eth0", Setting{Static: &Lease{Addr: netip.MustParsePrefix("fd00::1/64")}}, "is not an IPv4"},
		{"zero static", "eth0", Setting{Static: &Lease{}}, "is not an IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := configure(t, m, tc.nic, tc.s)
			if tc.want == "" {
				if err != nil {
					t.Errorf("Configure: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Configure error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if err := (Setting{VLAN: 100}).Check("enx00112233445566"); err == nil || !strings.Contains(err.Error(), "15 characters") {
		t.Errorf("long VLAN name: %v", err)
	}
}

// A VLAN link the kernel refuses leaves the NIC as it was.
func TestConfigureVLANFailureChangesNothing(t *testing.T) {
	f := newFake()
	f.carrier["eth0"] = true
	f.vlanErr = errors.New("operation not supported")
	cfg := fastConfig()
	cfg.Only = []string{"eth0"}
	m, wait := run(t, cfg, f)
	wait("bound", func(n []NIC) bool { return find(n, "eth0").Phase == PhaseBound })
	err := configure(t, m, "eth0", Setting{VLAN: 7})
	if err == nil || !strings.Contains(err.Error(), "8021q") {
		t.Fatalf("Configure = %v, want the VLAN error with a hint", err)
	}
	e := find(m.NICs(), "eth0")
	if e.Phase != PhaseBound || e.Setting.VLAN != 0 || e.Iface != "eth0" {
		t.Errorf("NIC after a failed change: %+v", e)
	}
	if _, _, removed, _ := f.snapshot(); len(removed) != 0 {
		t.Errorf("removed %q after a failed change", removed)
	}
}

// A static address the kernel refuses is reported, stays in force and is
// retried, as at boot.
func TestConfigureStaticApplyFailure(t *testing.T) {
	f := newFake()
	f.applyErr["eth1"] = errors.New("file exists")
	cfg := fastConfig()
	cfg.Only = []string{"eth1"}
	m, wait := run(t, cfg, f)
	wait("eth1 known", func(n []NIC) bool { return find(n, "eth1").Name == "eth1" })
	err := configure(t, m, "eth1", Setting{Static: static("10.9.8.7/24", "")})
	if err == nil || !strings.Contains(err.Error(), "cannot set 10.9.8.7/24 on eth1: file exists") {
		t.Fatalf("Configure = %v", err)
	}
	wait("error shown", func(n []NIC) bool {
		e := find(n, "eth1")
		return e.Phase == PhaseError && e.LastError == "file exists" && e.Setting.Static != nil
	})
}

func TestConfigureNeedsRun(t *testing.T) {
	m := New(fastConfig(), newFake(), newFake())
	err := configure(t, m, "eth0", Setting{})
	if err == nil || !strings.Contains(err.Error(), "does not manage the network") {
		t.Errorf("Configure without Run = %v", err)
	}
}

func TestSettingIface(t *testing.T) {
	for _, tc := range []struct {
		s    Setting
		want string
	}{
		{Setting{}, "eth0"},
		{Setting{VLAN: 42}, "eth0.42"},
		{Setting{VLAN: 4094, Static: static("10.0.0.2/8", "")}, "eth0.4094"},
	} {
		if got := tc.s.Iface("eth0"); got != tc.want {
			t.Errorf("%+v.Iface = %q, want %q", tc.s, got, tc.want)
		}
	}
}
