package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/onecloud-edu/onecloud/firmware/cmdline"
	"github.com/onecloud-edu/onecloud/firmware/control"
	"github.com/onecloud-edu/onecloud/firmware/modload"
	"github.com/onecloud-edu/onecloud/firmware/netup"
	"github.com/onecloud-edu/onecloud/firmware/power"
	"github.com/onecloud-edu/onecloud/firmware/screen"
	"github.com/onecloud-edu/onecloud/firmware/supervise"
	"github.com/onecloud-edu/onecloud/hw"
	"github.com/onecloud-edu/onecloud/internal/atomicfile"
	"github.com/onecloud-edu/onecloud/internal/release"
	"github.com/onecloud-edu/onecloud/noded/localapi"
)

// ReadyLine is printed on the console once the box has an address and its
// services answer. Tests and the boot benchmark wait for it.
const ReadyLine = "onecloud: ready"

// boot holds what the boot flow learns as it goes.
type boot struct {
	opts    cmdline.Options
	cmdline string
	console io.Writer
	log     *slog.Logger

	rel      release.Info
	inv      hw.Inventory
	powerOff atomic.Bool // the power button was pressed
	reboot   atomic.Bool // approved in a new role: boot again to take it
	// clusterAPI is the cluster API an approved enrolment named: what a
	// network change from the console must still reach.
	clusterAPI atomic.Pointer[string]
	// servers are the boot server and cluster address set at the console,
	// used from the next enrolment; reenrol asks the watch loop to enrol
	// again.
	servers atomic.Pointer[control.Servers]
	reenrol chan struct{}

	mu    sync.Mutex
	notes []string // shown on the status screen; added to from several goroutines
}

// run is the boot flow. It returns when ctx ends (SIGTERM; the power
// button, which also sets powerOff; an approval in a new role, which sets
// reboot).
func (b *boot) run(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := b.mount(); err != nil {
		return err
	}
	b.banner()
	b.step("firmware started")
	// The network before the drivers: it takes each NIC as soon as its
	// driver brings it (NIC drivers load first), so that the NIC's link
	// negotiation, a second or two on any NIC, overlaps the loading of the
	// other drivers and the inventory. Every NIC with carrier asks DHCP;
	// NICs that appear later (a USB adapter) are picked up as they come.
	nets := netup.New(b.netConfig(), netup.NClient{Timeout: b.opts.DHCPAttemptTimeout, Hostname: b.opts.Hostname},
		netup.Kernel{SysDir: "/sys", ResolvConf: "/etc/resolv.conf"})
	netDone := make(chan error, 1)
	if b.opts.Network == "off" {
		b.note("network is off (onecloud.net=off)")
		close(netDone)
	} else {
		go func() { netDone <- nets.Run(ctx) }()
	}

	loaded := b.loadModules(ctx, "for the network and disks", modload.BootCritical, nil)
	go b.watchPowerButton(ctx, stop)
	b.waitEntropy(ctx)
	b.inventory()
	b.setHostname(b.opts.Hostname)
	b.measureBoot(ctx) // the TPM is known now; before noded, which sends the log
	go b.serveControl(ctx, stop, nets)

	// noded starts while the NICs negotiate their links (a second or two
	// of waiting on any NIC), which hides its own start-up.
	supOpts := supervise.Options{StateFile: localapi.ServicesPath, Log: b.log}
	if b.opts.LogLevel == "debug" {
		supOpts.Console = b.console // every service line on the console, prefixed with its name
	}
	sup := supervise.New(supOpts)
	if b.opts.Noded {
		noded, err := exec.LookPath("noded")
		if err != nil {
			b.note("noded is not in this image: %v", err)
		} else if err := sup.Start(ctx, supervise.Service{Name: "noded", Path: noded}); err != nil {
			b.note("cannot start noded: %v", err)
		}
	}
	b.startConsoles(ctx, sup)

	// The rest of the drivers (KVM, graphics, crypto) wait until the box is
	// ready, or a while if it cannot get ready (no network): nothing on the
	// way to ready needs them, and on a thin terminal's CPU they would slow
	// the way down.
	ready := make(chan struct{})
	go func() {
		select {
		case <-ready:
		case <-time.After(20 * time.Second):
		case <-ctx.Done():
			return
		}
		b.loadModules(ctx, "for the other devices", nil, loaded)
	}()

	b.watch(ctx, stop, sup, nets, ready)
	<-netDone
	sup.Wait()
	return nil
}

