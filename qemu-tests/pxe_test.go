package qemutests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

// pxeTimeout bounds one network boot to the ready line under TCG: the NIC
// ROM's DHCP, the iPXE script, 18 MB over HTTP, then our boot (about 60 s
// on a quiet machine, three times that when the tests run in parallel).
const pxeTimeout = 5 * time.Minute

// pxeArgs is what bootstrapd adds to every test box's kernel command line:
// the serial console and DHCP retries quick enough for a test to watch.
const pxeArgs = "console=ttyS0,115200 onecloud.dhcp.timeout=2s onecloud.dhcp.backoff=1s,4s"

// bootServer is a bootstrapd running on a lab network, as in the machine room.
type bootServer struct {
	bin, state, socket string
	d                  *harness.Daemon
}

// startBootServer builds bootstrapd, publishes the test image into a fresh
// state folder and starts it in the lab's namespace with cfg (a
// bootstrap.Config as JSON, where "iface", "address" and "kernel_args" are
// filled in from the bridge).
func startBootServer(t *testing.T, lan *harness.Bridge, cfg map[string]any) *bootServer {
	t.Helper()
	img := builtImage(t, "image")
	dir := t.TempDir()
	bs := &bootServer{
		bin:    filepath.Join(dir, "bootstrapd"),
		state:  filepath.Join(dir, "state"),
		socket: filepath.Join(dir, "bootstrapd.sock"),
	}
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bs.bin, "../bootstrap/cmd/bootstrapd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build bootstrapd: %v\n%s", err, out)
	}
	cfg["iface"] = lan.Name()
	cfg["address"] = lan.Addr().Addr().String()
	cfg["kernel_args"] = pxeArgs
	cfgFile := filepath.Join(dir, "bootstrap.json")
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(t.Context(), bs.bin, "publish", "-state", bs.state, filepath.Dir(img.Kernel)).CombinedOutput(); err != nil {
		t.Fatalf("bootstrapd publish: %v\n%s", err, out)
	}
	bs.d = lan.Lab().Daemon(t, harness.DaemonConfig{
		Name:  "bootstrapd",
		Argv:  []string{bs.bin, "serve", "-config", cfgFile, "-state", bs.state, "-socket", bs.socket},
		Ready: `bootstrapd: serving`,
	})
	return bs
}

// machines runs `bootstrapd machines ARGS...` against the running server.
func (bs *bootServer) machines(t *testing.T, args ...string) string {
	t.Helper()
	return bs.cli(t, append([]string{"machines"}, args...)...)
}

// cli runs `bootstrapd ARGS... -socket SOCKET` against the running server.
func (bs *bootServer) cli(t *testing.T, args ...string) string {
	t.Helper()
	argv := append(args[:len(args):len(args)], "-socket", bs.socket)
	cmd := exec.CommandContext(t.Context(), bs.bin, argv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("bootstrapd %s: %v\n%s", strings.Join(argv, " "), err, out.String())
	}
	return out.String()
}

// machineID is the inbox id of a box: oc- and its boot MAC in hex.
func machineID(mac string) string { return "oc-" + strings.ReplaceAll(mac, ":", "") }

