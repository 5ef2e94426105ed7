package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildOutput writes an image-builder output folder: the files and a
// manifest.json in image-builder's format that lists them.
func buildOutput(t *testing.T, version string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	type art struct {
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	var arts []art
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(files[name])
		arts = append(arts, art{name, int64(len(files[name])), hex.EncodeToString(sum[:])})
	}
	m, err := json.MarshalIndent(map[string]any{
		"product": "onecloud", "profile": "onecloud", "version": version,
		"kernel":    map[string]string{"release": "6.1.0-47-amd64"},
		"artefacts": arts,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, manifestName), m, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func image(kernel, initramfs string) map[string][]byte {
	return map[string][]byte{Kernel: []byte(kernel), Initramfs: []byte(initramfs), "size-report.txt": []byte("sizes\n")}
}

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "images")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func readAll(t *testing.T, s *Store, v Version, name string) (string, FileInfo) {
	t.Helper()
	f, fi, err := s.Open(v, name)
	if err != nil {
		t.Fatalf("open %s/%s: %v", v, name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), fi
}

// entries lists a folder, hidden names included.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestPublish(t *testing.T) {
	s, dir := openStore(t)
	if _, ok := s.Current(); ok {
		t.Fatal("an empty store has a current version")
	}
	src := buildOutput(t, "0.1.0", image("KERNEL", "INITRAMFS"))
	var calls [][2]int64
	v, err := s.Publish(t.Context(), src, func(done, total int64) { calls = append(calls, [2]int64{done, total}) })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(v), "0.1.0-") || len(v) != len("0.1.0-")+12 {
		t.Errorf("version = %q, want 0.1.0-<12 hex digits>", v)
	}
	if cur, ok := s.Current(); !ok || cur != v {
		t.Errorf("Current = %q, %v; want %q", cur, ok, v)
	}
	if vs, _ := s.Versions(); !slices.Equal(vs, []Version{v}) {
		t.Errorf("Versions = %v", vs)
	}
	got, fi := readAll(t, s, v, Kernel)
	sum := sha256.Sum256([]byte("KERNEL"))
	if got != "KERNEL" || fi.Size != 6 || fi.SHA256 != hex.EncodeToString(sum[:]) || fi.ModTime.IsZero() {
		t.Errorf("kernel = %q, %+v", got, fi)
	}
	total := int64(len("KERNEL") + len("INITRAMFS") + len("sizes\n"))
	if len(calls) == 0 || calls[0] != [2]int64{0, total} || calls[len(calls)-1] != [2]int64{total, total} {
		t.Errorf("progress calls %v, want from 0 to %d of %d", calls, total, total)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] < calls[i-1][0] {
			t.Errorf("progress went backwards: %v", calls)
		}
	}
	if got := entries(t, dir); !slices.Equal(got, []string{string(v), currentName}) {
		t.Errorf("store holds %v, want only the version and current", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, string(v))); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("version folder mode %v (%v), want 0755 so the server can read it", fi.Mode(), err)
	}
	if _, _, err := s.Open(v, manifestName); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("manifest.json is served (%v); only artefacts should be", err)
	}

	// A second Store on the same folder (another process) sees the same.
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if cur, ok := s2.Current(); !ok || cur != v {
		t.Errorf("a second store sees current %q, %v", cur, ok)
	}
}

