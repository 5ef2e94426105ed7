package harness

import (
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"time"
)

// Boot says where a VM's firmware finds what to boot.
type Boot int

const (
	// BootKernel loads Config.Kernel, Initrd and Append directly (QEMU -kernel), under SeaBIOS.
	BootKernel Boot = iota
	// BootPXE boots the first NIC's iPXE ROM (pxe-<model>.rom) under SeaBIOS: DHCP, then TFTP or HTTP.
	BootPXE
	// BootUEFIPXE boots the first NIC's iPXE EFI ROM (efi-<model>.rom) under OVMF on a q35 machine.
	// Under EFI the kernel line of the iPXE script must name the initrd (initrd=NAME).
	BootUEFIPXE
)

func (b Boot) String() string {
	switch b {
	case BootKernel:
		return "kernel"
	case BootPXE:
		return "bios-pxe"
	case BootUEFIPXE:
		return "uefi-pxe"
	}
	return fmt.Sprintf("Boot(%d)", int(b))
}

// Config describes one boot of a VM.
type Config struct {
	// Name names the VM in logs and log files (<name>.serial.log, ...): letters, digits, '-' and '_'.
	// Default "vm". A second boot under the same name in one test gets <name>-2.* files.
	Name string
	Boot Boot
	// Kernel, Initrd and Append are for BootKernel.
	Kernel, Initrd, Append string
	// MemoryMB defaults to 512, CPUs to 1.
	MemoryMB, CPUs int
	// NICs are attached in order: the guest sees them as eth0, eth1, ... All must be on bridges of one Lab,
	// whose namespace QEMU then runs in. No NICs: the VM has no network at all.
	NICs []NIC
	// TPM, if set, gives the VM a software TPM 2.0.
	TPM *TPM
	// Disks are attached in order (vda, vdb, ... with virtio).
	Disks []Disk
	// UEFIVars is the OVMF variable store for BootUEFIPXE, kept across boots that share it; "" means a
	// fresh copy of the default one for this boot.
	UEFIVars string
	// NoReboot makes a guest reboot end QEMU, like a power-off (QEMU -no-reboot).
	NoReboot bool
	// StopGrace is how long Stop waits for the guest to power off after the ACPI power button before it
	// kills QEMU. Default 30 s.
	StopGrace time.Duration
	// SerialOut, if set, also gets everything the guest writes on its serial port, as it comes (os.Stdout
	// for the demo). It must accept writes until the VM is down.
	SerialOut io.Writer
	// SecondSerial gives the VM a second serial port (the guest's ttyS1) on VM.Serial1, for a program
	// that takes a whole serial line over, as the node console's menu does, while the first keeps the
	// boot log. Its output goes to <name>.serial1.log.
	SecondSerial bool
	// ExtraArgs are appended to QEMU's command line.
	ExtraArgs []string
}

// NIC is a network card of a VM, plugged into a lab bridge through a tap.
type NIC struct {
	Bridge *Bridge
	// Model is the QEMU device: "e1000" (default) or "virtio-net-pci", "e1000e", "rtl8139", ...
	Model string
	// MAC defaults to a random address in QEMU's 52:54:00 range, so that VMs on one bridge differ.
	MAC string
	// LinkDown starts the NIC with its cable unplugged (QEMU starts paused, the link is set down through
	// QMP, then the guest runs). VM.SetLink plugs it in later.
	LinkDown bool
	// ROM is the NIC's option ROM. "" means none for BootKernel, iPXE's pxe-<model>.rom for BootPXE and
	// efi-<model>.rom for BootUEFIPXE, from the ipxe-qemu package. NoROM gives the NIC no ROM at all, so
	// that OVMF boots with its own network stack (UEFI PXE, then UEFI HTTP boot).
	ROM string
}

// NoROM as NIC.ROM leaves the NIC without an option ROM.
const NoROM = "none"

