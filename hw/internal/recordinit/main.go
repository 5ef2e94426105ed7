//go:build linux

// Command recordinit is the /init of a throwaway QEMU guest that records the
// guest's hardware for hw/testdata (see record-qemu.sh beside it). It is not
// part of the onecloud image: on the real image, run hwrecord instead.
//
// It mounts /proc, /sys and /dev; loads every module in /lib/modules, each
// after the modules it depends on; brings every Ethernet interface up, except
// those named in hwrecord.down= on the kernel command line, and waits for
// their links; waits for the disks named in hwrecord.disks=; then writes the
// recording, armored, to the second serial port (/dev/ttyS1) and powers off.
package main

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/onecloud-edu/onecloud/hw"
	"github.com/onecloud-edu/onecloud/hw/record"
)

// settle bounds how long the guest waits for links and disks: under TCG a
// slow probe takes seconds, and a recording without its disk is useless.
const settle = 30 * time.Second

func main() {
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 2*settle)
	err := run(ctx, log)
	cancel()
	if err != nil {
		log.Error("recording failed", "err", err)
	}
	unix.Sync()
	// PID 1 must not return; power off instead, and QEMU exits.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		log.Error("power off", "err", err)
	}
	select {}
}

func run(ctx context.Context, log *slog.Logger) error {
	for _, m := range []struct{ src, dir, fs string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dir, m.fs, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dir, err)
		}
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	opts := options(string(cmdline))

	if err := loadModules(log, "/lib/modules"); err != nil {
		return err
	}
	// Devices probe in the background; wait for the disks before looking
	// at the interfaces, which appear sooner.
	if err := waitFor(ctx, "disks", split(opts["hwrecord.disks"]), func(name string) bool {
		_, err := os.Stat("/sys/block/" + name)
		return err == nil
	}); err != nil {
		return err
	}
	up, err := linksUp(log, split(opts["hwrecord.down"]))
	if err != nil {
		return err
	}
	if err := waitFor(ctx, "carrier", up, func(name string) bool {
		b, err := os.ReadFile("/sys/class/net/" + name + "/carrier")
		return err == nil && strings.TrimSpace(string(b)) == "1"
	}); err != nil {
		// A link that stays down is part of what is recorded.
		log.Info("some links stay down", "err", err)
	}

	tree, err := record.Read(ctx, "/", hw.Sources())
	if err != nil {
		log.Info("left out of the recording", "err", err)
	}
	var tarball, armored bytes.Buffer
	if err := tree.WriteTar(&tarball); err != nil {
		return err
	}
	if err := record.Armor(&armored, tarball.Bytes()); err != nil {
		return err
	}
	port, err := os.OpenFile("/dev/ttyS1", os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open the recording port (QEMU needs a second -serial): %w", err)
	}
	defer port.Close()
	if _, err := port.Write(armored.Bytes()); err != nil {
		return err
	}
	log.Info("recorded", "files", len(tree.Paths()), "bytes", tarball.Len())
	return nil
}

// options returns the key=value words of the kernel command line.
func options(cmdline string) map[string]string {
	opts := map[string]string{}
	for _, w := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(w, "=")
		opts[k] = v
	}
	return opts
}

func split(list string) []string {
	if list == "" {
		return nil
	}
	return strings.Split(list, ",")
}

// loadModules loads every .ko in dir, each after its dependencies (from the
// depends= entry of its .modinfo section).
func loadModules(log *slog.Logger, dir string) error {
	paths, err := filepath.Glob(filepath.Join(dir, "*.ko"))
	if err != nil {
		return err
	}
	byName := map[string]string{}
	for _, p := range paths {
		byName[modName(p)] = p
	}
	loaded := map[string]bool{}
	var load func(name string, depth int) error
	load = func(name string, depth int) error {
		if loaded[name] {
			return nil
		}
		p, ok := byName[name]
		if !ok {
			return fmt.Errorf("module %s is needed but not in %s: add it to record-qemu.sh", name, dir)
		}
		if depth > 20 {
			return fmt.Errorf("module %s: dependency loop", name)
		}
		deps, err := depends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := load(d, depth+1); err != nil {
				return err
			}
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("load %s: %w", p, err)
		}
		loaded[name] = true
		log.Info("loaded module", "name", name)
		return nil
	}
	for name := range byName {
		if err := load(name, 0); err != nil {
			return err
		}
	}
	return nil
}

// modName is the kernel's name of a module file: "nvme-core.ko" is nvme_core.
func modName(p string) string {
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(p), ".ko"), "-", "_")
}

// depends returns the modules that the module file p needs first.
func depends(p string) ([]string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", p)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range split(string(v)) {
				deps = append(deps, strings.ReplaceAll(d, "-", "_"))
			}
			return deps, nil
		}
	}
	return nil, nil
}

// linksUp sets every Ethernet interface except those in down
// administratively up, and returns the names it set up.
func linksUp(log *slog.Logger, down []string) ([]string, error) {
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var up []string
	for _, e := range entries {
		name := e.Name()
		if name == "lo" || slices.Contains(down, name) {
			continue
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return nil, err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return nil, fmt.Errorf("flags of %s: %w", name, err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return nil, fmt.Errorf("set %s up: %w", name, err)
		}
		log.Info("link up", "name", name)
		up = append(up, name)
	}
	return up, nil
}

// waitFor polls until ready holds for every name, or the settle time ends.
func waitFor(ctx context.Context, what string, names []string, ready func(string) bool) error {
	ctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	for {
		var missing []string
		for _, n := range names {
			if !ready(n) {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %s", what, settle, strings.Join(missing, ","))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
