package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", time.Second},
		{"3", 3 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"3600", maxRetryAfter},
		{"Thu, 01 Jan 2026 12:00:07 GMT", 7 * time.Second},
		{"Thu, 01 Jan 2026 11:00:00 GMT", 0},
		{"soon", time.Second},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.v, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestFetch(t *testing.T) {
	body := bytes.Repeat([]byte("k"), 100_000)
	var busy atomic.Int32
	busy.Store(2)
	mux := http.NewServeMux()
	mux.HandleFunc("/kernel", func(w http.ResponseWriter, r *http.Request) {
		if busy.Add(-1) >= 0 { // the first two requests find the server full
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write(body)
	})
	mux.HandleFunc("/short", func(w http.ResponseWriter, r *http.Request) { w.Write(body[:10]) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newBootHTTPClient(4)
	buf := make([]byte, 4096)

	n, retries, err := fetch(t.Context(), c, srv.URL+"/kernel", int64(len(body)), buf)
	if err != nil || n != int64(len(body)) || retries != 2 {
		t.Errorf("fetch through two 503s = %d bytes, %d retries, %v; want %d bytes, 2 retries, no error", n, retries, err, len(body))
	}
	if _, _, err := fetch(t.Context(), c, srv.URL+"/short", int64(len(body)), buf); err == nil || !strings.Contains(err.Error(), "want 100000") {
		t.Errorf("fetch of a short body: err = %v, want a size error", err)
	}
	if _, _, err := fetch(t.Context(), c, srv.URL+"/missing", 0, buf); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("fetch of a missing file: err = %v, want 404", err)
	}
}

func TestRunHTTP(t *testing.T) {
	files := map[string][]byte{"/a": bytes.Repeat([]byte("a"), 3000), "/b": bytes.Repeat([]byte("b"), 5000)}
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(files[r.URL.Path])
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	res, err := runHTTP(t.Context(), httpJob{Clients: 10, URLs: []string{srv.URL + "/a", srv.URL + "/b"},
		Sizes: []int64{3000, 5000}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 20 || res.Failures != 0 || res.Bytes != 10*8000 || res.Latency.N != 20 || len(res.Latencies) != 20 {
		t.Errorf("runHTTP = %+v; want 20 requests, no failures, 80000 bytes, 20 latencies", res)
	}
	if got := conns.Load(); got != 20 {
		t.Errorf("%d connections for 20 requests: keep-alive must be off", got)
	}
	if res.Seconds <= 0 || res.MBps() <= 0 {
		t.Errorf("no time or throughput: %+v", res)
	}
	if _, err := runHTTP(t.Context(), httpJob{Clients: 1, URLs: []string{"x"}}); err == nil {
		t.Error("a job without sizes ran")
	}
}

// fakeTFTP is a TFTP server on loopback serving one file, to test the client against. It answers every
// RRQ from a new port, as RFC 1350 wants; opts says whether it honours blksize and tsize.
type fakeTFTP struct {
	conn     *net.UDPConn
	file     []byte
	opts     bool
	dropData int // the first DATA of this block number is not sent (a lost packet)
	rrqs     atomic.Int32
}

func startFakeTFTP(t *testing.T, f *fakeTFTP) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f.conn = conn
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			f.rrqs.Add(1)
			go f.transfer(t, append([]byte(nil), buf[:n]...), from)
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (f *fakeTFTP) transfer(t *testing.T, rrq []byte, client *net.UDPAddr) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return
	}
	defer c.Close()
	parts := bytes.Split(rrq[2:], []byte{0})
	if string(parts[0]) != "undionly.kpxe" {
		pkt := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, tftpERROR), 1)
		c.WriteToUDP(append(append(pkt, "File not found"...), 0), client)
		return
	}
	blk := 512
	buf := make([]byte, 65536)
	// waitACK waits for the ACK of block; false if the client went away.
	waitACK := func(block uint16, resend []byte) bool {
		for try := 0; try < 5; try++ {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				c.WriteToUDP(resend, client)
				continue
			}
			if n >= 4 && binary.BigEndian.Uint16(buf) == tftpACK && binary.BigEndian.Uint16(buf[2:]) == block {
				return true
			}
		}
		return false
	}
	if f.opts {
		opts := parseTFTPOptions(rrq[2:])
		blk, _ = strconv.Atoi(opts["blksize"])
		oack := binary.BigEndian.AppendUint16(nil, tftpOACK)
		for _, s := range []string{"blksize", strconv.Itoa(blk), "tsize", strconv.Itoa(len(f.file))} {
			oack = append(append(oack, s...), 0)
		}
		c.WriteToUDP(oack, client)
		if !waitACK(0, oack) {
			return
		}
	}
	for block, off := uint16(1), 0; ; block++ {
		end := min(off+blk, len(f.file))
		data := append(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, tftpDATA), block), f.file[off:end]...)
		if int(block) != f.dropData {
			c.WriteToUDP(data, client)
		} else {
			f.dropData = -1
		}
		if !waitACK(block, data) {
			return
		}
		if end-off < blk {
			return
		}
		off = end
	}
}

