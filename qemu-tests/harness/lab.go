package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// Lab is a network namespace of its own for one test: the lab networks (bridges), the taps of the VMs on
// them, dnsmasq, and any lab-side client all live in it, so test traffic never reaches the host's networks
// and parallel tests never see each other. Its name is ocq-<pid>-<start>-<random> (see runID), which lets
// the sweeper delete it if the test process dies.
type Lab struct {
	name    string
	ip      string // path of the ip command
	nsenter string // path of nsenter, which runs commands inside the namespace
	logs    *testLogs
	log     *slog.Logger

	mu   sync.Mutex
	next int // numbers taps and veths so their names are unique in the namespace
}

// labCleanupTimeout bounds each teardown step run from t.Cleanup, where the test's context is already done.
const labCleanupTimeout = 30 * time.Second

// NewLab makes a fresh network namespace with its loopback up, deleted when t ends. It needs root.
func NewLab(t T) *Lab {
	t.Helper()
	l, err := newLab(t)
	if err != nil {
		t.Fatalf("harness: make a lab network namespace: %v", err)
	}
	return l
}

func newLab(t T) (*Lab, error) {
	if err := requireRoot(); err != nil {
		return nil, err
	}
	ip, err := lookTool("ip")
	if err != nil {
		return nil, err
	}
	nsenter, err := lookTool("nsenter")
	if err != nil {
		return nil, err
	}
	run, err := currentRun()
	if err != nil {
		return nil, err
	}
	logs, err := openTestLogs(t)
	if err != nil {
		return nil, err
	}
	l := &Lab{name: run.namespacePrefix() + randomHex(4), ip: ip, nsenter: nsenter, logs: logs, log: logs.logger(t)}
	if err := l.run(t.Context(), "netns", "add", l.name); err != nil {
		return nil, err
	}
	t.Cleanup(func() { l.close(t) })
	if err := l.ipn(t.Context(), "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	l.log.Info("lab namespace ready", "netns", l.name)
	return l, nil
}

// Name is the namespace's name, for `ip netns exec NAME ...` by hand.
func (l *Lab) Name() string { return l.name }

// close deletes the namespace. Every component stops its own processes first (their cleanups run
// earlier), so anything still inside is a leak: it is reported, and killed by PID.
func (l *Lab) close(t T) {
	ctx, cancel := context.WithTimeout(context.Background(), labCleanupTimeout)
	defer cancel()
	pids, err := pidsInNamespace(l.name)
	if err != nil {
		t.Errorf("harness: list the processes left in lab %s: %v", l.name, err)
	}
	if len(pids) > 0 {
		t.Errorf("harness: processes %v were still running in lab %s when the test ended; killing them", pids, l.name)
		if err := killNamespacePIDs(l.name, pids); err != nil {
			t.Errorf("harness: %v", err)
		}
	}
	if err := l.run(ctx, "netns", "delete", l.name); err != nil {
		t.Errorf("harness: %v", err)
	}
}

// Command returns a command that runs inside the lab namespace (through nsenter, which keeps the PID).
// The caller starts and waits for it; the kernel kills it if the test process dies.
func (l *Lab) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := l.wrap(append([]string{name}, args...))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Do runs fn on an OS thread switched into the lab namespace, so that the sockets fn opens (a DHCP client,
// a test server's listener) live on the lab network. They stay there after Do returns and may be used from
// any goroutine; but goroutines that fn itself starts run in the host namespace.
func (l *Lab) Do(fn func() error) error {
	runtime.LockOSThread()
	host, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab %s: get this thread's namespace: %w", l.name, err)
	}
	defer host.Close()
	lab, err := netns.GetFromName(l.name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab %s: open the namespace: %w", l.name, err)
	}
	defer lab.Close()
	if err := netns.Set(lab); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab %s: enter the namespace: %w", l.name, err)
	}
	defer func() {
		// A thread that cannot go back stays locked, so the Go runtime retires it with its goroutine.
		if netns.Set(host) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return fn()
}

// wrap makes argv run inside the namespace. nsenter enters only the network namespace and execs argv in
// place, so the PID the harness holds is argv's own. (`ip netns exec` would also unshare the mount
// namespace and remount /sys, which fails where / is not a mount point, as in a chroot; setns on a
// locked thread before fork would tie the child's parent-death signal to a thread that must then be
// thrown away.)
func (l *Lab) wrap(argv []string) []string {
	return append([]string{l.nsenter, "--net=" + filepath.Join(netnsDir, l.name), "--"}, argv...)
}

// newIfName returns a fresh interface name with the given prefix, unique in the namespace and short
// enough for the kernel's 15-character limit.
func (l *Lab) newIfName(prefix string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	return fmt.Sprintf("%s%d", prefix, l.next)
}

// run runs the ip command, recording it in commands.log, and returns its output in the error.
func (l *Lab) run(ctx context.Context, args ...string) error {
	argv := append([]string{l.ip}, args...)
	l.logs.command("ip", 0, argv)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", shellQuote(argv), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ipn runs the ip command inside the lab namespace.
func (l *Lab) ipn(ctx context.Context, args ...string) error {
	argv := l.wrap(append([]string{l.ip}, args...))
	l.logs.command("ip", 0, argv)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", shellQuote(argv), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// randomHex returns n random bytes in hex, to make names unique without a shared counter.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// pidsInNamespace lists the processes whose network namespace is the named one (what `ip netns pids`
// prints), by comparing /proc/PID/ns/net with the namespace's file.
func pidsInNamespace(name string) ([]int, error) {
	want, err := os.Stat("/run/netns/" + name)
	if err != nil {
		return nil, err
	}
	all, err := processes()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, pid := range all {
		if inNamespace(pid, want) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func inNamespace(pid int, ns os.FileInfo) bool {
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid))
	return err == nil && os.SameFile(fi, ns)
}

// killNamespacePIDs kills the given processes if they are still in the namespace, waiting until they have
// died so that deleting the namespace really frees it.
func killNamespacePIDs(name string, pids []int) error {
	ns, err := os.Stat("/run/netns/" + name)
	if err != nil {
		return err
	}
	var errs []error
	for _, pid := range pids {
		if _, err := killIf(pid, func(pid int) bool { return inNamespace(pid, ns) }); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