func TestRepublish(t *testing.T) {
	s, dir := openStore(t)
	srcA := buildOutput(t, "0.1.0", image("KERNEL-A", "INITRD-A"))
	srcB := buildOutput(t, "0.1.0", image("KERNEL-B", "INITRD-B")) // same version, another build
	a, err := s.Publish(t.Context(), srcA, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Publish(t.Context(), srcB, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two builds of 0.1.0 got the same version %q", a)
	}
	if cur, _ := s.Current(); cur != b {
		t.Errorf("current = %q, want the newer %q", cur, b)
	}
	if got, _ := readAll(t, s, a, Kernel); got != "KERNEL-A" {
		t.Errorf("old version's kernel = %q, want it kept", got)
	}
	// The same build again: nothing copied, it only becomes current.
	again, err := s.Publish(t.Context(), srcA, nil)
	if err != nil || again != a {
		t.Fatalf("republish = %q, %v; want %q", again, err, a)
	}
	if cur, _ := s.Current(); cur != a {
		t.Errorf("current = %q after republishing %q", cur, a)
	}
	if vs, _ := s.Versions(); !slices.Equal(vs, []Version{a, b}) {
		t.Errorf("Versions = %v, want [%s %s]", vs, a, b)
	}
	if n := len(entries(t, dir)); n != 3 {
		t.Errorf("store holds %v", entries(t, dir))
	}
}

func TestPublishRefused(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, src string)
		wantErr string
	}{
		{"corrupt kernel", func(t *testing.T, src string) {
			os.WriteFile(filepath.Join(src, Kernel), []byte("KERNEX"), 0o644)
		}, "vmlinuz does not match its manifest"},
		{"truncated initramfs", func(t *testing.T, src string) {
			os.WriteFile(filepath.Join(src, Initramfs), []byte("INIT"), 0o644)
		}, "initramfs.cpio.gz does not match its manifest"},
		{"missing file", func(t *testing.T, src string) {
			os.Remove(filepath.Join(src, "size-report.txt"))
		}, "lists size-report.txt but it cannot be read"},
		{"no manifest", func(t *testing.T, src string) {
			os.Remove(filepath.Join(src, manifestName))
		}, "no manifest.json"},
		{"bad json", func(t *testing.T, src string) {
			os.WriteFile(filepath.Join(src, manifestName), []byte("{"), 0o644)
		}, "not a valid image manifest"},
		{"no kernel listed", func(t *testing.T, src string) {
			editManifest(t, src, func(m map[string]any) {
				m["artefacts"] = m["artefacts"].([]any)[1:] // sorted: initramfs, size-report, vmlinuz -> drop initramfs
			})
		}, "lists no initramfs.cpio.gz"},
		{"escaping name", func(t *testing.T, src string) {
			editManifest(t, src, func(m map[string]any) {
				m["artefacts"].([]any)[0].(map[string]any)["name"] = "../../etc/passwd"
			})
		}, "not a plain file name"},
		{"unsafe version", func(t *testing.T, src string) {
			editManifest(t, src, func(m map[string]any) { m["version"] = "1.0 $(reboot)" })
		}, "not usable in a URL"},
		{"symlink out of the folder", func(t *testing.T, src string) {
			os.Remove(filepath.Join(src, Kernel))
			os.Symlink("/etc/passwd", filepath.Join(src, Kernel))
		}, "cannot be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := openStore(t)
			good, err := s.Publish(t.Context(), buildOutput(t, "0.0.9", image("OLD", "OLD")), nil)
			if err != nil {
				t.Fatal(err)
			}
			before := entries(t, dir)
			src := buildOutput(t, "0.1.0", image("KERNEL", "INITRAMFS"))
			tt.damage(t, src)
			v, err := s.Publish(t.Context(), src, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Publish = %q, %v; want an error saying %q", v, err, tt.wantErr)
			}
			if after := entries(t, dir); !slices.Equal(after, before) {
				t.Errorf("a refused publication left %v (before: %v)", after, before)
			}
			if cur, _ := s.Current(); cur != good {
				t.Errorf("current = %q, want still %q", cur, good)
			}
		})
	}
}

