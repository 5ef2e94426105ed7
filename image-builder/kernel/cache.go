package kernel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Downloader fetches one exact version of a Debian package into dir and
// returns the path of the .deb file it wrote there. A version the mirror
// does not have is reported with an error that wraps ErrNotOnMirror.
type Downloader interface {
	Download(ctx context.Context, pin Pin, dir string) (string, error)
}

// Unpacker extracts the files of a .deb below dir (dpkg-deb -x).
type Unpacker interface {
	Unpack(ctx context.Context, deb, dir string) error
}

// ErrNotOnMirror means the package version is not (or no longer) available.
var ErrNotOnMirror = errors.New("package version not found on the Debian mirror")

// PinGoneError is returned when the pinned version has left the mirror. Its
// message tells the operator how to move the pin.
type PinGoneError struct {
	Pin Pin
	Err error // what the downloader said
}

func (e *PinGoneError) Error() string {
	return fmt.Sprintf("the pinned kernel package %s is not on the Debian mirror (%v).\n"+
		"Debian removes superseded kernels; move the pin: run `go run ./image-builder/cmd/image-builder kernel-pin` "+
		"as root, paste one of the pin blocks it prints into image-builder/kernel/pin.go, run `make test` "+
		"(it builds and boots the new kernel in QEMU) and commit.", e.Pin, e.Err)
}

func (e *PinGoneError) Unwrap() error { return e.Err }

// markerFile is written last into an unpacked tree, holding the SHA-256 of
// the package it came from. A tree without it (an unpack that was cut short)
// or with another digest is unpacked again.
const markerFile = ".onecloud-unpacked"

// Cache keeps verified kernel packages and their unpacked trees in Dir:
//
//	Dir/linux-image-6.1.0-47-amd64_6.1.170-3_amd64.deb   the verified package
//	Dir/linux-image-6.1.0-47-amd64_6.1.170-3/            its unpacked files
//
// Everything is first written into a temporary directory inside Dir and
// renamed into place once complete, so an interrupted build never leaves a
// half-written entry that a later build would trust.
type Cache struct {
	Dir        string
	Downloader Downloader
	Unpacker   Unpacker
	Log        *slog.Logger
}

// Kernel is a verified, unpacked kernel package.
type Kernel struct {
	Pin        Pin
	Release    string // "6.1.0-47-amd64"
	Deb        string // path of the verified .deb in the cache
	Tree       string // root of the unpacked package
	DebCached  bool   // the .deb was already in the cache (no download)
	TreeCached bool   // the tree was already unpacked
}

// Vmlinuz is the path of the kernel image in the unpacked package.
func (k Kernel) Vmlinuz() string {
	return filepath.Join(k.Tree, "boot", "vmlinuz-"+k.Release)
}

// ModulesDir is the package's lib/modules/<release> directory.
func (k Kernel) ModulesDir() string {
	return filepath.Join(k.Tree, "lib", "modules", k.Release)
}

// Fetch returns the pinned kernel, downloading, verifying and unpacking it
// only when the cache does not hold a good copy.
func (c Cache) Fetch(ctx context.Context, pin Pin) (Kernel, error) {
	deb, debCached, err := c.FetchDeb(ctx, pin)
	if err != nil {
		return Kernel{}, err
	}
	tree, treeCached, err := c.unpacked(ctx, pin, deb)
	if err != nil {
		return Kernel{}, err
	}
	k := Kernel{Pin: pin, Release: pin.Release(), Deb: deb, Tree: tree, DebCached: debCached, TreeCached: treeCached}
	for _, p := range []string{k.Vmlinuz(), k.ModulesDir()} {
		if _, err := os.Stat(p); err != nil {
			return Kernel{}, fmt.Errorf("package %s does not contain %s; is it a Debian linux-image package? (%w)",
				pin, strings.TrimPrefix(p, tree+"/"), err)
		}
	}
	return k, nil
}

// FetchDeb returns the path of the verified package in the cache and whether
// it was there already. A cached file whose SHA-256 differs from the pin is
// reported, removed and downloaded again.
func (c Cache) FetchDeb(ctx context.Context, pin Pin) (path string, cached bool, err error) {
	if err := pin.Validate(); err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", false, fmt.Errorf("create kernel cache (set ONECLOUD_CACHE to a writable directory): %w", err)
	}
	path = filepath.Join(c.Dir, pin.debFile())
	sum, err := fileSHA256(path)
	switch {
	case err == nil && sum == pin.SHA256:
		return path, true, nil
	case err == nil:
		c.Log.Warn("cached kernel package is corrupt, fetching it again", "path", path, "sha256", sum, "want", pin.SHA256)
		if err := os.Remove(path); err != nil {
			return "", false, fmt.Errorf("remove corrupt cached package: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("read cached kernel package: %w", err)
	}

	tmp, err := os.MkdirTemp(c.Dir, "download-")
	if err != nil {
		return "", false, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	got, err := c.Downloader.Download(ctx, pin, tmp)
	if errors.Is(err, ErrNotOnMirror) {
		return "", false, &PinGoneError{Pin: pin, Err: err}
	}
	if err != nil {
		return "", false, fmt.Errorf("download kernel package %s: %w", pin, err)
	}
	sum, err = fileSHA256(got)
	if err != nil {
		return "", false, fmt.Errorf("read downloaded kernel package: %w", err)
	}
	if sum != pin.SHA256 {
		return "", false, fmt.Errorf("downloaded %s has sha256 %s but the pin says %s: either the pin in "+
			"image-builder/kernel/pin.go is mistyped or the mirror serves another build under the same version; "+
			"run `go run ./image-builder/cmd/image-builder kernel-pin` to see what the mirror has", pin, sum, pin.SHA256)
	}
	if err := os.Rename(got, path); err != nil {
		return "", false, fmt.Errorf("kernel cache: %w", err)
	}
	return path, false, nil
}

// unpacked returns the unpacked tree of deb, unpacking it unless a complete
// tree of the same package is already in the cache.
func (c Cache) unpacked(ctx context.Context, pin Pin, deb string) (tree string, cached bool, err error) {
	tree = filepath.Join(c.Dir, pin.treeDir())
	if treeComplete(tree, pin) {
		return tree, true, nil
	}
	if err := os.RemoveAll(tree); err != nil {
		return "", false, fmt.Errorf("remove incomplete unpacked kernel: %w", err)
	}
	tmp, err := os.MkdirTemp(c.Dir, "unpack-")
	if err != nil {
		return "", false, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := c.Unpacker.Unpack(ctx, deb, tmp); err != nil {
		return "", false, fmt.Errorf("unpack %s: %w", filepath.Base(deb), err)
	}
	if err := os.WriteFile(filepath.Join(tmp, markerFile), []byte(pin.SHA256+"\n"), 0o644); err != nil {
		return "", false, fmt.Errorf("kernel cache: %w", err)
	}
	// MkdirTemp made tmp 0700; the tree is read by other users' builds too.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", false, fmt.Errorf("kernel cache: %w", err)
	}
	if err := os.Rename(tmp, tree); err != nil {
		// Another build may have unpacked the same package meanwhile.
		if treeComplete(tree, pin) {
			return tree, false, nil
		}
		return "", false, fmt.Errorf("kernel cache: %w", err)
	}
	return tree, false, nil
}

func treeComplete(tree string, pin Pin) bool {
	b, err := os.ReadFile(filepath.Join(tree, markerFile))
	return err == nil && strings.TrimSpace(string(b)) == pin.SHA256
}

// fileSHA256 returns the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
