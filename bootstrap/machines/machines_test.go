package machines

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/hw"
)

var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// syncBuffer is a log sink that goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func openStore(t *testing.T, path string, rules []Rule, declared []Declared) (*Store, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := Open(path, rules, declared, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

func seen(t *testing.T, s *Store, sg Sighting, now time.Time) Machine {
	t.Helper()
	m, err := s.Seen(context.Background(), sg, now)
	if err != nil {
		t.Fatalf("Seen(%+v): %v", sg, err)
	}
	return m
}

func ipxe(mac, serial, addr string) Sighting {
	sg := Sighting{MAC: mac, Serial: serial, Source: SourceIPXE}
	if addr != "" {
		sg.Addr = netip.MustParseAddr(addr)
	}
	return sg
}

func inventory(serial string, macs ...string) *hw.Inventory {
	inv := &hw.Inventory{Schema: hw.Schema, Class: hw.ClassPC,
		DMI: hw.DMI{Vendor: "Dell Inc.", Product: "OptiPlex 3000", Serial: serial, UUID: "4C4C4544-0000-1000-8000-000000000001"}}
	for i, mac := range macs {
		inv.NICs = append(inv.NICs, hw.NIC{Name: fmt.Sprintf("eth%d", i), MAC: mac})
	}
	return inv
}

func TestFirstSightApproval(t *testing.T) {
	rules := []Rule{
		{Name: "by-prefix", MACPrefixes: []string{"52:54:00"}, Role: "vdi", School: "s01"},
		{Name: "by-vendor", Vendor: "LENOVO", Role: "idv"},
		{Name: "by-product", Product: "t640", Role: "tci", School: "s02"},
		{Name: "by-serial", Serials: []string{"SRV-1", "SRV-2"}, Role: "server"},
		{Name: "by-subnet", Subnet: netip.MustParsePrefix("10.9.0.0/16"), Role: "tci", School: "s09"},
		{Name: "also-prefix", MACPrefixes: []string{"52:54"}, Role: "server"}, // never wins: by-prefix comes first
	}
	tests := []struct {
		name               string
		sg                 Sighting
		state              enrolapi.State
		role, school, rule string
	}{
		{"mac prefix", ipxe("52:54:00:00:00:01", "", ""), enrolapi.Approved, "vdi", "s01", "rule:by-prefix"},
		{"vendor", Sighting{MAC: "00:1b:21:00:00:01", Vendor: "Lenovo", Source: SourceIPXE}, enrolapi.Approved, "idv", "", "rule:by-vendor"},
		{"product from inventory", Sighting{MAC: "00:1b:21:00:00:02", Source: SourceFirmware,
			Inventory: &hw.Inventory{DMI: hw.DMI{Vendor: "HP", Product: "T640"}}}, enrolapi.Approved, "tci", "s02", "rule:by-product"},
		{"serial", ipxe("00:1b:21:00:00:03", "srv-2", ""), enrolapi.Approved, "server", "", "rule:by-serial"},
		{"subnet", ipxe("00:1b:21:00:00:04", "", "10.9.3.4"), enrolapi.Approved, "tci", "s09", "rule:by-subnet"},
		{"nothing matches", ipxe("00:1b:21:00:00:05", "X", "10.8.3.4"), enrolapi.Pending, "", "", ""},
	}
	s, _ := openStore(t, filepath.Join(t.TempDir(), "machines.json"), rules, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := seen(t, s, tt.sg, t0)
			if m.State != tt.state || m.Role != tt.role || m.School != tt.school || m.DecidedBy != tt.rule {
				t.Errorf("got %s role=%q school=%q by %q; want %s role=%q school=%q by %q",
					m.State, m.Role, m.School, m.DecidedBy, tt.state, tt.role, tt.school, tt.rule)
			}
			mac, _ := NormalizeMAC(tt.sg.MAC)
			if m.ID != "oc-"+strings.ReplaceAll(mac, ":", "") {
				t.Errorf("id = %q, want oc- and the boot MAC", m.ID)
			}
		})
	}
}

