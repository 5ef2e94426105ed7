package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// process is one child the harness started: QEMU, swtpm or dnsmasq. Its exit is observed exactly once,
// by a goroutine that closes done, so that any number of callers can wait for it with a context.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the result of cmd.Wait, valid once done is closed
}

// procIO is where a child's standard streams go; nil means /dev/null.
type procIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// startProcess starts argv and records its command line in the test's commands.log.
//
// Every child gets its own process group, so that a Ctrl-C on the terminal reaches only the test binary,
// which then tears everything down in order (see Main); and a parent-death signal, so that the kernel kills
// it if the test binary dies without cleaning up (a panic, a go test -timeout, kill -9). That signal is
// tied to the OS thread that forked, which the Go runtime keeps alive; only a thread left locked by
// LockOSThread dies early, and Lab.Do never leaves one locked unless it cannot switch back.
func startProcess(logs *testLogs, name string, argv []string, stdio procIO) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.stdin, stdio.stdout, stdio.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logs.command(name, -1, argv)
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	logs.command(name, cmd.Process.Pid, argv)
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL. os.Process uses a pidfd, so this can never hit another process that reused the PID.
// Its only error is "already exited", which is what the caller wants anyway.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
}

// terminate sends SIGTERM (through the same pidfd).
func (p *process) terminate() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
}

// wait waits until the process has exited and returns its exit error (nil for status 0).
func (p *process) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s (pid %d) to exit: %w", p.name, p.pid(), ctx.Err())
	}
}

// stop asks the process to exit with SIGTERM, kills it after grace, and waits for it.
func (p *process) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	p.terminate()
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
		<-p.done
	}
}

// killIf sends SIGKILL to pid, but only if that process, once pinned by a pidfd, still satisfies mine,
// and waits (up to killWait) until it has died. The check comes after pidfd_open so that a PID reused
// between a /proc scan and the kill cannot be hit.
func killIf(pid int, mine func(pid int) bool) (bool, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if !mine(pid) {
		return false, nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return false, fmt.Errorf("kill %d: %w", pid, err)
	}
	// A pidfd becomes readable when its process has exited.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, int(killWait.Milliseconds())); err != nil || n == 0 {
		return true, fmt.Errorf("process %d did not die within %s of SIGKILL (%v)", pid, killWait, err)
	}
	return true, nil
}

// killWait bounds the wait for a SIGKILLed process to die (it can only be slow in uninterruptible I/O).
const killWait = 10 * time.Second

// processes lists the PIDs of all processes, from /proc.
func processes() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err == nil && fmt.Sprint(pid) == e.Name() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// liveChildOf reports whether pid is a child of parent that has not exited yet.
func liveChildOf(parent int) func(pid int) bool {
	return func(pid int) bool {
		st, err := readStat(pid)
		return err == nil && st.ppid == parent && st.state != 'Z'
	}
}

// cmdlineMentions reports whether pid's command line contains s.
func cmdlineMentions(s string) func(pid int) bool {
	return func(pid int) bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && strings.Contains(string(b), s)
	}
}

// shellQuote renders argv so that an operator can paste it into a shell.
func shellQuote(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}
