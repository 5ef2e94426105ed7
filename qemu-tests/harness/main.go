package harness

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// sweepTimeout bounds the sweep before the tests and the teardown after an interrupt.
const sweepTimeout = 60 * time.Second

// Main runs a test package that uses the harness. Call it from TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
//
// Before the tests, it sweeps away what earlier test processes that were killed left behind (their
// namespaces, processes and scratch folders; see sweep). If SIGINT or SIGTERM arrives while the tests run,
// it kills every process this test process started, deletes its namespaces (and with them their bridges
// and taps) and its scratch folder, keeps the logs, and exits with status 1: t.Cleanup functions do not
// run when a test binary is interrupted.
//
// Nothing is registered anywhere for this: the kernel already knows what to tear down. This process's
// children are found by their parent PID and its namespaces and folders by the run id in their names, so
// Main needs no global registry that every Lab and VM would have to find.
func Main(m *testing.M) {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("harness", "main")
	run, err := currentRun()
	if err != nil {
		log.Error("cannot read this process's /proc entry", "err", err)
		os.Exit(1)
	}
	if os.Geteuid() == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), sweepTimeout)
		sweep(ctx, log)
		cancel()
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-signals
		log.Error("interrupted: tearing down this run's VMs, labs and scratch files; the logs stay in out/qemu-logs/", "signal", sig)
		ctx, cancel := context.WithTimeout(context.Background(), sweepTimeout)
		teardownRun(ctx, log, run)
		cancel()
		log.Error("interrupted: teardown done")
		os.Exit(1)
	}()

	code := m.Run()
	signal.Stop(signals)
	// Every test removed its own scratch folder; this removes the run's (now empty) parent.
	_ = os.RemoveAll(run.scratchDir())
	os.Exit(code)
}
