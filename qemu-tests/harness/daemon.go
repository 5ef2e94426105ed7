package harness

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"time"
)

// DaemonConfig is a server process to run inside a lab's namespace: bootstrapd, say, serving a lab network.
type DaemonConfig struct {
	// Name names the daemon in logs: its output goes to <name>.log in the test's log folder.
	Name string
	// Argv is the command line; Argv[0] is a path to the program.
	Argv []string
	// Ready, if set, is a regular expression that the daemon's output (stdout or stderr) matches once it
	// serves; Start waits for it.
	Ready string
	// ReadyTimeout defaults to 30 s.
	ReadyTimeout time.Duration
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL. Default 10 s.
	StopGrace time.Duration
}

var daemonName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)

// Daemon is a process started by Lab.Daemon. It can be stopped and started again (a server restarted in
// the middle of a test); it is stopped when the test ends.
type Daemon struct {
	lab  *Lab
	cfg  DaemonConfig
	mu   sync.Mutex
	proc *process
	log  string // path of the current run's log
}

// Daemon starts cfg.Argv in the lab's namespace and waits until it is ready.
func (l *Lab) Daemon(t T, cfg DaemonConfig) *Daemon {
	t.Helper()
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 10 * time.Second
	}
	d := &Daemon{lab: l, cfg: cfg}
	t.Cleanup(func() { d.stop() })
	if err := d.Start(t.Context()); err != nil {
		t.Fatalf("harness: daemon %s: %v", cfg.Name, err)
	}
	return d
}

// Start starts the daemon (again, after Stop) and waits until it is ready.
func (d *Daemon) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc != nil && !d.proc.exited() {
		return fmt.Errorf("%s is already running (pid %d)", d.cfg.Name, d.proc.pid())
	}
	if !daemonName.MatchString(d.cfg.Name) {
		return fmt.Errorf("daemon name %q: use letters, digits, '-' and '_'", d.cfg.Name)
	}
	stem, f, err := d.lab.logs.claim(d.cfg.Name, ".log")
	if err != nil {
		return err
	}
	defer f.Close()
	d.log = d.lab.logs.path(stem + ".log")
	p, err := startProcess(d.lab.logs, d.cfg.Name, d.lab.wrap(d.cfg.Argv), procIO{stdout: f, stderr: f})
	if err != nil {
		return err
	}
	d.proc = p
	if d.cfg.Ready == "" {
		return nil
	}
	re, err := regexp.Compile(d.cfg.Ready)
	if err != nil {
		return fmt.Errorf("DaemonConfig.Ready: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(d.log); err == nil && re.Match(b) {
			d.lab.log.Info("daemon ready", "name", d.cfg.Name, "pid", p.pid(), "log", d.log)
			return nil
		}
		select {
		case <-p.done:
			// It may have printed the ready line just before exiting (a
			// one-shot job): look once more before calling it a failure.
			if b, err := os.ReadFile(d.log); err == nil && re.Match(b) {
				return nil
			}
			return fmt.Errorf("%s exited at start (%v): %s", d.cfg.Name, p.err, tailFile(d.log, 15))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s (no line matching %q): %w; its log %s ends with: %s",
				d.cfg.Name, d.cfg.ReadyTimeout, d.cfg.Ready, ctx.Err(), d.log, tailFile(d.log, 15))
		case <-tick.C:
		}
	}
}

// Stop stops the daemon: SIGTERM, then SIGKILL after the grace time.
func (d *Daemon) Stop() { d.stop() }

// Kill kills the daemon at once, as a power cut would.
func (d *Daemon) Kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc != nil {
		d.proc.kill()
		<-d.proc.done
	}
}

func (d *Daemon) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc != nil {
		d.proc.stop(d.cfg.StopGrace)
	}
}

// PID is the current run's process id (0 before the first Start).
func (d *Daemon) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == nil {
		return 0
	}
	return d.proc.pid()
}

// LogPath is the current run's log file.
func (d *Daemon) LogPath() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log
}

// Output returns what the daemon has written so far in its current run.
func (d *Daemon) Output() string {
	b, _ := os.ReadFile(d.LogPath())
	return string(b)
}
