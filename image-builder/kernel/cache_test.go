package kernel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeMirror is a Downloader that serves fixed bytes as the package, or
// nothing at all when gone is set, and counts downloads.
type fakeMirror struct {
	content   []byte
	gone      bool
	downloads int
}

func (m *fakeMirror) Download(_ context.Context, pin Pin, dir string) (string, error) {
	m.downloads++
	if m.gone {
		return "", fmt.Errorf("%w: E: Version '%s' for '%s' was not found", ErrNotOnMirror, pin.Version, pin.Package)
	}
	p := filepath.Join(dir, pin.debFile())
	return p, os.WriteFile(p, m.content, 0o644)
}

// fakeUnpacker writes a minimal kernel package tree and counts unpacks.
type fakeUnpacker struct {
	release  string
	noKernel bool
	unpacks  int
}

func (u *fakeUnpacker) Unpack(_ context.Context, deb, dir string) error {
	u.unpacks++
	files := map[string]string{
		"lib/modules/" + u.release + "/modules.builtin": "kernel/drivers/tty/serial/8250/8250.ko\n",
	}
	if !u.noKernel {
		files["boot/vmlinuz-"+u.release] = "not really a kernel"
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func testPin(content []byte) Pin {
	sum := sha256.Sum256(content)
	return Pin{Package: "linux-image-6.1.0-99-amd64", Version: "6.1.999-1", SHA256: hex.EncodeToString(sum[:])}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// leftovers lists temporary entries a fetch must not leave in the cache.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "download-") || strings.HasPrefix(e.Name(), "unpack-") {
			left = append(left, e.Name())
		}
	}
	return left
}

