package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/sys/unix"
)

// dhcpConn lets many simulated boxes, each with its own MAC, do DHCP through one interface. Replies to a
// box that has no address yet are broadcast or sent to its MAC, so UDP sockets cannot tell the boxes
// apart (and only one could bind port 68): one packet socket sends every box's frames with the box's
// MAC as source and receives every frame on the wire, and a reader hands each reply to the box waiting
// for its transaction id.
type dhcpConn struct {
	fd        int
	ifindex   int
	mu        sync.Mutex
	waiting   map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4
	malformed atomic.Int64 // frames to port 68 that did not parse as DHCP
	done      chan struct{}
}

// openDHCPConn opens the packet socket on iface, promiscuous so that replies unicast to a box's MAC
// arrive too.
func openDHCPConn(iface string) (*dhcpConn, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("dhcp client: interface %s: %w", iface, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
	if err != nil {
		return nil, fmt.Errorf("dhcp client: packet socket (needs root): %w", err)
	}
	c := &dhcpConn{fd: fd, ifindex: ifi.Index, waiting: make(map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4), done: make(chan struct{})}
	steps := []error{
		unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index}),
		unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP,
			&unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}),
		// Only DHCP replies reach the socket: without the filter, it would get a copy of every frame of
		// the storm's HTTP transfers too, and lose replies when its buffer overflows.
		unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, dhcpReplyFilter()),
		// A storm's answers come in bursts: a big buffer, so the simulated boxes lose none of them to
		// the bench itself.
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20),
		// The reader wakes up this often to see whether it should stop.
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200_000}),
	}
	if err := errors.Join(steps...); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dhcp client: set up the packet socket on %s: %w", iface, err)
	}
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// dhcpReplyFilter is a classic BPF program that passes Ethernet frames carrying IPv4 UDP to port 68,
// unfragmented, and drops everything else (what tcpdump compiles "ip and udp dst port 68" to).
func dhcpReplyFilter() *unix.SockFprog {
	const (
		ldH   = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
		ldB   = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
		ldHX  = unix.BPF_LD | unix.BPF_H | unix.BPF_IND
		ldxIP = unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH // X = 4 * (frame[k] & 0x0f): the IP header length
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		/* 0 */ {Code: ldH, K: 12}, // EtherType
		/* 1 */ {Code: jeq, Jt: 0, Jf: 7, K: unix.ETH_P_IP},
		/* 2 */ {Code: ldB, K: 14 + 9}, // IP protocol
		/* 3 */ {Code: jeq, Jt: 0, Jf: 5, K: unix.IPPROTO_UDP},
		/* 4 */ {Code: ldH, K: 14 + 6}, // IP flags and fragment offset
		/* 5 */ {Code: jset, Jt: 3, Jf: 0, K: 0x1fff}, // a later fragment has no UDP header
		/* 6 */ {Code: ldxIP, K: 14},
		/* 7 */ {Code: ldHX, K: 14 + 2}, // UDP destination port
		/* 8 */ {Code: jeq, Jt: 1, Jf: 0, K: 68},
		/* 9 */ {Code: ret, K: 0}, // drop
		/* 10 */ {Code: ret, K: 0x40000}, // pass the whole frame
	}
	return &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
}

// run reads frames until ctx ends, then closes the socket.
func (c *dhcpConn) run(ctx context.Context) {
	defer close(c.done)
	defer unix.Close(c.fd)
	buf := make([]byte, 65536)
	for ctx.Err() == nil {
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue // the receive timeout, or an interrupted call: look at ctx again
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // our own DISCOVERs and REQUESTs
		}
		payload, ok := udpPayload(buf[:n], 68)
		if !ok {
			continue
		}
		m, err := dhcpv4.FromBytes(payload)
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply {
			c.malformed.Add(1)
			continue
		}
		c.mu.Lock()
		ch := c.waiting[m.TransactionID]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default: // the box has more answers than it reads; a lost duplicate harms nothing
			}
		}
	}
}

