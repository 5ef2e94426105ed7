package dhcpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"
)

// handleTimeout bounds one request, mostly its wait for the lease to reach the disk: a client retries
// after a few seconds anyway, so a worker should not wait longer for a stuck disk.
const handleTimeout = 5 * time.Second

// socketBuffer is the receive buffer asked for the DHCP sockets: about 8,000
// full-size DHCP packets.
const socketBuffer = 4 << 20

// maxPacket is the largest datagram read; DHCP messages are far smaller.
const maxPacket = 4096

// Server is the DHCP listener: it reads packets on one interface, hands them to a pool of workers that
// run the Handler, and sends the answers where RFC 2131 4.1 says.
type Server struct {
	h   *Handler
	cfg Config
	log *slog.Logger
}

// NewServer checks cfg and returns a server. Full mode needs leases (OpenLeases); proxy mode takes nil.
func NewServer(cfg Config, leases *Leases) (*Server, error) {
	h, err := NewHandler(cfg, leases)
	if err != nil {
		return nil, err
	}
	if h.cfg.Iface == "" {
		return nil, errors.New("dhcpd: set Iface to the boot network's interface: the server answers on one interface only")
	}
	return &Server{h: h, cfg: h.cfg, log: h.log}, nil
}

// Handler is the server's handler.
func (s *Server) Handler() *Handler { return s.h }

// Stats returns the server's counters.
func (s *Server) Stats() Stats { return s.h.Stats() }

// packet is one datagram waiting for a worker.
type packet struct {
	data []byte
	from *net.UDPAddr
	conn *net.UDPConn
	port int
}

// Listener is the server's open sockets, made by Listen and used by Serve.
type Listener struct {
	conns []*net.UDPConn
	ports []int
}

// Close closes the sockets.
func (l *Listener) Close() {
	for _, c := range l.conns {
		c.Close()
	}
}

// Listen opens UDP port 67 (and 4011 in proxy mode) on Config.Iface, in the caller's network namespace.
// It is separate from Serve so that a caller can report "serving" only once every socket is bound.
func (s *Server) Listen(ctx context.Context) (*Listener, error) {
	l := &Listener{ports: []int{ServerPort}}
	if s.cfg.Mode == Proxy {
		l.ports = append(l.ports, PXEPort)
	}
	for _, port := range l.ports {
		c, err := listen(ctx, s.cfg.Iface, port)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.conns = append(l.conns, c)
	}
	s.log.Info("DHCP server listening", "mode", s.cfg.Mode, "iface", s.cfg.Iface, "ports", l.ports, "server", s.cfg.ServerIP)
	return l, nil
}

// Serve listens (see Listen) and serves until ctx ends, then waits for the requests in hand and returns nil.
func (s *Server) Serve(ctx context.Context) error {
	l, err := s.Listen(ctx)
	if err != nil {
		return err
	}
	return s.ServeOn(ctx, l)
}

// ServeOn serves on sockets opened by Listen until ctx ends, then closes them.
func (s *Server) ServeOn(ctx context.Context, l *Listener) error {
	conns, ports := l.conns, l.ports
	closeAll := l.Close

	queue := make(chan packet, s.cfg.QueueLen)
	var workers, readers sync.WaitGroup
	for range s.cfg.Workers {
		workers.Go(func() {
			for p := range queue {
				s.serveOne(ctx, p)
			}
		})
	}
	for i, c := range conns {
		readers.Go(func() { s.read(c, ports[i], queue) })
	}
	<-ctx.Done()
	closeAll()
	readers.Wait()
	close(queue)
	workers.Wait()
	s.log.Info("DHCP server stopped", "iface", s.cfg.Iface)
	return nil
}

// read reads datagrams from c into queue until c is closed; when the queue is full they are dropped.
func (s *Server) read(c *net.UDPConn, port int, queue chan<- packet) {
	buf := make([]byte, maxPacket)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("DHCP read failed", "port", port, "err", err)
			continue
		}
		p := packet{data: append([]byte(nil), buf[:n]...), from: from, conn: c, port: port}
		select {
		case queue <- p:
		default:
			s.h.stats.dropped.Add(1)
			s.log.Debug("DHCP request dropped: every worker busy and the queue full", "addr", from)
		}
	}
}

// serveOne parses, handles and answers one datagram.
func (s *Server) serveOne(ctx context.Context, p packet) {
	req, err := dhcpv4.FromBytes(p.data)
	if err != nil {
		s.h.stats.malformed.Add(1)
		s.log.Debug("malformed DHCP packet", "addr", p.from, "port", p.port, "bytes", len(p.data), "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, handleTimeout)
	defer cancel()
	resp, err := s.h.Handle(ctx, req, p.port)
	if err != nil || resp == nil {
		return // Handle logged and counted it
	}
	to := destination(req, resp, p.from, p.port)
	if _, err := p.conn.WriteToUDP(resp.ToBytes(), to); err != nil {
		s.h.stats.sendErrors.Add(1)
		s.log.Warn("DHCP reply not sent", "mac", req.ClientHWAddr.String(), "to", to, "err", err)
	}
}

// destination is where an answer goes (RFC 2131 4.1): answers on port 4011 back to the sender; through
// the relay when relayed; to ciaddr when the client has an address (renewing, INFORM) unless it is a
// NAK; else broadcast on the link. A client without an address that does not ask for broadcast could be
// unicast to yiaddr at its hardware address, but that needs an ARP entry written by hand; every
// client accepts the broadcast, so it gets that.
func destination(req, resp *dhcpv4.DHCPv4, from *net.UDPAddr, port int) *net.UDPAddr {
	if port == PXEPort {
		return from
	}
	if gi, ok := addr4(req.GatewayIPAddr); ok {
		return &net.UDPAddr{IP: gi.AsSlice(), Port: ServerPort}
	}
	if ci, ok := addr4(req.ClientIPAddr); ok && resp.MessageType() != dhcpv4.MessageTypeNak {
		return &net.UDPAddr{IP: ci.AsSlice(), Port: ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: ClientPort}
}

// listen opens a UDP socket on port bound to iface, allowed to broadcast and to share the port with a
// restarting instance.
func listen(ctx context.Context, iface string, port int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
				return
			}
			if serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, iface); serr != nil {
				return
			}
			// A burst of a thousand DISCOVERs must wait in the socket, not be
			// dropped by the kernel, while the workers catch up. FORCE passes
			// net.core.rmem_max as root; without privilege the plain option
			// gives what the system allows.
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("dhcpd: listen on UDP port %d of %s: %w (needs root or CAP_NET_BIND_SERVICE and CAP_NET_RAW, and no other DHCP server on that port)", port, iface, err)
	}
	return pc.(*net.UDPConn), nil
}
