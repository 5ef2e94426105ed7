package hw

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// copyTree copies a recorded tree into a fresh temporary directory, links
// kept as links, so a test can damage it.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatalf("copy testdata/%s: %v", name, err)
	}
	return dst
}

// write replaces the file rel (through the tree's links, as the kernel
// resolves them) with content.
func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p, err := filepath.EvalSymlinks(filepath.Join(root, filepath.Dir(rel)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, filepath.Base(rel)), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}

// TestMalformed damages one or more files of a good tree and checks that
// Collect names exactly the damaged files, and that everything else of the
// inventory is still there: the result must equal the good inventory with
// only the damaged fields changed.
func TestMalformed(t *testing.T) {
	tests := []struct {
		name   string
		tree   string
		damage func(t *testing.T, root string)
		// bad lists the damaged files (relative to the root) that the
		// error must name, in order.
		bad []string
		// why holds a piece of the reason that each message must carry.
		why []string
		// lost changes the good inventory into what Collect should return.
		lost func(inv *Inventory)
	}{
		{
			name: "garbage disk size and truncated meminfo",
			tree: "qemu-guest",
			damage: func(t *testing.T, root string) {
				write(t, root, "sys/block/vda/size", "lots\n")
				write(t, root, "proc/meminfo", "MemTot")
			},
			bad: []string{"proc/meminfo", "sys/block/vda/size"},
			why: []string{`no "MemTotal:" line`, `want a number of 512-byte sectors, got "lots"`},
			lost: func(inv *Inventory) {
				inv.Memory.TotalBytes = 0
				inv.Disks[0].SizeBytes = 0 // the disk stays listed
			},
		},
		{
			name:   "meminfo without unit",
			tree:   "qemu-guest",
			damage: func(t *testing.T, root string) { write(t, root, "proc/meminfo", "MemTotal:   983432\n") },
			bad:    []string{"proc/meminfo"},
			why:    []string{`want "MemTotal: <number> kB"`},
			lost:   func(inv *Inventory) { inv.Memory.TotalBytes = 0 },
		},
		{
			name:   "meminfo missing",
			tree:   "thin-client",
			damage: func(t *testing.T, root string) { remove(t, root, "proc/meminfo") },
			bad:    []string{"proc/meminfo"},
			why:    []string{"file does not exist"},
			lost:   func(inv *Inventory) { inv.Memory.TotalBytes = 0 },
		},
		{
			name:   "empty cpuinfo",
			tree:   "server-2nic-tpm",
			damage: func(t *testing.T, root string) { write(t, root, "proc/cpuinfo", "") },
			bad:    []string{"proc/cpuinfo"},
			why:    []string{`no "processor" lines`},
			lost: func(inv *Inventory) {
				inv.CPU = CPU{Flags: []string{}}
				// Still a server: its chassis says so.
			},
		},
		{
			name: "cpuinfo line without colon",
			tree: "qemu-guest",
			damage: func(t *testing.T, root string) {
				b, err := os.ReadFile(filepath.Join(root, "proc/cpuinfo"))
				if err != nil {
					t.Fatal(err)
				}
				write(t, root, "proc/cpuinfo", "model na\n"+string(b))
			},
			bad:  []string{"proc/cpuinfo"},
			why:  []string{`line 1: want "key : value", got "model na"`},
			lost: func(inv *Inventory) {},
		},
		{
			name: "cpuinfo cut short",
			tree: "qemu-guest",
			damage: func(t *testing.T, root string) {
				b, err := os.ReadFile(filepath.Join(root, "proc/cpuinfo"))
				if err != nil {
					t.Fatal(err)
				}
				write(t, root, "proc/cpuinfo", string(b)+"processor\t: 2\nvendor_")
			},
			bad:  []string{"proc/cpuinfo"},
			why:  []string{`got "vendor_"`},
			lost: func(inv *Inventory) { inv.CPU.Threads++ },
		},
		{
			name: "cpuinfo bad physical id",
			tree: "qemu-guest",
			damage: func(t *testing.T, root string) {
				b, err := os.ReadFile(filepath.Join(root, "proc/cpuinfo"))
				if err != nil {
					t.Fatal(err)
				}
				write(t, root, "proc/cpuinfo", strings.Replace(string(b), "physical id\t: 0", "physical id\t: zero", 1))
			},
			bad: []string{"proc/cpuinfo"},
			why: []string{`want a number after "physical id", got "zero"`},
			// The odd id still counts as one more socket.
			lost: func(inv *Inventory) { inv.CPU.Sockets, inv.CPU.Cores = 2, 2 },
		},
		{
			name: "carrier and speed garbage",
			tree: "server-2nic-tpm",
			damage: func(t *testing.T, root string) {
				write(t, root, "sys/class/net/eth0/carrier", "maybe\n")
				write(t, root, "sys/class/net/eth1/speed", "fast\n")
			},
			bad: []string{"sys/class/net/eth0/carrier", "sys/class/net/eth1/speed"},
			why: []string{`want 0 or 1, got "maybe"`, `want a speed in Mbit/s or -1, got "fast"`},
			lost: func(inv *Inventory) {
				inv.NICs[0].Carrier = CarrierUnknown
			},
		},
		{
			name: "rotational and removable garbage",
			tree: "pc-tpm12",
			damage: func(t *testing.T, root string) {
				write(t, root, "sys/block/sda/queue/rotational", "2\n")
				write(t, root, "sys/block/sdb/removable", "yes\n")
			},
			bad: []string{"sys/block/sda/queue/rotational", "sys/block/sdb/removable"},
			why: []string{`want 0 or 1, got "2"`, `want 0 or 1, got "yes"`},
			lost: func(inv *Inventory) {
				inv.Disks[0].Rotational = false
				inv.Disks[1].Removable = false
			},
		},
		{
			name:   "chassis type garbage",
			tree:   "server-2nic-tpm",
			damage: func(t *testing.T, root string) { write(t, root, "sys/class/dmi/id/chassis_type", "rack\n") },
			bad:    []string{"sys/class/dmi/id/chassis_type"},
			why:    []string{`want an SMBIOS chassis type code 0-255, got "rack"`},
			lost:   func(inv *Inventory) { inv.DMI.ChassisType = 0 }, // two sockets keep it a server
		},
		{
			name: "unreadable DMI file",
			tree: "thin-client",
			damage: func(t *testing.T, root string) {
				// A directory where a file should be: read fails as a
				// permission error would, also when the test runs as root.
				remove(t, root, "sys/class/dmi/id/product_uuid")
				if err := os.Mkdir(filepath.Join(root, "sys/class/dmi/id/product_uuid"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			bad:  []string{"sys/class/dmi/id/product_uuid"},
			why:  []string{"is a directory"},
			lost: func(inv *Inventory) { inv.DMI.UUID = "" },
		},
		{
			name:   "TPM version garbage",
			tree:   "qemu-guest",
			damage: func(t *testing.T, root string) { write(t, root, "sys/class/tpm/tpm0/tpm_version_major", "3\n") },
			bad:    []string{"sys/class/tpm/tpm0/tpm_version_major"},
			why:    []string{`want 1 or 2, got "3"`},
			lost:   func(inv *Inventory) { inv.TPM.Version = "" },
		},
		{
			name:   "TPM 1.2 caps garbage",
			tree:   "pc-tpm12",
			damage: func(t *testing.T, root string) { write(t, root, "sys/class/tpm/tpm0/caps", "Manufacturer: IBM\n") },
			bad:    []string{"sys/class/tpm/tpm0/caps"},
			why:    []string{`want a line "Manufacturer: 0x<8 hex digits>"`},
			lost:   func(inv *Inventory) { inv.TPM.Manufacturer, inv.TPM.ManufacturerName = "", "" },
		},
		{
			name: "absent optional parts are no problem",
			tree: "server-2nic-tpm",
			damage: func(t *testing.T, root string) {
				for _, rel := range []string{"sys/class/dmi", "sys/class/tpm", "sys/block", "sys/class/net"} {
					remove(t, root, rel)
				}
			},
			lost: func(inv *Inventory) {
				inv.DMI, inv.TPM, inv.Disks, inv.NICs = DMI{}, TPM{}, []Disk{}, []NIC{}
			},
		},
		{
			// The recorded tree has the description in firmware_node only.
			name: "TPM description of the device comes first",
			tree: "qemu-guest",
			damage: func(t *testing.T, root string) {
				write(t, root, "sys/class/tpm/tpm0/device/description", "Vendor TPM\n")
			},
			lost: func(inv *Inventory) { inv.TPM.Description = "Vendor TPM" },
		},
		{
			name: "down interface: no carrier or speed file is no problem",
			tree: "qemu-guest",
			damage: func(t *testing.T, root string) {
				remove(t, root, "sys/devices/pci0000:00/0000:00:03.0/net/eth0/carrier")
				remove(t, root, "sys/devices/pci0000:00/0000:00:03.0/net/eth0/speed")
			},
			lost: func(inv *Inventory) { inv.NICs[0].Carrier, inv.NICs[0].SpeedMbps = CarrierUnknown, -1 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := copyTree(t, tt.tree)
			want, err := Collect(root)
			if err != nil {
				t.Fatalf("the good tree fails: %v", err)
			}
			tt.damage(t, root)
			tt.lost(&want)
			want.Class = classify(want)

			got, err := Collect(root)

			var msgs []string
			for _, rel := range tt.bad {
				msgs = append(msgs, filepath.Join(root, rel))
			}
			parts := unjoin(err)
			if len(parts) != len(tt.bad) {
				t.Fatalf("error %v: want %d problems naming %q", err, len(tt.bad), tt.bad)
			}
			for i, e := range parts {
				var pe *fs.PathError
				if !errors.As(e, &pe) || pe.Path != msgs[i] {
					t.Errorf("problem %d is %v; want an *fs.PathError for %s", i, e, msgs[i])
				}
				if !strings.Contains(e.Error(), tt.why[i]) {
					t.Errorf("problem %d is %q; want it to say %q", i, e, tt.why[i])
				}
				if got.Problems[i] != e.Error() {
					t.Errorf("Problems[%d] = %q, want the error's message %q", i, got.Problems[i], e)
				}
			}
			want.Problems = got.Problems
			if !reflect.DeepEqual(got, want) {
				t.Errorf("inventory lost more than the damaged fields\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
