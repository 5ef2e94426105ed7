package harness

import (
	"fmt"
	"os"
	"strconv"
)

// accelEnv may select KVM on a machine where it works. The harness never guesses from /dev/kvm: on the lab
// machines /dev/kvm exists but hangs guests, so TCG is the default and always written out.
const accelEnv = "ONECLOUD_QEMU_ACCEL"

// accelFromEnv returns the QEMU accelerator to use: "tcg" unless $ONECLOUD_QEMU_ACCEL says "kvm".
func accelFromEnv() (string, error) {
	switch a := os.Getenv(accelEnv); a {
	case "", "tcg":
		return "tcg", nil
	case "kvm":
		return "kvm", nil
	default:
		return "", fmt.Errorf("%s=%q: use tcg or kvm", accelEnv, a)
	}
}

// qemuSpec is a Config with everything resolved that the command line needs.
type qemuSpec struct {
	Config
	Accel     string
	QMPSocket string
	// Serial1Socket is the unix socket QEMU listens on for the second serial port ("" for none).
	Serial1Socket string
	TPMSocket     string   // "" without a TPM
	Taps          []string // one per NIC
	Disks         []string // image paths, one per Config.Disks
	UEFIVars      string   // BootUEFIPXE's writable variable store
}

// qemuArgs builds QEMU's arguments (without the program name).
//
// The serial port is QEMU's stdin and stdout (a stdio chardev, signal=off so that a ^C typed to the guest
// stays the guest's), which the harness holds as pipes: that gives both a capture of everything and a way
// to type. No monitor on it; the monitor is QMP on a unix socket. QEMU starts paused (-S) so that the harness
// can set NIC links down before the guest runs, then it sends "cont". -nodefaults is not used: SeaBIOS only
// tries a NIC's PXE ROM without it, and its VGA card is what screendumps show.
func qemuArgs(s qemuSpec) []string {
	args := []string{
		"-name", s.Name,
		"-machine", machine(s.Boot),
		"-accel", s.Accel,
		"-m", strconv.Itoa(s.MemoryMB),
		"-smp", strconv.Itoa(s.CPUs),
		"-display", "none",
		"-monitor", "none",
		"-chardev", "stdio,id=serial0,signal=off",
		"-serial", "chardev:serial0",
		"-qmp", "unix:" + s.QMPSocket + ",server=on,wait=off",
		"-S",
		// The newest CPU model TCG emulates, like the PCs and terminals in the schools: with it comes
		// RDRAND, so the kernel's random number generator is seeded at boot, as on real hardware,
		// instead of a guest's first getrandom() waiting for entropy on QEMU's default qemu64 CPU.
		"-cpu", "max",
	}
	if s.Serial1Socket != "" {
		args = append(args, "-chardev", "socket,id=serial1,path="+s.Serial1Socket+",server=on,wait=off", "-serial", "chardev:serial1")
	}
	if s.NoReboot {
		args = append(args, "-no-reboot")
	}
	switch s.Boot {
	case BootKernel:
		args = append(args, "-kernel", s.Kernel)
		if s.Initrd != "" {
			args = append(args, "-initrd", s.Initrd)
		}
		if s.Append != "" {
			args = append(args, "-append", s.Append)
		}
	case BootPXE:
		args = append(args, "-boot", "order=n")
	case BootUEFIPXE:
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+ovmfCode,
			"-drive", "if=pflash,format=raw,file="+s.UEFIVars)
	}
	if len(s.NICs) == 0 {
		args = append(args, "-nic", "none")
	}
	for i, n := range s.NICs {
		rom := n.ROM
		if rom == NoROM {
			rom = ""
		}
		dev := fmt.Sprintf("%s,netdev=net%d,id=%s,mac=%s,romfile=%s", n.Model, i, nicID(i), n.MAC, rom)
		if i == 0 && s.Boot == BootUEFIPXE {
			dev += ",bootindex=1"
		}
		args = append(args,
			"-netdev", fmt.Sprintf("tap,id=net%d,ifname=%s,script=no,downscript=no", i, s.Taps[i]),
			"-device", dev)
	}
	if s.TPMSocket != "" {
		args = append(args,
			"-chardev", "socket,id=tpmchr,path="+s.TPMSocket,
			"-tpmdev", "emulator,id=tpm0,chardev=tpmchr",
			"-device", "tpm-tis,tpmdev=tpm0")
	}
	for i, d := range s.Config.Disks {
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,format=%s,if=none,id=disk%d", s.Disks[i], d.Format, i),
			"-device", fmt.Sprintf("%s,drive=disk%d,serial=disk%d", d.Model, i, i))
	}
	return append(args, s.ExtraArgs...)
}

func machine(b Boot) string {
	if b == BootUEFIPXE {
		return "q35"
	}
	return "pc"
}

// nicID is the QEMU device id of NIC i, the name set_link takes.
func nicID(i int) string { return fmt.Sprintf("nic%d", i) }
