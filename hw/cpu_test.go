package hw

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestCPUWithoutTopology covers kernels and hypervisors that print no
// "physical id" and "core id": every processor then counts as a core.
func TestCPUWithoutTopology(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	cpuinfo := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Some CPU\nflags\t\t: fpu vmx lm aes\n\n" +
		"processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Some CPU\nflags\t\t: fpu vmx lm aes\n\n"
	if err := os.WriteFile(filepath.Join(root, "proc/cpuinfo"), []byte(cpuinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &source{root: root}
	got := readCPU(s)
	want := CPU{Model: "Some CPU", Vendor: "GenuineIntel", Sockets: 1, Cores: 2, Threads: 2,
		Virtualization: "vmx", Flags: []string{"aes", "lm", "vmx"}}
	if !reflect.DeepEqual(got, want) || s.problems != nil {
		t.Errorf("readCPU = %+v, problems %v; want %+v, none", got, s.problems, want)
	}
}
