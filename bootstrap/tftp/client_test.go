package tftp

// A small TFTP client and test helpers: a server on loopback, generated
// files, a captured log and a PacketConn that loses packets.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// clientOpts are the options the test client asks for; zero means "don't send".
type clientOpts struct {
	blksize, window, timeoutOpt int
	tsize                       bool
	mode                        string        // default octet
	wait                        time.Duration // retransmission timeout; default 200ms
}

type clientResult struct {
	data  []byte
	oack  map[string]string // nil when the server sent no OACK
	from  netip.AddrPort    // where the server's packets came from
	acks  int               // ACKs sent
	naks  int               // ACKs sent early because of a gap or duplicate
	tries int               // timeouts
}

// tftpError is an ERROR packet received from the server.
type tftpError struct {
	code uint16
	msg  string
}

func (e *tftpError) Error() string { return fmt.Sprintf("TFTP error %d: %s", e.code, e.msg) }

// get fetches name with a fresh client socket.
func get(server netip.AddrPort, name string, o clientOpts) (clientResult, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return clientResult{}, err
	}
	defer c.Close()
	return getOn(c, server, name, o)
}

func rrq(name string, o clientOpts) []byte {
	req := request{op: opRRQ, filename: name, mode: cmp.Or(o.mode, "octet")}
	if o.blksize > 0 {
		req.options = append(req.options, option{"blksize", strconv.Itoa(o.blksize)})
	}
	if o.tsize {
		req.options = append(req.options, option{"tsize", "0"})
	}
	if o.timeoutOpt > 0 {
		req.options = append(req.options, option{"timeout", strconv.Itoa(o.timeoutOpt)})
	}
	if o.window > 0 {
		req.options = append(req.options, option{"windowsize", strconv.Itoa(o.window)})
	}
	return appendRequest(nil, req)
}

// getOn fetches name from server over pc. It acknowledges like an RFC 7440
// client: after each window, and at once (once per gap) when a block is
// missing or repeated, so the server resends after the last good block.
func getOn(pc net.PacketConn, server netip.AddrPort, name string, o clientOpts) (clientResult, error) {
	wait := cmp.Or(o.wait, 200*time.Millisecond)
	req := rrq(name, o)
	srv := net.UDPAddrFromAddrPort(server)
	if _, err := pc.WriteTo(req, srv); err != nil {
		return clientResult{}, err
	}
	var res clientResult
	var peer net.Addr
	blksize, window := 512, 1
	expected := uint64(1) // next block, as a sequence number
	ackWire := uint16(0)  // the block to acknowledge when asked again
	inWindow := 0
	nakSent := false
	sendACK := func(early bool) {
		pc.WriteTo(appendACK(nil, ackWire), peer)
		res.acks++
		if early {
			res.naks++
		}
		inWindow = 0
	}
	buf := make([]byte, 65536)
	for {
		pc.SetReadDeadline(time.Now().Add(wait))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return res, err
			}
			res.tries++
			if res.tries > 50 {
				return res, fmt.Errorf("timed out with %d bytes after %d tries", len(res.data), res.tries)
			}
			if peer == nil {
				pc.WriteTo(req, srv)
			} else {
				sendACK(false)
			}
			continue
		}
		ap, _ := addrPort(from)
		if ap.Addr() != server.Addr() {
			continue
		}
		if peer == nil {
			peer, res.from = from, ap
		} else if from.String() != peer.String() {
			continue
		}
		pkt := buf[:n]
		if n < 2 {
			return res, fmt.Errorf("packet of %d bytes", n)
		}
		switch binary.BigEndian.Uint16(pkt) {
		case opERROR:
			r, err := parseReply(pkt)
			if err != nil {
				return res, err
			}
			return res, &tftpError{r.code, r.msg}
		case opOACK:
			if expected != 1 {
				continue
			}
			res.oack = parseOACK(pkt[2:])
			if v, ok := res.oack["blksize"]; ok {
				blksize, _ = strconv.Atoi(v)
			}
			if v, ok := res.oack["windowsize"]; ok {
				window, _ = strconv.Atoi(v)
			}
			res.tries = 0
			sendACK(false)
		case opDATA:
			if n < 4 {
				return res, fmt.Errorf("DATA packet of %d bytes", n)
			}
			block, data := binary.BigEndian.Uint16(pkt[2:]), pkt[4:]
			if block != uint16(expected) {
				if !nakSent {
					sendACK(true)
					nakSent = true
				}
				continue
			}
			if len(data) > blksize {
				return res, fmt.Errorf("block %d has %d bytes, more than blksize %d", expected, len(data), blksize)
			}
			res.data = append(res.data, data...)
			res.tries, nakSent = 0, false
			ackWire = block
			expected++
			inWindow++
			if len(data) < blksize {
				sendACK(false)
				return res, nil
			}
			if inWindow >= window {
				sendACK(false)
			}
		default:
			return res, fmt.Errorf("unexpected opcode %d", binary.BigEndian.Uint16(pkt))
		}
	}
}

