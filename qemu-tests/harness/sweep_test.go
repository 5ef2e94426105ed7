package harness

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestSweep fakes the leftovers of a test process that died: a namespace with a process in it, and a
// scratch folder with a process that names it. Their run id is that of a stand-in process, alive while they
// are set up (so that no sweeper, such as the one of a test binary starting in parallel, takes them early)
// and killed just before the sweep. The sweep must remove all of it and leave this live run's lab alone.
// It is not parallel: TestLogsKeptOnFailure starts a test binary, whose Main sweeps too.
func TestSweep(t *testing.T) {
	if err := requireRoot(); err != nil {
		t.Fatal(err)
	}
	owner := startLeftover(t, func(int) bool { return true }, "sleep", "600")
	st, err := readStat(owner.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	dead := runID{pid: owner.Process.Pid, start: st.start}
	live := NewLab(t)

	ns := dead.namespacePrefix() + "sweeptest"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	// nsenter execs sleep after entering the namespace, so wait until the process is in it.
	inNS := startLeftover(t, func(pid int) bool {
		pids, _ := pidsInNamespace(ns)
		return slices.Contains(pids, pid)
	}, "nsenter", "--net=/run/netns/"+ns, "--", "sleep", "600")

	dir := dead.scratchDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	file := filepath.Join(dir, "swtpm.log")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	namesDir := startLeftover(t, func(int) bool { return true }, "tail", "-f", file)

	if err := owner.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = owner.Wait()
	if dead.alive() {
		t.Fatal("the stand-in owner is still alive")
	}
	sweep(t.Context(), slog.New(slog.NewTextHandler(t.Output(), nil)))

	for what, cmd := range map[string]*exec.Cmd{"the process in the namespace": inNS, "the process naming the folder": namesDir} {
		// Killed, it is a zombie until reaped; alive, Wait would block.
		if st, err := readStat(cmd.Process.Pid); err == nil && st.state != 'Z' {
			t.Errorf("%s (pid %d) survived the sweep", what, cmd.Process.Pid)
			_ = cmd.Process.Kill()
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("%s did not die of SIGKILL: %v", what, err)
		}
	}
	if _, err := os.Stat(filepath.Join(netnsDir, ns)); err == nil {
		t.Errorf("namespace %s survived the sweep", ns)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("folder %s survived the sweep", dir)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, live.Name())); err != nil {
		t.Errorf("the sweep removed a live run's namespace: %v", err)
	}
}

// startLeftover starts a process that plays a leftover and waits until ready says it is in place; the
// test kills it if the sweep does not.
func startLeftover(t *testing.T, ready func(pid int) bool, argv ...string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for !ready(cmd.Process.Pid) {
		if ctx.Err() != nil {
			t.Fatalf("%v never got in place", argv)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd
}
