package modload

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Inserter puts one module file into the running kernel. The firmware uses
// finit_module(2) (see Kernel); tests record the calls instead.
type Inserter interface {
	Insert(path, params string) error
}

// ErrAlreadyLoaded is what an Inserter returns when the module is in the
// kernel already; it is not a failure.
var ErrAlreadyLoaded = errors.New("module already loaded")

// Coldplug loads the drivers for the devices present.
type Coldplug struct {
	Index    *Index
	Inserter Inserter
	// SysDir is the sysfs root, "/sys" on a box.
	SysDir string
	// Cmdline is the kernel command line; "name.param=value" entries become
	// module parameters, as modprobe does it.
	Cmdline string
	// Skip names modules never to load (onecloud.modules.skip).
	Skip []string
	// Extra names modules to load whether or not a device asks for them
	// (onecloud.modules.load).
	Extra []string
	// Want, when set, chooses which of the modules that devices ask for
	// this pass loads, by the module's path in the index (see BootCritical).
	// Dependencies always follow the module that needs them.
	Want func(path string) bool
	// Loaded names modules already in the kernel (see LoadedModules), so a
	// second pass does not read them again.
	Loaded []string
	Log    *slog.Logger
}

// bootCritical are the driver folders a box needs before it can reach the
// network: NICs, disks and the buses under them, hardware random number
// generators (DHCP's transaction ids wait for the kernel's entropy), and the
// ACPI power button with the input events it speaks through, so that a box
// that says it is ready also powers off in order. The rest (KVM, graphics,
// crypto) can load while DHCP runs.
//
// BootCritical reports whether a module (by its path in modules.dep) is
// needed before the network comes up.
func BootCritical(path string) bool {
	for _, p := range [...]string{
		"kernel/drivers/net/", "kernel/drivers/block/", "kernel/drivers/virtio/",
		"kernel/drivers/ata/", "kernel/drivers/scsi/", "kernel/drivers/nvme/",
		"kernel/drivers/usb/", "kernel/drivers/char/hw_random/", "kernel/drivers/mmc/",
		"kernel/drivers/acpi/button.ko", "kernel/drivers/input/evdev.ko",
	} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// Report says what a coldplug did.
type Report struct {
	Loaded  []string          // in load order
	Failed  map[string]string // module -> why
	Skipped []string          // named in Skip but asked for by a device
	Rounds  int
}

// maxRounds bounds the scan-load loop. Two rounds cover a bus driver and its
// children (virtio_pci then virtio_net); more than a few means a loop.
const maxRounds = 6

// Run scans the modaliases under SysDir, loads every matching module with
// its dependencies, and repeats while new modules appear. A module that fails
// is logged and skipped: the box boots on with what it has.
func (c *Coldplug) Run(ctx context.Context) Report {
	r := Report{Failed: map[string]string{}}
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tried := map[string]bool{}
	skip := map[string]bool{}
	for _, s := range c.Skip {
		skip[Name(s)] = true
	}
	for _, m := range c.Loaded {
		r.Loaded = append(r.Loaded, Name(m))
	}
	already := len(r.Loaded)
	load := func(mod string) bool {
		if tried[mod] {
			return false
		}
		tried[mod] = true
		if skip[mod] {
			r.Skipped = append(r.Skipped, mod)
			log.Info("module skipped by onecloud.modules.skip", "module", mod)
			return false
		}
		if c.Index.Builtin(mod) {
			return false
		}
		order, err := c.Index.Order(mod)
		if err != nil {
			r.Failed[mod] = err.Error()
			log.Warn("cannot load module", "module", mod, "err", err)
			return false
		}
		progress := false
		for _, m := range order {
			if slices.Contains(r.Loaded, m) || r.Failed[m] != "" {
				continue
			}
			if skip[m] {
				r.Failed[mod] = fmt.Sprintf("needs %s, which onecloud.modules.skip names", m)
				log.Warn("cannot load module", "module", mod, "err", r.Failed[mod])
				return progress
			}
			err := c.Inserter.Insert(c.Index.Path(m), Params(c.Cmdline, m))
			switch {
			case err == nil:
				r.Loaded = append(r.Loaded, m)
				log.Debug("module loaded", "module", m)
				progress = true
			case errors.Is(err, ErrAlreadyLoaded):
				r.Loaded = append(r.Loaded, m)
			default:
				r.Failed[m] = err.Error()
				log.Warn("module failed to load; booting on without it", "module", m, "err", err)
				if m != mod {
					r.Failed[mod] = fmt.Sprintf("its dependency %s failed", m)
				}
				return progress
			}
		}
		return progress
	}

	for _, m := range c.Extra {
		if !c.Index.Known(m) && !c.Index.Builtin(m) {
			r.Failed[Name(m)] = "not in this image (onecloud.modules.load)"
			log.Warn("module named by onecloud.modules.load is not in this image", "module", m)
			continue
		}
		load(Name(m))
	}
	for r.Rounds < maxRounds {
		if ctx.Err() != nil {
			break
		}
		r.Rounds++
		aliases, err := Modaliases(c.SysDir)
		if err != nil {
			log.Warn("scanning devices", "err", err)
		}
		log.Debug("devices scanned", "round", r.Rounds, "modaliases", len(aliases))
		progress := false
		for _, a := range aliases {
			for _, m := range c.Index.Match(a) {
				if c.Want != nil && !c.Want(c.Index.paths[m]) {
					continue
				}
				if load(m) {
					progress = true
				}
			}
		}
		if !progress {
			break
		}
	}
	r.Loaded = r.Loaded[already:]
	return r
}

// LoadedModules reads the names of the modules in the kernel from a
// /proc/modules file.
func LoadedModules(procModules string) ([]string, error) {
	b, err := os.ReadFile(procModules)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, Name(f[0]))
		}
	}
	return out, nil
}

// Modaliases returns the distinct modalias strings of the devices on every
// bus and in every class under sysDir, sorted. Walking sysDir/devices would find the same
// devices but reads every attribute directory on the way, which costs
// seconds under software emulation; the bus and class lists are short. The CPU's
// features (which pull kvm_intel or kvm_amd and the crypto drivers) are the
// one modalias outside the buses. An unreadable
// modalias is skipped and named in the error: a half-dead device must not
// hide the others.
func Modaliases(sysDir string) ([]string, error) {
	var files []string
	for _, pattern := range []string{
		filepath.Join(sysDir, "bus", "*", "devices", "*", "modalias"),
		filepath.Join(sysDir, "class", "*", "*", "modalias"), // input devices are a class, not a bus
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			return nil, fmt.Errorf("scan %s for devices: %w", sysDir, err)
		}
		files = append(files, m...)
	}
	files = append(files, filepath.Join(sysDir, "devices", "system", "cpu", "modalias"))
	seen := map[string]bool{}
	var bad []error
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // a device that just went away is no problem
				bad = append(bad, err)
			}
			continue
		}
		if a := strings.TrimSpace(string(b)); a != "" {
			seen[a] = true
		}
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	slices.Sort(out)
	return out, errors.Join(bad...)
}

// Params returns the parameters the kernel command line gives a module:
// "e1000.debug=16 e1000.copybreak=0" yields "debug=16 copybreak=0".
func Params(cmdline, module string) string {
	var out []string
	for _, f := range strings.Fields(cmdline) {
		name, param, ok := strings.Cut(f, ".")
		if !ok || Name(name) != module || !strings.Contains(param, "=") {
			continue
		}
		out = append(out, param)
	}
	return strings.Join(out, " ")
}