func TestTFTPGet(t *testing.T) {
	file := make([]byte, 1468*3) // a multiple of blksize: the transfer ends with an empty block
	for i := range file {
		file[i] = byte(i)
	}
	tests := []struct {
		name      string
		srv       *fakeTFTP
		fileName  string
		wantBytes int64
		wantErr   string
	}{
		{"blksize and tsize", &fakeTFTP{file: file, opts: true}, "undionly.kpxe", int64(len(file)), ""},
		{"server without options", &fakeTFTP{file: file[:1000]}, "undionly.kpxe", 1000, ""},
		{"lost DATA block", &fakeTFTP{file: file, opts: true, dropData: 2}, "undionly.kpxe", int64(len(file)), ""},
		{"file not found", &fakeTFTP{file: file, opts: true}, "nope.kpxe", 0, "server error 1: File not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startFakeTFTP(t, tt.srv)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			n, _, err := tftpGet(ctx, addr, tt.fileName, 1468)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || n != tt.wantBytes {
				t.Fatalf("tftpGet = %d bytes, %v; want %d bytes", n, err, tt.wantBytes)
			}
		})
	}
}

func TestRunTFTP(t *testing.T) {
	srv := &fakeTFTP{file: make([]byte, 5000), opts: true}
	addr := startFakeTFTP(t, srv)
	res, err := runTFTP(t.Context(), tftpJob{Server: addr, File: "undionly.kpxe", Size: 5000, BlkSize: 1468, Concurrency: 20, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Transfers != 20 || res.Failures != 0 || res.Latency.N != 20 || srv.rrqs.Load() != 20 {
		t.Errorf("runTFTP = %+v with %d RRQs; want 20 transfers without failures", res, srv.rrqs.Load())
	}
	res, err = runTFTP(t.Context(), tftpJob{Server: addr, File: "undionly.kpxe", Size: 4999, BlkSize: 1468, Concurrency: 2, Timeout: 10 * time.Second})
	if err != nil || res.Failures != 2 || !strings.Contains(res.FirstError, "want 4999") {
		t.Errorf("wrong size: %+v, %v; want 2 failures naming the size", res, err)
	}
}

func TestTFTPPackets(t *testing.T) {
	if got, want := tftpRRQPacket("undionly.kpxe", 1468), "\x00\x01undionly.kpxe\x00octet\x00blksize\x001468\x00tsize\x000\x00"; string(got) != want {
		t.Errorf("RRQ = %q, want %q", got, want)
	}
	if got := tftpACKPacket(258); !bytes.Equal(got, []byte{0, 4, 1, 2}) {
		t.Errorf("ACK = %v", got)
	}
	opts := parseTFTPOptions([]byte("BLKSIZE\x001468\x00tsize\x0074213\x00"))
	if opts["blksize"] != "1468" || opts["tsize"] != "74213" || len(opts) != 2 {
		t.Errorf("options = %v", opts)
	}
}

func TestDHCPFrame(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0xbb, 0x01, 0x02}
	m, err := dhcpv4.NewDiscovery(mac)
	if err != nil {
		t.Fatal(err)
	}
	payload := m.ToBytes()
	f := dhcpFrame(mac, payload)
	if !bytes.Equal(f[6:12], mac) || !bytes.Equal(f[0:6], bytes.Repeat([]byte{0xff}, 6)) {
		t.Errorf("Ethernet header %x: want broadcast from %s", f[:14], mac)
	}
	if ipChecksum(f[14:34]) != 0 {
		t.Error("the IPv4 header checksum does not verify")
	}
	got, ok := udpPayload(f, 67)
	if !ok || !bytes.Equal(got, payload) {
		t.Fatalf("udpPayload(port 67) = %v, %v; want the DHCP message back", len(got), ok)
	}
	if _, ok := udpPayload(f, 68); ok {
		t.Error("udpPayload took a frame to port 67 as one to 68")
	}
	// Damaged frames are refused, never a panic.
	for _, bad := range [][]byte{nil, f[:20], f[:40], append(slices.Clone(f[:16]), 0x46)} {
		if _, ok := udpPayload(bad, 67); ok {
			t.Errorf("udpPayload accepted a %d-byte damaged frame", len(bad))
		}
	}
	short := slices.Clone(f)
	binary.BigEndian.PutUint16(short[14+2:], 2000) // IP total length beyond the frame
	if _, ok := udpPayload(short, 67); ok {
		t.Error("udpPayload accepted an IP length beyond the frame")
	}
}

func TestScriptFiles(t *testing.T) {
	base := "http://10.77.0.1:8080/ipxe/machine"
	tests := []struct {
		name, script, kernel, initrd string
		ok                           bool
	}{
		{"absolute URLs", "#!ipxe\nkernel http://10.77.0.1:8080/images/v1/vmlinuz initrd=initramfs.cpio.gz console=ttyS0\ninitrd http://10.77.0.1:8080/images/v1/initramfs.cpio.gz\nboot\n",
			"http://10.77.0.1:8080/images/v1/vmlinuz", "http://10.77.0.1:8080/images/v1/initramfs.cpio.gz", true},
		{"relative URLs and options", "#!ipxe\nkernel --name k /images/v2/vmlinuz quiet\ninitrd --name initrd ../images/v2/initramfs.cpio.gz\n",
			"http://10.77.0.1:8080/images/v2/vmlinuz", "http://10.77.0.1:8080/images/v2/initramfs.cpio.gz", true},
		{"pending box: no kernel", "#!ipxe\necho waiting for approval\nsleep 30\nchain /ipxe/machine\n", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, i, ok := scriptFiles(tt.script, base)
			if k != tt.kernel || i != tt.initrd || ok != tt.ok {
				t.Errorf("scriptFiles = %q, %q, %v; want %q, %q, %v", k, i, ok, tt.kernel, tt.initrd, tt.ok)
			}
		})
	}
}

