package tftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Root: dir}, true},
		{"no root", Config{}, false},
		{"missing root", Config{Root: filepath.Join(dir, "missing")}, false},
		{"root is a file", Config{Root: file}, false},
		{"blksize too small", Config{Root: dir, MaxBlksize: 7}, false},
		{"blksize too large", Config{Root: dir, MaxBlksize: 65465}, false},
		{"window too large", Config{Root: dir, MaxWindow: 65536}, false},
		{"negative window", Config{Root: dir, MaxWindow: -1}, false},
		{"negative timeout", Config{Root: dir, Timeout: -time.Second}, false},
		{"negative retries", Config{Root: dir, Retries: -1}, false},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if (err == nil) != tt.ok {
			t.Errorf("%s: New() error = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestTransferSizes(t *testing.T) {
	dir := t.TempDir()
	sizes := map[string]int{"0": 0, "511": 511, "512": 512, "513": 513, "1M+1": 1<<20 + 1, "1468": 1468}
	files := writeFiles(t, dir, sizes)
	srv := startServer(t, Config{Root: dir})

	variants := []struct {
		name        string
		o           clientOpts
		wantBlksize int
		wantWindow  int
	}{
		{"rfc1350 no options", clientOpts{}, 512, 1},
		{"ipxe blksize+tsize", clientOpts{blksize: 1432, tsize: true}, 1432, 1},
		{"blksize above the cap", clientOpts{blksize: 8192, tsize: true}, 1468, 1},
		{"windowsize 16", clientOpts{blksize: 1468, tsize: true, window: 16}, 1468, 16},
		{"windowsize above the cap", clientOpts{window: 64}, 512, 16},
		{"timeout option", clientOpts{timeoutOpt: 2, tsize: true}, 512, 1},
	}
	for _, v := range variants {
		for name, want := range files {
			t.Run(v.name+"/"+name, func(t *testing.T) {
				res, err := get(srv.addr, name, v.o)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(res.data, want) {
					t.Fatalf("got %d bytes that differ from the %d-byte file", len(res.data), len(want))
				}
				hasOptions := v.o != clientOpts{}
				if (res.oack != nil) != hasOptions {
					t.Errorf("OACK %v, but options sent: %v", res.oack, hasOptions)
				}
				if v.o.tsize && res.oack["tsize"] != strconv.Itoa(len(want)) {
					t.Errorf("tsize = %q, want %d", res.oack["tsize"], len(want))
				}
				if v.o.blksize > 0 && res.oack["blksize"] != strconv.Itoa(v.wantBlksize) {
					t.Errorf("blksize = %q, want %d", res.oack["blksize"], v.wantBlksize)
				}
				if v.o.window > 0 && res.oack["windowsize"] != strconv.Itoa(v.wantWindow) {
					t.Errorf("windowsize = %q, want %d", res.oack["windowsize"], v.wantWindow)
				}
				if v.o.timeoutOpt > 0 && res.oack["timeout"] != strconv.Itoa(v.o.timeoutOpt) {
					t.Errorf("timeout = %q, want %d", res.oack["timeout"], v.o.timeoutOpt)
				}
				// One ACK per window (plus the OACK's), none early on a
				// clean loopback.
				blocks := len(want)/v.wantBlksize + 1
				wantAcks := (blocks + v.wantWindow - 1) / v.wantWindow
				if hasOptions {
					wantAcks++
				}
				if res.acks > wantAcks+1 || res.naks > 0 {
					t.Errorf("sent %d ACKs (%d early), want %d", res.acks, res.naks, wantAcks)
				}
			})
		}
	}
	waitFor(t, "the counters", func() bool {
		return srv.s.Stats().Completed == uint64(len(variants)*len(files))
	})
	st := srv.s.Stats()
	var total uint64
	for _, b := range files {
		total += uint64(len(b))
	}
	if st.Bytes != total*uint64(len(variants)) || st.Failed != 0 || st.Started != st.Completed {
		t.Errorf("stats %+v, want %d bytes, no failures", st, total*uint64(len(variants)))
	}
}

// TestReplySourceIsListenAddress binds the server to 127.0.0.2 and the
// client to 127.0.0.1: a transfer socket bound to the wildcard would answer
// from 127.0.0.1, which a ROM that talked to 127.0.0.2 ignores.
func TestReplySourceIsListenAddress(t *testing.T) {
	dir := t.TempDir()
	files := writeFiles(t, dir, map[string]int{"f": 3000})
	srv := startServer(t, Config{Root: dir}, "127.0.0.2:0")
	res, err := get(srv.addr, "f", clientOpts{blksize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.data, files["f"]) {
		t.Fatal("wrong content")
	}
	if res.from.Addr() != srv.addr.Addr() || res.from.Port() == srv.addr.Port() {
		t.Errorf("data came from %v, want %v on an ephemeral port", res.from, srv.addr.Addr())
	}
}

func TestPacketLoss(t *testing.T) {
	dir := t.TempDir()
	files := writeFiles(t, dir, map[string]int{"f": 100_000})
	srv := startServer(t, Config{Root: dir, Timeout: 20 * time.Millisecond, Retries: 20})
	for _, tt := range []struct {
		name string
		o    clientOpts
	}{
		{"lock-step", clientOpts{blksize: 1024, tsize: true}},
		{"windowsize 8", clientOpts{blksize: 1024, window: 8}},
		{"no options", clientOpts{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer uc.Close()
			lossy := newLossyConn(uc, 0.05, 42)
			tt.o.wait = 30 * time.Millisecond
			res, err := getOn(lossy, srv.addr, "f", tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.data, files["f"]) {
				t.Fatalf("got %d bytes that differ from the file", len(res.data))
			}
			if lossy.dropped == 0 {
				t.Fatal("the lossy conn dropped nothing; the test tests nothing")
			}
		})
	}
	waitFor(t, "completions", func() bool { return srv.s.Stats().Completed == 3 })
	if st := srv.s.Stats(); st.Retransmits == 0 {
		t.Errorf("no retransmissions counted despite loss: %+v", st)
	}
}

func TestPathsConfined(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	writeFiles(t, base, map[string]int{"secret": 100, "root/ok": 10, "root/sub/inner": 20})
	secret := filepath.Join(base, "secret")
	for link, target := range map[string]string{
		"escape":      "../secret",
		"absolute":    secret,
		"sub/escape2": "../../secret",
		"inside":      "sub/inner",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServer(t, Config{Root: root})

	tests := []struct {
		name  string
		codes []uint16 // acceptable error codes; nil means the file is served
	}{
		{"../secret", []uint16{errAccess}},
		{"/../secret", []uint16{errAccess}},
		{"sub/../../secret", []uint16{errAccess}},
		{"sub/../ok", []uint16{errAccess}},
		{secret, []uint16{errNotFound}}, // stripped of "/" it names nothing inside
		{"/etc/passwd", []uint16{errNotFound}},
		{"escape", []uint16{errAccess, errNotFound}},
		{"absolute", []uint16{errAccess, errNotFound}},
		{"sub/escape2", []uint16{errAccess, errNotFound}},
		{"sub", []uint16{errAccess}},
		{"/", []uint16{errAccess}},
		{"missing", []uint16{errNotFound}},
		{"/ok", nil},
		{"inside", nil},
	}
	refusals := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			res, err := getOn(c, srv.addr, tt.name, clientOpts{})
			if tt.codes == nil {
				if err != nil || len(res.data) == 0 {
					t.Fatalf("got %d bytes, %v; want the file", len(res.data), err)
				}
				return
			}
			refusals++
			var te *tftpError
			if !errors.As(err, &te) {
				t.Fatalf("got %d bytes, %v; want an error packet", len(res.data), err)
			}
			ok := false
			for _, c := range tt.codes {
				ok = ok || te.code == c
			}
			if !ok {
				t.Errorf("error code %d (%s), want one of %v", te.code, te.msg, tt.codes)
			}
			// The operator's log names the client and what it asked.
			client := c.LocalAddr().String()
			found := false
			for line := range strings.SplitSeq(srv.logs.String(), "\n") {
				if strings.Contains(line, "refused") && strings.Contains(line, client) && strings.Contains(line, tt.name) {
					found = true
				}
			}
			if !found {
				t.Errorf("no log line names client %s and file %q:\n%s", client, tt.name, srv.logs.String())
			}
		})
	}
	if st := srv.s.Stats(); st.Refused != uint64(refusals) || st.Started != 2 {
		t.Errorf("stats %+v, want %d refused and 2 started", st, refusals)
	}
}

