package image

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

func TestStagingPublishes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out", "image")
	st, err := newStaging(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := st.add("vmlinuz", writeString("kernel"))
	if err != nil {
		t.Fatal(err)
	}
	// sha256sum of the 6 bytes "kernel".
	if want := (Artefact{Name: "vmlinuz", Size: 6, SHA256: "6923dd1bc0460082c5d55a831908c24a282860b7f1cd6c2b79cf1bc8857c639c"}); a != want {
		t.Errorf("artefact = %+v, want %+v", a, want)
	}
	// Before publish only hidden temporary files exist.
	for _, n := range listDir(t, dir) {
		if !strings.HasPrefix(n, ".vmlinuz.tmp-") {
			t.Errorf("visible file %s before publish", n)
		}
	}
	if err := st.publish([]byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(listDir(t, dir), " "), "manifest.json vmlinuz"; got != want {
		t.Errorf("after publish: %s, want %s", got, want)
	}
	info, err := os.Stat(filepath.Join(dir, "vmlinuz"))
	if err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("vmlinuz mode = %v, %v; want 0644", info.Mode(), err)
	}
}

// A build that fails after staging leaves the previous image as it was and
// no temporary files.
func TestStagingFailureKeepsPreviousImage(t *testing.T) {
	dir := t.TempDir()
	st, _ := newStaging(dir)
	if _, err := st.add("vmlinuz", writeString("old kernel")); err != nil {
		t.Fatal(err)
	}
	if err := st.publish([]byte("old manifest")); err != nil {
		t.Fatal(err)
	}

	st, _ = newStaging(dir)
	if _, err := st.add("vmlinuz", writeString("new kernel")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.add("initramfs.cpio.gz", func(w io.Writer) error {
		io.WriteString(w, "half an initramfs")
		return errors.New("disk full")
	}); err == nil || !strings.Contains(err.Error(), "write initramfs.cpio.gz: disk full") {
		t.Fatalf("add = %v, want the write error", err)
	}
	st.cleanup()

	if got, want := strings.Join(listDir(t, dir), " "), "manifest.json vmlinuz"; got != want {
		t.Errorf("after a failed build: %s, want %s", got, want)
	}
	if got := readFile(t, filepath.Join(dir, "vmlinuz")); got != "old kernel" {
		t.Errorf("vmlinuz = %q, want the previous build's", got)
	}
	if got := readFile(t, filepath.Join(dir, "manifest.json")); got != "old manifest" {
		t.Errorf("manifest = %q, want the previous build's", got)
	}
}
