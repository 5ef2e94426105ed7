// Command testguest is a tiny /init for the QEMU harness's own tests (qemu-tests/harness). It boots in a
// moment, reports on the serial console what the kernel sees (TPM, disks, NICs and their carrier), answers
// a few commands typed on the console, and powers off when told to or when the ACPI power button is pressed.
// It is not part of the appliance; it exists so that the harness can be tested without the real image.
//
// Everything it prints starts with "testguest: ", which tells its lines from the kernel's and from the
// terminal's echo of what a test typed.
//
// It loads the kernel modules listed, in order, in /modules/order (files in /modules): the test resolves
// their dependencies when it builds the initramfs.
//
// Kernel command line:
//
//	testguest.powerbutton=ignore   report the ACPI power button but do not power off (to test a forced stop)
//
// Console commands, one per line:
//
//	echo TEXT        prints "testguest: echo: TEXT"
//	carrier IFACE    waits (up to 30 s) for IFACE to have carrier, prints "testguest: carrier IFACE=0|1"
//	poweroff         powers off
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// carrierWait bounds how long the guest waits for a NIC's carrier; it is a liveness bound, not a test of
// speed.
const carrierWait = 30 * time.Second

func main() {
	say("started")
	for _, m := range []struct{ fstype, dir string }{{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"}} {
		if err := os.MkdirAll(m.dir, 0o755); err == nil {
			if err := unix.Mount(m.fstype, m.dir, m.fstype, 0, ""); err != nil {
				say("mount %s: %v", m.dir, err)
			}
		}
	}
	loadModules()
	report()
	// Listen before saying ready: a test may press the button as soon as it reads that.
	go powerButton(listenPowerButton(), !strings.Contains(readFile("/proc/cmdline"), "testguest.powerbutton=ignore"))
	say("ready")
	commands()
}

// say prints one line on the console.
func say(format string, args ...any) {
	fmt.Printf("testguest: "+format+"\n", args...)
}

// loadModules loads /modules/order's modules with finit_module.
func loadModules() {
	for _, name := range strings.Fields(readFile("/modules/order")) {
		f, err := os.Open(filepath.Join("/modules", name))
		if err != nil {
			say("module %s: %v", name, err)
			continue
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			say("module %s: %v", name, err)
			continue
		}
		say("module %s loaded", name)
	}
}

// report prints the TPMs, disks and NICs, once every NIC that will get carrier has it.
func report() {
	for _, tpm := range list("/sys/class/tpm") {
		say("tpm: %s version=%s", tpm, readFile("/sys/class/tpm/"+tpm+"/tpm_version_major"))
	}
	for _, blk := range list("/sys/block") {
		if !strings.HasPrefix(blk, "loop") && !strings.HasPrefix(blk, "ram") {
			say("block: %s serial=%s", blk, readFile("/sys/block/"+blk+"/serial"))
		}
	}
	var nics []string
	for _, nic := range list("/sys/class/net") {
		if nic == "lo" {
			continue
		}
		link, err := netlink.LinkByName(nic)
		if err == nil {
			err = netlink.LinkSetUp(link)
		}
		if err != nil {
			say("nic %s: %v", nic, err)
			continue
		}
		nics = append(nics, nic)
	}
	// A NIC whose cable is plugged in gets carrier after autonegotiation. Wait until one does, so that a
	// NIC still without carrier then really has its cable out, not just a slow start.
	deadline := time.Now().Add(carrierWait)
	for len(nics) > 0 && time.Now().Before(deadline) && !slices.ContainsFunc(nics, hasCarrier) {
		time.Sleep(100 * time.Millisecond)
	}
	for _, nic := range nics {
		say("nic: %s mac=%s carrier=%s", nic, readFile("/sys/class/net/"+nic+"/address"), carrier(nic))
	}
}

// commands answers the lines typed on the console.
func commands() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch cmd {
		case "":
		case "echo":
			say("echo: %s", arg)
		case "carrier":
			deadline := time.Now().Add(carrierWait)
			for !hasCarrier(arg) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			say("carrier %s=%s", arg, carrier(arg))
		case "poweroff":
			powerOff()
		default:
			say("unknown command %q", cmd)
		}
	}
	say("console closed: %v", sc.Err())
	powerOff()
}

func powerOff() {
	say("powering off")
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		say("power off: %v", err)
	}
	select {} // init must not exit
}

func carrier(nic string) string {
	c := readFile("/sys/class/net/" + nic + "/carrier")
	if c == "" {
		return "?"
	}
	return c
}

func hasCarrier(nic string) bool { return carrier(nic) == "1" }

func list(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}
