package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/onecloud-edu/onecloud/image-builder/kernel"
	"github.com/onecloud-edu/onecloud/internal/release"
	"github.com/u-root/mkuimage/cpio"
)

// These tests use the real kernel package through the same cache as the
// image-builder ($ONECLOUD_CACHE): the first run on a machine downloads it
// with apt-get (as root), later runs find it cached.

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// tWriter sends log lines to the test's log, shown when it fails or with -v.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func realKernel(t *testing.T) kernel.Kernel {
	t.Helper()
	log := testLog(t)
	c := kernel.Cache{
		Dir:        filepath.Join(DefaultCacheDir(), "kernel"),
		Downloader: kernel.Apt{Update: true, Log: log},
		Unpacker:   kernel.Dpkg{},
		Log:        log,
	}
	k, err := c.Fetch(context.Background(), kernel.Pinned())
	if err != nil {
		t.Fatalf("fetch the pinned kernel: %v", err)
	}
	return k
}

// TestModulesOfRealKernel resolves modules.txt against the pinned kernel and
// checks relations that the firmware relies on.
func TestModulesOfRealKernel(t *testing.T) {
	k := realKernel(t)
	set, err := resolveModules(k)
	if err != nil {
		t.Fatal(err)
	}
	dep := string(set.DepFile(""))
	for _, want := range []string{
		// virtio_net needs net_failover, which needs failover: listed
		// before it, as modprobe loads from the end.
		"\nkernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n",
		"\nkernel/drivers/md/dm-verity.ko: kernel/lib/reed_solomon/reed_solomon.ko kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko\n",
	} {
		if !strings.Contains(dep, want) {
			t.Errorf("modules.dep lacks %q", strings.TrimSpace(want))
		}
	}
	if !strings.Contains(string(set.AliasFile()), "\nalias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n") {
		t.Errorf("modules.alias lacks virtio_pci's PCI alias")
	}
	// ext4 and jbd2 soft-depend on crypto-crc32c; without a module for it
	// an ext4 file system with checksums cannot be mounted.
	if _, ok := set.Module("crc32c_generic"); !ok {
		t.Errorf("crc32c_generic (soft dependency of ext4) is not in the set")
	}
	if !slices.Contains(set.Builtin, "tpm_tis") {
		t.Errorf("built in = %q, want tpm_tis among them", set.Builtin)
	}
	if len(set.Unresolved) > 0 {
		t.Errorf("unresolved soft dependencies: %q", set.Unresolved)
	}
}

