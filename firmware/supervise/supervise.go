// Package supervise keeps the box's long-running services alive.
//
// gokrazy's supervisor is the model: every service is started once at boot,
// restarted when it exits with a growing pause (so that a service that
// crashes at once does not spin the CPU of a thin terminal), and its output
// goes to a ring buffer that the console shows. The states are published as
// JSON in a file that noded reads for its status API.
package supervise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/internal/atomicfile"
	"github.com/onecloud-edu/onecloud/noded/localapi"
)

// Service is one program to keep running.
type Service struct {
	Name string
	Path string
	Args []string
	Env  []string // added to the supervisor's environment
}

// Options tune a Supervisor. Zero values take the defaults in New.
type Options struct {
	// StateFile receives the services' states as JSON after each change.
	// Empty means states are kept in memory only.
	StateFile string
	// MinBackoff and MaxBackoff bound the pause before a restart; it doubles
	// with each quick exit.
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a run must last for the pause to start over
	// at MinBackoff.
	StableAfter time.Duration
	// StopGrace is how long a service gets between SIGTERM and SIGKILL.
	StopGrace time.Duration
	// RingLines is how many log lines are kept per service.
	RingLines int
	// Console, if set, also receives every line of every service.
	Console io.Writer
	Log     *slog.Logger
}

// Supervisor runs services.
type Supervisor struct {
	opt     Options
	mu      sync.Mutex
	entries map[string]*entry
	changed chan struct{}
	wg      sync.WaitGroup
}

type entry struct {
	state localapi.Service
	ring  *Ring
}

// New returns a Supervisor with defaults filled in.
func New(opt Options) *Supervisor {
	if opt.MinBackoff <= 0 {
		opt.MinBackoff = time.Second
	}
	if opt.MaxBackoff < opt.MinBackoff {
		opt.MaxBackoff = max(time.Minute, opt.MinBackoff)
	}
	if opt.StableAfter <= 0 {
		opt.StableAfter = 30 * time.Second
	}
	if opt.StopGrace <= 0 {
		opt.StopGrace = 5 * time.Second
	}
	if opt.RingLines <= 0 {
		opt.RingLines = 500
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{opt: opt, entries: map[string]*entry{}, changed: make(chan struct{}, 1)}
}

// Changed receives a value (coalesced) whenever a service changes state.
func (s *Supervisor) Changed() <-chan struct{} { return s.changed }

// Start supervises svc until ctx ends; then the service is stopped (SIGTERM,
// SIGKILL after StopGrace) and Wait returns once all are down.
func (s *Supervisor) Start(ctx context.Context, svc Service) error {
	s.mu.Lock()
	if _, dup := s.entries[svc.Name]; dup {
		s.mu.Unlock()
		return fmt.Errorf("service %q is already supervised", svc.Name)
	}
	e := &entry{ring: NewRing(s.opt.RingLines), state: localapi.Service{Name: svc.Name, State: localapi.StateStarting, Since: time.Now()}}
	s.entries[svc.Name] = e
	s.mu.Unlock()

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.loop(ctx, svc, e)
	}()
	return nil
}

// Wait blocks until every supervised service has stopped after its context ended.
func (s *Supervisor) Wait() { s.wg.Wait() }

func (s *Supervisor) loop(ctx context.Context, svc Service, e *entry) {
	log := s.opt.Log.With("service", svc.Name)
	pause := s.opt.MinBackoff
	for {
		started := time.Now()
		err := s.runOnce(ctx, svc, e)
		ran := time.Since(started)
		if ctx.Err() != nil {
			s.set(e, func(st *localapi.Service) { st.State, st.PID, st.Since = localapi.StateStopped, 0, time.Now() })
			return
		}
		if ran >= s.opt.StableAfter {
			pause = s.opt.MinBackoff
		}
		why := "exited"
		if err != nil {
			why = err.Error()
		}
		log.Warn("service stopped; restarting", "err", why, "ran", ran.Round(time.Millisecond), "pause", pause)
		fmt.Fprintf(e.ring, "supervisor: %s %s after %s; restarting in %s\n", svc.Name, why, ran.Round(time.Millisecond), pause)
		s.set(e, func(st *localapi.Service) {
			st.State, st.PID, st.LastExit, st.Since = localapi.StateBackoff, 0, why, time.Now()
		})
		select {
		case <-ctx.Done():
			s.set(e, func(st *localapi.Service) { st.State, st.Since = localapi.StateStopped, time.Now() })
			return
		case <-time.After(pause):
		}
		pause = min(pause*2, s.opt.MaxBackoff)
		s.set(e, func(st *localapi.Service) { st.Restarts++; st.State = localapi.StateStarting })
	}
}

// runOnce starts the service and waits for it to exit or for ctx to end.
func (s *Supervisor) runOnce(ctx context.Context, svc Service, e *entry) error {
	cmd := exec.Command(svc.Path, svc.Args...)
	cmd.Env = append(os.Environ(), svc.Env...)
	var out io.Writer = e.ring
	if s.opt.Console != nil {
		out = io.MultiWriter(e.ring, &prefixWriter{prefix: svc.Name + ": ", w: s.opt.Console})
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that stopping it also stops what it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start %s: %w", svc.Path, err)
	}
	s.set(e, func(st *localapi.Service) {
		st.State, st.PID, st.Since = localapi.StateRunning, cmd.Process.Pid, time.Now()
	})

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitReason(err)
	case <-ctx.Done():
	}
	pgid := cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case err := <-done:
		return exitReason(err)
	case <-time.After(s.opt.StopGrace):
		syscall.Kill(-pgid, syscall.SIGKILL)
		return exitReason(<-done)
	}
}

func exitReason(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("killed by signal %s", ws.Signal())
		}
		return fmt.Errorf("exit status %d", ee.ExitCode())
	}
	return err
}

func (s *Supervisor) set(e *entry, fn func(*localapi.Service)) {
	s.mu.Lock()
	fn(&e.state)
	states := s.statesLocked()
	s.mu.Unlock()
	if s.opt.StateFile != "" {
		if err := writeJSON(s.opt.StateFile, states); err != nil {
			s.opt.Log.Warn("cannot publish service states", "err", err)
		}
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// States returns every service's state, sorted by name.
func (s *Supervisor) States() []localapi.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statesLocked()
}

func (s *Supervisor) statesLocked() []localapi.Service {
	out := make([]localapi.Service, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e.state)
	}
	slices.SortFunc(out, func(a, b localapi.Service) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Logs returns up to n of the newest lines a service wrote.
func (s *Supervisor) Logs(name string, n int) []string {
	s.mu.Lock()
	e := s.entries[name]
	s.mu.Unlock()
	if e == nil {
		return nil
	}
	return e.ring.Last(n)
}

// writeJSON replaces path atomically, so that noded never reads half a file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// prefixWriter starts every line with a prefix.
type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	w      io.Writer
	mid    bool // inside a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
			p.mid = true
		}
		out = append(out, c)
		if c == '\n' {
			p.mid = false
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
