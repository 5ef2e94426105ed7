package hw

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files testdata/*/want.json and want.txt")

// recordedTrees returns the names of the recorded machines in testdata
// (see testdata/README.md): every directory holding a proc directory.
func recordedTrees(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", "*", "proc"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no recorded trees in testdata (%v)", err)
	}
	var names []string
	for _, d := range dirs {
		names = append(names, filepath.Base(filepath.Dir(d)))
	}
	return names
}

// TestGolden compares the JSON and the table of every recorded tree with
// its golden files. Refresh them with go test ./hw -update, and read the
// diff before committing: TestTrees below pins the facts that matter.
func TestGolden(t *testing.T) {
	for _, name := range recordedTrees(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			inv, err := Collect(dir)
			if err != nil {
				t.Fatalf("Collect(%s): %v", dir, err)
			}
			gotJSON, err := json.MarshalIndent(inv, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			var table bytes.Buffer
			if err := inv.Table(&table); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(dir, "want.json"), append(gotJSON, '\n'))
			golden(t, filepath.Join(dir, "want.txt"), table.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (make it with go test ./hw -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs; got:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestTrees pins, independently of the goldens, what each recorded
// machine is known to have.
func TestTrees(t *testing.T) {
	tests := []struct {
		tree    string
		class   string
		vendor  string
		serial  string
		model   string
		sockets int
		cores   int
		threads int
		virt    string
		memMiB  uint64 // MemTotal in MiB, rounded down
		disks   []Disk
		nics    []NIC
		tpm     TPM
		summary string
	}{
		{
			tree:    "qemu-guest",
			class:   ClassVM,
			vendor:  "QEMU",
			model:   "QEMU Virtual CPU version 2.5+",
			sockets: 1, cores: 2, threads: 2,
			virt:   "svm",
			memMiB: 960,
			disks:  []Disk{{Name: "vda", SizeBytes: 64 << 20, Rotational: true, Transport: "virtio"}},
			nics: []NIC{{Name: "eth0", MAC: "52:54:00:12:34:56", Driver: "e1000", PCI: "0000:00:03.0",
				Carrier: CarrierUp, SpeedMbps: 1000}},
			tpm:     TPM{Present: true, Version: "2.0", Description: "TPM 2.0 Device"}, // QEMU's ACPI _STR
			summary: "QEMU Standard PC (i440FX + PIIX, 1996), 2 cores (svm), 960 MiB, 1 disk 64 MiB, 1 NIC, TPM 2.0",
		},
		{
			tree:    "thin-client",
			class:   ClassThinClient,
			vendor:  "Zhongke Terminal",
			serial:  "ZT2309A0417",
			model:   "Intel(R) Celeron(R) J4125 CPU @ 2.00GHz",
			sockets: 1, cores: 4, threads: 4,
			memMiB: 3914,
			disks:  []Disk{},
			nics: []NIC{{Name: "eth0", MAC: "00:e0:4c:68:1a:2b", Driver: "r8169", PCI: "0000:01:00.0",
				Carrier: CarrierUp, SpeedMbps: 1000}},
			tpm:     TPM{},
			summary: "Zhongke Terminal ZT-J4125, 4 cores, 3.8 GiB, no disk, 1 NIC, no TPM",
		},
		{
			tree:    "server-2nic-tpm",
			class:   ClassServer,
			vendor:  "Dell Inc.",
			serial:  "7XKQ2Z2",
			model:   "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz",
			sockets: 2, cores: 4, threads: 8,
			virt:   "vmx",
			memMiB: 7939,
			disks: []Disk{
				{Name: "nvme0n1", SizeBytes: 64 << 20, Model: "QEMU NVMe Ctrl", Serial: "S4YNNE0N800123", Transport: "nvme"},
				{Name: "sda", SizeBytes: 64 << 20, Rotational: true, Model: "ST4000NM0035-1V4", Transport: "ata"},
			},
			nics: []NIC{
				{Name: "eth0", MAC: "b4:96:91:5a:10:20", Driver: "ixgbe", PCI: "0000:01:00.0", Carrier: CarrierUp, SpeedMbps: 10000},
				{Name: "eth1", MAC: "b4:96:91:5a:10:21", Driver: "igb", PCI: "0000:02:00.0", Carrier: CarrierDown, SpeedMbps: -1},
			},
			tpm:     TPM{Present: true, Version: "2.0", Description: "TPM 2.0 Device"},
			summary: "Dell Inc. PowerEdge R740, 4 cores (vmx), 7.8 GiB, 2 disks 128 MiB, 2 NICs, TPM 2.0",
		},
		{
			tree:    "pc-tpm12",
			class:   ClassPC,
			vendor:  "LENOVO",
			serial:  "PC0A1B2C",
			model:   "Intel(R) Core(TM) i5-4590 CPU @ 3.30GHz",
			sockets: 1, cores: 2, threads: 2,
			memMiB: 1966,
			disks: []Disk{
				{Name: "sda", SizeBytes: 64 << 20, Rotational: true, Model: "WDC WD5000AAKX-0", Transport: "ata"},
				{Name: "sdb", SizeBytes: 64 << 20, Rotational: true, Removable: true, Model: "QEMU HARDDISK", Transport: "usb"},
			},
			// Recorded with the interface down: the kernel refused to
			// read carrier and speed.
			nics: []NIC{{Name: "eth0", MAC: "00:e0:4c:3a:55:01", Driver: "8139cp", PCI: "0000:00:03.0",
				Carrier: CarrierUnknown, SpeedMbps: -1}},
			tpm:     TPM{Present: true, Version: "1.2", Manufacturer: "IBM", ManufacturerName: "IBM"},
			summary: "LENOVO 10AGS00G00, 2 cores, 1.9 GiB, 2 disks 128 MiB, 1 NIC, TPM 1.2 IBM",
		},
	}
	for _, tt := range tests {
		t.Run(tt.tree, func(t *testing.T) {
			inv, err := Collect(filepath.Join("testdata", tt.tree))
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			if inv.Schema != 1 || inv.Problems != nil {
				t.Errorf("schema %d, problems %q; want 1, none", inv.Schema, inv.Problems)
			}
			if inv.Class != tt.class {
				t.Errorf("class %q, want %q", inv.Class, tt.class)
			}
			if inv.DMI.Vendor != tt.vendor || inv.DMI.Serial != tt.serial {
				t.Errorf("DMI vendor %q serial %q, want %q %q", inv.DMI.Vendor, inv.DMI.Serial, tt.vendor, tt.serial)
			}
			c := inv.CPU
			if c.Model != tt.model || c.Sockets != tt.sockets || c.Cores != tt.cores || c.Threads != tt.threads || c.Virtualization != tt.virt {
				t.Errorf("CPU %q %d sockets %d cores %d threads virt %q, want %q %d %d %d %q",
					c.Model, c.Sockets, c.Cores, c.Threads, c.Virtualization, tt.model, tt.sockets, tt.cores, tt.threads, tt.virt)
			}
			if got := inv.Memory.TotalBytes >> 20; got != tt.memMiB {
				t.Errorf("memory %d MiB, want %d", got, tt.memMiB)
			}
			if !jsonEqual(inv.Disks, tt.disks) {
				t.Errorf("disks\n got %+v\nwant %+v", inv.Disks, tt.disks)
			}
			if !jsonEqual(inv.NICs, tt.nics) {
				t.Errorf("NICs\n got %+v\nwant %+v", inv.NICs, tt.nics)
			}
			if inv.TPM != tt.tpm {
				t.Errorf("TPM %+v, want %+v", inv.TPM, tt.tpm)
			}
			if got := inv.Summary(); got != tt.summary {
				t.Errorf("Summary()\n got %q\nwant %q", got, tt.summary)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// TestJSONSchema pins the JSON field names of schema 1: renaming one breaks
// every reader of the inventory, so it must fail here first.
func TestJSONSchema(t *testing.T) {
	inv, err := Collect(filepath.Join("testdata", "server-2nic-tpm"))
	if err != nil {
		t.Fatal(err)
	}
	inv.Problems = []string{"x"}
	b, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"":        {"schema", "class", "dmi", "cpu", "memory", "disks", "nics", "tpm", "problems"},
		"dmi":     {"vendor", "product", "serial", "uuid", "board_vendor", "board_name", "bios_vendor", "bios_version", "chassis_type"},
		"cpu":     {"model", "vendor", "sockets", "cores", "threads", "virtualization", "flags"},
		"memory":  {"total_bytes"},
		"disks.0": {"name", "size_bytes", "rotational", "removable", "model", "serial", "transport"},
		"nics.0":  {"name", "mac", "driver", "pci", "carrier", "speed_mbps", "wireless"},
		"tpm":     {"present", "version", "manufacturer", "manufacturer_name", "description"},
	}
	for at, fields := range want {
		obj := got
		switch at {
		case "":
		case "disks.0", "nics.0":
			obj = got[at[:len(at)-2]].([]any)[0].(map[string]any)
		default:
			obj = got[at].(map[string]any)
		}
		if len(obj) != len(fields) {
			t.Errorf("%q has %d fields, want %d (%v): document new fields in docs/inventory.md and add them here", at, len(obj), len(fields), fields)
		}
		for _, f := range fields {
			if _, ok := obj[f]; !ok {
				t.Errorf("%q lacks field %q", at, f)
			}
		}
	}
}

// TestEmptyListsAreArrays checks that a box without disks or NICs gives
// [] in JSON, not null, so readers need no special case.
func TestEmptyListsAreArrays(t *testing.T) {
	inv, err := Collect(t.TempDir())
	if err == nil {
		t.Fatal("Collect of an empty directory gave no error; want one for the missing /proc files")
	}
	b, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"disks":[]`, `"nics":[]`, `"flags":[]`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
}