// TestReproducible builds the onecloud image twice and compares every
// artefact byte for byte: the check behind the claim that the same commit
// gives the same image. The two builds run the image-builder command from two
// copies of the source at different paths, with different TMPDIRs, output
// directories and umasks (022 and 077). Copies also keep the builds apart
// from edits made in the checkout while the test runs, and running the
// command (not Build in this process) keeps the race detector of
// `go test -race` away from the build. Go's build cache and the kernel cache
// keep each build to a warm build's time.
func TestReproducible(t *testing.T) {
	ctx := context.Background()
	root, err := ModuleRoot(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	src, err := ReadSource(ctx, root, os.Getenv("ONECLOUD_COMMIT"))
	if err != nil {
		t.Fatal(err)
	}
	builder := filepath.Join(t.TempDir(), "image-builder")
	if _, err := command(ctx, root, nil, "go", "build", "-o", builder, "./image-builder/cmd/image-builder"); err != nil {
		t.Fatal(err)
	}
	checkouts := [2]string{filepath.Join(t.TempDir(), "onecloud"), filepath.Join(t.TempDir(), "src", "other-clone")}
	copyTree(t, root, checkouts[0])
	copyTree(t, checkouts[0], checkouts[1])

	var outs [2]string
	for i, umask := range []string{"022", "077"} {
		outs[i] = filepath.Join(t.TempDir(), "out")
		start := time.Now()
		cmd := exec.CommandContext(ctx, "sh", "-c", "umask "+umask+` && exec "$0" "$@"`,
			builder, "-o", outs[i], "-commit", src.Commit, "-cache", DefaultCacheDir())
		cmd.Dir = checkouts[i]
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		t.Logf("build %d in %s (umask %s) took %s:\n%s", i+1, checkouts[i], umask, time.Since(start).Round(100*time.Millisecond), out)
		if err != nil {
			t.Fatalf("build %d: %v", i+1, err)
		}
	}

	names := listDir(t, outs[0])
	if got := listDir(t, outs[1]); !slices.Equal(names, got) {
		t.Fatalf("the builds wrote different files: %q and %q", names, got)
	}
	if want := []string{initramfsOut, ManifestName, ReleaseOut, reportOut, vmlinuzOut}; !slices.Equal(names, want) {
		t.Errorf("output files = %q, want %q", names, want)
	}
	for _, n := range names {
		a, b := readFile(t, filepath.Join(outs[0], n)), readFile(t, filepath.Join(outs[1], n))
		if a != b {
			t.Errorf("%s differs between two builds of the same source (%d and %d bytes)", n, len(a), len(b))
		}
	}
	m, err := ReadManifest(outs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range m.Artefacts {
		if got := sha256File(t, filepath.Join(outs[0], a.Name)); got != a.SHA256 {
			t.Errorf("manifest says %s has sha256 %s, the file has %s", a.Name, a.SHA256, got)
		}
	}
	checkImage(t, outs[0], m)
}

// copyTree copies the module source at from to to, without .git and out/,
// keeping symbolic links (hw's recorded /sys trees have them) as links.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() && (rel == ".git" || rel == "out") {
			return filepath.SkipDir
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copy the source: %v", err)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(readFile(t, path)))
	return hex.EncodeToString(sum[:])
}

// checkImage opens the built initramfs and checks the release file and the
// kernel modules' index against the manifest.
func checkImage(t *testing.T, dir string, m *Manifest) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, initramfsOut))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	records, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]cpio.Record{}
	for _, r := range records {
		files[r.Name] = r
	}
	content := func(name string) string {
		r, ok := files[name]
		if !ok {
			t.Fatalf("initramfs lacks %s", name)
		}
		b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	var rel release.Info
	if err := json.Unmarshal([]byte(content(release.Path)), &rel); err != nil {
		t.Fatalf("release file: %v", err)
	}
	// The copy beside the image is what gets released: it must be the
	// measured bytes.
	if beside := readFile(t, filepath.Join(dir, ReleaseOut)); beside != content(release.Path) {
		t.Errorf("%s beside the image differs from %s inside it:\n%s\n%s", ReleaseOut, release.Path, beside, content(release.Path))
	}
	if want := (release.Info{Product: "onecloud", Version: m.Version, Commit: m.Commit, Kernel: m.Kernel.Release}); rel != want {
		t.Errorf("release file = %+v, want %+v", rel, want)
	}
	if link := content("bin/uinit"); link != "../bbin/onecloud-init" {
		t.Errorf("bin/uinit -> %q, want ../bbin/onecloud-init", link)
	}
	dep := content("lib/modules/" + m.Kernel.Release + "/modules.dep")
	if n := strings.Count(dep, "\n"); n != len(m.Modules) {
		t.Errorf("modules.dep has %d lines, the manifest %d modules", n, len(m.Modules))
	}
	zd, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zd.Close()
	for _, mod := range m.Modules {
		name := "lib/modules/" + m.Kernel.Release + "/" + mod.Path
		r, ok := files[name]
		if !ok || !strings.HasSuffix(name, ModuleSuffix) || r.Mode != cpio.S_IFREG|0o644 {
			t.Errorf("module %s in the initramfs: present %v at %s, mode %o; want a %s file, mode 100644",
				mod.Name, ok, name, r.Mode, ModuleSuffix)
			continue
		}
		elf, err := zd.DecodeAll([]byte(content(name)), nil)
		if err != nil || int64(len(elf)) != mod.Size || !bytes.HasPrefix(elf, []byte("\x7fELF")) {
			t.Errorf("module %s unpacks to %d bytes (%v); want the %d-byte ELF module", mod.Name, len(elf), err, mod.Size)
		}
	}
	if bb := files["bbin/bb"]; bb.Mode != cpio.S_IFREG|0o755 {
		t.Errorf("bbin/bb mode = %o, want 100755 whatever the umask", bb.Mode)
	}
}
