package supervise

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/noded/localapi"
)

func TestRing(t *testing.T) {
	r := NewRing(3)
	for _, w := range []string{"one\ntw", "o\r\nthree\n", "four\n", "partial"} {
		if _, err := r.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := r.Last(10), []string{"two", "three", "four"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Last(10) = %q, want %q", got, want)
	}
	if got, want := r.Last(1), []string{"four"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Last(1) = %q, want %q", got, want)
	}
	long := strings.Repeat("x", 2*maxLine+10) + "\n"
	r.Write([]byte(long))
	got := r.Last(3)
	if len(got[0]) != maxLine || len(got[1]) != maxLine || len(got[2]) != 10+len("partial") {
		t.Errorf("long line not cut at %d: lengths %d %d %d", maxLine, len(got[0]), len(got[1]), len(got[2]))
	}
}

// waitFor polls the supervisor's change notifications until cond holds.
func waitFor(t *testing.T, s *Supervisor, what string, cond func([]localapi.Service) bool) []localapi.Service {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		st := s.States()
		if cond(st) {
			return st
		}
		select {
		case <-s.Changed():
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; states %+v", what, st)
		}
	}
}

func TestRestartsCrashingServiceWithBackoff(t *testing.T) {
	dir := t.TempDir()
	stateFile := filepath.Join(dir, "run/services.json")
	ctx, cancel := context.WithCancel(context.Background())
	s := New(Options{StateFile: stateFile, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	t.Cleanup(func() { cancel(); s.Wait() })

	if err := s.Start(ctx, Service{Name: "crasher", Path: "/bin/sh", Args: []string{"-c", "echo hello from $ONECLOUD_T; exit 3"}, Env: []string{"ONECLOUD_T=test"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, Service{Name: "crasher", Path: "/bin/true"}); err == nil {
		t.Error("starting a second service with the same name should fail")
	}
	st := waitFor(t, s, "three restarts", func(st []localapi.Service) bool { return st[0].Restarts >= 3 })
	if st[0].LastExit != "exit status 3" {
		t.Errorf("LastExit = %q, want %q", st[0].LastExit, "exit status 3")
	}
	logs := s.Logs("crasher", 100)
	if !slicesContain(logs, "hello from test") || !slicesContainPrefix(logs, "supervisor: crasher exit status 3 after") {
		t.Errorf("ring lacks the service output or the restart note: %q", logs)
	}

	b, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatalf("state file not published: %v", err)
	}
	var published []localapi.Service
	if err := json.Unmarshal(b, &published); err != nil || len(published) != 1 || published[0].Name != "crasher" {
		t.Errorf("state file = %s (err %v), want one service named crasher", b, err)
	}
}

func TestStopsServicesWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := New(Options{StopGrace: 200 * time.Millisecond})
	// This one ignores SIGTERM, so it needs the SIGKILL after the grace.
	if err := s.Start(ctx, Service{Name: "stubborn", Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; echo up; while :; do sleep 1; done"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, Service{Name: "polite", Path: "/bin/sleep", Args: []string{"600"}}); err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, s, "both running", func(st []localapi.Service) bool {
		return st[0].State == localapi.StateRunning && st[1].State == localapi.StateRunning && slicesContain(s.Logs("stubborn", 5), "up")
	})
	pids := []int{st[0].PID, st[1].PID}
	cancel()
	s.Wait()
	for _, e := range s.States() {
		if e.State != localapi.StateStopped {
			t.Errorf("%s state = %s after stop, want stopped", e.Name, e.State)
		}
	}
	for _, pid := range pids {
		// After Wait the processes are reaped: signalling them must fail.
		if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.Signal(0)) == nil {
			t.Errorf("process %d still alive after stop", pid)
		}
	}
}

func TestMissingBinaryIsReported(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := New(Options{MinBackoff: 10 * time.Millisecond})
	t.Cleanup(func() { cancel(); s.Wait() })
	s.Start(ctx, Service{Name: "ghost", Path: "/nonexistent/ghost"})
	st := waitFor(t, s, "a failed start", func(st []localapi.Service) bool { return st[0].LastExit != "" })
	if !strings.Contains(st[0].LastExit, "cannot start /nonexistent/ghost") {
		t.Errorf("LastExit = %q, want it to name the missing binary", st[0].LastExit)
	}
}

func TestPrefixWriter(t *testing.T) {
	var b strings.Builder
	p := &prefixWriter{prefix: "noded: ", w: &b}
	p.Write([]byte("a\nb"))
	p.Write([]byte("c\n"))
	if got, want := b.String(), "noded: a\nnoded: bc\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func slicesContain(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func slicesContainPrefix(lines []string, p string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}