func TestDeclared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "machines.json")
	rules := []Rule{{Name: "lab", MACPrefixes: []string{"52:54:00"}, Role: "vdi"}}
	s, _ := openStore(t, path, rules, []Declared{{MAC: "52-54-00-00-00-07", Role: "server", School: "hq"}})
	m := seen(t, s, ipxe("52:54:00:00:00:07", "", ""), t0)
	if m.State != enrolapi.Approved || m.Role != "server" || m.School != "hq" || m.DecidedBy != "declared" {
		t.Fatalf("declared machine: %+v; want approved server/hq by declared (declarations before rules)", m)
	}
	// The technician edits the declaration and restarts bootstrapd.
	s, _ = openStore(t, path, rules, []Declared{{MAC: "52:54:00:00:00:07", Role: "tci", School: "hq"}})
	m = seen(t, s, ipxe("52:54:00:00:00:07", "", ""), t0.Add(time.Hour))
	if m.Role != "tci" || m.DecidedBy != "declared" {
		t.Fatalf("after the declaration changed: role %q by %q, want tci by declared", m.Role, m.DecidedBy)
	}
	// A technician's decision is not overridden by the configuration.
	if _, err := s.Assign(context.Background(), m.ID, "idv", ""); err != nil {
		t.Fatal(err)
	}
	m = seen(t, s, ipxe("52:54:00:00:00:07", "", ""), t0.Add(2*time.Hour))
	if m.Role != "idv" || m.DecidedBy != "technician" {
		t.Fatalf("after assign: role %q by %q, want idv by technician", m.Role, m.DecidedBy)
	}
}

func TestIPXEThenFirmware(t *testing.T) {
	s, _ := openStore(t, filepath.Join(t.TempDir(), "machines.json"), nil, nil)
	a := seen(t, s, ipxe("A0:36:9F:00:00:01", "CZ1", "10.0.0.9"), t0)
	if a.State != enrolapi.Pending || a.ID != "oc-a0369f000001" || a.Serial != "CZ1" {
		t.Fatalf("iPXE sighting: %+v", a)
	}
	inv := inventory("CZ1", "a0:36:9f:00:00:01", "a0:36:9f:00:00:02")
	f := seen(t, s, Sighting{MAC: "a0:36:9f:00:00:01", Addr: netip.MustParseAddr("10.0.0.10"), Source: SourceFirmware, Inventory: inv}, t0.Add(time.Minute))
	if f.ID != a.ID {
		t.Fatalf("the firmware's sighting made machine %s, want %s", f.ID, a.ID)
	}
	want := []string{"a0:36:9f:00:00:01", "a0:36:9f:00:00:02"}
	if !reflect.DeepEqual(f.MACs, want) || f.Addr != "10.0.0.10" || f.Vendor != "Dell Inc." || f.Product != "OptiPlex 3000" ||
		f.UUID != "4c4c4544-0000-1000-8000-000000000001" || f.Inventory == nil || !f.FirstSeen.Equal(t0) || !f.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after the firmware's sighting: %+v", f)
	}
	// iPXE booting from the second NIC later finds the same machine.
	b := seen(t, s, ipxe("a0:36:9f:00:00:02", "CZ1", ""), t0.Add(time.Hour))
	if b.ID != a.ID || b.Addr != "10.0.0.10" || b.Inventory == nil {
		t.Fatalf("iPXE from the second NIC: %+v; want %s with address and inventory kept", b, a.ID)
	}
	if all, _ := s.List(""); len(all) != 1 {
		t.Fatalf("%d machines, want 1", len(all))
	}
}

func TestTwoRecordsOfOneBoxMerge(t *testing.T) {
	s, logs := openStore(t, filepath.Join(t.TempDir(), "machines.json"), nil, nil)
	// iPXE saw the box boot from both NICs before the firmware ran.
	seen(t, s, ipxe("a0:36:9f:00:00:02", "", ""), t0)
	seen(t, s, ipxe("a0:36:9f:00:00:01", "CZ1", ""), t0.Add(time.Minute))
	if _, err := s.Approve(context.Background(), "oc-a0369f000001", "tci", ""); err != nil {
		t.Fatal(err)
	}
	m := seen(t, s, Sighting{MAC: "a0:36:9f:00:00:01", Source: SourceFirmware, Inventory: inventory("CZ1", "a0:36:9f:00:00:01", "a0:36:9f:00:00:02")}, t0.Add(2*time.Minute))
	all, _ := s.List("")
	if len(all) != 1 || m.ID != "oc-a0369f000001" || m.State != enrolapi.Approved || len(m.MACs) != 2 || !m.FirstSeen.Equal(t0) {
		t.Fatalf("after the firmware showed both NICs: %d machines, %+v; want the approved one holding both MACs", len(all), m)
	}
	if !strings.Contains(logs.String(), "merged=oc-a0369f000002") {
		t.Errorf("the merge is not logged:\n%s", logs)
	}
}

func TestPendingRecheckedApprovedKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "machines.json")
	s, _ := openStore(t, path, nil, nil)
	seen(t, s, ipxe("52:54:00:00:00:01", "", ""), t0)
	seen(t, s, ipxe("52:54:00:00:00:02", "", ""), t0)
	if _, err := s.Approve(context.Background(), "oc-525400000002", "server", ""); err != nil {
		t.Fatal(err)
	}
	// A rule is added and bootstrapd restarted.
	s, _ = openStore(t, path, []Rule{{Name: "lab", MACPrefixes: []string{"52:54:00"}, Role: "vdi"}}, nil)
	if m := seen(t, s, ipxe("52:54:00:00:00:01", "", ""), t0.Add(time.Hour)); m.State != enrolapi.Approved || m.DecidedBy != "rule:lab" {
		t.Errorf("pending machine after a rule was added: %s by %q, want approved by rule:lab", m.State, m.DecidedBy)
	}
	if m := seen(t, s, ipxe("52:54:00:00:00:02", "", ""), t0.Add(time.Hour)); m.Role != "server" || m.DecidedBy != "technician" {
		t.Errorf("approved machine: role %q by %q, want it kept as the technician decided", m.Role, m.DecidedBy)
	}
	if _, err := s.Reject(context.Background(), "oc-525400000001", ""); err != nil {
		t.Fatal(err)
	}
	if m := seen(t, s, ipxe("52:54:00:00:00:01", "", ""), t0.Add(2*time.Hour)); m.State != enrolapi.Rejected {
		t.Errorf("rejected machine is %s after a sighting, want it to stay rejected", m.State)
	}
}

func TestSerialConflict(t *testing.T) {
	s, logs := openStore(t, filepath.Join(t.TempDir(), "machines.json"), []Rule{{Name: "all", Any: true, Role: "tci"}}, nil)
	seen(t, s, Sighting{MAC: "00:1b:21:00:00:01", Serial: "GOOD", Source: SourceIPXE}, t0)
	if _, err := s.Approve(context.Background(), "00:1b:21:00:00:01", "vdi", ""); err != nil { // by MAC
		t.Fatal(err)
	}
	m := seen(t, s, ipxe("00:1b:21:00:00:01", "EVIL", ""), t0.Add(time.Minute))
	if !m.Conflict || m.Serial != "GOOD" || !strings.Contains(m.Reason, `serial "GOOD", now with "EVIL"`) || m.State != enrolapi.Approved {
		t.Fatalf("after a sighting with another serial: %+v; want the conflict flagged, first serial kept, decision kept", m)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "mac=00:1b:21:00:00:01") {
		t.Errorf("no warning naming the MAC:\n%s", logs)
	}
	// A pending box with a conflict is not approved by a rule.
	if err := s.Forget(context.Background(), m.ID); err != nil {
		t.Fatal(err)
	}
	s.rules = nil
	seen(t, s, ipxe("00:1b:21:00:00:01", "GOOD", ""), t0)
	seen(t, s, ipxe("00:1b:21:00:00:01", "EVIL", ""), t0)
	s.rules = []Rule{{Name: "all", Any: true, Role: "tci"}}
	if m := seen(t, s, ipxe("00:1b:21:00:00:01", "", ""), t0); m.State != enrolapi.Pending {
		t.Errorf("conflicting pending box is %s by %q, want pending for a technician", m.State, m.DecidedBy)
	}
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "machines.json")
	ctx := context.Background()
	s, _ := openStore(t, path, nil, nil)
	seen(t, s, Sighting{MAC: "a0:36:9f:00:00:01", Addr: netip.MustParseAddr("10.0.0.9"), Source: SourceFirmware, Inventory: inventory("CZ1", "a0:36:9f:00:00:01", "a0:36:9f:00:00:02")}, t0)
	seen(t, s, ipxe("52:54:00:00:00:01", "", ""), t0.Add(time.Second))
	seen(t, s, ipxe("52:54:00:00:00:02", "", ""), t0.Add(2*time.Second))
	seen(t, s, ipxe("52:54:00:00:00:03", "", ""), t0.Add(3*time.Second))
	if _, err := s.Approve(ctx, "oc-a0369f000001", "vdi", "s01"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reject(ctx, "oc-525400000001", "not ours"); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget(ctx, "oc-525400000003"); err != nil {
		t.Fatal(err)
	}
	before, _ := s.List("")

	s2, _ := openStore(t, path, nil, nil)
	after, _ := s2.List("")
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("after reopening:\n%+v\nwant\n%+v", after, before)
	}
	if len(after) != 3 || after[0].Inventory == nil || after[1].Reason != "not ours" {
		t.Fatalf("unexpected machines: %+v", after)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	// A MAC learned before the restart still finds its machine.
	if m := seen(t, s2, ipxe("a0:36:9f:00:00:02", "", ""), t0.Add(time.Hour)); m.ID != "oc-a0369f000001" {
		t.Errorf("second NIC after reopening found %s", m.ID)
	}
}

