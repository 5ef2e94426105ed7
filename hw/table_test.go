package hw

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestBytesText(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0 B"}, {512, "512 B"}, {64 << 20, "64 MiB"}, {1 << 30, "1 GiB"},
		{3 << 29, "1.5 GiB"}, {983432 << 10, "960 MiB"}, {4000787030016, "3.6 TiB"},
	}
	for _, tt := range tests {
		if got := bytesText(tt.n); got != tt.want {
			t.Errorf("bytesText(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestSpeedText(t *testing.T) {
	tests := []struct {
		mbps int
		want string
	}{{-1, "-"}, {0, "-"}, {10, "10 Mb/s"}, {1000, "1000 Mb/s"}, {2500, "2500 Mb/s"}, {10000, "10 Gb/s"}, {25000, "25 Gb/s"}}
	for _, tt := range tests {
		if got := speedText(tt.mbps); got != tt.want {
			t.Errorf("speedText(%d) = %q, want %q", tt.mbps, got, tt.want)
		}
	}
}

func TestMachine(t *testing.T) {
	tests := []struct{ vendor, product, want string }{
		{"Dell Inc.", "PowerEdge R740", "Dell Inc. PowerEdge R740"},
		{"HP", "HP ProDesk 400 G4", "HP ProDesk 400 G4"},
		{"", "Box", "Box"},
		{"", "", "unknown machine"},
	}
	for _, tt := range tests {
		inv := Inventory{DMI: DMI{Vendor: tt.vendor, Product: tt.product}}
		if got := inv.Machine(); got != tt.want {
			t.Errorf("Machine(%q, %q) = %q, want %q", tt.vendor, tt.product, got, tt.want)
		}
	}
}

// TestTableWidth checks the promise of Table: 80 columns at most, also with
// long strings, except for problem lines, which are never cut.
func TestTableWidth(t *testing.T) {
	inv, err := Collect(filepath.Join("testdata", "server-2nic-tpm"))
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 100)
	inv.DMI.Vendor, inv.DMI.Serial, inv.DMI.BoardName, inv.DMI.BIOSVersion, inv.CPU.Model = long, long, long, long, long
	inv.Disks[0].Model, inv.Disks[0].Serial, inv.NICs[0].Driver = long, long, long
	inv.Problems = []string{"parse /sys/" + long + ": bad"}
	var b bytes.Buffer
	if err := inv.Table(&b); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "- ") {
			if !strings.Contains(line, long) {
				t.Errorf("problem line was cut: %q", line)
			}
			continue
		}
		if len(line) > 80 {
			t.Errorf("line of %d columns: %q", len(line), line)
		}
	}
}

func TestSummaryProblems(t *testing.T) {
	inv := Inventory{Disks: []Disk{}, NICs: []NIC{}, Problems: []string{"a", "b"}}
	want := "unknown machine, 0 cores, memory unknown, no disk, no NIC, no TPM, 2 problems"
	if got := inv.Summary(); got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}