func TestRefusedRequests(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]int{"f": 10})
	srv := startServer(t, Config{Root: dir})
	c := newRawClient(t)

	tests := []struct {
		name     string
		pkt      string
		wantCode uint16
		wantMsg  string
	}{
		{"write", "\x00\x02f\x00octet\x00", errAccess, "read-only"},
		{"netascii", "\x00\x01f\x00netascii\x00", errIllegalOp, "octet"},
		{"mail", "\x00\x01f\x00mail\x00", errIllegalOp, "octet"},
		{"malformed RRQ", "\x00\x01f\x00octet", errIllegalOp, "malformed"},
	}
	for _, tt := range tests {
		c.send([]byte(tt.pkt), srv.addr)
		p := c.recvOne(time.Second)
		if p.op != opERROR || p.block != tt.wantCode || !bytes.Contains(p.body, []byte(tt.wantMsg)) {
			t.Errorf("%s: got op %d code %d %q, want ERROR %d containing %q", tt.name, p.op, p.block, p.body, tt.wantCode, tt.wantMsg)
		}
	}
	// Garbage that isn't a request gets no answer, only a count.
	c.send(appendACK(nil, 1), srv.addr)
	c.send([]byte{0xff}, srv.addr)
	if ps := c.recv(100 * time.Millisecond); len(ps) != 0 {
		t.Errorf("got %d answers to garbage, want none", len(ps))
	}
	waitFor(t, "3 refused and 3 malformed", func() bool {
		st := srv.s.Stats()
		return st.Refused == 3 && st.Malformed == 3
	})
	// The server still works.
	if res, err := get(srv.addr, "f", clientOpts{}); err != nil || len(res.data) != 10 {
		t.Errorf("after bad input: %d bytes, %v", len(res.data), err)
	}
}