// startConsoles starts the node console on each terminal of onecloud.menu,
// supervised: one that dies is started again, and the boot never waits for
// it.
func (b *boot) startConsoles(ctx context.Context, sup *supervise.Supervisor) {
	if len(b.opts.Menu) == 0 {
		return
	}
	bin, err := exec.LookPath("onecloud-console")
	if err != nil {
		b.note("the node console is not in this image: %v", err)
		return
	}
	os.Remove(screen.MenuActivePath) // a menu left open by a console that died
	for _, tty := range b.opts.Menu {
		if err := sup.Start(ctx, supervise.Service{Name: "console-" + tty, Path: bin, Args: []string{"-tty", tty}}); err != nil {
			b.note("cannot start the node console on %s: %v", tty, err)
		}
	}
}

// step prints a boot step with the time since the kernel started, which is
// what a technician compares between two boxes.
func (b *boot) step(format string, args ...any) {
	fmt.Fprintf(b.console, "[%7.2fs] %s\n", uptime().Seconds(), fmt.Sprintf(format, args...))
}

// note logs a problem and keeps it on the status screen.
func (b *boot) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.mu.Lock()
	b.notes = append(b.notes, msg)
	b.mu.Unlock()
	b.log.Warn(msg)
}

func (b *boot) currentNotes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.notes)
}

// mount adds what u-root's init leaves out: a tmpfs on /run for sockets and
// state that must not outlive the boot.
func (b *boot) mount() error {
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return fmt.Errorf("read /proc/mounts (u-root's init should have mounted /proc): %w", err)
	}
	if !strings.Contains(string(mounts), " /run ") {
		if err := os.MkdirAll("/run", 0o755); err != nil {
			return fmt.Errorf("create /run: %w", err)
		}
		if err := unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("mount tmpfs on /run: %w", err)
		}
	}
	return os.MkdirAll(filepath.Dir(localapi.SocketPath), 0o755)
}

func (b *boot) banner() {
	rel, err := release.Read("/")
	if err != nil {
		b.note("%v", err)
	}
	b.rel = rel
	fmt.Fprintf(b.console, "\n"+
		"   ___  _ __   ___  ___| | ___  _   _  __| |\n"+
		"  / _ \\| '_ \\ / _ \\/ __| |/ _ \\| | | |/ _` |\n"+
		" | (_) | | | |  __/ (__| | (_) | |_| | (_| |\n"+
		"  \\___/|_| |_|\\___|\\___|_|\\___/ \\__,_|\\__,_|\n\n"+
		" %s %s  commit %s  kernel %s\n\n", rel.Product, rel.Version, rel.Commit, kernelRelease())
}

// loadModules loads the drivers that the devices ask for, those chosen by
// want (nil: all), and returns every module now in the kernel.
func (b *boot) loadModules(ctx context.Context, what string, want func(string) bool, loaded []string) []string {
	dir := filepath.Join("/lib/modules", kernelRelease())
	start := time.Now()
	ix, err := modload.ReadIndex(dir)
	b.log.Debug("module index read", "dir", dir, "took", time.Since(start).Round(time.Millisecond))
	if err != nil {
		if want != nil { // say it once
			b.note("kernel modules: %v", err)
		}
		return loaded
	}
	// Listen for the devices that drivers add before scanning, so none is
	// missed in between; without the socket, sysfs is scanned again instead.
	var events modload.DeviceEvents
	if u, err := modload.OpenUevents(); err != nil {
		b.log.Warn("device events unavailable; rescanning sysfs", "err", err)
	} else {
		defer u.Close()
		events = u
	}
	c := modload.Coldplug{
		Index: ix, Inserter: modload.Kernel{}, SysDir: "/sys", Cmdline: b.cmdline, Events: events,
		Skip: b.opts.ModulesSkip, Extra: b.opts.ModulesLoad, Want: want, Loaded: loaded, Log: b.log,
	}
	if want == nil {
		c.Extra = nil // loaded in the first pass
	}
	r := c.Run(ctx)
	b.step("modules %s: %d loaded (%s)", what, len(r.Loaded), strings.Join(r.Loaded, " "))
	for m, why := range r.Failed {
		b.note("module %s not loaded: %s", m, why)
	}
	return append(loaded, r.Loaded...)
}

