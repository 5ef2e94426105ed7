// Package tftp is a read-only TFTP server for PXE boot: it hands the iPXE
// binaries (undionly.kpxe, snponly.efi, ipxe.efi) to network boot ROMs.
//
// It speaks RFC 1350 reads in octet mode with option negotiation (RFC 2347):
// blksize (RFC 2348), tsize and timeout (RFC 2349) and windowsize (RFC
// 7440). Writes are refused. Every transfer runs on its own UDP socket,
// bound to the address the listening socket is bound to, so a ROM talking to
// the server's address gets answers from that same address.
//
// Files are opened through os.Root, so neither ".." nor a symlink can reach
// outside the served tree.
//
// A boot storm is handled by admission control: Config.Limiter caps the
// transfers running at once. A request that must wait holds no socket, and
// the ROM's retransmissions of it don't start duplicate transfers.
package tftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Limiter caps the transfers running at once. Acquire blocks until the
// transfer may start (then release must be called once it ends) or fails
// when the server is too busy to queue it. bootstrap/admission implements it.
type Limiter interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// Config configures a Server. Zero values mean the defaults below.
type Config struct {
	// Root is the directory served; required.
	Root string
	// MaxBlksize caps the blksize option. The default, 1468, is the largest
	// block whose packet fits a 1500-byte MTU (1500 - 20 IPv4 - 8 UDP - 4
	// TFTP); a larger block would be fragmented, and many ROMs can't
	// reassemble. At most 65464 (RFC 2348).
	MaxBlksize int
	// MaxWindow caps the windowsize option (RFC 7440); default 16.
	MaxWindow int
	// Timeout is the retransmission timeout when the client sends no
	// timeout option; default 1s.
	Timeout time.Duration
	// Retries is how many times a packet is sent again before the transfer
	// is given up; default 5.
	Retries int
	// Limiter, when not nil, admits transfers; nil means no limit.
	Limiter Limiter
	// MACOf, if set, tells the MAC of a client address (the DHCP server
	// knows it), so that every log line about a client names its MAC.
	MACOf func(netip.Addr) (string, bool)
	// Log receives the server's log lines; nil discards them.
	Log *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxBlksize = 1468
	DefaultMaxWindow  = 16
	DefaultTimeout    = time.Second
	DefaultRetries    = 5
)

// Stats are counters since the Server was created.
type Stats struct {
	Started   uint64 // transfers that began sending (admitted, file open)
	Completed uint64 // transfers whose final block was acknowledged
	Failed    uint64 // transfers given up: no ACK after the retries, read error, shutdown
	Aborted   uint64 // transfers the client ended: an ERROR (PXE ROMs do so after asking tsize) or a new request
	Bytes     uint64 // file bytes delivered by completed transfers

	Retransmits uint64 // packets sent again after a timeout
	Dropped     uint64 // requests dropped silently because the Limiter refused them
	Duplicates  uint64 // retransmitted requests ignored because the same request is pending or running
	Refused     uint64 // requests answered with an error: write, bad mode, bad path, file not found
	Malformed   uint64 // packets that could not be parsed
}

// Server is a read-only TFTP server. Serve may run on several sockets at
// once (say one per address); they share the counters.
type Server struct {
	root    string
	limits  limits
	retries int
	limiter Limiter
	macOfFn func(netip.Addr) (string, bool)
	log     *slog.Logger

	mu     sync.Mutex
	active map[string]*slot // by client address:port

	started, completed, failed, aborted, bytes atomic.Uint64
	retransmits, dropped, duplicates, refused  atomic.Uint64
	malformed                                  atomic.Uint64
}

// slot is a request pending admission or a transfer running for one client
// address and port.
type slot struct {
	req    string // the raw request, to tell a retransmission from a new request
	cancel context.CancelCauseFunc
}

// errSuperseded cancels a transfer whose client sent a different request
// from the same port: the client gave up on the old one.
var errSuperseded = errors.New("the client sent a new request from the same port")

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Root == "" {
		return nil, errors.New("tftp: Config.Root is empty: set it to the directory holding the boot files")
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("tftp: opening the served directory: %w (check Config.Root)", err)
	}
	root.Close()
	if cfg.MaxBlksize == 0 {
		cfg.MaxBlksize = DefaultMaxBlksize
	}
	if cfg.MaxBlksize < minBlksize || cfg.MaxBlksize > maxBlksize {
		return nil, fmt.Errorf("tftp: MaxBlksize %d is outside %d..%d", cfg.MaxBlksize, minBlksize, maxBlksize)
	}
	if cfg.MaxWindow == 0 {
		cfg.MaxWindow = DefaultMaxWindow
	}
	if cfg.MaxWindow < 1 || cfg.MaxWindow > maxWindowsize {
		return nil, fmt.Errorf("tftp: MaxWindow %d is outside 1..%d", cfg.MaxWindow, maxWindowsize)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("tftp: Timeout %v is negative", cfg.Timeout)
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	}
	if cfg.Retries < 0 {
		return nil, fmt.Errorf("tftp: Retries %d is negative", cfg.Retries)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		root:    cfg.Root,
		limits:  limits{maxBlksize: cfg.MaxBlksize, maxWindow: cfg.MaxWindow, timeout: cfg.Timeout},
		retries: cfg.Retries,
		limiter: cfg.Limiter,
		macOfFn: cfg.MACOf,
		log:     cfg.Log,
		active:  make(map[string]*slot),
	}, nil
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Started:     s.started.Load(),
		Completed:   s.completed.Load(),
		Failed:      s.failed.Load(),
		Aborted:     s.aborted.Load(),
		Bytes:       s.bytes.Load(),
		Retransmits: s.retransmits.Load(),
		Dropped:     s.dropped.Load(),
		Duplicates:  s.duplicates.Load(),
		Refused:     s.refused.Load(),
		Malformed:   s.malformed.Load(),
	}
}