func parseOACK(b []byte) map[string]string {
	m := map[string]string{}
	f := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i]] = f[i+1]
	}
	return m
}

// lossyConn drops a fraction of the packets it sends and receives, from a
// seeded generator so a failure can be replayed.
type lossyConn struct {
	net.PacketConn
	mu      sync.Mutex
	rng     *rand.Rand
	loss    float64
	dropped int
}

func newLossyConn(pc net.PacketConn, loss float64, seed uint64) *lossyConn {
	return &lossyConn{PacketConn: pc, rng: rand.New(rand.NewPCG(seed, 1)), loss: loss}
}

func (c *lossyConn) drop() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rng.Float64() < c.loss {
		c.dropped++
		return true
	}
	return false
}

func (c *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.drop() {
			return n, a, err
		}
	}
}

func (c *lossyConn) WriteTo(b []byte, a net.Addr) (int, error) {
	if c.drop() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, a)
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	s    *Server
	addr netip.AddrPort
	logs *syncBuffer
}

// startServer serves cfg on 127.0.0.1 (or listen, if given) until the test
// ends, and checks that Serve then returns promptly and cleanly.
func startServer(t testing.TB, cfg Config, listen ...string) testServer {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	laddr := "127.0.0.1:0"
	if len(listen) > 0 {
		laddr = listen[0]
	}
	conn, err := net.ListenPacket("udp4", laddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve() = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return 5s after its context ended")
		}
		conn.Close()
	})
	return testServer{s: s, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), logs: logs}
}

// writeFiles creates files of the given sizes with seeded random content
// and returns their contents by name.
func writeFiles(t testing.TB, dir string, sizes map[string]int) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(sizes)), 7))
	out := map[string][]byte{}
	for name, size := range sizes {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

// waitFor polls cond until it holds or two seconds pass: counters are
// updated just after the last packet of a transfer is sent.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// rawClient is a client socket for tests that speak the protocol by hand.
type rawClient struct {
	t    testing.TB
	conn *net.UDPConn
}

func newRawClient(t testing.TB) *rawClient {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c}
}

func (c *rawClient) send(b []byte, to netip.AddrPort) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDPAddrPort(b, to); err != nil {
		c.t.Fatal(err)
	}
}

type rawPacket struct {
	from  netip.AddrPort
	op    uint16
	block uint16 // DATA and ACK; the code of an ERROR
	body  []byte // DATA payload, ERROR message, OACK options
}

// recv returns the packets that arrive within d.
func (c *rawClient) recv(d time.Duration) []rawPacket {
	var out []rawPacket
	buf := make([]byte, 65536)
	c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		n, from, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return out
		}
		p := rawPacket{from: from}
		if n >= 2 {
			p.op = binary.BigEndian.Uint16(buf)
		}
		if n >= 4 && p.op != opOACK {
			p.block = binary.BigEndian.Uint16(buf[2:])
			p.body = bytes.Clone(buf[4:n])
		} else if n >= 2 {
			p.body = bytes.Clone(buf[2:n])
		}
		out = append(out, p)
	}
}

// recvOne waits up to d for one packet and fails the test without one.
func (c *rawClient) recvOne(d time.Duration) rawPacket {
	c.t.Helper()
	buf := make([]byte, 65536)
	c.conn.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		c.t.Fatalf("no packet within %v: %v", d, err)
	}
	if n < 4 {
		c.t.Fatalf("packet of %d bytes", n)
	}
	p := rawPacket{from: from, op: binary.BigEndian.Uint16(buf)}
	if p.op == opOACK {
		p.body = bytes.Clone(buf[2:n])
	} else {
		p.block = binary.BigEndian.Uint16(buf[2:])
		p.body = bytes.Clone(buf[4:n])
	}
	return p
}

func count(ps []rawPacket, op, block uint16) int {
	n := 0
	for _, p := range ps {
		if p.op == op && p.block == block {
			n++
		}
	}
	return n
}
