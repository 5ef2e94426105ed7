package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

// netSide is one server's lab network: a namespace of its own for the server, joined by a veth pair to
// the shared client namespace. The two sides use different subnets, so the client namespace reaches
// each server through its own veth and a broadcast (DHCP) on one never reaches the other.
type netSide struct {
	srv         *harness.Lab
	iface       string       // the server's end of the veth, in srv
	clientIface string       // the clients' end, in the client namespace
	prefix      netip.Prefix // the subnet
	addr        netip.Addr   // the server's address on iface
	clientAddr  netip.Addr   // the client namespace's address on clientIface
	poolFirst   netip.Addr
	poolLast    netip.Addr
}

// poolSize is the number of addresses both servers hand out: enough for the storm's boxes and
// perfdhcp's clients with room to spare, as on a school network sized for its fleet.
const poolSize = 2048

// lab is the bench's whole network: the client namespace and the two server sides.
type lab struct {
	cli  *harness.Lab
	boot netSide // bootstrapd's side (or, with -calibrate, a second peer)
	peer netSide // dnsmasq and nginx
}

// newLab makes the three namespaces and the two veth pairs. Everything belongs to sess: closing it kills
// what still runs in the namespaces (by PID) and deletes them, and the veths with them.
func newLab(ctx context.Context, sess *harness.Session) (*lab, error) {
	l := &lab{cli: harness.NewLab(sess)}
	var err error
	if l.boot, err = newSide(ctx, sess, l.cli, "boot", "10.77.0.0/16"); err != nil {
		return nil, err
	}
	if l.peer, err = newSide(ctx, sess, l.cli, "peer", "10.78.0.0/16"); err != nil {
		return nil, err
	}
	return l, nil
}

func newSide(ctx context.Context, sess *harness.Session, cli *harness.Lab, name, cidr string) (netSide, error) {
	p := netip.MustParsePrefix(cidr)
	s := netSide{srv: harness.NewLab(sess), iface: name + "0", clientIface: "c" + name + "0", prefix: p}
	s.addr, s.clientAddr, s.poolFirst, s.poolLast = sideAddrs(p)
	// The pair is made in the client namespace and its server end moved at once, in one ip command;
	// deleting the namespaces (when sess closes) deletes it. The commands run through the labs'
	// nsenter wrapper, not `ip -n`, which remounts /sys and fails in a chroot.
	steps := []struct {
		in   *harness.Lab
		argv []string
	}{
		{cli, []string{"link", "add", s.clientIface, "type", "veth", "peer", "name", s.iface, "netns", s.srv.Name()}},
		{cli, []string{"addr", "add", netip.PrefixFrom(s.clientAddr, p.Bits()).String(), "dev", s.clientIface}},
		{cli, []string{"link", "set", s.clientIface, "up"}},
		{s.srv, []string{"addr", "add", netip.PrefixFrom(s.addr, p.Bits()).String(), "dev", s.iface}},
		{s.srv, []string{"link", "set", s.iface, "up"}},
	}
	for _, st := range steps {
		if out, err := st.in.Command(ctx, "ip", st.argv...).CombinedOutput(); err != nil {
			return s, fmt.Errorf("lab network %s: ip %s (in %s): %w: %s", name, strings.Join(st.argv, " "), st.in.Name(), err, strings.TrimSpace(string(out)))
		}
	}
	return s, nil
}

// sideAddrs are the addresses of a side's /16: the server .0.1, the clients .0.2, and a pool of poolSize
// addresses from .16.0 on, away from the servers' own.
func sideAddrs(p netip.Prefix) (srv, client, first, last netip.Addr) {
	b := p.Masked().Addr().As4()
	at := func(c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{b[0], b[1], c, d}) }
	return at(0, 1), at(0, 2), at(16, 0), at(16+poolSize/256-1, 255)
}

// proc is a server process the bench started in a namespace: bootstrapd, dnsmasq or nginx.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // cmd.Wait's result, once done is closed
}

// startProc starts argv inside lab, its stdout and stderr appended to logPath (and to watch, if not nil).
// The process gets a process group of its own, so that a Ctrl-C on the terminal reaches only bootbench
// (which then stops it in order), and so that stop can kill what it forked (nginx's workers) by the
// group's id; and the parent-death signal of Lab.Command, so nothing outlives a killed bootbench.
func startProc(lab *harness.Lab, name, logPath string, watch io.Writer, argv ...string) (*proc, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	var out io.Writer = logFile
	if watch != nil {
		out = io.MultiWriter(logFile, watch)
	}
	// Not CommandContext: stop decides how the process ends (SIGTERM first, then the whole group).
	cmd := lab.Command(context.Background(), argv[0], argv[1:]...)
	cmd.SysProcAttr.Setpgid = true
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, argv[0], err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then after grace SIGKILL to the process's group (its own PID), and waits. It may
// be called more than once.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	// nginx's workers leave with their master on SIGTERM; a straggler of the group goes now.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// waitFor waits until ready says yes, or fails with the end of the process's log when it exits first
// or timeout passes.
func (p *proc) waitFor(ctx context.Context, timeout time.Duration, ready func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !ready() {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited at start (%v); its log %s ends with: %s", p.name, p.err, p.logPath, tailFile(p.logPath, 8))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s: %w; its log %s ends with: %s", p.name, timeout, ctx.Err(), p.logPath, tailFile(p.logPath, 8))
		case <-tick.C:
		}
	}
	return nil
}

// tailFile is the last n lines of a file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return lastLines(string(b), n)
}

// lineWatch is a writer that remembers whether a marker has appeared in what was written (across
// writes), for "ready" lines on a server's stderr.
type lineWatch struct {
	marker []byte
	mu     sync.Mutex
	tail   []byte // the last len(marker)-1 bytes, for a marker split across writes
	seen   bool
}

func newLineWatch(marker string) *lineWatch { return &lineWatch{marker: []byte(marker)} }

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen {
		return len(p), nil
	}
	buf := append(w.tail, p...)
	if bytes.Contains(buf, w.marker) {
		w.seen = true
		w.tail = nil
		return len(p), nil
	}
	keep := min(len(buf), len(w.marker)-1)
	w.tail = append([]byte(nil), buf[len(buf)-keep:]...)
	return len(p), nil
}

func (w *lineWatch) Seen() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}
