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
	"time"
)

// Inserter puts one module file into the running kernel. The firmware uses
// finit_module(2) (see Kernel); tests record the calls instead.
type Inserter interface {
	Insert(path, params string) error
}

// DeviceEvents reports the modaliases of the devices added since it was
// last asked, without waiting (Uevents on a box).
type DeviceEvents interface {
	Added() ([]string, error)
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
	// Events, when set, tells which devices the loaded drivers added, so
	// that sysfs is scanned only once.
	Events DeviceEvents
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
	Loaded  []string          // in the order they were loaded
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
	p := &pass{c: c, log: c.Log, r: Report{Failed: map[string]string{}}, tried: map[string]bool{}, skip: map[string]bool{}, inserts: map[string]error{}}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	for _, s := range c.Skip {
		p.skip[Name(s)] = true
	}
	for _, m := range c.Loaded {
		p.inserts[Name(m)] = nil
	}

	var extra []string
	for _, m := range c.Extra {
		if !c.Index.Known(m) && !c.Index.Builtin(m) {
			p.r.Failed[Name(m)] = "not in this image (onecloud.modules.load)"
			p.log.Warn("module named by onecloud.modules.load is not in this image", "module", m)
			continue
		}
		extra = append(extra, Name(m))
	}
	p.loadAll(extra)

	// One scan of sysfs finds the devices present; after that, the devices
	// that loaded drivers add (a bus driver's children) come from Events
	// when it is set, and from a new scan otherwise.
	aliases := p.scan()
	for p.r.Rounds < maxRounds && ctx.Err() == nil {
		p.r.Rounds++
		var wanted []string
		for _, a := range aliases {
			for _, m := range c.Index.Match(a) {
				if c.Want == nil || c.Want(c.Index.paths[m]) {
					wanted = append(wanted, m)
				}
			}
		}
		// NIC drivers first: a NIC's link negotiation takes a second or two,
		// which can then overlap the loading of the others.
		slices.SortStableFunc(wanted, func(a, b string) int {
			return cmpBool(isNIC(c.Index.paths[b]), isNIC(c.Index.paths[a]))
		})
		if !p.loadAll(wanted) {
			break
		}
		if c.Events == nil {
			aliases = p.scan()
			continue
		}
		added, err := c.Events.Added()
		if err != nil {
			p.log.Warn("device events; scanning sysfs instead", "err", err)
			aliases = p.scan()
			continue
		}
		p.log.Debug("devices added by the loaded drivers", "round", p.r.Rounds, "modaliases", len(added))
		if len(added) == 0 {
			break
		}
		aliases = added
	}
	return p.r
}

func isNIC(path string) bool { return strings.HasPrefix(path, "kernel/drivers/net/ethernet/") }

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// scan reads the modaliases of the devices present.
func (p *pass) scan() []string {
	start := time.Now()
	aliases, err := Modaliases(p.c.SysDir)
	if err != nil {
		p.log.Warn("scanning devices", "err", err)
	}
	p.log.Debug("devices scanned", "modaliases", len(aliases), "took", time.Since(start).Round(time.Millisecond))
	return aliases
}

// pass is the state of one Run.
type pass struct {
	c   *Coldplug
	log *slog.Logger

	r       Report
	tried   map[string]bool  // modules asked for, by a device or by Extra
	skip    map[string]bool  // onecloud.modules.skip
	inserts map[string]error // every module inserted, with its result
}

// loadAll loads the modules not tried before, each after its dependencies,
// one at a time. (Loading several at once was measured: on one emulated CPU
// it made the boot slower, not faster.) It reports whether any module was
// newly loaded.
func (p *pass) loadAll(mods []string) bool {
	progress := false
	for _, m := range mods {
		if p.tried[m] {
			continue
		}
		p.tried[m] = true
		if p.load(m) {
			progress = true
		}
	}
	return progress
}

// load loads mod after its dependencies; true if anything was newly loaded.
func (p *pass) load(mod string) bool {
	if p.skip[mod] {
		p.r.Skipped = append(p.r.Skipped, mod)
		p.log.Info("module skipped by onecloud.modules.skip", "module", mod)
		return false
	}
	if p.c.Index.Builtin(mod) {
		return false
	}
	order, err := p.c.Index.Order(mod)
	if err != nil {
		p.r.Failed[mod] = err.Error()
		p.log.Warn("cannot load module", "module", mod, "err", err)
		return false
	}
	progress := false
	for _, m := range order {
		if p.skip[m] {
			p.r.Failed[mod] = fmt.Sprintf("needs %s, which onecloud.modules.skip names", m)
			p.log.Warn("cannot load module", "module", mod, "needs", m, "err", "skipped by onecloud.modules.skip")
			return progress
		}
		fresh, err := p.insert(m)
		if err != nil {
			if m != mod {
				p.r.Failed[mod] = fmt.Sprintf("its dependency %s failed", m)
			}
			return progress
		}
		progress = progress || fresh
	}
	return progress
}

// insert puts m into the kernel once, however many modules need it; fresh
// says whether it was newly loaded (not found in the kernel already).
func (p *pass) insert(m string) (fresh bool, err error) {
	if err, done := p.inserts[m]; done {
		return false, err
	}
	err = p.c.Inserter.Insert(p.c.Index.Path(m), Params(p.c.Cmdline, m))
	switch {
	case err == nil:
		fresh = true
		p.log.Debug("module loaded", "module", m)
	case errors.Is(err, ErrAlreadyLoaded):
		err = nil
	default:
		p.log.Warn("module failed to load; booting on without it", "module", m, "err", err)
	}
	p.inserts[m] = err
	if err == nil {
		p.r.Loaded = append(p.r.Loaded, m)
	} else {
		p.r.Failed[m] = err.Error()
	}
	return fresh, err
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
// bus under sysDir, of the input devices (a class, not a bus) and of the CPU
// (whose features pull kvm_intel or kvm_amd and the crypto drivers), sorted.
// Walking sysDir/devices would find the same devices but read every
// attribute folder on the way, which costs seconds under emulation. An
// unreadable modalias is skipped and named in the error: a half-dead device
// must not hide the others.
func Modaliases(sysDir string) ([]string, error) {
	var files []string
	buses, err := os.ReadDir(filepath.Join(sysDir, "bus"))
	if err != nil {
		return nil, fmt.Errorf("scan %s for devices: %w", sysDir, err)
	}
	// Listing the device folders and opening each modalias directly costs
	// one system call per device less than globbing, which would lstat each
	// file first; sysfs makes every first lookup expensive.
	dirs := []string{filepath.Join(sysDir, "class", "input")} // input devices are a class, not a bus
	for _, b := range buses {
		dirs = append(dirs, filepath.Join(sysDir, "bus", b.Name(), "devices"))
	}
	for _, d := range dirs {
		devs, err := os.ReadDir(d)
		if err != nil {
			continue // a bus without devices folder, or no input class
		}
		for _, dev := range devs {
			files = append(files, filepath.Join(d, dev.Name(), "modalias"))
		}
	}
	files = append(files, filepath.Join(sysDir, "devices", "system", "cpu", "modalias"))

	seen := map[string]bool{}
	var bad []error
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			// Most devices have no modalias, and one that just went away is no
			// problem; anything else is worth a word.
			if !errors.Is(err, fs.ErrNotExist) {
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