// fullMode is a bootstrapd config that runs the lab's DHCP.
func fullMode(lan *harness.Bridge, extra map[string]any) map[string]any {
	p := lan.Addr().Masked()
	base := p.Addr().As4()
	at := func(n byte) string { a := base; a[3] = n; return netip.AddrFrom4(a).String() }
	cfg := map[string]any{
		"mode": "full",
		"pools": []map[string]any{{
			"subnet": p.String(), "first": at(100), "last": at(199),
			"router": lan.Addr().Addr().String(), "lease": "1h",
		}},
	}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

// (a) A blank terminal with an iPXE NIC ROM under SeaBIOS, bootstrapd in
// full mode, a rule that approves the lab's MACs: the box boots from the
// network to "onecloud: ready" in its role, with no hand on it.
func TestPXEBIOSFullMode(t *testing.T) {
	t.Parallel()
	lab := harness.NewLab(t)
	lan := lab.Bridge(t, "lan", "10.77.11.1/24")
	const mac = "52:54:00:0c:11:01"
	bs := startBootServer(t, lan, fullMode(lan, map[string]any{
		"rules": []map[string]any{{"name": "lab", "mac_prefixes": []string{"52:54:00:0c:11"}, "role": "vdi", "school": "s01"}},
	}))
	vm := harness.Start(t, harness.Config{Name: "term", Boot: harness.BootPXE, NICs: []harness.NIC{{Bridge: lan, MAC: mac}}})
	ctx := t.Context()
	if _, err := vm.Console.Expect(ctx, `(?m)^onecloud: ready`, pxeTimeout); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Console.Seen(ctx, `onecloud: enrolment approved, id `+machineID(mac), time.Minute); err != nil {
		t.Fatal(err)
	}
	out := vm.Console.Output()
	mustShow(t, out, `onecloud: role vdi, school s01`)
	mustShow(t, out, `Role: vdi  school s01`)
	mustShow(t, out, `onecloud\.role=vdi`) // the kernel line the script gave
	mustShow(t, out, `Network: connected, 10\.77\.11\.1\d\d/24 on eth0`)
	list := bs.machines(t, "list", "-json")
	if !strings.Contains(list, machineID(mac)) || !strings.Contains(list, `"approved"`) || !strings.Contains(list, "rule:lab") {
		t.Errorf("bootstrapd machines list -json:\n%s\nwant %s approved by rule:lab", list, machineID(mac))
	}
	log := bs.d.Output()
	mustShow(t, log, `msg=ack service=dhcp mac=`+mac+` class=ipxe `)
	mustShow(t, log, `msg="file served" service=http mac=`+mac+` .*/vmlinuz status=200`)
	stats := bs.cli(t, "stats")
	mustShow(t, stats, `requests from ipxe\s+[1-9]`)
	mustShow(t, stats, `requests from onecloud-firmware\s+[1-9]`)
	mustShow(t, stats, `enrolments\s+[1-9]`)
	stopClean(t, vm)
}

// (d) An unknown machine waits in the inbox; the technician approves it with
// the CLI; the box reboots by itself and its next boot is in its role.
func TestPXEUnknownThenApproved(t *testing.T) {
	t.Parallel()
	lab := harness.NewLab(t)
	lan := lab.Bridge(t, "lan", "10.77.14.1/24")
	const mac = "52:54:00:0c:14:01"
	id := machineID(mac)
	bs := startBootServer(t, lan, fullMode(lan, nil))
	vm := harness.Start(t, harness.Config{Name: "term", Boot: harness.BootPXE, NICs: []harness.NIC{{Bridge: lan, MAC: mac}}})
	ctx := t.Context()
	if _, err := vm.Console.Expect(ctx, `waiting for approval`, pxeTimeout); err != nil {
		t.Fatal(err)
	}
	mustShow(t, vm.Console.Output(), regexp.QuoteMeta(id))
	if list := bs.machines(t, "list"); !regexp.MustCompile(regexp.QuoteMeta(id) + `\s+pending`).MatchString(list) {
		t.Fatalf("bootstrapd machines list:\n%s\nwant %s pending", list, id)
	}
	bs.machines(t, "approve", id, "-role", "tci", "-school", "s02")
	if _, err := vm.Console.Expect(ctx, `approved as tci, rebooting`, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Console.Expect(ctx, `onecloud: role tci, school s02`, pxeTimeout); err != nil {
		t.Fatal(err)
	}
	if list := bs.machines(t, "list"); !regexp.MustCompile(regexp.QuoteMeta(id) + `\s+approved\s+tci\s+s02`).MatchString(list) {
		t.Errorf("bootstrapd machines list:\n%s\nwant %s approved tci s02", list, id)
	}
	stopClean(t, vm)
}

// (b) proxyDHCP: dnsmasq plays the school's DHCP server and hands out
// addresses only; bootstrapd in proxy mode adds the boot information. The
// terminal's address comes from dnsmasq, its boot from us.
func TestPXEProxyDHCP(t *testing.T) {
	t.Parallel()
	lab := harness.NewLab(t)
	lan := lab.Bridge(t, "lan", "10.77.12.1/24")
	school := lan.DHCP(t, harness.DHCPConfig{})
	const mac = "52:54:00:0c:12:01"
	bs := startBootServer(t, lan, map[string]any{
		"mode":  "proxy",
		"rules": []map[string]any{{"name": "school-12", "subnet": "10.77.12.0/24", "role": "vdi", "school": "s12"}},
	})
	vm := harness.Start(t, harness.Config{Name: "term", Boot: harness.BootPXE, NICs: []harness.NIC{{Bridge: lan, MAC: mac}}})
	ctx := t.Context()
	if _, err := vm.Console.Expect(ctx, `(?m)^onecloud: ready`, pxeTimeout); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Console.Seen(ctx, `onecloud: enrolment approved, id `+machineID(mac), time.Minute); err != nil {
		t.Fatal(err)
	}
	mustShow(t, vm.Console.Output(), `onecloud: role vdi, school s12`)
	leases, err := school.Leases()
	if err != nil || len(leases) != 1 || leases[0].MAC != mac {
		t.Fatalf("dnsmasq leases = %+v (%v), want one for %s", leases, err, mac)
	}
	mustShow(t, vm.Console.Output(), `Network: connected, `+regexp.QuoteMeta(leases[0].Addr.String())+`/24 on eth0`)
	// We never handed out an address, only boot information.
	log := bs.d.Output()
	mustShow(t, log, `mac=`+mac+`.*port=(67|4011)`)
	mustNotShow(t, log, `msg=ack .*mac=`+mac+`.*addr=10\.77\.12\.[1-9]`)
	stopClean(t, vm)
}

// (c) UEFI: OVMF with its own network stack (no iPXE ROM in the NIC) boots
// by UEFI PXE: snponly.efi over our TFTP, then iPXE fetches its script and
// the image over HTTP.
func TestPXEUEFI(t *testing.T) {
	t.Parallel()
	lab := harness.NewLab(t)
	lan := lab.Bridge(t, "lan", "10.77.13.1/24")
	const mac = "52:54:00:0c:13:01"
	bs := startBootServer(t, lan, fullMode(lan, map[string]any{
		"machines": []map[string]any{{"mac": mac, "role": "idv", "school": "s13"}},
	}))
	vm := harness.Start(t, harness.Config{
		Name: "term", Boot: harness.BootUEFIPXE, MemoryMB: 768,
		NICs: []harness.NIC{{Bridge: lan, MAC: mac, Model: "virtio-net-pci", ROM: harness.NoROM}},
	})
	ctx := t.Context()
	if _, err := vm.Console.Expect(ctx, `(?m)^onecloud: ready`, pxeTimeout); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Console.Seen(ctx, `onecloud: enrolment approved, id `+machineID(mac), time.Minute); err != nil {
		t.Fatal(err)
	}
	mustShow(t, vm.Console.Output(), `onecloud: role idv, school s13`)
	log := bs.d.Output()
	mustShow(t, log, `mac=`+mac+` class=uefi-pxe .*file=snponly\.efi`)
	mustShow(t, log, `mac=`+mac+` class=ipxe `)
	mustShow(t, log, `msg="tftp: transfer completed" service=tftp mac=`+mac+` .*file=snponly\.efi`)
	stopClean(t, vm)
}

// (e) bootstrapd is restarted while a box holds a lease: the box renews with
// the new process and keeps its address, and the lease, kept on disk, is
// not handed to the next box.
func TestPXELeaseSurvivesRestart(t *testing.T) {
	t.Parallel()
	lab := harness.NewLab(t)
	lan := lab.Bridge(t, "lan", "10.77.15.1/24")
	const mac1, mac2 = "52:54:00:0c:15:01", "52:54:00:0c:15:02"
	cfg := fullMode(lan, map[string]any{
		"rules": []map[string]any{{"name": "lab", "mac_prefixes": []string{"52:54:00:0c:15"}, "role": "vdi", "school": "s15"}},
	})
	// A short lease, so the box renews (at half of it) within the test.
	cfg["pools"].([]map[string]any)[0]["lease"] = "90s"
	bs := startBootServer(t, lan, cfg)
	vm1 := harness.Start(t, harness.Config{Name: "term1", Boot: harness.BootPXE, NICs: []harness.NIC{{Bridge: lan, MAC: mac1}}})
	ctx := t.Context()
	m, err := vm1.Console.Expect(ctx, `Network: connected, (10\.77\.15\.\d+)/24 on eth0`, pxeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	addr := m[1]
	if _, err := vm1.Console.Expect(ctx, `(?m)^onecloud: ready`, time.Minute); err != nil {
		t.Fatal(err)
	}

	bs.d.Stop()
	if err := bs.d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := regexp.MustCompile(`msg=ack .*mac=` + mac1 + ` .*addr=` + regexp.QuoteMeta(addr) + ` `)
	deadline := time.Now().Add(2 * time.Minute)
	for !renewed.MatchString(bs.d.Output()) {
		if time.Now().After(deadline) {
			t.Fatalf("the box did not renew %s with the restarted bootstrapd within 2 minutes; its log:\n%s", addr, bs.d.Output())
		}
		time.Sleep(time.Second)
	}
	mustNotShow(t, vm1.Console.Output(), `lease expired`)

	// A second box after the restart gets another address.
	vm2 := harness.Start(t, harness.Config{Name: "term2", Boot: harness.BootPXE, NICs: []harness.NIC{{Bridge: lan, MAC: mac2}}})
	m2, err := vm2.Console.Expect(ctx, `Network: connected, (10\.77\.15\.\d+)/24 on eth0`, pxeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if m2[1] == addr {
		t.Errorf("the second box got %s, the address the first box still holds", addr)
	}
	stopClean(t, vm1)
	stopClean(t, vm2)
}

// (f) Two terminals boot at once and both come up, each with its own
// address.
func TestPXETwoTerminals(t *testing.T) {
	t.Parallel()
	lab := harness.NewLab(t)
	lan := lab.Bridge(t, "lan", "10.77.16.1/24")
	bs := startBootServer(t, lan, fullMode(lan, map[string]any{
		"rules": []map[string]any{{"name": "lab", "mac_prefixes": []string{"52:54:00:0c:16"}, "role": "vdi", "school": "s16"}},
	}))
	macs := []string{"52:54:00:0c:16:01", "52:54:00:0c:16:02"}
	var vms []*harness.VM
	for i, mac := range macs {
		vms = append(vms, harness.Start(t, harness.Config{
			Name: fmt.Sprintf("term%d", i+1), Boot: harness.BootPXE, NICs: []harness.NIC{{Bridge: lan, MAC: mac}},
		}))
	}
	ctx := t.Context()
	addrs := map[string]bool{}
	for i, vm := range vms {
		m, err := vm.Console.Expect(ctx, `Network: connected, (10\.77\.16\.\d+)/24 on eth0`, pxeTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if addrs[m[1]] {
			t.Errorf("two terminals got %s", m[1])
		}
		addrs[m[1]] = true
		if _, err := vm.Console.Seen(ctx, `onecloud: enrolment approved, id `+machineID(macs[i]), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	list := bs.machines(t, "list")
	for _, mac := range macs {
		if !regexp.MustCompile(regexp.QuoteMeta(machineID(mac)) + `\s+approved\s+vdi\s+s16`).MatchString(list) {
			t.Errorf("bootstrapd machines list:\n%s\nwant %s approved vdi s16", list, machineID(mac))
		}
	}
	for _, vm := range vms {
		stopClean(t, vm)
	}
}

// stopClean powers the box off and checks that nothing panicked on the way.
func stopClean(t *testing.T, vm *harness.VM) {
	t.Helper()
	if err := vm.Stop(t.Context()); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	mustNotShow(t, vm.Console.Output(), `panic|goroutine \d+ \[`)
}
