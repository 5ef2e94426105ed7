package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// T is what the harness needs from the test it works for: it registers teardowns with Cleanup, names log
// folders after Name, keeps logs when Failed, and bounds waits with Context. *testing.T and *testing.B
// satisfy it; Session does for programs that are not tests, such as the demo.
type T interface {
	Helper()
	Name() string
	Context() context.Context
	Cleanup(func())
	Failed() bool
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Output() io.Writer
	TempDir() string
}

// Session is a T for a program that boots VMs outside go test (make demo). Its cleanups run, newest
// first, when Close is called; Fatalf closes it and exits the program with status 1. The program should
// call Close on its way out, also on SIGINT.
type Session struct {
	name   string
	ctx    context.Context
	cancel context.CancelFunc
	out    io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	closed   bool
}

var _ T = (*Session)(nil)

// NewSession returns a Session named name (its logs go to out/qemu-logs/<name>/) whose messages go to out.
func NewSession(ctx context.Context, name string, out io.Writer) *Session {
	ctx, cancel := context.WithCancel(ctx)
	return &Session{name: name, ctx: ctx, cancel: cancel, out: out}
}

// Close cancels the session's context and runs its cleanups, newest first, then removes this process's
// scratch folder if it is empty (outside test binaries). Later calls do nothing.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	for {
		s.mu.Lock()
		if len(s.cleanups) == 0 {
			s.mu.Unlock()
			break
		}
		f := s.cleanups[len(s.cleanups)-1]
		s.cleanups = s.cleanups[:len(s.cleanups)-1]
		s.mu.Unlock()
		f()
	}
	// The cleanups removed the scratch folders of the session's labs, VMs and dnsmasq; the folder of
	// this process that held them goes too, if it is empty (another session may still use it). In a
	// test binary Main removes it after the tests instead: tests running in parallel may be making
	// folders in it at this very moment.
	if !testing.Testing() {
		if run, err := currentRun(); err == nil {
			_ = os.Remove(run.scratchDir())
		}
	}
}

// Helper, Name, Context, Output, Cleanup, Failed, Logf, Errorf and Fatalf implement T.

func (s *Session) Helper()                  {}
func (s *Session) Name() string             { return s.name }
func (s *Session) Context() context.Context { return s.ctx }
func (s *Session) Output() io.Writer        { return s.out }

func (s *Session) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

func (s *Session) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func (s *Session) Logf(format string, args ...any) { fmt.Fprintf(s.out, format+"\n", args...) }

func (s *Session) Errorf(format string, args ...any) {
	s.Logf(format, args...)
	s.mu.Lock()
	s.failed = true
	s.mu.Unlock()
}

func (s *Session) Fatalf(format string, args ...any) {
	s.Errorf(format, args...)
	s.Close()
	os.Exit(1)
}

// TempDir makes a temporary folder, removed by Close.
func (s *Session) TempDir() string {
	dir, err := os.MkdirTemp("", "onecloud-"+s.name+"-")
	if err != nil {
		s.Fatalf("harness: %v", err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
