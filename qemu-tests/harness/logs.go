package harness

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// testLogs is the folder that keeps one test's logs: <out>/qemu-logs/<test name>/, where <out> is
// $ONECLOUD_OUT or the out/ folder at the repository root. It holds each VM's serial console and QEMU
// stderr, swtpm and dnsmasq logs, harness.log (what the harness did) and commands.log (every command line it
// ran). The folder is emptied when the test starts, removed when the test passes (unless
// $ONECLOUD_KEEP_LOGS is set) and kept when it fails.
//
// Several harness values of one test (a Lab, its bridges, VMs) share the folder. The first one to open it
// in this run clears what an earlier run left and registers the cleanup; a marker file with the run's id
// tells the others it is done.
type testLogs struct {
	dir string
}

const (
	logsMarker   = ".run"
	harnessLog   = "harness.log"
	commandsLog  = "commands.log"
	logsSubdir   = "qemu-logs"
	outEnv       = "ONECLOUD_OUT"
	keepLogsEnv  = "ONECLOUD_KEEP_LOGS" // keep the logs of passing tests too, to study timings
	maxLogSuffix = 100
)

// openTestLogs returns t's log folder, creating it on first use in this run.
func openTestLogs(t T) (*testLogs, error) {
	root, err := logsRoot()
	if err != nil {
		return nil, err
	}
	run, err := currentRun()
	if err != nil {
		return nil, err
	}
	l := &testLogs{dir: filepath.Join(root, logName(t.Name()))}
	owner := run.String() + " " + t.Name()
	if b, err := os.ReadFile(filepath.Join(l.dir, logsMarker)); err == nil && string(b) == owner {
		return l, nil
	}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the log folder: %w", err)
	}
	// Files of an earlier run of this test go; folders stay, they belong to subtests.
	if err := removeFiles(l.dir); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(l.dir, logsMarker), []byte(owner), 0o644); err != nil {
		return nil, fmt.Errorf("create the log folder: %w", err)
	}
	t.Cleanup(func() {
		if os.Getenv(keepLogsEnv) != "" && !t.Failed() {
			t.Logf("harness: logs kept in %s (%s is set)", l.dir, keepLogsEnv)
			return
		}
		if t.Failed() {
			t.Logf("harness: the logs of this failed test are kept in %s (serial consoles, QEMU stderr, swtpm, dnsmasq, %s, %s)",
				l.dir, harnessLog, commandsLog)
			return
		}
		if err := removeFiles(l.dir); err != nil {
			t.Logf("harness: %v", err)
		}
		// Remove the test's folder and the parents it alone used, up to and including qemu-logs/.
		for dir := l.dir; dir != filepath.Dir(root); dir = filepath.Dir(dir) {
			if os.Remove(dir) != nil {
				break
			}
		}
	})
	return l, nil
}

// logsRoot is <out>/qemu-logs, <out> being $ONECLOUD_OUT or out/ beside the go.mod found by walking up
// from the working directory (go test runs in the package's folder).
func logsRoot() (string, error) {
	if out := os.Getenv(outEnv); out != "" {
		return filepath.Join(out, logsSubdir), nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "out", logsSubdir), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory to put out/%s under: set %s to an output folder", logsSubdir, outEnv)
		}
		dir = parent
	}
}

// logName turns a test name into a relative path: subtests become subfolders and anything unusual
// becomes '_'.
func logName(test string) string {
	parts := strings.Split(test, "/")
	for i, p := range parts {
		p = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.#+", r) {
				return r
			}
			return '_'
		}, p)
		if p == "" || p == "." || p == ".." {
			p = "_"
		}
		parts[i] = p
	}
	return filepath.Join(parts...)
}

// removeFiles removes the regular files directly in dir.
func removeFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear the log folder: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("clear the log folder: %w", err)
			}
		}
	}
	return nil
}

// path is the path of a file in the folder.
func (l *testLogs) path(name string) string { return filepath.Join(l.dir, name) }

// claim creates an empty log file named stem+suffix, or stem-2+suffix, stem-3+suffix... if that exists
// already in this run (a VM booted twice under one name), and returns the stem it got.
func (l *testLogs) claim(stem, suffix string) (string, *os.File, error) {
	for i := 1; i <= maxLogSuffix; i++ {
		s := stem
		if i > 1 {
			s = fmt.Sprintf("%s-%d", stem, i)
		}
		f, err := os.OpenFile(l.path(s+suffix), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("create a log file: %w", err)
		}
		return s, f, nil
	}
	return "", nil, fmt.Errorf("more than %d log files named %s*%s in %s", maxLogSuffix, stem, suffix, l.dir)
}

// command records a command line in commands.log, with the PID of a process that keeps running (0 for a
// command the harness waits for, -1 for one that did not start).
func (l *testLogs) command(name string, pid int, argv []string) {
	what := name
	switch {
	case pid > 0:
		what = fmt.Sprintf("%s, pid %d", name, pid)
	case pid < 0:
		what = name + ", did not start"
	}
	line := fmt.Sprintf("# %s %s\n%s\n", time.Now().Format(time.TimeOnly), what, shellQuote(argv))
	_, _ = appendFile(l.path(commandsLog)).Write([]byte(line))
}

// logger logs to the test's output (shown with -v or on failure) and to harness.log in the folder.
func (l *testLogs) logger(t T) *slog.Logger {
	w := io.MultiWriter(t.Output(), appendFile(l.path(harnessLog)))
	return slog.New(slog.NewTextHandler(w, nil))
}

// appendFile is an io.Writer that opens, appends to and closes its file on each write. Log lines are few,
// and this way no handle has to be closed when the test ends.
type appendFile string

func (f appendFile) Write(p []byte) (int, error) {
	file, err := os.OpenFile(string(f), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := file.Write(p)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	return n, err
}
