package modload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// A miniature module tree as the image-builder writes it: e1000 for a PCI
// NIC, virtio_pci as a bus driver whose children need virtio_net and
// virtio_blk, and net_failover as a dependency chain of virtio_net.
const (
	depFile = `kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/block/virtio_blk.ko:
kernel/drivers/gpu/drm/tiny/bochs.ko:
kernel/arch/x86/kvm/kvm-intel.ko: kernel/arch/x86/kvm/kvm.ko
kernel/arch/x86/kvm/kvm.ko:
kernel/drivers/input/evdev.ko:
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko
kernel/net/802/stp.ko:
`
	aliasFile = `# Aliases extracted from modules themselves.
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias virtio:d00000002v* virtio_blk
alias pci:v00001234d00001111sv*sd*bc03sc*i* bochs
alias cpu:type:x86,ven*fam*mod*:feature:*0085* kvm_intel
alias input:b*v*p*e*-e*k*r*a*m*l*s*f*w* evdev
`
	builtinFile = "kernel/drivers/char/tpm/tpm_tis.ko\n"
)

// addDevice makes a device in sys/devices with its modalias and links it
// from sys/bus/<bus>/devices, as the kernel does.
func addDevice(root, bus, devPath, modalias string) error {
	dir := filepath.Join(root, "sys/devices", devPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "modalias"), []byte(modalias+"\n"), 0o444); err != nil {
		return err
	}
	links := filepath.Join(root, "sys/bus", bus, "devices")
	if err := os.MkdirAll(links, 0o755); err != nil {
		return err
	}
	target, err := filepath.Rel(links, dir)
	if err != nil {
		return err
	}
	return os.Symlink(target, filepath.Join(links, filepath.Base(devPath)))
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// fakeKernel records insertions. Inserting virtio_pci makes the virtio
// children appear in sysfs, the way the real bus driver does.
type fakeKernel struct {
	root     string
	inserted []string
	params   map[string]string
	fail     map[string]error
	events   []string // modaliases of devices added, for Added
}

// Added makes fakeKernel a DeviceEvents too.
func (k *fakeKernel) Added() ([]string, error) {
	out := k.events
	k.events = nil
	return out, nil
}

func (k *fakeKernel) Insert(path, params string) error {
	name := Name(path)
	if err := k.fail[name]; err != nil {
		return err
	}
	k.inserted = append(k.inserted, name)
	if params != "" {
		k.params[name] = params
	}
	if name == "virtio_pci" {
		for _, d := range []struct{ path, alias string }{
			{"pci0000:00/0000:00:04.0/virtio0", "virtio:d00000001v00001AF4"},
			{"pci0000:00/0000:00:05.0/virtio1", "virtio:d00000002v00001AF4"},
		} {
			if err := addDevice(k.root, "virtio", d.path, d.alias); err != nil {
				return err
			}
			k.events = append(k.events, d.alias)
		}
	}
	return nil
}