// TestDuplicateACK checks the Sorcerer's Apprentice bug can't happen: a
// duplicate ACK must not make the server send the next block twice.
func TestDuplicateACK(t *testing.T) {
	dir := t.TempDir()
	files := writeFiles(t, dir, map[string]int{"f": 1100}) // blocks of 512, 512, 76
	srv := startServer(t, Config{Root: dir, Timeout: 5 * time.Second})
	c := newRawClient(t)
	c.send(rrq("f", clientOpts{}), srv.addr)
	p := c.recvOne(time.Second)
	if p.op != opDATA || p.block != 1 {
		t.Fatalf("first packet: op %d block %d, want DATA 1", p.op, p.block)
	}
	tid := p.from
	var got []byte
	got = append(got, p.body...)
	for block := uint16(1); block <= 2; block++ {
		c.send(appendACK(nil, block), tid)
		c.send(appendACK(nil, block), tid)
		ps := c.recv(150 * time.Millisecond)
		if n := count(ps, opDATA, block+1); n != 1 || len(ps) != 1 {
			t.Fatalf("after a doubled ACK %d: %d packets, %d of them DATA %d; want exactly one", block, len(ps), n, block+1)
		}
		got = append(got, ps[0].body...)
	}
	c.send(appendACK(nil, 3), tid)
	if !bytes.Equal(got, files["f"]) {
		t.Fatal("wrong content")
	}
	waitFor(t, "completion", func() bool { return srv.s.Stats().Completed == 1 })

	// A packet from another port to the transfer's socket gets "unknown
	// transfer ID" (checked on a new transfer, since that one ended).
	c = newRawClient(t)
	c.send(rrq("f", clientOpts{}), srv.addr)
	p = c.recvOne(time.Second)
	other := newRawClient(t)
	other.send(appendACK(nil, 1), p.from)
	if e := other.recvOne(time.Second); e.op != opERROR || e.block != errUnknownTID {
		t.Errorf("stranger got op %d code %d, want ERROR %d", e.op, e.block, errUnknownTID)
	}
}

func TestRetransmitThenGiveUp(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]int{"f": 100})
	srv := startServer(t, Config{Root: dir, Timeout: 20 * time.Millisecond, Retries: 3})
	for _, tt := range []struct {
		name   string
		o      clientOpts
		op     uint16
		expect int // packets before the server gives up
	}{
		{"DATA 1", clientOpts{}, opDATA, 4},
		{"OACK", clientOpts{tsize: true}, opOACK, 4},
	} {
		c := newRawClient(t)
		c.send(rrq("f", tt.o), srv.addr)
		ps := c.recv(250 * time.Millisecond)
		n := 0
		for _, p := range ps {
			if p.op == tt.op {
				n++
			}
		}
		if n != tt.expect || len(ps) != tt.expect+1 || ps[len(ps)-1].op != opERROR {
			t.Errorf("%s: got %d packets, %d of them op %d; want %d then an ERROR", tt.name, len(ps), n, tt.op, tt.expect)
		}
	}
	waitFor(t, "failures", func() bool { return srv.s.Stats().Failed == 2 })
	if st := srv.s.Stats(); st.Retransmits != 6 {
		t.Errorf("retransmits = %d, want 6", st.Retransmits)
	}
}

