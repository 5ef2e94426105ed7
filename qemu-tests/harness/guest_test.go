package harness

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
)

// The harness's own tests boot a kernel with a tiny initramfs whose /init is qemu-tests/cmd/testguest,
// not the real image, so that they test the harness and nothing else.

const (
	kernelEnv  = "ONECLOUD_KERNEL"
	modulesEnv = "ONECLOUD_KERNEL_MODULES"
	imageEnv   = "ONECLOUD_IMAGE"
	// testAppend is the kernel command line of the test guest: output on the serial port, quiet enough to
	// read, and a fast kernel panic reboot (ended by -no-reboot) if /init dies.
	testAppend = "console=ttyS0 loglevel=4 panic=-1"
)

// testKernel is the kernel the tests boot: $ONECLOUD_KERNEL, or the vmlinuz of the built image
// ($ONECLOUD_IMAGE, else out/image).
func testKernel(t testing.TB) string {
	t.Helper()
	if k := os.Getenv(kernelEnv); k != "" {
		if _, err := os.Stat(k); err != nil {
			t.Fatalf("%s: %v", kernelEnv, err)
		}
		return k
	}
	k := filepath.Join(imageDir(t), "vmlinuz")
	if _, err := os.Stat(k); err != nil {
		t.Fatalf("no kernel to boot: run `make image` or set %s to a vmlinuz (%v)", kernelEnv, err)
	}
	return k
}

// imageDir is where the built image is: $ONECLOUD_IMAGE or out/image.
func imageDir(t testing.TB) string {
	if d := os.Getenv(imageEnv); d != "" {
		return d
	}
	root, err := logsRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(filepath.Dir(root), "image")
}

// moduleSource maps kernel module names ('-' written '_') to their .ko files' contents.
type moduleSource struct {
	from string // where they come from, for messages
	read map[string]func() ([]byte, error)
}

// testModules finds the modules of the test kernel: in $ONECLOUD_KERNEL_MODULES; beside the kernel when
// it sits in an unpacked kernel package (<root>/boot/vmlinuz-<version>, <root>/lib/modules/<version>); or
// in the initramfs next to it, when it is the built image's.
func testModules(t testing.TB, kernel string) moduleSource {
	t.Helper()
	dir := os.Getenv(modulesEnv)
	if dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("%s=%s: not a folder (%v)", modulesEnv, dir, err)
		}
	} else if version, ok := strings.CutPrefix(filepath.Base(kernel), "vmlinuz-"); ok {
		dir = filepath.Join(filepath.Dir(filepath.Dir(kernel)), "lib", "modules", version)
	}
	if fi, err := os.Stat(dir); dir != "" && err == nil && fi.IsDir() {
		src, err := modulesInDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	initramfs := filepath.Join(filepath.Dir(kernel), "initramfs.cpio.gz")
	if _, err := os.Stat(initramfs); err == nil {
		src, err := modulesInInitramfs(initramfs)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	t.Fatalf("no kernel modules for %s: set %s to its lib/modules/<version> folder", kernel, modulesEnv)
	return moduleSource{}
}

// modulesInDir indexes the .ko files under a lib/modules/<version> folder.
func modulesInDir(dir string) (moduleSource, error) {
	src := moduleSource{from: dir, read: map[string]func() ([]byte, error){}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name, ok := strings.CutSuffix(d.Name(), ".ko"); ok {
			src.read[strings.ReplaceAll(name, "-", "_")] = func() ([]byte, error) { return os.ReadFile(path) }
		}
		return nil
	})
	return src, err
}