func newBox(t *testing.T) (string, *Index) {
	root := writeTree(t, map[string]string{
		"lib/modules/6.1.0-test/modules.dep":               depFile,
		"lib/modules/6.1.0-test/modules.alias":             aliasFile,
		"lib/modules/6.1.0-test/modules.builtin":           builtinFile,
		"sys/devices/platform/serial8250/tty/ttyS0/uevent": "MAJOR=4\n",
		"sys/devices/system/cpu/modalias":                  "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,0085\n",
	})
	for _, d := range []struct{ bus, path, alias string }{
		{"pci", "pci0000:00/0000:00:03.0", "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00"},
		{"pci", "pci0000:00/0000:00:04.0", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"},
		{"pci", "pci0000:00/0000:00:05.0", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"},
		{"pci", "pci0000:00/0000:00:06.0", "pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00"}, // no driver here
		{"acpi", "LNXSYSTM:00/LNXSYBUS:00/MSFT0101:00", "acpi:MSFT0101:"},
	} {
		if err := addDevice(root, d.bus, d.path, d.alias); err != nil {
			t.Fatal(err)
		}
	}
	// Input devices are a class: sys/class/input/input0 -> ../../devices/...
	dev := filepath.Join(root, "sys/devices/platform/i8042/serio0/input/input0")
	os.MkdirAll(dev, 0o755)
	os.WriteFile(filepath.Join(dev, "modalias"), []byte("input:b0011v0001p0001eAB41-e0,1,4,11,14,k71,72,ramlsfw\n"), 0o444)
	os.MkdirAll(filepath.Join(root, "sys/class/input"), 0o755)
	os.Symlink("../../devices/platform/i8042/serio0/input/input0", filepath.Join(root, "sys/class/input/input0"))
	ix, err := ReadIndex(filepath.Join(root, "lib/modules/6.1.0-test"))
	if err != nil {
		t.Fatal(err)
	}
	return root, ix
}

func TestColdplug(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cmdline    string
		skip       []string
		extra      []string
		fail       map[string]error
		wantLoaded []string
		wantFailed []string
		wantParams map[string]string
	}{
		{
			name:       "devices pull their drivers, bus children in a second round",
			wantLoaded: []string{"e1000", "kvm", "kvm_intel", "evdev", "virtio_pci_modern_dev", "virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk"},
		},
		{
			name:       "module parameters from the command line",
			cmdline:    "console=ttyS0 e1000.debug=16 e1000.copybreak=0 virtio-net.napi_tx=1 e1000.flag",
			wantLoaded: []string{"e1000", "kvm", "kvm_intel", "evdev", "virtio_pci_modern_dev", "virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk"},
			wantParams: map[string]string{"e1000": "debug=16 copybreak=0", "virtio_net": "napi_tx=1"},
		},
		{
			name:       "skip list",
			skip:       []string{"e1000", "virtio-blk"},
			wantLoaded: []string{"kvm", "kvm_intel", "evdev", "virtio_pci_modern_dev", "virtio_pci", "failover", "net_failover", "virtio_net"},
		},
		{
			name:       "a failing module does not stop the others",
			fail:       map[string]error{"failover": errors.New("exec format error")},
			wantLoaded: []string{"e1000", "kvm", "kvm_intel", "evdev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk"},
			wantFailed: []string{"failover", "virtio_net"},
		},
		{
			name:       "already loaded is fine",
			fail:       map[string]error{"e1000": ErrAlreadyLoaded},
			wantLoaded: []string{"kvm", "kvm_intel", "evdev", "virtio_pci_modern_dev", "virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk"},
		},
		{
			name:       "extra modules, unknown extra reported",
			extra:      []string{"bridge", "no_such_mod", "tpm_tis"},
			wantLoaded: []string{"stp", "bridge", "e1000", "kvm", "kvm_intel", "evdev", "virtio_pci_modern_dev", "virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk"},
			wantFailed: []string{"no_such_mod"},
		},
	} {
		for _, events := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/events=%v", tc.name, events), func(t *testing.T) {
				root, ix := newBox(t)
				k := &fakeKernel{root: root, params: map[string]string{}, fail: tc.fail}
				c := Coldplug{
					Index: ix, Inserter: k, SysDir: filepath.Join(root, "sys"),
					Cmdline: tc.cmdline, Skip: tc.skip, Extra: tc.extra,
				}
				if events {
					c.Events = k // devices added by drivers come as events, no rescan
				}
				r := c.Run(context.Background())
				if !reflect.DeepEqual(k.inserted, tc.wantLoaded) {
					t.Errorf("inserted %q, want %q", k.inserted, tc.wantLoaded)
				}
				var failed []string
				for m := range r.Failed {
					failed = append(failed, m)
				}
				if len(failed) != len(tc.wantFailed) {
					t.Errorf("failed = %v, want %q", r.Failed, tc.wantFailed)
				}
				for _, m := range tc.wantFailed {
					if r.Failed[m] == "" {
						t.Errorf("module %s should be reported as failed; report %v", m, r.Failed)
					}
				}
				if tc.wantParams == nil {
					tc.wantParams = map[string]string{}
				}
				if !reflect.DeepEqual(k.params, tc.wantParams) {
					t.Errorf("params %q, want %q", k.params, tc.wantParams)
				}
			})
		}
	}
}

