//go:build ignore

// record boots QEMU guests on a lab network and saves the raw bytes of the DHCP DISCOVERs they send, as
// seeds for FuzzClassify and as fixtures for the classifier's tests. Nobody answers, so each client keeps
// repeating its DISCOVER until enough are saved. Run it as root from the repository root, after
// `make image` (for our firmware's kernel and initramfs):
//
//	go run ./bootstrap/classify/testdata/record.go [-out bootstrap/classify/testdata/packets] [-n 2]
//
// Sources (files are <source>-<n>.bin):
//
//	seabios-ipxe       SeaBIOS + iPXE ROM pxe-e1000.rom (harness.BootPXE)
//	ovmf-ipxe          OVMF + iPXE EFI ROM efi-e1000.rom (harness.BootUEFIPXE)
//	ovmf-pxe/ovmf-http OVMF's own network stack on virtio-net with no option ROM: it tries PXE first
//	                   (vendor class PXEClient), then HTTP boot (HTTPClient)
//	onecloud-firmware  our firmware's DHCP client (harness.BootKernel, out/image)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

func main() {
	out := flag.String("out", "bootstrap/classify/testdata/packets", "folder for the <source>-<n>.bin files")
	n := flag.Int("n", 2, "DISCOVERs to save per source")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up on sources still missing after this long")
	image := flag.String("image", "out/image", "folder with our firmware's vmlinuz and initramfs.cpio.gz")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s := harness.NewSession(ctx, "record-dhcp", os.Stderr)
	defer s.Close()
	if err := run(ctx, s, *out, *n, *image); err != nil {
		s.Close()
		log.Fatal(err)
	}
}

// vm is one guest to record, known by the MAC of its NIC.
type vm struct {
	mac    string
	source func(p *dhcpv4.DHCPv4) string // the file stem of a packet from this guest
	cfg    harness.Config
}

func fixed(name string) func(*dhcpv4.DHCPv4) string {
	return func(*dhcpv4.DHCPv4) string { return name }
}

func run(ctx context.Context, s *harness.Session, out string, n int, image string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	lab := harness.NewLab(s)
	lan := lab.Bridge(s, "lan", "10.77.1.1/24")

	var conn *net.UDPConn
	if err := lab.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 67})
		return err
	}); err != nil {
		return fmt.Errorf("listen on the lab's port 67: %w", err)
	}
	defer conn.Close()

	vms := []vm{
		{mac: "52:54:00:0c:00:01", source: fixed("seabios-ipxe"), cfg: harness.Config{Name: "seabios-ipxe", Boot: harness.BootPXE}},
		{mac: "52:54:00:0c:00:02", source: fixed("ovmf-ipxe"), cfg: harness.Config{Name: "ovmf-ipxe", Boot: harness.BootUEFIPXE}},
		{mac: "52:54:00:0c:00:03", source: func(p *dhcpv4.DHCPv4) string {
			if strings.HasPrefix(p.ClassIdentifier(), "HTTPClient") {
				return "ovmf-http"
			}
			return "ovmf-pxe"
		}, cfg: harness.Config{Name: "ovmf-native", Boot: harness.BootUEFIPXE}},
		{mac: "52:54:00:0c:00:04", source: fixed("onecloud-firmware"), cfg: harness.Config{
			Name: "firmware", Boot: harness.BootKernel,
			Kernel: filepath.Join(image, "vmlinuz"), Initrd: filepath.Join(image, "initramfs.cpio.gz"),
			Append: "console=ttyS0,115200 onecloud.dhcp.timeout=2s onecloud.dhcp.backoff=1s,2s",
		}},
	}
	// want counts what is still missing per source.
	want := map[string]int{"seabios-ipxe": n, "ovmf-ipxe": n, "ovmf-pxe": n, "ovmf-http": n, "onecloud-firmware": n}
	byMAC := map[string]vm{}
	for i := range vms {
		v := &vms[i]
		nic := harness.NIC{Bridge: lan, MAC: v.mac}
		if v.cfg.Name == "ovmf-native" {
			// OVMF's own virtio-net driver, PXE and HTTP boot need the NIC without iPXE's ROM. The
			// harness always names a romfile for PXE boots, and QEMU rejects an empty file; a second
			// romfile= property wins over the first, which leaves the NIC with none.
			nic.Model = "virtio-net-pci"
			nic.ROM = "/dev/null,romfile="
		}
		v.cfg.NICs = []harness.NIC{nic}
		byMAC[v.mac] = *v
	}

	started := map[string]*harness.VM{}
	for _, v := range vms {
		started[v.mac] = harness.Start(s, v.cfg)
	}
	// The guests that still owe packets; a guest is stopped once all its sources are done.
	pending := func(v vm) bool {
		if v.cfg.Name == "ovmf-native" {
			return want["ovmf-pxe"] > 0 || want["ovmf-http"] > 0
		}
		return want[v.source(nil)] > 0
	}

	buf := make([]byte, 65536)
	go func() { <-ctx.Done(); conn.SetReadDeadline(time.Now()) }()
	for {
		left := 0
		for _, c := range want {
			left += c
		}
		if left == 0 {
			break
		}
		nr, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("gave up with packets still missing %v: %w", want, ctx.Err())
			}
			return err
		}
		p, err := dhcpv4.FromBytes(buf[:nr])
		if err != nil {
			log.Printf("unparsable packet from %s: %v", from, err)
			continue
		}
		v, ok := byMAC[p.ClientHWAddr.String()]
		if !ok || p.MessageType() != dhcpv4.MessageTypeDiscover {
			continue
		}
		src := v.source(p)
		if want[src] > 0 {
			name := filepath.Join(out, fmt.Sprintf("%s-%d.bin", src, n-want[src]+1))
			if err := os.WriteFile(name, buf[:nr], 0o644); err != nil {
				return err
			}
			want[src]--
			log.Printf("saved %s (%d bytes, vendor class %q)", name, nr, p.ClassIdentifier())
			if !pending(v) {
				if err := started[v.mac].Kill(ctx); err != nil && !errors.Is(err, context.Canceled) {
					log.Printf("stop %s: %v", v.cfg.Name, err)
				}
			}
		}
	}
	return nil
}
