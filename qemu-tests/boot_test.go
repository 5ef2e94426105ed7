package qemutests

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

// bootTimeout bounds one boot to the ready line under TCG on a loaded
// 2-core machine; a healthy boot takes 10 to 20 seconds.
const bootTimeout = 3 * time.Minute

// cmdline is the kernel command line of the test boxes: the serial console,
// and DHCP retries fast enough for a test to watch several.
const cmdline = "console=ttyS0,115200 onecloud.dhcp.timeout=2s onecloud.dhcp.backoff=1s,4s"

// (a) A box on a lab network with a DHCP server reaches "onecloud: ready"
// with the lab address, and its inventory names the QEMU NIC, the disk and
// the TPM.
func TestBootToReady(t *testing.T) {
	t.Parallel()
	img := builtImage(t, "image")
	lab := harness.NewLab(t)
	lan := lab.Bridge(t, "lan", "10.77.1.1/24")
	dhcp := lan.DHCP(t, harness.DHCPConfig{})
	const mac = "52:54:00:0c:10:01"
	vm := harness.Start(t, harness.Config{
		Name: "box", Kernel: img.Kernel, Initrd: img.Initrd, Append: cmdline,
		NICs:  []harness.NIC{{Bridge: lan, MAC: mac}},
		TPM:   &harness.TPM{},
		Disks: []harness.Disk{{SizeMB: 64}},
	})
	ctx := t.Context()
	if _, err := vm.Console.Expect(ctx, `(?m)^onecloud: ready`, bootTimeout); err != nil {
		t.Fatal(err)
	}
	out := vm.Console.Output()

	// The lab's DHCP server handed out an address, and the status shows it.
	leases, err := dhcp.Leases()
	if err != nil || len(leases) != 1 || leases[0].MAC != mac {
		t.Fatalf("dnsmasq leases = %+v (%v), want one for %s", leases, err, mac)
	}
	addr := leases[0].Addr.String()
	mustShow(t, out, `Network: connected, `+regexp.QuoteMeta(addr)+`/24 on eth0`)
	mustShow(t, out, `eth0 +`+mac+` +e1000 +`+regexp.QuoteMeta(addr)+`/24 gw 10\.77\.1\.1 dhcp 1h`)
	// The inventory table of the boot log and the status screen.
	mustShow(t, out, `(?m)^eth0 +`+mac+` +e1000 +0000:00:\S+ `)
	mustShow(t, out, `(?m)^vda +64 MiB +\S+ +virtio`)
	mustShow(t, out, `(?m)^TPM +2\.0 IBM`)
	mustShow(t, out, `TPM 2\.0 IBM`)
	mustShow(t, out, `Services: (\S+ running, )*noded running`) // the node console runs beside it
	// Measured boot: the image and the role configuration went into PCR 13.
	mustShow(t, out, `onecloud: measured image /etc/onecloud/release\.json into PCR 13`)
	mustShow(t, out, `onecloud: measured role configuration into PCR 13`)
	mustShow(t, out, `onecloud \S+ +commit [0-9a-f]{12}`)

	// The power button powers the box off in order.
	if err := vm.Stop(ctx); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	mustShow(t, vm.Console.Output(), `onecloud: power off`)
	mustNotShow(t, vm.Console.Output(), `panic|goroutine \d+ \[`)
}

// (b) The same box with no DHCP answer: the status says so, the firmware
// keeps retrying with growing pauses, and nothing panics.
func TestNoDHCPAnswer(t *testing.T) {
	t.Parallel()
	img := builtImage(t, "image")
	lab := harness.NewLab(t)
	lan := lab.Bridge(t, "lan", "10.77.2.1/24") // no DHCP server on it
	vm := harness.Start(t, harness.Config{
		Name: "box", Kernel: img.Kernel, Initrd: img.Initrd, Append: cmdline,
		NICs: []harness.NIC{{Bridge: lan}},
		TPM:  &harness.TPM{},
	})
	ctx := t.Context()
	if _, err := vm.Console.Expect(ctx, `Network: NOT CONNECTED: no DHCP answer yet, still trying`, bootTimeout); err != nil {
		t.Fatal(err)
	}
	// Retries go on: the fourth failed attempt is reported.
	if _, err := vm.Console.Expect(ctx, `no DHCP answer \(try 4\), again in \d+s`, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	out := vm.Console.Output()
	mustShow(t, out, `level=WARN msg="no DHCP lease yet; retrying" nic=eth0 attempt=3`)
	mustNotShow(t, out, `onecloud: ready`)
	mustNotShow(t, out, `panic|goroutine \d+ \[`)
	select {
	case <-vm.Done():
		t.Fatal("the VM stopped while waiting for DHCP")
	default:
	}
}

// (c) Two NICs, only the second with a link: the firmware configures the
// second and shows the first as unplugged.
func TestSecondNICWithLink(t *testing.T) {
	t.Parallel()
	img := builtImage(t, "image")
	lab := harness.NewLab(t)
	lan := lab.Bridge(t, "lan", "10.77.3.1/24")
	lan.DHCP(t, harness.DHCPConfig{})
	vm := harness.Start(t, harness.Config{
		Name: "box", Kernel: img.Kernel, Initrd: img.Initrd, Append: cmdline,
		NICs: []harness.NIC{{Bridge: lan, LinkDown: true}, {Bridge: lan}},
	})
	if _, err := vm.Console.Expect(t.Context(), `(?m)^onecloud: ready`, bootTimeout); err != nil {
		t.Fatal(err)
	}
	out := vm.Console.Output()
	mustShow(t, out, `Network: connected, 10\.77\.3\.\d+/24 on eth1\n`)
	mustShow(t, out, `eth0 +\S+ +e1000 +no link\n`)
	mustNotShow(t, out, `nic=eth0 attempt`)
}

func mustShow(t *testing.T, out, pattern string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(out) {
		t.Errorf("console never showed %q; console tail:\n%s", pattern, tail(out, 40))
	}
}

func mustNotShow(t *testing.T, out, pattern string) {
	t.Helper()
	if m := regexp.MustCompile(pattern).FindString(out); m != "" {
		t.Errorf("console showed %q (matching %q); console tail:\n%s", m, pattern, tail(out, 40))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
