package harness

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	// A command name with spaces and parentheses must not shift the fields.
	line := "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.state != 'S' || st.ppid != 17 || st.start != 987654 {
		t.Errorf("parseStat = %+v, want state S, ppid 17, start 987654", st)
	}
	if _, err := parseStat("4242 (x) S 17"); err == nil {
		t.Error("a short line parsed")
	}
}

func TestRunNames(t *testing.T) {
	t.Parallel()
	run, err := currentRun()
	if err != nil {
		t.Fatal(err)
	}
	if !run.alive() {
		t.Error("this process's run is not alive")
	}
	if (runID{pid: run.pid, start: run.start + 1}).alive() {
		t.Error("a run with another start time is alive: PID reuse would fool the sweeper")
	}
	for _, name := range []string{run.namespacePrefix() + "abcd", filepath.Base(run.scratchDir())} {
		got, ok := parseRunName(name)
		if !ok || got != run {
			t.Errorf("parseRunName(%q) = %v, %v; want %v", name, got, ok, run)
		}
	}
	for _, name := range []string{"ocq-", "ocq-x-1-a", "ocq-12", "other-12-34-a", "ocq--1-2"} {
		if _, ok := parseRunName(name); ok {
			t.Errorf("parseRunName(%q) accepted it", name)
		}
	}
	if run.pid != os.Getpid() {
		t.Errorf("run pid %d, want %d", run.pid, os.Getpid())
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	got := shellQuote([]string{"qemu", "-append", "console=ttyS0 quiet", "it's", ""})
	want := `qemu -append 'console=ttyS0 quiet' 'it'\''s' ''`
	if got != want {
		t.Errorf("shellQuote = %s, want %s", got, want)
	}
}
