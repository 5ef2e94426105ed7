package harness

import (
	"slices"
	"strings"
	"testing"
)

// pair reports whether args holds flag immediately followed by value.
func pair(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

func specFor(t *testing.T, cfg Config) qemuSpec {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	s := qemuSpec{Config: cfg, Accel: "tcg", QMPSocket: "/r/qmp.sock"}
	for i := range cfg.NICs {
		s.Taps = append(s.Taps, "tap"+string(rune('1'+i)))
	}
	for _, d := range cfg.Disks {
		s.Disks = append(s.Disks, d.Path)
	}
	return s
}

func TestQEMUArgsKernel(t *testing.T) {
	t.Parallel()
	lan := &Bridge{lab: &Lab{}, name: "lan"}
	s := specFor(t, Config{
		Name: "box", Kernel: "qemuargs_test.go", Append: "console=ttyS0 quiet", NoReboot: true,
		NICs:  []NIC{{Bridge: lan, MAC: "52:54:00:00:00:01"}, {Bridge: lan, Model: "virtio-net-pci", LinkDown: true}},
		Disks: []Disk{{Path: "/d/a.qcow2"}, {Path: "/d/b.raw", Format: "raw", Model: "ide-hd"}},
	})
	s.TPMSocket = "/r/swtpm.sock"
	args := qemuArgs(s)
	for _, p := range [][2]string{
		{"-accel", "tcg"},
		{"-machine", "pc"},
		{"-m", "512"},
		{"-smp", "1"},
		{"-display", "none"},
		{"-monitor", "none"},
		{"-serial", "chardev:serial0"},
		{"-chardev", "stdio,id=serial0,signal=off"},
		{"-qmp", "unix:/r/qmp.sock,server=on,wait=off"},
		{"-kernel", "qemuargs_test.go"},
		{"-append", "console=ttyS0 quiet"},
		{"-netdev", "tap,id=net0,ifname=tap1,script=no,downscript=no"},
		{"-device", "e1000,netdev=net0,id=nic0,mac=52:54:00:00:00:01,romfile="},
		{"-netdev", "tap,id=net1,ifname=tap2,script=no,downscript=no"},
		{"-chardev", "socket,id=tpmchr,path=/r/swtpm.sock"},
		{"-tpmdev", "emulator,id=tpm0,chardev=tpmchr"},
		{"-device", "tpm-tis,tpmdev=tpm0"},
		{"-drive", "file=/d/a.qcow2,format=qcow2,if=none,id=disk0"},
		{"-device", "virtio-blk-pci,drive=disk0,serial=disk0"},
		{"-drive", "file=/d/b.raw,format=raw,if=none,id=disk1"},
		{"-device", "ide-hd,drive=disk1,serial=disk1"},
	} {
		if !pair(args, p[0], p[1]) {
			t.Errorf("missing %s %s in %q", p[0], p[1], args)
		}
	}
	for _, flag := range []string{"-S", "-no-reboot"} {
		if !slices.Contains(args, flag) {
			t.Errorf("missing %s", flag)
		}
	}
	if slices.Contains(args, "-nodefaults") || slices.Contains(args, "-initrd") || slices.Contains(args, "-boot") {
		t.Errorf("unexpected flags in %q", args)
	}
	// The second NIC got a random MAC in QEMU's range and no ROM.
	dev := args[slices.Index(args, "tap,id=net1,ifname=tap2,script=no,downscript=no")+2]
	if !strings.HasPrefix(dev, "virtio-net-pci,netdev=net1,id=nic1,mac=52:54:00:") || !strings.HasSuffix(dev, ",romfile=") {
		t.Errorf("second NIC device %q", dev)
	}
}

func TestQEMUArgsNoNIC(t *testing.T) {
	t.Parallel()
	args := qemuArgs(specFor(t, Config{Kernel: "qemuargs_test.go"}))
	if !pair(args, "-nic", "none") {
		t.Errorf("a VM without NICs must say -nic none, or QEMU adds a user-mode NIC: %q", args)
	}
	if !pair(args, "-name", "vm") || slices.Contains(args, "-no-reboot") || slices.Contains(args, "-tpmdev") {
		t.Errorf("defaults: %q", args)
	}
}

// The second serial port comes after the first, so that the guest sees it as ttyS1.
func TestQEMUArgsSecondSerial(t *testing.T) {
	t.Parallel()
	s := specFor(t, Config{Kernel: "qemuargs_test.go", SecondSerial: true})
	s.Serial1Socket = "/r/serial1.sock"
	args := qemuArgs(s)
	if !pair(args, "-chardev", "socket,id=serial1,path=/r/serial1.sock,server=on,wait=off") {
		t.Errorf("no socket chardev for the second serial port: %q", args)
	}
	first, second := slices.Index(args, "chardev:serial0"), slices.Index(args, "chardev:serial1")
	if first < 0 || second < first || args[second-1] != "-serial" {
		t.Errorf("serial ports out of order: %q", args)
	}
	if args := qemuArgs(specFor(t, Config{Kernel: "qemuargs_test.go"})); slices.Contains(args, "chardev:serial1") {
		t.Errorf("a second serial port without SecondSerial: %q", args)
	}
}

func TestQEMUArgsPXE(t *testing.T) {
	t.Parallel()
	lan := &Bridge{lab: &Lab{}, name: "lan"}
	args := qemuArgs(specFor(t, Config{Boot: BootPXE, NICs: []NIC{{Bridge: lan, MAC: "52:54:00:00:00:01"}}}))
	if !pair(args, "-boot", "order=n") || !pair(args, "-machine", "pc") {
		t.Errorf("BIOS PXE: %q", args)
	}
	if !pair(args, "-device", "e1000,netdev=net0,id=nic0,mac=52:54:00:00:00:01,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom") {
		t.Errorf("BIOS PXE needs iPXE's legacy ROM on the NIC: %q", args)
	}
	if slices.Contains(args, "-kernel") {
		t.Errorf("PXE with -kernel: %q", args)
	}
}

func TestQEMUArgsUEFIPXE(t *testing.T) {
	t.Parallel()
	lan := &Bridge{lab: &Lab{}, name: "lan"}
	s := specFor(t, Config{Boot: BootUEFIPXE, NICs: []NIC{{Bridge: lan, MAC: "52:54:00:00:00:01"}, {Bridge: lan, MAC: "52:54:00:00:00:02"}}})
	s.UEFIVars = "/r/vars.fd"
	args := qemuArgs(s)
	for _, p := range [][2]string{
		{"-machine", "q35"},
		{"-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"},
		{"-drive", "if=pflash,format=raw,file=/r/vars.fd"},
		{"-device", "e1000,netdev=net0,id=nic0,mac=52:54:00:00:00:01,romfile=/usr/lib/ipxe/qemu/efi-e1000.rom,bootindex=1"},
		{"-device", "e1000,netdev=net1,id=nic1,mac=52:54:00:00:00:02,romfile=/usr/lib/ipxe/qemu/efi-e1000.rom"},
	} {
		if !pair(args, p[0], p[1]) {
			t.Errorf("missing %s %s in %q", p[0], p[1], args)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	lan := &Bridge{lab: &Lab{}, name: "lan"}
	other := &Bridge{lab: &Lab{}, name: "lan"}
	for name, cfg := range map[string]Config{
		"no kernel":        {},
		"missing kernel":   {Kernel: "/nonexistent/vmlinuz"},
		"bad name":         {Name: "a b", Kernel: "qemuargs_test.go"},
		"PXE without NIC":  {Boot: BootPXE},
		"NIC on no bridge": {Kernel: "qemuargs_test.go", NICs: []NIC{{}}},
		"NICs on two labs": {Kernel: "qemuargs_test.go", NICs: []NIC{{Bridge: lan}, {Bridge: other}}},
		"bad MAC":          {Kernel: "qemuargs_test.go", NICs: []NIC{{Bridge: lan, MAC: "52:54"}}},
		"no ROM for model": {Boot: BootPXE, NICs: []NIC{{Bridge: lan, Model: "virtio-net-device"}}},
		"disk of no size":  {Kernel: "qemuargs_test.go", Disks: []Disk{{}}},
		"unknown boot":     {Boot: Boot(9)},
	} {
		if _, err := cfg.withDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAccelFromEnv(t *testing.T) {
	for env, want := range map[string]string{"": "tcg", "tcg": "tcg", "kvm": "kvm", "hvf": ""} {
		t.Setenv(accelEnv, env)
		got, err := accelFromEnv()
		if got != want || (err != nil) != (want == "") {
			t.Errorf("%s=%q: %q, %v; want %q", accelEnv, env, got, err, want)
		}
	}
}