// Serve answers requests arriving on conn until ctx ends, then cancels the
// transfers still running, waits for them and returns nil. It returns an
// error if reading conn fails. The caller owns conn and closes it after
// Serve returns (Serve leaves a past read deadline on it).
//
// Transfer sockets are bound to conn's local IP address. When conn is bound
// to the wildcard address, the kernel picks the source address of replies,
// which on a multi-homed host may differ from the address the ROM asked;
// bind conn to the boot network's address.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	root, err := os.OpenRoot(s.root)
	if err != nil {
		return fmt.Errorf("tftp: opening the served directory: %w (check Config.Root)", err)
	}
	defer root.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	// Transfers end with Serve, also when it returns on a read error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	l := &listener{s: s, conn: conn, root: root, local: localAddr(conn), wg: &wg}
	buf := make([]byte, 65536)
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tftp: reading requests on %v: %w", conn.LocalAddr(), err)
		}
		l.handle(ctx, bytes.Clone(buf[:n]), addr)
	}
}

// listener is what Serve shares with the transfers it starts.
type listener struct {
	s     *Server
	conn  net.PacketConn
	root  *os.Root
	local *net.UDPAddr
	wg    *sync.WaitGroup
}

// localAddr is the address transfer sockets bind to: conn's IP with an
// ephemeral port.
func localAddr(conn net.PacketConn) *net.UDPAddr {
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		return &net.UDPAddr{IP: ua.IP, Zone: ua.Zone}
	}
	return &net.UDPAddr{}
}

// handle answers one packet that arrived on the listening socket. It runs on
// Serve's goroutine, so everything slow happens in the transfer goroutine.
func (l *listener) handle(ctx context.Context, pkt []byte, addr net.Addr) {
	s := l.s
	client := addr.String()
	req, err := parseRequest(pkt)
	if err != nil {
		s.malformed.Add(1)
		s.log.Debug("tftp: malformed request", "mac", s.macOf(client), "client", client, "err", err)
		// Answer only what claims to be a request, so a real client learns
		// why; stray ACKs or garbage get nothing.
		if len(pkt) >= 2 && (pkt[1] == byte(opRRQ) || pkt[1] == byte(opWRQ)) && pkt[0] == 0 {
			l.conn.WriteTo(appendError(nil, errIllegalOp, "malformed request: "+err.Error()), addr)
		}
		return
	}
	if req.op == opWRQ {
		l.refuse(addr, req.filename, errAccess, "this TFTP server is read-only", "write request")
		return
	}
	if req.mode != "octet" {
		// netascii would translate line endings and corrupt the binaries
		// we serve, and serving octet to a client expecting netascii
		// corrupts them on its side; boot ROMs always ask octet.
		l.refuse(addr, req.filename, errIllegalOp,
			fmt.Sprintf("mode %q not supported: request the file in octet (binary) mode", req.mode),
			"mode "+req.mode)
		return
	}
	name, err := cleanName(req.filename)
	if err != nil {
		l.refuse(addr, req.filename, errAccess, "access violation", err.Error())
		return
	}
	peer, err := addrPort(addr)
	if err != nil {
		s.malformed.Add(1)
		s.log.Warn("tftp: request from an address that is not UDP", "mac", s.macOf(client), "client", client, "err", err)
		return
	}

	// Dedupe by client address and port: a ROM retransmits its RRQ while
	// it waits for admission, and each copy must not start a transfer.
	s.mu.Lock()
	if old, ok := s.active[client]; ok {
		if old.req == string(pkt) {
			s.mu.Unlock()
			s.duplicates.Add(1)
			return
		}
		old.cancel(errSuperseded)
	}
	tctx, cancel := context.WithCancelCause(ctx)
	sl := &slot{req: string(pkt), cancel: cancel}
	s.active[client] = sl
	s.mu.Unlock()

	// leave frees the client's slot; serveFile calls it as soon as the
	// transfer ends, so a new request from the same port isn't taken for
	// a retransmission while the outcome is logged.
	leave := sync.OnceFunc(func() {
		s.mu.Lock()
		if s.active[client] == sl {
			delete(s.active, client)
		}
		s.mu.Unlock()
	})
	l.wg.Go(func() {
		defer cancel(nil)
		defer leave()
		l.serveFile(tctx, addr, peer, req, name, leave)
	})
}