// gateLimiter admits nobody until open is closed.
type gateLimiter struct {
	open  chan struct{}
	calls atomic.Int32
}

func (g *gateLimiter) Acquire(ctx context.Context) (func(), error) {
	g.calls.Add(1)
	select {
	case <-g.open:
		return func() {}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestQueuedRequestIsNotDuplicated(t *testing.T) {
	dir := t.TempDir()
	files := writeFiles(t, dir, map[string]int{"f": 100})
	lim := &gateLimiter{open: make(chan struct{})}
	srv := startServer(t, Config{Root: dir, Timeout: 5 * time.Second, Limiter: lim})
	c := newRawClient(t)
	req := rrq("f", clientOpts{})
	for range 3 { // the ROM retransmits while it waits
		c.send(req, srv.addr)
	}
	waitFor(t, "the duplicates", func() bool { return srv.s.Stats().Duplicates == 2 })
	if n := lim.calls.Load(); n != 1 {
		t.Fatalf("Acquire called %d times, want 1", n)
	}
	if ps := c.recv(50 * time.Millisecond); len(ps) != 0 {
		t.Fatalf("got %d packets while queued, want none", len(ps))
	}
	close(lim.open)
	ps := c.recv(200 * time.Millisecond)
	if len(ps) != 1 || ps[0].op != opDATA || !bytes.Equal(ps[0].body, files["f"]) {
		t.Fatalf("got %d packets, want exactly one DATA 1 with the file", len(ps))
	}
	c.send(appendACK(nil, 1), ps[0].from)
	waitFor(t, "completion", func() bool { return srv.s.Stats().Completed == 1 })
	if st := srv.s.Stats(); st.Started != 1 {
		t.Errorf("started %d transfers, want 1", st.Started)
	}
}

type fullLimiter struct{}

func (fullLimiter) Acquire(context.Context) (func(), error) {
	return nil, errors.New("queue full")
}

func TestLimiterRefusalDropsSilently(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]int{"f": 100})
	srv := startServer(t, Config{Root: dir, Limiter: fullLimiter{}})
	c := newRawClient(t)
	c.send(rrq("f", clientOpts{}), srv.addr)
	if ps := c.recv(150 * time.Millisecond); len(ps) != 0 {
		t.Fatalf("got %d packets, want silence", len(ps))
	}
	waitFor(t, "the drop", func() bool { return srv.s.Stats().Dropped == 1 })
	if st := srv.s.Stats(); st.Started != 0 {
		t.Errorf("stats %+v, want none started", st)
	}
	// A refused file is still refused at once, without asking the limiter.
	c.send(rrq("missing", clientOpts{}), srv.addr)
	if p := c.recvOne(time.Second); p.op != opERROR || p.block != errNotFound {
		t.Errorf("got op %d code %d, want file not found", p.op, p.block)
	}
}

// TestTsizeProbeThenRequest is what PXE ROMs do: ask with tsize only, abort
// with an ERROR after the OACK, then ask again from the same port.
func TestTsizeProbeThenRequest(t *testing.T) {
	dir := t.TempDir()
	files := writeFiles(t, dir, map[string]int{"pxe": 5000})
	srv := startServer(t, Config{Root: dir, Timeout: 5 * time.Second})

	for _, abortFirst := range []bool{true, false} {
		c := newRawClient(t)
		c.send(rrq("pxe", clientOpts{tsize: true}), srv.addr)
		p := c.recvOne(time.Second)
		if p.op != opOACK || parseOACK(p.body)["tsize"] != "5000" {
			t.Fatalf("got op %d %q, want an OACK with tsize 5000", p.op, p.body)
		}
		if abortFirst {
			c.send(appendError(nil, errOptionRefused, "tsize only"), p.from)
		}
		// Without the ERROR (lost), the new request alone replaces the old
		// transfer, which must not answer the client any more.
		res, err := getOn(c.conn, srv.addr, "pxe", clientOpts{blksize: 1456})
		if err != nil || !bytes.Equal(res.data, files["pxe"]) {
			t.Fatalf("re-request: %d bytes, %v", len(res.data), err)
		}
		if res.from == p.from {
			t.Errorf("the re-request was served by the old transfer's socket")
		}
		if ps := c.recv(50 * time.Millisecond); len(ps) != 0 {
			t.Errorf("got %d stray packets after the transfer", len(ps))
		}
	}
	waitFor(t, "counters", func() bool {
		st := srv.s.Stats()
		return st.Aborted == 2 && st.Completed == 2
	})
}