func editManifest(t *testing.T, src string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(src, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ = json.Marshal(m)
	if err := os.WriteFile(filepath.Join(src, manifestName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPublishCancelled(t *testing.T) {
	s, dir := openStore(t)
	src := buildOutput(t, "0.1.0", image(strings.Repeat("k", 3<<20), "INITRAMFS"))
	ctx, cancel := context.WithCancel(t.Context())
	_, err := s.Publish(ctx, src, func(done, total int64) {
		if done > 0 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("a cancelled publication left %v", got)
	}
}

func TestOpenConfined(t *testing.T) {
	s, dir := openStore(t)
	v, err := s.Publish(t.Context(), buildOutput(t, "0.1.0", image("KERNEL", "INITRAMFS")), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		v    Version
		name string
	}{
		{"..", "etc/passwd"},
		{v, "../current"},
		{v, "../../../../etc/passwd"},
		{"", Kernel},
		{v, ""},
		{v, "."},
		{"current", Kernel},
		{v + "/..", Kernel},
		{"0.1.0-000000000000", Kernel},
	}
	for _, tt := range tests {
		if f, _, err := s.Open(tt.v, tt.name); !errors.Is(err, fs.ErrNotExist) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%q, %q) = %v, want an error wrapping fs.ErrNotExist", tt.v, tt.name, err)
		}
	}
	// A symlink planted in a version folder cannot lead out of the store.
	p := filepath.Join(dir, string(v), Initramfs)
	os.Remove(p)
	if err := os.Symlink("/etc/passwd", p); err != nil {
		t.Fatal(err)
	}
	if f, _, err := s.Open(v, Initramfs); err == nil {
		f.Close()
		t.Error("a symlink out of the store was followed")
	}
}

func TestPruneAndSetCurrent(t *testing.T) {
	s, _ := openStore(t)
	var vs []Version
	for i, k := range []string{"K1", "K2", "K3", "K4"} {
		v, err := s.Publish(t.Context(), buildOutput(t, "0.1."+string(rune('0'+i)), image(k, "I")), nil)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := s.SetCurrent(vs[0]); err != nil { // roll back to the oldest
		t.Fatal(err)
	}
	if err := s.SetCurrent("nope-000000000000"); err == nil {
		t.Error("SetCurrent accepted a version that does not exist")
	}
	removed, err := s.Prune(2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []Version{vs[1]}) {
		t.Errorf("Prune(2) removed %v, want only %v (the current oldest is kept)", removed, vs[1])
	}
	if got, _ := s.Versions(); !slices.Equal(got, []Version{vs[0], vs[2], vs[3]}) {
		t.Errorf("left %v", got)
	}
	s.SetCurrent(vs[3])
	removed, _ = s.Prune(0) // taken as 1
	if !slices.Equal(removed, []Version{vs[0], vs[2]}) {
		t.Errorf("Prune(0) removed %v", removed)
	}
	if _, _, err := s.Open(vs[0], Kernel); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a pruned version still opens: %v", err)
	}
	if got, _ := readAll(t, s, vs[3], Kernel); got != "K4" {
		t.Errorf("current kernel = %q", got)
	}
}

// TestReadersDuringPublish has readers fetch the current kernel while new
// versions are published and old ones pruned: each reader must get exactly
// the bytes of the version it opened, whatever happens meanwhile.
func TestReadersDuringPublish(t *testing.T) {
	s, _ := openStore(t)
	content := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 256<<10) }
	var srcs []string
	for i := range 6 {
		srcs = append(srcs, buildOutput(t, "0.2.0", map[string][]byte{Kernel: content(i), Initramfs: []byte("I")}))
	}
	if _, err := s.Publish(t.Context(), srcs[0], nil); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	reads, gone := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, ok := s.Current()
				if !ok {
					t.Error("no current version during publication")
					return
				}
				f, fi, err := s.Open(v, Kernel)
				if errors.Is(err, fs.ErrNotExist) {
					mu.Lock()
					gone++ // pruned between Current and Open: the box retries
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				h := sha256.New()
				first := make([]byte, 1)
				f.Read(first)
				h.Write(first)
				io.Copy(h, f) // possibly after its folder was removed
				f.Close()
				if got := hex.EncodeToString(h.Sum(nil)); got != fi.SHA256 {
					t.Errorf("read %s/%s: sha256 %s, want %s", v, Kernel, got, fi.SHA256)
					return
				}
				mu.Lock()
				reads++
				mu.Unlock()
			}
		}()
	}
	for _, src := range srcs[1:] {
		if _, err := s.Publish(t.Context(), src, nil); err != nil {
			t.Error(err)
		}
		if _, err := s.Prune(1); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if reads == 0 {
		t.Error("no reader finished a read")
	}
	t.Logf("%d consistent reads, %d opens of a pruned version", reads, gone)
}

func TestOpenRemovesStaleStaging(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, publishTmp+"x")
	fresh := filepath.Join(dir, publishTmp+"y")
	for _, p := range []string{stale, fresh} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTmp)
	os.Chtimes(stale, old, old)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := entries(t, dir); !slices.Equal(got, []string{publishTmp + "y"}) {
		t.Errorf("after Open the folder holds %v, want only the fresh staging folder (another publisher's)", got)
	}
}