// udpPayload returns the UDP payload of an Ethernet frame carrying IPv4/UDP to port.
func udpPayload(f []byte, port uint16) ([]byte, bool) {
	if len(f) < 14+20+8 || binary.BigEndian.Uint16(f[12:]) != unix.ETH_P_IP {
		return nil, false
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl+8 || ip[9] != unix.IPPROTO_UDP {
		return nil, false
	}
	if frag := binary.BigEndian.Uint16(ip[6:]); frag&0x1fff != 0 || frag&0x2000 != 0 {
		return nil, false // DHCP replies are never fragmented on a 1500-byte link
	}
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if total > len(ip) || total < ihl+8 {
		return nil, false
	}
	udp := ip[ihl:total]
	if binary.BigEndian.Uint16(udp[2:]) != port {
		return nil, false
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < 8 || ulen > len(udp) {
		return nil, false
	}
	return udp[8:ulen], true
}

// dhcpFrame wraps a DHCP message from a box without an address: Ethernet broadcast from the box's MAC,
// IPv4 0.0.0.0 -> 255.255.255.255, UDP 68 -> 67 (no UDP checksum, which IPv4 allows).
func dhcpFrame(mac net.HardwareAddr, payload []byte) []byte {
	f := make([]byte, 14+20+8+len(payload))
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IP)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8] = 64
	ip[9] = unix.IPPROTO_UDP
	copy(ip[16:20], []byte{255, 255, 255, 255})
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	udp := f[34:42]
	binary.BigEndian.PutUint16(udp[0:], 68)
	binary.BigEndian.PutUint16(udp[2:], 67)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(f[42:], payload)
	return f
}

// ipChecksum is the IPv4 header checksum (RFC 791), computed with the checksum field zero.
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

func (c *dhcpConn) send(m *dhcpv4.DHCPv4) error {
	dst := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: c.ifindex, Halen: 6,
		Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	return unix.Sendto(c.fd, dhcpFrame(m.ClientHWAddr, m.ToBytes()), 0, dst)
}

func (c *dhcpConn) listen(xid dhcpv4.TransactionID) chan *dhcpv4.DHCPv4 {
	ch := make(chan *dhcpv4.DHCPv4, 8)
	c.mu.Lock()
	c.waiting[xid] = ch
	c.mu.Unlock()
	return ch
}

func (c *dhcpConn) forget(xid dhcpv4.TransactionID) {
	c.mu.Lock()
	delete(c.waiting, xid)
	c.mu.Unlock()
}

// boxKind is which boot stage does the DHCP exchange: the NIC's PXE ROM or iPXE (which says so in
// option 77), so that each server answers as it would a real box in that stage.
type boxKind int

const (
	pxeROM boxKind = iota
	ipxeStage
)

// dhcpWaits is how long a boot stage waits for an answer before sending its packet again; once the last
// wait has passed, it gives up and the boot fails. A PXE ROM follows the PXE specification (4, 8, 16 and
// 32 s: a minute), each wait randomized by up to a second either way as RFC 2131 (4.1) asks, so that
// boxes that lost their first DISCOVER together do not all send again at the same instant; iPXE waits 1,
// 2, 4 and 8 s (its DHCP_DISC_START/END_TIMEOUT_SEC), without randomizing.
func dhcpWaits(kind boxKind) []time.Duration {
	if kind == pxeROM {
		w := []time.Duration{4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second}
		for i := range w {
			w[i] += time.Duration(rand.Int64N(int64(2*time.Second))) - time.Second
		}
		return w
	}
	return []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
}

