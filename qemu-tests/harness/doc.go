// Package harness boots QEMU virtual machines for go test, on lab networks that exist only inside the
// test: the proving ground that onecloud's end-to-end tests stand on.
//
// A test makes a Lab (a network namespace of its own), bridges in it (lab networks, with dnsmasq as a
// school's DHCP if wanted) and VMs whose NICs plug into those bridges through taps. A VM boots a kernel and
// initrd directly, or by PXE under SeaBIOS or OVMF; it can have a software TPM (swtpm) with a state folder
// that survives reboots, and qcow2 disks. Its serial console is captured to a file and can be driven like
// expect(1); QEMU's QMP monitor presses buttons, pulls cables and takes screenshots. Everything a test
// makes is torn down, by PID and by name, when it ends, also when it fails; on Ctrl-C (see Main); and,
// if the test process was killed outright, by a sweep at the start of the next run.
//
//	func TestMain(m *testing.M) { harness.Main(m) }
//
//	func TestReady(t *testing.T) {
//		lab := harness.NewLab(t)
//		lan := lab.Bridge(t, "lan", "10.77.1.1/24")
//		lan.DHCP(t, harness.DHCPConfig{})
//		vm := harness.Start(t, harness.Config{
//			Name:   "box",
//			Kernel: "../../out/image/vmlinuz", Initrd: "../../out/image/initramfs.cpio.gz",
//			Append: "console=ttyS0",
//			NICs:   []harness.NIC{{Bridge: lan}, {Bridge: lan, LinkDown: true}},
//			TPM:    &harness.TPM{},
//			Disks:  []harness.Disk{{SizeMB: 64}},
//		})
//		m, err := vm.Console.Expect(t.Context(), `(?m)^onecloud: ready(.*)$`, 2*time.Minute)
//		if err != nil {
//			t.Fatal(err) // says why, with the last 40 lines of the console
//		}
//		t.Logf("ready:%s", m[1])
//		if err := vm.Stop(t.Context()); err != nil { // the ACPI power button, then SIGKILL after a grace
//			t.Error(err)
//		}
//	}
//
// # How it runs things
//
// QEMU always gets an explicit -accel tcg: on the lab machines /dev/kvm exists but hangs guests, so the
// harness never guesses; ONECLOUD_QEMU_ACCEL=kvm opts in where KVM works. A VM with NICs runs inside its
// lab's namespace through nsenter, which execs QEMU in place, so the PID the harness holds and kills
// is QEMU's own. Every child gets its own process group (a Ctrl-C reaches only the test binary, which then
// tears down in order) and a parent-death SIGKILL (nothing outlives a test binary that dies).
//
// # Names
//
// Namespaces are named ocq-<pid>-<start>-<random> and scratch folders (sockets, disks, TPM state)
// <tmp>/ocq-<pid>-<start>/..., where <pid> and <start> identify the test process even after its PID is
// reused. Parallel tests and parallel test binaries therefore never collide, interfaces inside a namespace
// need no unique names, and the sweeper can tell leftovers of dead runs from those of live ones.
//
// # Logs
//
// Each test's logs go to out/qemu-logs/<test name>/ at the repository root ($ONECLOUD_OUT/qemu-logs if
// set): <vm>.serial.log, <vm>.qemu.log (QEMU's stderr), <vm>.swtpm.log, <bridge>.dnsmasq.log,
// harness.log and commands.log (every command line run, ready to paste). They are removed when the test
// passes (unless ONECLOUD_KEEP_LOGS is set) and kept when it fails, and the failure says where.
//
// # Outside go test
//
// Every function takes a T, which *testing.T and *testing.B satisfy. A program such as the demo uses a
// Session instead, closes it on its way out (also on SIGINT), and may set Config.SerialOut to os.Stdout
// and pass what it reads from the terminal to Console.Send.
//
// # Requirements
//
// Root (namespaces, bridges, taps), and the Debian packages qemu-system-x86, qemu-utils, swtpm, ovmf,
// ipxe-qemu, dnsmasq-base and iproute2 (`make deps`). Anything missing fails the test with a message naming
// the package; nothing is skipped.
package harness