func TestLineWatch(t *testing.T) {
	w := newLineWatch(readyLine)
	for _, p := range []string{"time=1 level=INFO msg=\"dhcp listening\"\n", "msg=\"bootstrapd: ser", "ving\" addr=10.77.0.1\n"} {
		if w.Seen() {
			t.Fatalf("seen before %q was written", p)
		}
		fmt.Fprint(w, p)
	}
	if !w.Seen() {
		t.Error("a marker split across two writes was missed")
	}
	w = newLineWatch(readyLine)
	fmt.Fprint(w, "bootstrapd: failed to serve\n")
	if w.Seen() {
		t.Error("seen without the marker")
	}
}

func TestDNSMasqArgs(t *testing.T) {
	s := netSide{iface: "peer0", prefix: netip.MustParsePrefix("10.78.0.0/16"), addr: netip.MustParseAddr("10.78.0.1"),
		poolFirst: netip.MustParseAddr("10.78.16.0"), poolLast: netip.MustParseAddr("10.78.23.255")}
	img := imageFiles{tftpDir: "/usr/lib/ipxe", tftpFile: "undionly.kpxe"}
	has := func(args []string, a string) bool { return slices.Contains(args, a) }

	dhcp := dnsmasqArgs(s, services{dhcp: true}, img, "/l", "/p", "/log")
	for _, want := range []string{"--no-ping", "--interface=peer0", "--dhcp-range=10.78.16.0,10.78.23.255,255.255.0.0,1h",
		"--dhcp-boot=tag:!ipxe,undionly.kpxe,,10.78.0.1", "--dhcp-boot=tag:ipxe,http://10.78.0.1:8080/boot.ipxe", "--port=0"} {
		if !has(dhcp, want) {
			t.Errorf("DHCP args lack %s: %v", want, dhcp)
		}
	}
	if has(dhcp, "--enable-tftp") {
		t.Error("DHCP-only dnsmasq serves TFTP")
	}
	tftp := dnsmasqArgs(s, services{tftp: true}, img, "/l", "/p", "/log")
	if !has(tftp, "--enable-tftp") || !has(tftp, "--tftp-root=/usr/lib/ipxe") || has(tftp, "--no-ping") {
		t.Errorf("TFTP-only args: %v", tftp)
	}
}

func TestSideAddrs(t *testing.T) {
	p := netip.MustParsePrefix("10.78.0.0/16")
	srv, client, first, last := sideAddrs(p)
	if srv.String() != "10.78.0.1" || client.String() != "10.78.0.2" || first.String() != "10.78.16.0" {
		t.Errorf("sideAddrs = %s %s %s", srv, client, first)
	}
	n := 0
	for a := first; a.Compare(last) <= 0; a = a.Next() {
		if !p.Contains(a) || a == srv || a == client {
			t.Fatalf("pool address %s is outside %s or a server's", a, p)
		}
		n++
	}
	if n != poolSize {
		t.Errorf("pool %s-%s has %d addresses, want poolSize %d", first, last, n, poolSize)
	}
}
