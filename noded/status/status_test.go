package status

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/noded/localapi"
)

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStatusFromFirmwareFiles(t *testing.T) {
	root := t.TempDir()
	write(t, root, "proc/uptime", "42.17 80.00\n")
	write(t, root, "etc/onecloud/release.json", `{"product":"onecloud","version":"0.1.0","commit":"0123456789abcdef","kernel":"6.1.0-47-amd64"}`)
	write(t, root, localapi.InventoryPath, `{"schema":1,"class":"vm","dmi":{"serial":"QEMU-1"},"nics":[],"disks":[]}`)
	write(t, root, localapi.ServicesPath, `[{"name":"noded","state":"running","pid":77,"restarts":1,"since":"2026-11-28T08:00:00Z"}]`)

	g := &Gatherer{
		Root: root,
		Interfaces: func() ([]localapi.Interface, error) {
			return []localapi.Interface{{Name: "eth0", Up: true, Carrier: true, Addrs: []string{"10.77.1.50/24"}}}, nil
		},
		Hostname: func() (string, error) { return "oc-525400000001", nil },
	}
	s := g.Status(context.Background())
	if len(s.Problems) != 0 {
		t.Fatalf("problems: %q", s.Problems)
	}
	if s.Release.Version != "0.1.0" || s.Hostname != "oc-525400000001" || s.UptimeSec != 42.17 {
		t.Errorf("release/hostname/uptime = %+v %q %v", s.Release, s.Hostname, s.UptimeSec)
	}
	if s.Inventory == nil || s.Inventory.DMI.Serial != "QEMU-1" {
		t.Errorf("inventory not taken from the firmware's file: %+v", s.Inventory)
	}
	if len(s.Services) != 1 || s.Services[0].PID != 77 || s.Services[0].Restarts != 1 {
		t.Errorf("services = %+v", s.Services)
	}
	if len(s.Interfaces) != 1 || s.Interfaces[0].Addrs[0] != "10.77.1.50/24" {
		t.Errorf("interfaces = %+v", s.Interfaces)
	}
}

func TestStatusNamesWhatIsMissing(t *testing.T) {
	root := t.TempDir()
	write(t, root, "proc/uptime", "garbage")
	write(t, root, localapi.ServicesPath, `[{"name":`)
	g := &Gatherer{
		Root:       root,
		Interfaces: func() ([]localapi.Interface, error) { return nil, errors.New("netlink: permission denied") },
		Hostname:   func() (string, error) { return "box", nil },
	}
	s := g.Status(context.Background())
	want := []string{"uptime: /proc/uptime", "interfaces: netlink: permission denied", "services: /run/onecloud/services.json is not valid JSON"}
	got := strings.Join(s.Problems, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("problems %q lack %q", s.Problems, w)
		}
	}
	// Without the firmware's inventory file noded takes its own from the
	// (here empty) tree: still an inventory, never nil.
	if s.Inventory == nil || s.Inventory.Schema != 1 {
		t.Errorf("inventory = %+v, want noded's own", s.Inventory)
	}
}