// dora gets a lease for mac as the given boot stage does: DISCOVER until an OFFER comes, then REQUEST
// until an ACK comes, each sent again after the stage's waits (dhcpWaits), giving up when they run out;
// a NAK starts over at DISCOVER with fresh waits, as RFC 2131 (3.1) says, for as long as ctx lasts. It
// returns the address, how many packets it had to send again, and how many NAKs it got.
func (c *dhcpConn) dora(ctx context.Context, mac net.HardwareAddr, kind boxKind) (netip.Addr, int, int, error) {
	retrans := 0
	for naks := 0; ; naks++ {
		offer, r, err := c.exchange(ctx, c.discover(mac, kind), dhcpv4.MessageTypeOffer, dhcpWaits(kind))
		retrans += r
		if err != nil {
			return netip.Addr{}, retrans, naks, fmt.Errorf("DHCP for %s: no OFFER: %w", mac, err)
		}
		req, err := dhcpv4.NewRequestFromOffer(offer, c.boxOptions(mac, kind)...)
		if err != nil {
			return netip.Addr{}, retrans, naks, err
		}
		ack, r, err := c.exchange(ctx, req, dhcpv4.MessageTypeAck, dhcpWaits(kind))
		retrans += r
		if errors.Is(err, errNAK) {
			continue
		}
		if err != nil {
			return netip.Addr{}, retrans, naks, fmt.Errorf("DHCP for %s: no ACK: %w", mac, err)
		}
		a, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
		if !ok || a.IsUnspecified() {
			return netip.Addr{}, retrans, naks, fmt.Errorf("DHCP for %s: ACK without an address", mac)
		}
		return a, retrans, naks, nil
	}
}

var (
	errNAK      = errors.New("NAK")
	errNoAnswer = errors.New("no answer")
)

// exchange sends m and waits for an answer of type want with its transaction id, sending m again after
// each of waits; a NAK ends it at once.
func (c *dhcpConn) exchange(ctx context.Context, m *dhcpv4.DHCPv4, want dhcpv4.MessageType, waits []time.Duration) (*dhcpv4.DHCPv4, int, error) {
	ch := c.listen(m.TransactionID)
	defer c.forget(m.TransactionID)
	retrans := 0
	var total time.Duration
	for try, wait := range waits {
		if try > 0 {
			retrans++
		}
		if err := c.send(m); err != nil {
			return nil, retrans, fmt.Errorf("send %s: %w", m.MessageType(), err)
		}
		total += wait
		timer := time.NewTimer(wait)
	listen:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, retrans, ctx.Err()
			case <-timer.C:
				break listen
			case r := <-ch:
				switch r.MessageType() {
				case want:
					timer.Stop()
					return r, retrans, nil
				case dhcpv4.MessageTypeNak:
					timer.Stop()
					return nil, retrans, errNAK
				}
			}
		}
	}
	return nil, retrans, fmt.Errorf("%w to %d %ss in %s", errNoAnswer, len(waits), m.MessageType(), total)
}

// discover builds a DISCOVER as the given boot stage sends it. Both stages set the broadcast flag, so
// that servers answer to the broadcast address instead of ARPing for an address no box holds yet.
func (c *dhcpConn) discover(mac net.HardwareAddr, kind boxKind) *dhcpv4.DHCPv4 {
	m, _ := dhcpv4.NewDiscovery(mac, c.boxOptions(mac, kind)...) // fails only if crypto/rand does
	return m
}

// boxOptions are the options of a BIOS box's PXE ROM (vendor class PXEClient, architecture 0 = x86
// BIOS, UNDI 2.1) and, for iPXE, the user class "iPXE" that iPXE adds.
func (c *dhcpConn) boxOptions(mac net.HardwareAddr, kind boxKind) []dhcpv4.Modifier {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 2, 1}),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionVendorSpecificInformation, dhcpv4.OptionClassIdentifier, dhcpv4.OptionTFTPServerName,
			dhcpv4.OptionBootfileName),
	}
	if kind == ipxeStage {
		mods = append(mods, dhcpv4.WithUserClass("iPXE", false))
	}
	return mods
}