func TestConcurrentTransfers(t *testing.T) {
	dir := t.TempDir()
	sizes := map[string]int{}
	for i := range 50 {
		sizes[fmt.Sprintf("f%02d", i)] = 40_000 + 997*i
	}
	files := writeFiles(t, dir, sizes)
	srv := startServer(t, Config{Root: dir})
	var wg sync.WaitGroup
	errs := make(chan error, len(files))
	i := 0
	for name, want := range files {
		o := clientOpts{blksize: 1468, tsize: true}
		if i%2 == 0 {
			o.window = 8
		}
		i++
		wg.Go(func() {
			res, err := get(srv.addr, name, o)
			if err == nil && !bytes.Equal(res.data, want) {
				err = errors.New("content differs")
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitFor(t, "completions", func() bool { return srv.s.Stats().Completed == 50 })
}

// TestShutdown checks Serve returns promptly with a transfer in flight and
// tells its client.
func TestShutdown(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]int{"f": 100})
	s, err := New(Config{Root: dir, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, conn) }()

	c := newRawClient(t)
	c.send(rrq("f", clientOpts{}), conn.LocalAddr().(*net.UDPAddr).AddrPort())
	if p := c.recvOne(time.Second); p.op != opDATA {
		t.Fatalf("got op %d, want DATA", p.op)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve() = %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Serve took %v to return", d)
	}
	if p := c.recvOne(time.Second); p.op != opERROR || !bytes.Contains(p.body, []byte("shutting down")) {
		t.Errorf("client got op %d %q, want a shutdown error", p.op, p.body)
	}
	if st := s.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v, want 1 failed", st)
	}
}

// TestCurl fetches with a third-party client and compares bytes.
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	if out, err := exec.Command(curl, "-V").Output(); err != nil || !bytes.Contains(out, []byte("tftp")) {
		t.Skip("curl lacks tftp support")
	}
	dir := t.TempDir()
	files := writeFiles(t, dir, map[string]int{"undionly.kpxe": 1<<20 + 1, "small": 512})
	srv := startServer(t, Config{Root: dir})
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"undionly.kpxe", []string{"--tftp-blksize", "1468"}},
		{"small", []string{"--tftp-no-options"}},
	} {
		out := filepath.Join(t.TempDir(), "out")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		args := append([]string{"-sS", "-o", out}, tt.args...)
		args = append(args, fmt.Sprintf("tftp://%s/%s", srv.addr, tt.name))
		msg, err := exec.CommandContext(ctx, curl, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, msg)
		}
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, files[tt.name]) {
			t.Errorf("curl %s: got %d bytes (%v), want the %d-byte file", tt.name, len(got), err, len(files[tt.name]))
		}
	}
}

func BenchmarkTransfer(b *testing.B) {
	dir := b.TempDir()
	const size = 10 << 20
	writeFiles(b, dir, map[string]int{"big": size})
	srv := startServer(b, Config{Root: dir})
	for _, window := range []int{1, 16} {
		b.Run("windowsize="+strconv.Itoa(window), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				res, err := get(srv.addr, "big", clientOpts{blksize: 1468, window: window})
				if err != nil {
					b.Fatal(err)
				}
				if len(res.data) != size {
					b.Fatalf("got %d bytes", len(res.data))
				}
			}
		})
	}
}

func TestMACOfNamesTheClient(t *testing.T) {
	known := netip.MustParseAddr("10.77.1.100")
	s, err := New(Config{Root: t.TempDir(), MACOf: func(a netip.Addr) (string, bool) {
		return "52:54:00:12:34:56", a == known
	}})
	if err != nil {
		t.Fatal(err)
	}
	for client, want := range map[string]string{
		"10.77.1.100:2070": "52:54:00:12:34:56",
		"10.77.1.101:2070": "unknown",
		"not an address":   "unknown",
	} {
		if got := s.macOf(client); got != want {
			t.Errorf("macOf(%q) = %q, want %q", client, got, want)
		}
	}
	plain, err := New(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got := plain.macOf("10.77.1.100:2070"); got != "unknown" {
		t.Errorf("without MACOf: %q, want unknown", got)
	}
}