const (
	defaultName      = "vm"
	defaultMemoryMB  = 512
	defaultCPUs      = 1
	defaultStopGrace = 30 * time.Second
	defaultNICModel  = "e1000"
	defaultDiskModel = "virtio-blk-pci"
	ipxeROMDir       = "/usr/lib/ipxe/qemu"
	ovmfCode         = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars         = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// withDefaults validates c and fills in its defaults, except for what needs files (disks, TPM folders).
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		c.Name = defaultName
	}
	if !validName.MatchString(c.Name) {
		return c, fmt.Errorf("VM name %q: use 1 to 32 letters, digits, '-' or '_'", c.Name)
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = defaultMemoryMB
	}
	if c.CPUs == 0 {
		c.CPUs = defaultCPUs
	}
	if c.StopGrace == 0 {
		c.StopGrace = defaultStopGrace
	}
	switch c.Boot {
	case BootKernel:
		if c.Kernel == "" {
			return c, fmt.Errorf("BootKernel needs Config.Kernel")
		}
		for _, f := range []string{c.Kernel, c.Initrd} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				return c, fmt.Errorf("boot files: %w", err)
			}
		}
	case BootPXE, BootUEFIPXE:
		if len(c.NICs) == 0 {
			return c, fmt.Errorf("%s needs at least one NIC", c.Boot)
		}
	default:
		return c, fmt.Errorf("unknown Boot %d", int(c.Boot))
	}
	if c.Boot == BootUEFIPXE {
		if err := requireFile(ovmfCode); err != nil {
			return c, err
		}
	}
	c.NICs = append([]NIC(nil), c.NICs...)
	var lab *Lab
	for i := range c.NICs {
		n := &c.NICs[i]
		if n.Bridge == nil {
			return c, fmt.Errorf("NIC %d has no Bridge: every NIC plugs into a lab bridge", i)
		}
		if lab != nil && n.Bridge.lab != lab {
			return c, fmt.Errorf("NIC %d is on another lab than NIC 0: QEMU runs in one namespace", i)
		}
		lab = n.Bridge.lab
		if n.Model == "" {
			n.Model = defaultNICModel
		}
		if n.MAC == "" {
			n.MAC = "52:54:00:" + randomHex(1) + ":" + randomHex(1) + ":" + randomHex(1)
		}
		if _, err := net.ParseMAC(n.MAC); err != nil {
			return c, fmt.Errorf("NIC %d: %w", i, err)
		}
		if n.ROM == NoROM && c.Boot == BootPXE {
			return c, fmt.Errorf("NIC %d: SeaBIOS has no network stack of its own: BootPXE needs a NIC ROM", i)
		}
		if n.ROM == "" && c.Boot != BootKernel {
			rom, err := defaultROM(n.Model, c.Boot)
			if err != nil {
				return c, fmt.Errorf("NIC %d: %w", i, err)
			}
			n.ROM = rom
		}
	}
	c.Disks = append([]Disk(nil), c.Disks...)
	for i := range c.Disks {
		d := &c.Disks[i]
		if d.Format == "" {
			d.Format = "qcow2"
		}
		if d.Model == "" {
			d.Model = defaultDiskModel
		}
		if d.Path == "" && d.SizeMB <= 0 {
			return c, fmt.Errorf("disk %d: give a Path or a SizeMB", i)
		}
	}
	if c.TPM != nil {
		tpm := *c.TPM
		c.TPM = &tpm
	}
	return c, nil
}

// defaultROM is iPXE's ROM for a NIC model and boot mode, from the ipxe-qemu package.
func defaultROM(model string, boot Boot) (string, error) {
	name := map[string]string{
		"e1000": "e1000", "e1000e": "e1000e", "virtio-net-pci": "virtio", "rtl8139": "rtl8139",
		"pcnet": "pcnet", "ne2k_pci": "ne2k_pci", "vmxnet3": "vmxnet3", "i82557b": "eepro100",
	}[model]
	if name == "" {
		return "", fmt.Errorf("no iPXE ROM known for NIC model %q: set NIC.ROM", model)
	}
	prefix := "pxe-"
	if boot == BootUEFIPXE {
		prefix = "efi-"
	}
	rom := ipxeROMDir + "/" + prefix + name + ".rom"
	return rom, requireFile(rom)
}

// lab is the Lab that c's NICs are on, or nil.
func (c Config) lab() *Lab {
	if len(c.NICs) == 0 {
		return nil
	}
	return c.NICs[0].Bridge.lab
}
