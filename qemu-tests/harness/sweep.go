package harness

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` keeps named namespaces.
const netnsDir = "/run/netns"

// sweep removes what test processes that are gone left behind: a test binary killed by a panic, a go test
// timeout or kill -9 runs no cleanup. Their namespaces and scratch folders carry their run id (see runID);
// for each run that no longer exists it kills the processes still inside its namespaces and those whose
// command line names its scratch folder (QEMU, swtpm and dnsmasq all do), then deletes both. Live runs, such
// as other packages' tests running in parallel, are left alone. Problems are logged, not fatal: a sweep is
// a courtesy to the next run.
func sweep(ctx context.Context, log *slog.Logger) {
	for _, ns := range namespacesOf(func(r runID) bool { return !r.alive() }) {
		log.Info("sweeper: removing a namespace left by a dead test process", "netns", ns)
		removeNamespace(log, ns)
	}
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		log.Warn("sweeper: cannot list the temporary folder", "err", err)
		return
	}
	for _, e := range entries {
		r, ok := parseRunName(e.Name())
		if !ok || !e.IsDir() || r.alive() {
			continue
		}
		dir := filepath.Join(os.TempDir(), e.Name())
		log.Info("sweeper: removing a scratch folder left by a dead test process", "dir", dir)
		killMentioning(ctx, log, dir+"/")
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("sweeper: cannot remove", "dir", dir, "err", err)
		}
	}
}

// teardownRun is sweep for this very run, after an interrupt: it kills this process's children (by
// PID, checked through a pidfd), then removes its namespaces and scratch folder.
func teardownRun(ctx context.Context, log *slog.Logger, run runID) {
	self := os.Getpid()
	for ctx.Err() == nil {
		pids, err := processes()
		if err != nil {
			log.Warn("teardown: cannot list processes", "err", err)
			break
		}
		killed := 0
		for _, pid := range pids {
			ok, err := killIf(pid, liveChildOf(self))
			if ok {
				killed++
			}
			if err != nil {
				log.Warn("teardown: cannot kill a child", "pid", pid, "err", err)
			}
		}
		if killed == 0 {
			break
		}
		// Again: a test goroutine may have started another child meanwhile.
	}
	for _, ns := range namespacesOf(func(r runID) bool { return r == run }) {
		removeNamespace(log, ns)
	}
	killMentioning(ctx, log, run.scratchDir()+"/")
	if err := os.RemoveAll(run.scratchDir()); err != nil {
		log.Warn("teardown: cannot remove", "dir", run.scratchDir(), "err", err)
	}
}

// namespacesOf lists the harness's namespaces whose run id satisfies match.
func namespacesOf(match func(runID) bool) []string {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return nil // no namespaces at all
	}
	var names []string
	for _, e := range entries {
		if r, ok := parseRunName(e.Name()); ok && match(r) {
			names = append(names, e.Name())
		}
	}
	return names
}

// removeNamespace kills what runs in a namespace and deletes it as `ip netns delete` does: detach the
// mount that keeps it alive and remove its file. Its bridges, taps and veths go with it once no process holds it.
func removeNamespace(log *slog.Logger, name string) {
	pids, err := pidsInNamespace(name)
	if err != nil {
		log.Warn("cannot list the processes in a namespace", "netns", name, "err", err)
	}
	if len(pids) > 0 {
		log.Info("killing processes left in a namespace", "netns", name, "pids", pids)
		if err := killNamespacePIDs(name, pids); err != nil {
			log.Warn("cannot kill the processes in a namespace", "netns", name, "err", err)
		}
	}
	path := filepath.Join(netnsDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
		log.Warn("cannot unmount a namespace", "netns", name, "err", err)
	}
	if err := os.Remove(path); err != nil {
		log.Warn("cannot remove a namespace", "netns", name, "err", err)
	}
}

// killMentioning kills the processes whose command line contains s.
func killMentioning(ctx context.Context, log *slog.Logger, s string) {
	pids, err := processes()
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, pid := range pids {
		if pid == self || ctx.Err() != nil {
			continue
		}
		if ok, err := killIf(pid, cmdlineMentions(s)); ok {
			log.Info("killed a leftover process", "pid", pid, "mentions", s)
		} else if err != nil {
			log.Warn("cannot kill a leftover process", "pid", pid, "err", err)
		}
	}
}