func TestFetchCachesAndVerifies(t *testing.T) {
	ctx := context.Background()
	content := []byte("a kernel package")
	pin := testPin(content)
	mirror := &fakeMirror{content: content}
	unpacker := &fakeUnpacker{release: pin.Release()}
	c := Cache{Dir: t.TempDir(), Downloader: mirror, Unpacker: unpacker, Log: quietLog()}

	// The steps run in order on one cache; counts are cumulative.
	var k Kernel // the result of the previous step
	for _, step := range []struct {
		name                       string
		damage                     func() // applied to the cache before this step's fetch
		wantDownloads, wantUnpacks int
		wantDebCached, wantTree    bool
	}{
		{name: "cold cache downloads and unpacks", wantDownloads: 1, wantUnpacks: 1},
		{name: "warm cache does nothing", wantDownloads: 1, wantUnpacks: 1, wantDebCached: true, wantTree: true},
		{
			name:          "corrupt cached package is fetched again",
			damage:        func() { writeFile(t, k.Deb, "bit rot") },
			wantDownloads: 2, wantUnpacks: 1, wantTree: true,
		},
		{
			name:          "truncated cached package is fetched again",
			damage:        func() { writeFile(t, k.Deb, string(content[:5])) },
			wantDownloads: 3, wantUnpacks: 1, wantTree: true,
		},
		{
			name:          "tree without marker is unpacked again",
			damage:        func() { os.Remove(filepath.Join(k.Tree, markerFile)) },
			wantDownloads: 3, wantUnpacks: 2, wantDebCached: true,
		},
		{
			name:          "tree of another build of the version is unpacked again",
			damage:        func() { writeFile(t, filepath.Join(k.Tree, markerFile), strings.Repeat("0", 64)) },
			wantDownloads: 3, wantUnpacks: 3, wantDebCached: true,
		},
	} {
		if step.damage != nil {
			step.damage()
		}
		var err error
		k, err = c.Fetch(ctx, pin)
		if err != nil {
			t.Fatalf("%s: Fetch: %v", step.name, err)
		}
		if mirror.downloads != step.wantDownloads || unpacker.unpacks != step.wantUnpacks {
			t.Errorf("%s: downloads, unpacks = %d, %d; want %d, %d", step.name,
				mirror.downloads, unpacker.unpacks, step.wantDownloads, step.wantUnpacks)
		}
		if k.DebCached != step.wantDebCached || k.TreeCached != step.wantTree {
			t.Errorf("%s: DebCached, TreeCached = %v, %v; want %v, %v", step.name,
				k.DebCached, k.TreeCached, step.wantDebCached, step.wantTree)
		}
		if got, err := fileSHA256(k.Deb); err != nil || got != pin.SHA256 {
			t.Errorf("%s: cached package sha256 = %s, %v; want %s", step.name, got, err, pin.SHA256)
		}
		if _, err := os.Stat(k.Vmlinuz()); err != nil {
			t.Errorf("%s: vmlinuz: %v", step.name, err)
		}
		if left := leftovers(t, c.Dir); len(left) > 0 {
			t.Errorf("%s: temporary entries left in the cache: %v", step.name, left)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFetchErrors(t *testing.T) {
	content := []byte("a kernel package")
	pin := testPin(content)
	for _, tc := range []struct {
		name     string
		pin      Pin
		mirror   *fakeMirror
		unpacker *fakeUnpacker
		want     []string // substrings of the error
		gone     bool     // the error must be a *PinGoneError
		keepsDeb bool     // the package was verified, so it stays cached
	}{
		{
			name:   "pin gone from the mirror says how to move it",
			pin:    pin,
			mirror: &fakeMirror{gone: true},
			want:   []string{"is not on the Debian mirror", "kernel-pin", "image-builder/kernel/pin.go", "was not found"},
			gone:   true,
		},
		{
			name:   "mirror serves other bytes",
			pin:    pin,
			mirror: &fakeMirror{content: []byte("another build")},
			want:   []string{"but the pin says " + pin.SHA256, "mistyped"},
		},
		{
			name:     "package without a kernel",
			pin:      pin,
			mirror:   &fakeMirror{content: content},
			unpacker: &fakeUnpacker{release: pin.Release(), noKernel: true},
			want:     []string{"does not contain boot/vmlinuz-6.1.0-99-amd64"},
			keepsDeb: true,
		},
		{
			name:   "malformed pin is refused before any download",
			pin:    Pin{Package: "linux-image-amd64", Version: "1", SHA256: pin.SHA256},
			mirror: &fakeMirror{content: content},
			want:   []string{"not of the form"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.unpacker == nil {
				tc.unpacker = &fakeUnpacker{release: pin.Release()}
			}
			c := Cache{Dir: t.TempDir(), Downloader: tc.mirror, Unpacker: tc.unpacker, Log: quietLog()}
			_, err := c.Fetch(context.Background(), tc.pin)
			if err == nil {
				t.Fatal("Fetch succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var gone *PinGoneError
			if got := errors.As(err, &gone); got != tc.gone {
				t.Errorf("error is PinGoneError: %v, want %v", got, tc.gone)
			}
			if tc.gone && !errors.Is(err, ErrNotOnMirror) {
				t.Errorf("error does not wrap ErrNotOnMirror")
			}
			if _, err := os.Stat(filepath.Join(c.Dir, tc.pin.debFile())); (err == nil) != tc.keepsDeb {
				t.Errorf("package kept in the cache: %v, want %v", err == nil, tc.keepsDeb)
			}
			if left := leftovers(t, c.Dir); len(left) > 0 {
				t.Errorf("temporary entries left in the cache: %v", left)
			}
		})
	}
}

// TestDpkgUnpack runs the real unpacker over a tiny package built here with
// dpkg-deb, so the path Fetch takes on a build machine is exercised without
// the 70 MB kernel.
func TestDpkgUnpack(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed (it is on every Debian system)")
	}
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"DEBIAN/control": "Package: linux-image-6.1.0-99-amd64\nVersion: 6.1.999-1\nArchitecture: amd64\n" +
			"Maintainer: test <test@example.org>\nDescription: test kernel\n",
		"boot/vmlinuz-6.1.0-99-amd64":                  "kernel",
		"lib/modules/6.1.0-99-amd64/modules.builtin":   "",
		"lib/modules/6.1.0-99-amd64/kernel/net/tun.ko": "module",
	})
	deb := filepath.Join(t.TempDir(), "test.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", src, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}
	content, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	pin := testPin(content)
	c := Cache{Dir: t.TempDir(), Downloader: &fakeMirror{content: content}, Unpacker: Dpkg{}, Log: quietLog()}
	k, err := c.Fetch(context.Background(), pin)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(k.ModulesDir(), "kernel/net/tun.ko")); err != nil || string(b) != "module" {
		t.Errorf("unpacked module = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(k.Tree, "DEBIAN")); err == nil {
		t.Errorf("control files were unpacked into the tree")
	}
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, content)
	}
}