func TestLastSeenWrittenLazily(t *testing.T) {
	path := filepath.Join(t.TempDir(), "machines.json")
	s, _ := openStore(t, path, nil, nil)
	sg := ipxe("52:54:00:00:00:01", "S", "10.0.0.1")
	seen(t, s, sg, t0)
	onDisk := func() time.Time {
		t.Helper()
		s2, _ := openStore(t, path, nil, nil)
		m, err := s2.Get("oc-525400000001")
		if err != nil {
			t.Fatal(err)
		}
		return m.LastSeen
	}
	seen(t, s, sg, t0.Add(10*time.Second))
	if got := onDisk(); !got.Equal(t0) {
		t.Errorf("a poll that changed nothing but the time was written (last seen %v on disk)", got)
	}
	seen(t, s, sg, t0.Add(10*time.Second+lazyWrite))
	if got := onDisk(); !got.Equal(t0.Add(10*time.Second + lazyWrite)) {
		t.Errorf("last seen on disk is %v after %v, want it written", got, lazyWrite)
	}
	seen(t, s, sg, t0.Add(time.Hour))
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("after Flush last seen on disk is %v", got)
	}
	sg.Addr = netip.MustParseAddr("10.0.0.2")
	seen(t, s, sg, t0.Add(time.Hour+time.Second))
	if got := onDisk(); !got.Equal(t0.Add(time.Hour + time.Second)) {
		t.Errorf("a new address was not written at once")
	}
}

