package harness

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bootTimeout bounds one boot of the test guest under TCG (about 6 s alone, more with VMs in parallel on
// two cores); pxeTimeout a boot through SeaBIOS, iPXE, DHCP and TFTP (about 30 s alone).
const (
	bootTimeout = 120 * time.Second
	pxeTimeout  = 240 * time.Second
)

// TestVM boots the test guest in several ways at once, then checks that nothing the boots used is left:
// no QEMU, swtpm or dnsmasq process and no namespace (whose end also ends its bridges and taps).
// It is not parallel with other tests, so that "no process of this test remains" can be checked by name too.
func TestVM(t *testing.T) {
	kernel := testKernel(t)
	initrd := buildGuest(t, testModules(t, kernel), "e1000", "virtio_blk", "virtio_pci", "button")
	left := &leftovers{}

	t.Run("boots", func(t *testing.T) {
		t.Run("devices", func(t *testing.T) {
			t.Parallel()
			testDevices(t, left, kernel, initrd)
		})
		t.Run("forced-stop", func(t *testing.T) {
			t.Parallel()
			testForcedStop(t, left, kernel, initrd)
		})
		t.Run("power-cut", func(t *testing.T) {
			t.Parallel()
			testPowerCut(t, left, kernel, initrd)
		})
		t.Run("bios-pxe", func(t *testing.T) {
			t.Parallel()
			testPXE(t, left, kernel, initrd, BootPXE, "10.77.2.1/24")
		})
		t.Run("uefi-pxe", func(t *testing.T) {
			t.Parallel()
			testPXE(t, left, kernel, initrd, BootUEFIPXE, "10.77.4.1/24")
		})
	})
	left.check(t)
	checkNoChildren(t)
}

// testDevices: the serial console both ways, a TPM, a disk, two NICs of which one starts unplugged and is
// plugged in later, a screendump, a human monitor command, and a graceful stop by the ACPI power button.
func testDevices(t *testing.T, left *leftovers, kernel, initrd string) {
	ctx := t.Context()
	lab := NewLab(t)
	left.addLab(lab)
	lan := lab.Bridge(t, "lan", "10.77.1.1/24")
	vm := Start(t, Config{
		Name: "devices", Kernel: kernel, Initrd: initrd, Append: testAppend, NoReboot: true,
		NICs:  []NIC{{Bridge: lan}, {Bridge: lan, LinkDown: true}},
		TPM:   &TPM{},
		Disks: []Disk{{SizeMB: 16}},
	})
	left.addVM(t, vm)

	for _, want := range []string{
		`testguest: tpm: tpm0 version=2\n`,
		`testguest: block: vda serial=disk0\n`,
		`testguest: nic: eth0 mac=` + vm.Config().NICs[0].MAC + ` carrier=1\n`,
		`testguest: nic: eth1 mac=` + vm.Config().NICs[1].MAC + ` carrier=0\n`,
		`testguest: ready\n`,
	} {
		if _, err := vm.Console.Expect(ctx, want, bootTimeout); err != nil {
			t.Fatal(err)
		}
	}

	if err := vm.Console.SendLine(ctx, "echo hello harness"); err != nil {
		t.Fatal(err)
	}
	m, err := vm.Console.Expect(ctx, `testguest: echo: (hello \w+)\n`, bootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "hello harness" {
		t.Errorf("submatch = %q, want %q", m[1], "hello harness")
	}

	shot := filepath.Join(t.TempDir(), "screen.png")
	if err := vm.Monitor.Screendump(ctx, shot); err != nil {
		t.Error(err)
	} else if b, err := os.ReadFile(shot); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("screendump: %.8q, %v; want a PNG", b, err)
	}
	if info, err := vm.Monitor.HumanMonitorCommand(ctx, "info network"); err != nil || !strings.Contains(info, "nic1") {
		t.Errorf("info network = %q, %v", info, err)
	}

	if err := vm.SetLink(ctx, 1, true); err != nil {
		t.Fatal(err)
	}
	if err := vm.Console.SendLine(ctx, "carrier eth1"); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Console.Expect(ctx, `testguest: carrier eth1=1\n`, bootTimeout); err != nil {
		t.Fatal(err)
	}

	if err := vm.Stop(ctx); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if !strings.Contains(vm.Console.Output(), "testguest: power button pressed") {
		t.Error("the guest did not report the power button")
	}
	ev, err := vm.Monitor.WaitEvent(ctx, "SHUTDOWN")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ev.Data), `"guest": true`) && !strings.Contains(string(ev.Data), `"guest":true`) {
		t.Errorf("SHUTDOWN event %s: want a shutdown by the guest", ev.Data)
	}
	if _, err := os.Stat(filepath.Join(vm.Config().TPM.StateDir, "tpm2-00.permall")); err != nil {
		t.Errorf("swtpm kept no state: %v", err)
	}
}

