package dhcpd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testNS makes two network namespaces joined by a veth pair: the server's, with srv0 (10.99.0.1/24),
// and the client's, with cli0 (10.99.0.2/24). Two, because within one namespace the kernel would deliver
// traffic between the two local addresses through loopback instead of the veth. Both are deleted when
// the test ends.
func testNS(t *testing.T) (server, client string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the listener test needs root to make network namespaces (run the tests as root, as make test does)")
	}
	for _, tool := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the listener test needs %s (iproute2, util-linux): %v", tool, err)
		}
	}
	b := make([]byte, 4)
	rand.Read(b)
	prefix := fmt.Sprintf("dhcpdtest-%d-%s", os.Getpid(), hex.EncodeToString(b))
	server, client = prefix+"-s", prefix+"-c"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{server, client} {
		run("netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
				t.Errorf("delete namespace %s: %v: %s", ns, err, out)
			}
		})
	}
	// `ip -n` remounts /sys in a private mount namespace, which fails in a
	// chroot (a fresh-machine run); nsenter only switches the network namespace.
	in := func(ns string, args ...string) {
		t.Helper()
		argv := append([]string{"--net=/run/netns/" + ns, "ip"}, args...)
		if out, err := exec.Command("nsenter", argv...).CombinedOutput(); err != nil {
			t.Fatalf("nsenter %s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
	in(server, "link", "add", "srv0", "type", "veth", "peer", "name", "cli0", "netns", client)
	in(server, "addr", "add", "10.99.0.1/24", "dev", "srv0")
	in(client, "addr", "add", "10.99.0.2/24", "dev", "cli0")
	in(server, "link", "set", "srv0", "up")
	in(client, "link", "set", "cli0", "up")
	return server, client
}

// inNS runs fn on an OS thread inside the namespace. The thread never leaves it: the goroutine ends
// locked, so the runtime retires the thread. Sockets fn opens stay in the namespace.
func inNS(t *testing.T, name string, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromName(name)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("enter namespace %s: %v", name, err)
	}
}

// clientConn is a UDP socket on cli0 at port, allowed to broadcast.
func clientConn(t *testing.T, port int) *net.UDPConn {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "cli0")
		})
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.(*net.UDPConn)
}

// exchange sends req to "to" until an answer to it arrives (the server may still be starting).
func exchange(t *testing.T, c *net.UDPConn, req *dhcpv4.DHCPv4, to *net.UDPAddr) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	t.Helper()
	buf := make([]byte, 2048)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.WriteToUDP(req.ToBytes(), to); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				break
			}
			resp, err := dhcpv4.FromBytes(buf[:n])
			if err == nil && resp.TransactionID == req.TransactionID && resp.OpCode == dhcpv4.OpcodeBootReply {
				return resp, from
			}
		}
	}
	t.Fatalf("no answer to %s from %s", req.MessageType(), to)
	return nil, nil
}

// TestServeProxy runs the real listener in proxy mode inside a namespace of its own: a broadcast
// DISCOVER gets a broadcast OFFER on port 68, a ProxyDHCPREQUEST to port 4011 gets its ACK back from port
// 4011 to the sender's port, and a malformed packet is counted.
func TestServeProxy(t *testing.T) {
	ns, clientNS := testNS(t)
	cfg := Config{Mode: Proxy, Iface: "srv0", ServerIP: netip.MustParseAddr("10.99.0.1"), HTTPBase: "http://10.99.0.1:8080", Workers: 4}
	srv, err := NewServer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // stays in the namespace until the goroutine ends
		nsh, err := netns.GetFromName(ns)
		if err != nil {
			served <- err
			return
		}
		defer nsh.Close()
		if err := netns.Set(nsh); err != nil {
			served <- err
			return
		}
		served <- srv.Serve(ctx)
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	var dhcpClient, pxeClient *net.UDPConn
	inNS(t, clientNS, func() {
		dhcpClient = clientConn(t, ClientPort)
		pxeClient = clientConn(t, 0)
	})

	offer, from := exchange(t, dhcpClient, request(t, "52:54:00:99:00:01", dhcpv4.MessageTypeDiscover, kindIPXE),
		&net.UDPAddr{IP: net.IPv4bcast, Port: ServerPort})
	if offer.MessageType() != dhcpv4.MessageTypeOffer || offer.BootFileName != "http://10.99.0.1:8080/boot.ipxe" ||
		!offer.YourIPAddr.IsUnspecified() || from.Port != ServerPort {
		t.Errorf("offer from %v: %s", from, offer.Summary())
	}

	ack, from := exchange(t, pxeClient, request(t, "52:54:00:99:00:01", dhcpv4.MessageTypeRequest, kindBIOS,
		dhcpv4.WithClientIP(net.ParseIP("10.99.0.2"))), &net.UDPAddr{IP: net.ParseIP("10.99.0.1"), Port: PXEPort})
	if ack.MessageType() != dhcpv4.MessageTypeAck || ack.BootFileName != "undionly.kpxe" || from.Port != PXEPort {
		t.Errorf("4011 answer from %v: %s", from, ack.Summary())
	}

	if _, err := pxeClient.WriteToUDP([]byte("not dhcp"), &net.UDPAddr{IP: net.ParseIP("10.99.0.1"), Port: ServerPort}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().Malformed == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := srv.Stats(); st.Malformed != 1 || st.Offers == 0 || st.Acks == 0 {
		t.Errorf("stats = %+v", st)
	}
}
