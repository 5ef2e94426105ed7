package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// namePrefix starts the name of every network namespace and scratch folder the harness makes, so that the
// sweeper can recognise them (and nothing else).
const namePrefix = "ocq-"

// runID identifies one test process by its PID and its start time (clock ticks since boot, from
// /proc/PID/stat). PIDs are reused quickly on a machine with pid_max 32768; the pair is not, so the sweeper
// never mistakes a live process that happens to have an old PID for the owner of old leftovers.
type runID struct {
	pid   int
	start uint64
}

// currentRun is the runID of this test process.
func currentRun() (runID, error) {
	st, err := readStat(os.Getpid())
	if err != nil {
		return runID{}, err
	}
	return runID{pid: os.Getpid(), start: st.start}, nil
}

func (r runID) String() string { return fmt.Sprintf("%d-%d", r.pid, r.start) }

// alive reports whether the process that made r still runs.
func (r runID) alive() bool {
	st, err := readStat(r.pid)
	return err == nil && st.start == r.start
}

// namespacePrefix starts the names of the network namespaces this run makes: ocq-<pid>-<start>-.
func (r runID) namespacePrefix() string { return namePrefix + r.String() + "-" }

// scratchDir is this run's folder for sockets, disks and TPM state. It sits in the temporary folder with a
// short name because unix socket paths must stay under 108 bytes, which t.TempDir() does not promise.
func (r runID) scratchDir() string { return filepath.Join(os.TempDir(), namePrefix+r.String()) }

// parseRunName returns the runID encoded in a name made by namespacePrefix or scratchDir.
func parseRunName(name string) (runID, bool) {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return runID{}, false
	}
	parts := strings.SplitN(rest, "-", 3)
	if len(parts) < 2 {
		return runID{}, false
	}
	pid, err1 := strconv.Atoi(parts[0])
	start, err2 := strconv.ParseUint(parts[1], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return runID{}, false
	}
	return runID{pid: pid, start: start}, true
}

// procStat holds the fields of /proc/PID/stat the harness needs.
type procStat struct {
	state byte // 'R', 'S', 'Z' (exited, not yet reaped), ...
	ppid  int
	start uint64
}

// readStat reads /proc/PID/stat. The command name in it is in parentheses and may itself contain spaces
// or parentheses, so the fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed /proc stat line %q", s)
	}
	// After the name: state(3) ppid(4) ... starttime(22); fields[0] is field 3.
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("malformed /proc stat line %q", s)
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procStat{}, fmt.Errorf("malformed ppid in /proc stat line %q: %w", s, err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed start time in /proc stat line %q: %w", s, err)
	}
	return procStat{state: fields[0][0], ppid: ppid, start: start}, nil
}

// scratchDir makes a fresh folder named name-<random> in this run's scratch folder, removed when t ends.
// The run's folder itself is removed by Main when the tests are done, or by the sweeper after a crash.
func scratchDir(t T, name string) (string, error) {
	run, err := currentRun()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(run.scratchDir(), 0o700); err != nil {
		return "", fmt.Errorf("make the scratch folder: %w", err)
	}
	dir, err := os.MkdirTemp(run.scratchDir(), name+"-")
	if err != nil {
		return "", fmt.Errorf("make the scratch folder: %w", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("harness: %v", err)
		}
	})
	return dir, nil
}