// refuse answers a request with an error from the listening socket and logs
// it. msg goes to the client; reason is for the operator.
func (l *listener) refuse(addr net.Addr, file string, code uint16, msg, reason string) {
	l.s.refused.Add(1)
	l.s.log.Warn("tftp: refused request", "mac", l.s.macOf(addr.String()), "client", addr.String(), "file", file, "reason", reason)
	l.conn.WriteTo(appendError(nil, code, msg), addr)
}

// serveFile opens the file, waits for admission and runs the transfer.
func (l *listener) serveFile(ctx context.Context, addr net.Addr, peer netip.AddrPort, req request, name string, leave func()) {
	s := l.s
	client := addr.String()
	// Open before admission so a bad name is refused at once instead of
	// after queueing; a queued request holds only this descriptor.
	f, size, err := openRegular(l.root, name)
	if err != nil {
		code, msg := errNotFound, "file not found"
		if !errors.Is(err, fs.ErrNotExist) {
			code, msg = errAccess, "access violation"
		}
		l.refuse(addr, req.filename, code, msg, err.Error())
		return
	}
	defer f.Close()

	if s.limiter != nil {
		release, err := s.limiter.Acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return // superseded or shutting down while queued
			}
			// Silent: the ROM retries its RRQ, by which time a slot may
			// be free; an error would make it give up the boot.
			s.dropped.Add(1)
			s.log.Debug("tftp: request dropped by admission control", "mac", s.macOf(client), "client", client, "file", req.filename, "err", err)
			return
		}
		if release != nil {
			defer release()
		}
	}

	s.started.Add(1)
	conn, err := net.ListenUDP("udp", l.local)
	if err != nil {
		s.failed.Add(1)
		s.log.Error("tftp: opening a transfer socket", "mac", s.macOf(client), "client", client, "file", req.filename, "err", err)
		return
	}
	defer conn.Close()

	p := negotiate(req.options, size, l.s.limits)
	t := &transfer{conn: conn, peer: peer, file: f, size: size, p: p, retries: s.retries}
	begin := time.Now()
	s.log.Debug("tftp: transfer started", "mac", s.macOf(client), "client", client, "file", req.filename, "size", size,
		"blksize", p.blksize, "windowsize", p.window, "oack", len(p.oack) > 0)
	err = t.run(ctx)
	leave()
	s.retransmits.Add(t.retransmits)
	s.malformed.Add(t.malformed)
	attrs := []any{"mac", s.macOf(client), "client", client, "file", req.filename, "size", size, "blksize", p.blksize,
		"windowsize", p.window, "retransmits", t.retransmits, "duration", time.Since(begin).Round(time.Millisecond)}
	var abort errClientAbort
	switch {
	case err == nil:
		s.completed.Add(1)
		s.bytes.Add(uint64(size))
		s.log.Info("tftp: transfer completed", attrs...)
	case errors.As(err, &abort), errors.Is(err, errSuperseded):
		// Normal for PXE ROMs, which ask tsize, abort, and ask again.
		// No error goes back: the client's port belongs to its new request.
		s.aborted.Add(1)
		s.log.Debug("tftp: transfer ended by the client", append(attrs, "reason", err.Error())...)
	case ctx.Err() != nil:
		s.failed.Add(1)
		t.write(appendError(nil, errUndefined, "server shutting down"))
		s.log.Warn("tftp: transfer cancelled: server shutting down", attrs...)
	default:
		s.failed.Add(1)
		s.log.Warn("tftp: transfer failed", append(attrs, "err", err)...)
	}
}

// openRegular opens name inside root and returns it with its size; anything
// but a regular file is refused.
func openRegular(root *os.Root, name string) (*os.File, int64, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", name)
	}
	return f, fi.Size(), nil
}

// addrPort converts a client address; IPv4 clients seen on an IPv6 socket
// are unmapped so they compare equal to what transfer sockets read.
func addrPort(a net.Addr) (netip.AddrPort, error) {
	var ap netip.AddrPort
	if ua, ok := a.(*net.UDPAddr); ok {
		ap = ua.AddrPort()
	} else {
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return netip.AddrPort{}, err
		}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// macOf names the MAC behind a client's "ip:port", or "unknown".
func (s *Server) macOf(client string) string {
	if s.macOfFn == nil {
		return "unknown"
	}
	ap, err := netip.ParseAddrPort(client)
	if err != nil {
		return "unknown"
	}
	if mac, ok := s.macOfFn(ap.Addr().Unmap()); ok {
		return mac
	}
	return "unknown"
}