// modulesInInitramfs indexes the .ko files in a gzipped newc initramfs.
func modulesInInitramfs(path string) (moduleSource, error) {
	src := moduleSource{from: path, read: map[string]func() ([]byte, error){}}
	f, err := os.Open(path)
	if err != nil {
		return src, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return src, fmt.Errorf("%s: %w", path, err)
	}
	archive, err := io.ReadAll(zr)
	if err != nil {
		return src, fmt.Errorf("%s: %w", path, err)
	}
	err = cpio.ForEachRecord(cpio.Newc.Reader(bytes.NewReader(archive)), func(r cpio.Record) error {
		if !strings.Contains(r.Name, "lib/modules/") {
			return nil
		}
		read := func() ([]byte, error) { return io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize))) }
		name, ok := strings.CutSuffix(filepath.Base(r.Name), ".ko")
		if !ok {
			// The image stores its modules zstd-compressed (image.ModuleSuffix).
			if name, ok = strings.CutSuffix(filepath.Base(r.Name), ".ko.zst"); ok {
				compressed := read
				read = func() ([]byte, error) {
					b, err := compressed()
					if err != nil {
						return nil, err
					}
					d, err := zstd.NewReader(nil)
					if err != nil {
						return nil, err
					}
					defer d.Close()
					return d.DecodeAll(b, nil)
				}
			}
		}
		if ok {
			src.read[strings.ReplaceAll(name, "-", "_")] = read
		}
		return nil
	})
	if err != nil {
		return src, fmt.Errorf("%s: %w", path, err)
	}
	return src, nil
}

// buildGuest builds an initramfs whose /init is testguest, with the given kernel modules and their
// dependencies, and returns its path.
func buildGuest(t testing.TB, src moduleSource, modules ...string) string {
	t.Helper()
	dir := t.TempDir()
	initPath := filepath.Join(dir, "init")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	build := exec.CommandContext(t.Context(), gobin, "build", "-trimpath", "-ldflags=-s -w", "-o", initPath,
		"github.com/onecloud-edu/onecloud/qemu-tests/cmd/testguest")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the test guest: %v\n%s", err, out)
	}
	initBin, err := os.ReadFile(initPath)
	if err != nil {
		t.Fatal(err)
	}
	records := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1), // the kernel opens it as init's stdin, stdout and stderr
		cpio.Directory("proc", 0o755),
		cpio.Directory("sys", 0o755),
		cpio.Directory("modules", 0o755),
		cpio.StaticRecord(initBin, cpio.Info{Name: "init", Mode: 0o755 | cpio.S_IFREG}),
	}
	mods, err := resolveModules(src, modules)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range mods {
		order = append(order, m.name+".ko")
		records = append(records, cpio.StaticRecord(m.data, cpio.Info{Name: "modules/" + m.name + ".ko", Mode: 0o644 | cpio.S_IFREG}))
	}
	records = append(records, cpio.StaticFile("modules/order", strings.Join(order, "\n")+"\n", 0o644))

	path := filepath.Join(dir, "initramfs.cpio")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := cpio.Newc.Writer(f)
	if err := cpio.WriteRecords(w, records); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return path
}

// module is a kernel module to load in the guest.
type module struct {
	name string
	data []byte
}

// resolveModules returns modules and everything they depend on (the "depends=" of each module's .modinfo
// section), dependencies first.
func resolveModules(src moduleSource, names []string) ([]module, error) {
	var mods []module
	seen := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		name = strings.ReplaceAll(name, "-", "_")
		if seen[name] {
			return nil
		}
		seen[name] = true
		read, ok := src.read[name]
		if !ok {
			return fmt.Errorf("kernel module %s is not in %s (the test guest needs %v): add it there, or set %s to the kernel's lib/modules/<version> folder",
				name, src.from, names, modulesEnv)
		}
		data, err := read()
		if err != nil {
			return fmt.Errorf("kernel module %s: %w", name, err)
		}
		deps, err := moduleDepends(data)
		if err != nil {
			return fmt.Errorf("kernel module %s in %s: %w", name, src.from, err)
		}
		for _, dep := range deps {
			if err := visit(dep); err != nil {
				return err
			}
		}
		mods = append(mods, module{name: name, data: data})
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return mods, nil
}

// moduleDepends reads the depends= entry of a module's .modinfo section.
func moduleDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, nil
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if deps, ok := bytes.CutPrefix(kv, []byte("depends=")); ok && len(deps) > 0 {
			return strings.Split(string(deps), ","), nil
		}
	}
	return nil, nil
}