func TestCorruptFile(t *testing.T) {
	good := `{"version":1,"machines":[{"id":"oc-525400000001","state":"pending","macs":["52:54:00:00:00:01"],"first_seen":"2026-03-02T08:00:00Z","last_seen":"2026-03-02T08:00:00Z"}]}`
	tests := []struct{ name, content, want string }{
		{"good", good, ""},
		{"garbage", "{\"version\":1,\"machines\":[{", "not valid JSON"},
		{"empty", "", "not valid JSON"},
		{"unknown version", `{"version":7,"machines":[]}`, "version 7"},
		{"unknown field", `{"version":1,"machinez":[]}`, "unknown field"},
		{"duplicate MAC", strings.Replace(good, `}]}`, `},{"id":"oc-525400000002","state":"pending","macs":["52:54:00:00:00:02","52:54:00:00:00:01"]}]}`, 1), "belongs to both"},
		{"id not from MAC", strings.Replace(good, `"oc-525400000001"`, `"oc-x"`, 1), "not made from"},
		{"bad state", strings.Replace(good, `"pending"`, `"maybe"`, 1), `state "maybe"`},
		{"approved without role", strings.Replace(good, `"pending"`, `"approved"`, 1), `role ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "machines.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path, nil, nil, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open = %v, want an error naming %s and saying %q", err, path, tt.want)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Errorf("the corrupt file was changed")
			}
		})
	}
}

func TestOpenRefusesBadRules(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "m.json"), []Rule{{Name: "oops", Role: "vdi"}}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "approve every box") {
		t.Fatalf("Open with a rule without criteria = %v", err)
	}
}

func TestOpenUnwritableFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(dir, "file", "machines.json"), nil, nil, nil); err == nil {
		t.Fatal("Open below a regular file succeeded")
	}
}

func TestConcurrentSeen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "machines.json")
	s, _ := openStore(t, path, []Rule{{Name: "odd", MACPrefixes: []string{"52:54:01"}, Role: "tci"}}, nil)
	const boxes, workers = 60, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range boxes {
				mac := fmt.Sprintf("52:54:%02x:00:00:%02x", i%2, i)
				sg := ipxe(mac, fmt.Sprintf("S%d", i), fmt.Sprintf("10.0.%d.%d", w, i))
				if w%2 == 1 { // the firmware: both NICs
					sg = Sighting{MAC: mac, MACs: []string{mac, fmt.Sprintf("a0:36:9f:00:00:%02x", i)}, Serial: fmt.Sprintf("S%d", i), Source: SourceFirmware}
				}
				if _, err := s.Seen(context.Background(), sg, t0.Add(time.Duration(w)*time.Second)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range boxes {
			if _, err := s.List(""); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2, _ := openStore(t, path, nil, nil)
	all, _ := s2.List("")
	approved, _ := s2.List(enrolapi.Approved)
	if len(all) != boxes || len(approved) != boxes/2 {
		t.Fatalf("%d machines (%d approved) after concurrent sightings, want %d (%d)", len(all), len(approved), boxes, boxes/2)
	}
	for _, m := range all {
		if len(m.MACs) != 2 || m.Conflict {
			t.Errorf("%s: MACs %v conflict %v", m.ID, m.MACs, m.Conflict)
		}
	}
}

func TestSeenRefusesBadInput(t *testing.T) {
	s, _ := openStore(t, filepath.Join(t.TempDir(), "machines.json"), nil, nil)
	tests := []struct {
		name string
		sg   Sighting
		want string
	}{
		{"no MAC", Sighting{Source: SourceIPXE}, "boot MAC"},
		{"zero MAC", Sighting{MAC: "00:00:00:00:00:00", Source: SourceIPXE}, "not the address of a NIC"},
		{"bad source", Sighting{MAC: "52:54:00:00:00:01", Source: "dhcp"}, `source "dhcp"`},
		{"bad MAC in list", Sighting{MAC: "52:54:00:00:00:01", MACs: []string{"x"}, Source: SourceFirmware}, `MAC "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Seen(context.Background(), tt.sg, t0)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Seen = %v, want ErrInvalid saying %q", err, tt.want)
			}
		})
	}
	if all, _ := s.List(""); len(all) != 0 {
		t.Errorf("bad sightings made %d machines", len(all))
	}
	// Text from a box is cleaned before it is kept.
	m := seen(t, s, Sighting{MAC: "52:54:00:00:00:01", Serial: "A\x1b[31mB" + strings.Repeat("x", 300), Source: SourceIPXE}, t0)
	if strings.ContainsRune(m.Serial, 0x1b) || len(m.Serial) > maxText {
		t.Errorf("serial kept as %q", m.Serial)
	}
}

func TestInboxFull(t *testing.T) {
	s, _ := openStore(t, filepath.Join(t.TempDir(), "machines.json"), nil, nil)
	s.maxPending = 2
	seen(t, s, ipxe("52:54:00:00:00:01", "", ""), t0)
	seen(t, s, ipxe("52:54:00:00:00:02", "", ""), t0)
	if _, err := s.Seen(context.Background(), ipxe("52:54:00:00:00:03", "", ""), t0); err == nil || !strings.Contains(err.Error(), "already pending") {
		t.Fatalf("third pending machine: %v, want the inbox full", err)
	}
	seen(t, s, ipxe("52:54:00:00:00:01", "", ""), t0) // known machines are still seen
}