// testForcedStop: a guest that ignores the power button is killed after the grace period. No NIC, so
// QEMU runs in the host namespace; its serial output is also copied to SerialOut.
func testForcedStop(t *testing.T, left *leftovers, kernel, initrd string) {
	ctx := t.Context()
	var serial syncBuffer
	vm := Start(t, Config{
		Name: "stubborn", Kernel: kernel, Initrd: initrd, NoReboot: true,
		Append:    testAppend + " testguest.powerbutton=ignore",
		StopGrace: 5 * time.Second,
		SerialOut: &serial,
	})
	left.addVM(t, vm)
	if _, err := vm.Console.Expect(ctx, `testguest: ready\n`, bootTimeout); err != nil {
		t.Fatal(err)
	}
	err := vm.Stop(ctx)
	if !errors.Is(err, ErrForcedStop) {
		t.Fatalf("Stop = %v, want ErrForcedStop", err)
	}
	select {
	case <-vm.Done():
	default:
		t.Fatal("Stop returned but the VM is not down")
	}
	if _, err := vm.Console.Expect(ctx, `testguest: power button pressed\n`, 0); err != nil {
		t.Errorf("the guest never saw the power button: %v", err)
	}
	if err := vm.Kill(ctx); err != nil {
		t.Errorf("Kill of a VM that is down: %v", err)
	}
	if serial.String() != strings.ReplaceAll(vm.Console.Output(), "\n", "\r\n") {
		t.Errorf("SerialOut got %q, want what the console got", serial.String())
	}
}

// testPowerCut: kill -9 at a running guest, then boot again with the same disk and TPM state; the second
// boot could not start if the first had left swtpm holding the state's lock.
func testPowerCut(t *testing.T, left *leftovers, kernel, initrd string) {
	ctx := t.Context()
	cfg := Config{
		Name: "box", Kernel: kernel, Initrd: initrd, Append: testAppend, NoReboot: true,
		TPM:   &TPM{StateDir: filepath.Join(t.TempDir(), "tpm")},
		Disks: []Disk{{Path: CreateDisk(t, 16)}},
	}
	first := Start(t, cfg)
	left.addVM(t, first)
	if _, err := first.Console.Expect(ctx, `testguest: ready\n`, bootTimeout); err != nil {
		t.Fatal(err)
	}
	if err := first.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(ctx); err == nil {
		t.Error("Wait after a power cut = nil, want QEMU's death by SIGKILL")
	}

	second := Start(t, cfg)
	left.addVM(t, second)
	if !strings.HasSuffix(second.Console.LogPath(), "box-2.serial.log") {
		t.Errorf("second boot logs to %s, want box-2.serial.log", second.Console.LogPath())
	}
	for _, want := range []string{`testguest: tpm: tpm0 version=2\n`, `testguest: block: vda serial=disk0\n`, `testguest: ready\n`} {
		if _, err := second.Console.Expect(ctx, want, bootTimeout); err != nil {
			t.Fatal(err)
		}
	}
	if err := second.Console.SendLine(ctx, "poweroff"); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(ctx); err != nil {
		t.Fatalf("power off from the guest: %v", err)
	}
}

