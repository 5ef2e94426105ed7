package harness

import (
	"context"
	"io"
	"net"
	"sync"
	"time"
)

// forwardDialTimeout bounds one connection attempt into the lab: an address behind a pulled cable must
// fail the client's request, not hang it.
const forwardDialTimeout = 3 * time.Second

// Forward makes a TCP address inside the lab reachable from the test process: it listens on a fresh
// port of the host's loopback, returned as host:port, and carries every connection made there to addr,
// dialled from inside the lab's namespace. A client library that dials from its own goroutines (an HTTP
// client, say), which Lab.Do cannot place in the lab, uses it. A connection that cannot reach addr is
// closed at once. The listener and every open connection close when t ends.
func (l *Lab) Forward(t T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: forward to %s in lab %s: listen on loopback: %v", addr, l.name, err)
	}
	f := &forwarder{lab: l, addr: addr, ln: ln, conns: map[net.Conn]struct{}{}}
	f.wg.Go(f.accept)
	t.Cleanup(f.close)
	l.log.Info("forwarding", "from", ln.Addr().String(), "to", addr, "lab", l.name)
	return ln.Addr().String()
}

type forwarder struct {
	lab  *Lab
	addr string
	ln   net.Listener
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (f *forwarder) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		f.wg.Go(func() { f.serve(c) })
	}
}

func (f *forwarder) serve(in net.Conn) {
	if !f.track(in) {
		in.Close()
		return
	}
	defer f.untrack(in)
	var out net.Conn
	err := f.lab.Do(func() error {
		// The socket is made here, on the thread that Do switched into the lab; it stays there.
		ctx, cancel := context.WithTimeout(context.Background(), forwardDialTimeout)
		defer cancel()
		var err error
		out, err = (&net.Dialer{}).DialContext(ctx, "tcp", f.addr)
		return err
	})
	if err != nil {
		f.lab.log.Debug("forward: dial failed", "to", f.addr, "err", err)
		return
	}
	if !f.track(out) {
		out.Close()
		return
	}
	defer f.untrack(out)
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Pass the half-close on, so that request-then-EOF protocols still work.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	wg.Go(func() { pipe(out, in) })
	wg.Go(func() { pipe(in, out) })
	wg.Wait()
}

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	f.ln.Close()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