func TestTechnicianActions(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t, filepath.Join(t.TempDir(), "machines.json"), nil, nil)
	seen(t, s, ipxe("52:54:00:00:00:01", "", ""), t0)
	tests := []struct {
		name    string
		do      func() error
		kind    error
		message string
	}{
		{"approve unknown", func() error { _, err := s.Approve(ctx, "oc-525400000009", "vdi", ""); return err },
			ErrNotFound, "no machine oc-525400000009: see `bootstrapd machines list`"},
		{"get unknown", func() error { _, err := s.Get("nope"); return err }, ErrNotFound, "no machine nope"},
		{"forget unknown", func() error { return s.Forget(ctx, "oc-525400000009") }, ErrNotFound, "no machine"},
		{"approve bad role", func() error { _, err := s.Approve(ctx, "oc-525400000001", "desk", ""); return err },
			ErrInvalid, `role "desk" for oc-525400000001: want one of server, vdi, idv, tci`},
		{"approve bad school", func() error { _, err := s.Approve(ctx, "oc-525400000001", "vdi", "a b"); return err },
			ErrInvalid, "kernel command line"},
		{"assign pending", func() error { _, err := s.Assign(ctx, "oc-525400000001", "vdi", ""); return err },
			ErrInvalid, "oc-525400000001 is pending, not approved: approve it with `bootstrapd machines approve oc-525400000001 -role ROLE`"},
		{"list bad state", func() error { _, err := s.List("gone"); return err }, ErrInvalid, `state "gone"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error %v, want %v saying %q", err, tt.kind, tt.message)
			}
		})
	}
	m, err := s.Approve(ctx, "OC-525400000001", "vdi", "s01")
	if err != nil || m.State != enrolapi.Approved || m.DecidedBy != "technician" {
		t.Fatalf("Approve: %+v, %v", m, err)
	}
	m, err = s.Assign(ctx, "525400000001", "tci", "")
	if err != nil || m.Role != "tci" || m.School != "s01" {
		t.Fatalf("Assign keeps the school when none is given: %+v, %v", m, err)
	}
	m, err = s.Reject(ctx, "oc-525400000001", "")
	if err != nil || m.State != enrolapi.Rejected || m.Role != "" || m.Reason == "" {
		t.Fatalf("Reject: %+v, %v", m, err)
	}
}

func TestRespond(t *testing.T) {
	approved := Machine{ID: "oc-525400000001", State: enrolapi.Approved, Role: "vdi", School: "s01"}
	tests := []struct {
		name  string
		m     Machine
		role  string
		want  enrolapi.Response
		words string
	}{
		{"pending", Machine{ID: "oc-525400000001", State: enrolapi.Pending}, "",
			enrolapi.Response{ID: "oc-525400000001", State: enrolapi.Pending, RetryAfter: enrolapi.Duration(10 * time.Second)}, "Call your IT technician"},
		{"approved, booted in its role", approved, "vdi",
			enrolapi.Response{ID: "oc-525400000001", State: enrolapi.Approved, Role: "vdi", School: "s01"}, ""},
		{"approved, booted without role", approved, "",
			enrolapi.Response{ID: "oc-525400000001", State: enrolapi.Approved, Role: "vdi", School: "s01", Reboot: true}, ""},
		{"approved, booted in another role", approved, "tci",
			enrolapi.Response{ID: "oc-525400000001", State: enrolapi.Approved, Role: "vdi", School: "s01", Reboot: true}, ""},
		{"rejected", Machine{ID: "oc-525400000001", State: enrolapi.Rejected, Reason: "not ours"}, "vdi",
			enrolapi.Response{ID: "oc-525400000001", State: enrolapi.Rejected}, "rejected: not ours"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Respond(tt.m, tt.role)
			if !strings.Contains(got.Message, tt.words) || (tt.words == "") != (got.Message == "") {
				t.Errorf("message %q, want one saying %q", got.Message, tt.words)
			}
			got.Message = ""
			if got != tt.want {
				t.Errorf("Respond = %+v, want %+v", got, tt.want)
			}
		})
	}
}