func TestOrderErrors(t *testing.T) {
	root := writeTree(t, map[string]string{
		"m/modules.dep": "a.ko: b.ko\nb.ko: a.ko\nc.ko: missing.ko\n",
	})
	ix, err := ReadIndex(filepath.Join(root, "m"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"a":      "cycle: a -> b -> a",
		"c":      "module c needs missing, which is not in this image",
		"nosuch": "module nosuch is not in this image",
	} {
		if _, err := ix.Order(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Order(%s) error = %v, want %q", name, err, want)
		}
	}
}

func TestReadIndexErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{name: "no index", files: map[string]string{"m/x": ""}, want: "rebuild it with image-builder"},
		{name: "bad dep line", files: map[string]string{"m/modules.dep": "a.ko b.ko\n"}, want: "modules.dep line 1"},
		{name: "bad alias line", files: map[string]string{"m/modules.dep": "a.ko:\n", "m/modules.alias": "# c\nalias x\n"}, want: "modules.alias line 2"},
		{name: "bad pattern", files: map[string]string{"m/modules.dep": "a.ko:\n", "m/modules.alias": "alias pci:[ a\n"}, want: "bad pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, tc.files)
			_, err := ReadIndex(filepath.Join(root, "m"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadIndex error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	_, ix := newBox(t)
	for alias, want := range map[string][]string{
		"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00": {"e1000"},
		"pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00": {"bochs"},
		"pci:v00001234d00001111sv00001AF4sd00001100bc02sc00i00": nil,
		"acpi:MSFT0101:": nil,
	} {
		if got := ix.Match(alias); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%s) = %q, want %q", alias, got, want)
		}
	}
}

// The firmware loads what the network needs first and the rest (graphics
// here) in a second pass that skips what is already in the kernel.
func TestTwoPasses(t *testing.T) {
	root, ix := newBox(t)
	if err := addDevice(root, "pci", "pci0000:00/0000:00:02.0", "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00"); err != nil {
		t.Fatal(err)
	}
	k := &fakeKernel{root: root, params: map[string]string{}}
	first := Coldplug{Index: ix, Inserter: k, SysDir: filepath.Join(root, "sys"), Want: BootCritical}
	r1 := first.Run(context.Background())
	if want := []string{"e1000", "evdev", "virtio_pci_modern_dev", "virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk"}; !reflect.DeepEqual(r1.Loaded, want) {
		t.Errorf("first pass loaded %q, want %q", r1.Loaded, want)
	}
	second := Coldplug{Index: ix, Inserter: k, SysDir: filepath.Join(root, "sys"), Loaded: r1.Loaded}
	r2 := second.Run(context.Background())
	if want := []string{"kvm", "kvm_intel", "bochs"}; !reflect.DeepEqual(r2.Loaded, want) {
		t.Errorf("second pass loaded %q, want %q", r2.Loaded, want)
	}
	if len(k.inserted) != 11 {
		t.Errorf("inserted %q: a module was read twice", k.inserted)
	}
}

func TestLoadedModules(t *testing.T) {
	root := writeTree(t, map[string]string{"proc/modules": "e1000 159744 0 - Live 0x0000000000000000\nvirtio_net 61440 0 - Live 0x0\n\n"})
	got, err := LoadedModules(filepath.Join(root, "proc/modules"))
	if err != nil || !reflect.DeepEqual(got, []string{"e1000", "virtio_net"}) {
		t.Errorf("LoadedModules = %q, %v", got, err)
	}
}

// BenchmarkMatch runs the real alias list of the image against the
// modaliases of a QEMU guest, the work of one coldplug round.
func BenchmarkMatch(b *testing.B) {
	ix := &Index{}
	for i := range 800 {
		ix.aliasLine(fmt.Sprintf("alias pci:v%08Xd%08Xsv*sd*bc*sc*i* mod%d", 0x8086, i, i%50))
	}
	for i := range 450 {
		ix.aliasLine(fmt.Sprintf("alias usb:v%04Xp%04Xd*dc*dsc*dp*ic*isc*ip*in* usbmod%d", 0x0bda, i, i%20))
	}
	devices := []string{
		"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00",
		"pci:v00008086d00007000sv00001AF4sd00001100bc06sc01i00",
		"pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00",
		"acpi:PNP0A03:", "platform:serial8250", "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001",
	}
	for b.Loop() {
		for range 8 { // a guest has some 50 modaliases
			for _, d := range devices {
				ix.Match(d)
			}
		}
	}
}
