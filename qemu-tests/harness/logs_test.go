package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"TestBoot":                  "TestBoot",
		"TestBoot/uefi_pxe#01":      "TestBoot/uefi_pxe#01",
		"TestBoot/a:b*c":            "TestBoot/a_b_c",
		"TestBoot/../../etc":        "TestBoot/_/_/etc",
		"TestBoot//x":               "TestBoot/_/x",
		"TestBoot/with\nnewline\\x": "TestBoot/with_newline_x",
	} {
		if got := logName(in); got != want {
			t.Errorf("logName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLogsRoot(t *testing.T) {
	t.Setenv(outEnv, "/somewhere/out")
	if got, err := logsRoot(); err != nil || got != "/somewhere/out/qemu-logs" {
		t.Errorf("with %s: %q, %v", outEnv, got, err)
	}
	t.Setenv(outEnv, "")
	got, err := logsRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(got)), "go.mod")); err != nil || filepath.Base(filepath.Dir(got)) != "out" {
		t.Errorf("logsRoot() = %q, want out/qemu-logs beside go.mod", got)
	}
}

// helperEnv makes TestLogsHelper do its work: it only runs as a child of TestLogsKeptOnFailure.
const helperEnv = "HARNESS_LOGS_HELPER"

// TestLogsHelper is run in a child test process by TestLogsKeptOnFailure: it writes logs like a VM would,
// leaves a stale file as an earlier run would have, and fails or passes as told.
func TestLogsHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return // not a child of TestLogsKeptOnFailure
	}
	for range 2 { // a second harness value in the same test shares the folder
		l, err := openTestLogs(t)
		if err != nil {
			t.Fatal(err)
		}
		stem, f, err := l.claim("vm", ".serial.log")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		l.command("qemu", 1, []string{"qemu-system-x86_64", "-name", stem})
	}
	if mode == "fail" {
		t.Error("failing on purpose")
	}
}

// TestLogsKeptOnFailure runs TestLogsHelper in a child process, failing and then passing, and checks that
// the logs are kept, with a message saying where, only when it fails, and that a new run clears an old
// one's files.
func TestLogsKeptOnFailure(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	dir := filepath.Join(out, logsSubdir, "TestLogsHelper")
	run := func(mode string) string {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestLogsHelper$", "-test.v")
		cmd.Env = append(os.Environ(), helperEnv+"="+mode, outEnv+"="+out)
		b, err := cmd.CombinedOutput()
		if (err != nil) != (mode == "fail") {
			t.Fatalf("helper (%s): %v\n%s", mode, err, b)
		}
		return string(b)
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old.serial.log"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	msg := run("fail")
	if !strings.Contains(msg, "kept in "+dir) {
		t.Errorf("the failure does not say where the logs are:\n%s", msg)
	}
	for _, f := range []string{"vm.serial.log", "vm-2.serial.log", commandsLog} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("kept logs: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "old.serial.log")); err == nil {
		t.Error("a stale log of an earlier run was kept")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, commandsLog)); !strings.Contains(string(b), "qemu-system-x86_64 -name vm-2") {
		t.Errorf("commands.log:\n%s", b)
	}

	run("pass")
	if _, err := os.Stat(filepath.Join(out, logsSubdir)); err == nil {
		t.Errorf("the logs of a passing test were kept")
	}
}
