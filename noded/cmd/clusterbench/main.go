// Command clusterbench measures the trust and cluster side of noded and
// prints one table (docs/bench-cluster.md): the whole attestation round
// trip (enrol, activate, quote, verify) with 1, 4 and 16 concurrent
// software-TPM clients; the time a second server node takes from `noded
// server -join` to promoted voter; and the cluster API's read and write
// latency for an administrator. Everything runs in this process on
// loopback, with swtpm processes as the TPMs. It measures and prints; a
// slow figure never fails it (exit status 1 only when a part could not be
// measured at all).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/internal/loadavg"
)

// options are what the command is told.
type options struct {
	quick        bool
	clients      []int
	attestations int // per client count
	joins        int
	requests     int // per API operation
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("clusterbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{}
	clients := fs.String("clients", "1,4,16", "concurrent swtpm clients, one table row each (comma-separated)")
	fs.BoolVar(&o.quick, "quick", false, "a short run: fewer attestations, one join, fewer API requests (about a minute)")
	fs.IntVar(&o.attestations, "attestations", 0, "attestations per client count (default 96, 12 with -quick); at least one per client")
	fs.IntVar(&o.joins, "joins", 0, "server node joins, each into a fresh cluster (default 3, 1 with -quick)")
	fs.IntVar(&o.requests, "requests", 0, "requests per cluster API operation (default 500, 40 with -quick)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q: clusterbench takes flags only", fs.Args())
	}
	for f := range strings.SplitSeq(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return o, fmt.Errorf("-clients %q: give client counts from 1 to 64, comma-separated", *clients)
		}
		o.clients = append(o.clients, n)
	}
	defaults := func(v *int, full, quick int, name string) error {
		switch {
		case *v < 0:
			return fmt.Errorf("-%s %d: give a positive count", name, *v)
		case *v > 0:
		case o.quick:
			*v = quick
		default:
			*v = full
		}
		return nil
	}
	return o, errors.Join(defaults(&o.attestations, 96, 12, "attestations"), defaults(&o.joins, 3, 1, "joins"),
		defaults(&o.requests, 500, 40, "requests"))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, log); err != nil {
		log.Error("clusterbench: " + err.Error())
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	r := &Report{Started: time.Now().UTC(), Go: runtime.Version(), CPUs: runtime.NumCPU(), Quick: o.quick, LoadBefore: loadavg.Read()}
	log.Info("clusterbench starting", "load_average", r.LoadBefore, "clients", o.clients, "attestations", o.attestations, "joins", o.joins, "requests", o.requests)

	var errs []error
	if err := benchCluster(ctx, o, r, log); err != nil {
		errs = append(errs, fmt.Errorf("attestation and API part: %w", err))
	}
	if err := benchJoins(ctx, o, r, log); err != nil {
		errs = append(errs, fmt.Errorf("join part: %w", err))
	}
	r.LoadAfter = loadavg.Read()
	if err := r.writeTable(stdout); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