// watchPowerButton powers the box off in order when its power button is
// pressed: stop ends the boot flow, and main powers off.
func (b *boot) watchPowerButton(ctx context.Context, stop func()) {
	err := power.Watch(ctx, "/sys", "/dev", func(devs []string) {
		b.log.Debug("power button watched", "devices", devs)
	}, func() {
		b.step("power button pressed: stopping services and powering off")
		b.powerOff.Store(true)
		stop()
	})
	if err != nil {
		b.log.Info("the power button will not power off this box", "why", err)
	}
}

// waitEntropy waits until the kernel's random number generator is seeded.
// DHCP transaction ids (and later TLS keys) need it; a box with no hardware
// RNG (no RDRAND, no TPM, no virtio-rng) can take long, and without this
// step the wait would look like a silent DHCP server.
func (b *boot) waitEntropy(ctx context.Context) {
	buf := make([]byte, 1)
	if _, err := unix.Getrandom(buf, unix.GRND_NONBLOCK); err == nil {
		return
	}
	start := time.Now()
	b.step("waiting for the kernel's random number generator (no hardware RNG found)")
	done := make(chan struct{})
	go func() {
		unix.Getrandom(buf, 0)
		close(done)
	}()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			b.step("random number generator ready after %s", time.Since(start).Round(100*time.Millisecond))
			return
		case <-ctx.Done():
			return
		case <-t.C:
			b.step("still waiting for entropy (%s); a TPM, RDRAND or virtio-rng avoids this", time.Since(start).Round(time.Second))
		}
	}
}

func (b *boot) inventory() {
	inv, err := hw.Collect("/")
	if err != nil {
		b.log.Warn("hardware inventory incomplete", "err", err)
	}
	if inv.TPM.Present {
		if id, err := tpmManufacturer(); err != nil {
			b.note("TPM present but not answering: %v", err)
		} else {
			inv.SetTPMManufacturer(id)
		}
	}
	b.inv = inv
	b.step("hardware: %s", inv.Summary())
	if err := inv.Table(b.console); err != nil {
		b.log.Warn("printing inventory", "err", err)
	}
	data, err := json.MarshalIndent(inv, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(localapi.InventoryPath, data, 0o600)
	}
	if err != nil {
		b.note("cannot save inventory for noded: %v", err)
	}
}

func tpmManufacturer() (string, error) {
	var lastErr error
	for _, dev := range []string{"/dev/tpmrm0", "/dev/tpm0"} {
		t, err := linuxtpm.Open(dev)
		if err != nil {
			lastErr = err
			continue
		}
		defer t.Close()
		return hw.TPMManufacturer(t)
	}
	return "", lastErr
}

// setHostname sets the given name, or when empty one derived from the box.
func (b *boot) setHostname(name string) {
	if name == "" {
		name = defaultHostname(b.inv)
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		b.note("cannot set host name %q: %v", name, err)
	}
}

// defaultHostname names a box after its first NIC's MAC, so that every box
// has a distinct name from the start, before DHCP or the cluster names it.
func defaultHostname(inv hw.Inventory) string {
	for _, n := range inv.NICs {
		if n.MAC != "" {
			return "oc-" + strings.ReplaceAll(n.MAC, ":", "")
		}
	}
	return "onecloud"
}

func (b *boot) netConfig() netup.Config {
	static := map[string]netup.Lease{}
	for _, s := range b.opts.Static {
		static[s.Iface] = netup.Lease{Addr: s.Addr, Gateway: s.Gateway, DNS: s.DNS}
	}
	return netup.Config{
		Only:           b.opts.Ifaces,
		Static:         static,
		AttemptTimeout: b.opts.DHCPAttemptTimeout,
		Backoff:        netup.Backoff{Min: b.opts.BackoffMin, Max: b.opts.BackoffMax, Rand: rand.Int64N},
		FirstJitter:    200 * time.Millisecond,
		Log:            b.log,
	}
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// uptime is the time since the kernel started, from /proc/uptime.
func uptime() time.Duration {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	var secs float64
	if _, err := fmt.Sscanf(string(b), "%f", &secs); err != nil {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}