// testPXE: the firmware runs the NIC's iPXE ROM, which gets an address and a boot script from dnsmasq on
// the lab network and loads the kernel and initrd by TFTP. Under EFI the kernel line must name the initrd.
func testPXE(t *testing.T, left *leftovers, kernel, initrd string, boot Boot, subnet string) {
	ctx := t.Context()
	tftp := t.TempDir()
	for name, src := range map[string]string{"vmlinuz": kernel, "initrd": initrd} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tftp, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := "#!ipxe\nkernel vmlinuz initrd=initrd " + testAppend + "\ninitrd initrd\nboot\n"
	if err := os.WriteFile(filepath.Join(tftp, "boot.ipxe"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	lab := NewLab(t)
	left.addLab(lab)
	lan := lab.Bridge(t, "lan", subnet)
	dhcp := lan.DHCP(t, DHCPConfig{TFTPRoot: tftp, BootFile: "boot.ipxe"})
	left.addProcess(t, "dnsmasq", dhcp.PID())
	vm := Start(t, Config{Name: "pxe", Boot: boot, NICs: []NIC{{Bridge: lan}}, NoReboot: true})
	left.addVM(t, vm)
	if _, err := vm.Console.Expect(ctx, `testguest: ready\n`, pxeTimeout); err != nil {
		t.Fatal(err)
	}
	leases, err := dhcp.Leases()
	if err != nil {
		t.Fatal(err)
	}
	mac := vm.Config().NICs[0].MAC
	if len(leases) != 1 || leases[0].MAC != mac || !lan.Addr().Contains(leases[0].Addr) {
		t.Errorf("leases = %+v, want one for %s in %s", leases, mac, lan.Addr())
	}
	if err := vm.Console.SendLine(ctx, "poweroff"); err != nil {
		t.Fatal(err)
	}
	if err := vm.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// leftovers records the processes and namespaces subtests make, to check after them that none is left.
type leftovers struct {
	mu    sync.Mutex
	procs []leftProc
	labs  []string
}

type leftProc struct {
	what  string
	pid   int
	start uint64
}

func (l *leftovers) addProcess(t *testing.T, what string, pid int) {
	st, err := readStat(pid)
	if err != nil {
		t.Fatalf("%s (pid %d): %v", what, pid, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.procs = append(l.procs, leftProc{what: what, pid: pid, start: st.start})
}

func (l *leftovers) addVM(t *testing.T, vm *VM) {
	l.addProcess(t, "qemu", vm.PID())
	if pid := vm.TPMPID(); pid != 0 {
		l.addProcess(t, "swtpm", pid)
	}
}

func (l *leftovers) addLab(lab *Lab) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.labs = append(l.labs, lab.Name())
}

// check fails t for anything recorded that still exists.
func (l *leftovers) check(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.procs) == 0 {
		t.Fatal("no process was recorded: the check would prove nothing")
	}
	for _, p := range l.procs {
		if st, err := readStat(p.pid); err == nil && st.start == p.start {
			t.Errorf("%s (pid %d) still exists after its test (state %c)", p.what, p.pid, st.state)
		}
	}
	// Every process that ran in a lab is recorded and gone, so once a lab's name is gone nothing holds its
	// namespace and the kernel has destroyed it with its bridges and taps. (Comparing namespace inodes
	// would not prove more: the kernel reuses them for the next namespace anyone makes.)
	for _, lab := range l.labs {
		if _, err := os.Stat(filepath.Join(netnsDir, lab)); err == nil {
			t.Errorf("namespace %s still exists after its test", lab)
		}
	}
}

// checkNoChildren fails t if a QEMU, swtpm or dnsmasq process is still a child of this test process: a
// check by name, for a test that no other test runs in parallel with.
func checkNoChildren(t *testing.T) {
	pids, err := processes()
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	for _, pid := range pids {
		st, err := readStat(pid)
		if err != nil || st.ppid != self {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		for _, name := range []string{"qemu-system", "swtpm", "dnsmasq"} {
			if strings.HasPrefix(string(comm), name) {
				t.Errorf("a %s process (pid %d) of this test still runs", strings.TrimSpace(string(comm)), pid)
			}
		}
	}
}
