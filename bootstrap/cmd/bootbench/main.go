// Command bootbench measures bootstrapd against the programs a school would otherwise boot its boxes
// with, side by side in one run, and prints one table of ratios: DHCP against dnsmasq, HTTP against
// nginx, TFTP against dnsmasq, and a boot storm of simulated boxes against dnsmasq + nginx. Benchmarks
// are measured and printed, not asserted: a ratio that misses its target shows FAIL in the table, and
// the exit status stays 0 (it is 1 only when the bench itself could not run).
//
//	go run ./bootstrap/cmd/bootbench [-quick] [-only dhcp|http|tftp|storm]   (as root; make bench-boot)
//
// Everything runs on a lab network of its own: three network namespaces (one for the clients, one for
// bootstrapd, one for the peers), joined by two veth pairs, so no packet leaves them. The servers run in
// their namespaces with the same files and the same pool; the load clients (perfdhcp, and bootbench
// itself re-executed in the client namespace as the HTTP, TFTP and storm client) run in the client
// namespace. Each measurement runs against bootstrapd, then against the peer, with fresh server state
// each time. docs/bench-boot.md says what each row measures.
//
// On every way out (an error, Ctrl-C) the servers are stopped by PID (their process groups), and the
// namespaces are deleted, with whatever still runs in them killed by PID.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/internal/loadavg"
	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == clientCommand {
		os.Exit(clientMain(os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bootbench: %v\n", err)
		os.Exit(1)
	}
}

// partNames are the measurements, in the order they run.
func partNames() []string { return []string{"dhcp", "http", "tftp", "storm"} }

type options struct {
	quick      bool
	only       string
	bootstrapd string
	imageDir   string
	ipxeDir    string
	outDir     string
	clients    int
	calibrate  bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bootbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.quick, "quick", false, "short runs and fewer clients: a smoke run of about a minute")
	fs.StringVar(&o.only, "only", "", "run one part only: "+strings.Join(partNames(), ", "))
	fs.StringVar(&o.bootstrapd, "bootstrapd", "", "bootstrapd binary to measure (default: go build ./bootstrap/cmd/bootstrapd)")
	fs.StringVar(&o.imageDir, "image", "", "image-builder output folder to serve (default out/image at the repository root)")
	fs.StringVar(&o.ipxeDir, "ipxe", "/usr/lib/ipxe", "folder with undionly.kpxe (Debian's ipxe package)")
	fs.StringVar(&o.outDir, "out", "", "folder for the servers' logs (default out/bench-boot at the repository root)")
	fs.IntVar(&o.clients, "dhcp-clients", 1000, "distinct MACs perfdhcp simulates (-R); the fleet size")
	fs.BoolVar(&o.calibrate, "calibrate", false, "run a second dnsmasq/nginx in bootstrapd's place: every ratio should be near 1.0 (checks the bench, not bootstrapd)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bootbench [flags]   (as root)\n\n"+
			"Measures bootstrapd's DHCP, HTTP and TFTP, and a boot storm, against dnsmasq and nginx on a lab\n"+
			"network of network namespaces; prints one table. See docs/bench-boot.md.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.only != "" && !slices.Contains(partNames(), o.only) {
		return o, fmt.Errorf("-only %q: want one of %s", o.only, strings.Join(partNames(), ", "))
	}
	if o.clients < 1 || o.clients > poolSize {
		return o, fmt.Errorf("-dhcp-clients %d: want 1 to %d (the pool size)", o.clients, poolSize)
	}
	return o, nil
}

// plan is how much of each measurement runs: the full run, or -quick's smoke run.
type plan struct {
	dhcpRates   []int
	dhcpPeriod  time.Duration
	dhcpClients int
	httpClients int
	httpRounds  int
	tftpConc    []int
	tftpWaves   int
	tftpBlkSize int
	stormBoxes  int
}

func makePlan(o options) plan {
	p := plan{
		dhcpRates: []int{1000, 2000, 4000, 8000}, dhcpPeriod: 10 * time.Second, dhcpClients: o.clients,
		httpClients: 1000, httpRounds: 2, tftpConc: []int{50, 200}, tftpWaves: 10, tftpBlkSize: 1468, stormBoxes: 1000,
	}
	if o.quick {
		p.dhcpRates, p.dhcpPeriod = []int{1000, 4000}, 3*time.Second
		p.httpClients, p.httpRounds, p.tftpWaves, p.stormBoxes = 100, 1, 1, 100
	}
	return p
}

func (p plan) runs(o options, part string) bool { return o.only == "" || o.only == part }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("run as root (make bench-boot): the lab network needs network namespaces, and DHCP and TFTP privileged ports")
	}
	for _, tool := range []string{"perfdhcp", "dnsmasq", "nginx", "ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing: run make deps (Debian packages kea-admin, dnsmasq-base, nginx-light, iproute2, util-linux): %w", tool, err)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if o.imageDir == "" {
		o.imageDir = filepath.Join(root, "out", "image")
	}
	if o.outDir == "" {
		o.outDir = filepath.Join(root, "out", "bench-boot")
	}
	if _, err := readImageFiles(o.imageDir, o.ipxeDir, "undionly.kpxe"); err != nil {
		return err // before anything is set up
	}
	logDir := filepath.Join(o.outDir, "logs")
	if err := os.RemoveAll(logDir); err != nil { // an earlier run's logs would mix with this run's
		return fmt.Errorf("clear the old logs: %w", err)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find bootbench's own binary (it runs itself as the load client): %w", err)
	}

	// The session owns the namespaces and scratch folders: Close deletes them, newest first, on every
	// way out, after the deferred server stops below have run.
	sess := harness.NewSession(ctx, "bench-boot", stderr)
	defer sess.Close()
	defer func() {
		if err != nil {
			sess.Errorf("bootbench: stopped early; the servers' logs are in %s", logDir)
		}
	}()
	work := sess.TempDir()
	// Both servers serve a copy taken now, so that an image rebuilt while the bench runs (make image in
	// another terminal) cannot change the files, or their sizes, half way.
	snap := filepath.Join(work, "image")
	if err := copyFiles(o.imageDir, snap); err != nil {
		return fmt.Errorf("copy the image to serve: %w", err)
	}
	img, err := readImageFiles(snap, o.ipxeDir, "undionly.kpxe")
	if err != nil {
		return err
	}

	bin := o.bootstrapd
	if bin == "" && !o.calibrate {
		log.Info("building bootstrapd (not timed)")
		bin = filepath.Join(work, "bootstrapd")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bootstrap/cmd/bootstrapd")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build bootstrapd (give -bootstrapd BIN, or -calibrate to check the bench without it): %w: %s", err, strings.TrimSpace(string(out)))
		}
	}

	t0 := time.Now()
	l, err := newLab(ctx, sess)
	if err != nil {
		return err
	}
	log.Info("lab network ready", "client netns", l.cli.Name(), "bootstrapd netns", l.boot.srv.Name(), "peer netns", l.peer.srv.Name())

	peer := &peerServer{net: l.peer, img: img, work: work, logDir: logDir, tag: "peer"}
	var ours server = &bootstrapdServer{bin: bin, net: l.boot, img: img, work: work, logDir: logDir}
	if o.calibrate {
		ours = &peerServer{net: l.boot, img: img, work: work, logDir: logDir, tag: "peer2"}
	}
	defer ours.stop()
	defer peer.stop()

	b := &bench{cli: l.cli, ours: ours, peer: peer, img: img, plan: makePlan(o), exe: exe, log: log, stderr: stderr}
	t := &table{heading: heading(ctx, o, img), ours: "bootstrapd"}
	if o.calibrate {
		t.ours = "2nd peer"
	}
	for _, part := range partNames() {
		if !b.plan.runs(o, part) {
			continue
		}
		var s section
		switch part {
		case "dhcp":
			s, err = b.dhcp(ctx)
		case "http":
			s, err = b.http(ctx)
		case "tftp":
			s, err = b.tftp(ctx)
		case "storm":
			s, err = b.storm(ctx)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", part, err)
		}
		t.sections = append(t.sections, s)
	}
	t.footer = []string{
		"ratio: bootstrapd's figure over the peer's (rates: higher is better; times: lower is better).",
		fmt.Sprintf("whole run %s; load average %s at the end; servers' logs: %s", secs(time.Since(t0).Seconds()), loadavg.Read(), logDir),
	}
	return t.write(stdout)
}

// heading is the first lines of the table: when, what, on what.
func heading(ctx context.Context, o options, img imageFiles) []string {
	mode := "full run"
	if o.quick {
		mode = "-quick smoke run"
	}
	if o.calibrate {
		mode += ", -calibrate: a second dnsmasq/nginx in bootstrapd's column"
	}
	return []string{
		fmt.Sprintf("onecloud boot bench  %s  (%s)", time.Now().UTC().Format("2006-01-02 15:04 UTC"), mode),
		fmt.Sprintf("peers: dnsmasq %s, nginx %s; DHCP load: perfdhcp %s; host: %d CPUs, load average %s",
			toolVersion(ctx, "dnsmasq", "--version"), toolVersion(ctx, "nginx", "-v"), toolVersion(ctx, "perfdhcp", "-v"),
			runtime.NumCPU(), loadavg.Read()),
		fmt.Sprintf("files: %s (kernel %s, initramfs %s; a copy taken at the start), %s (%s)", o.imageDir, mib(img.kernelSize), mib(img.initrdSize),
			filepath.Join(img.tftpDir, img.tftpFile), kib(img.tftpSize)),
	}
}

// toolVersion is the version a tool prints, e.g. "2.90" from "Dnsmasq version 2.90 Copyright ...".
func toolVersion(ctx context.Context, name, flag string) string {
	out, _ := exec.CommandContext(ctx, name, flag).CombinedOutput()
	return parseVersion(string(out))
}

// parseVersion finds the first word that starts with a digit and contains a dot, after an optional
// "name/" prefix: "nginx version: nginx/1.22.1" gives 1.22.1.
func parseVersion(out string) string {
	for _, w := range strings.Fields(out) {
		if _, v, ok := strings.Cut(w, "/"); ok {
			w = v
		}
		if w != "" && w[0] >= '0' && w[0] <= '9' && strings.Contains(w, ".") {
			return strings.TrimRight(w, ",;")
		}
	}
	return "(unknown version)"
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
func kib(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10)) }

// copyFiles copies the regular files of src (not its folders) into a new folder dst.
func copyFiles(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// moduleRoot finds the repository root (the folder with go.mod) from the working folder up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run bootbench from inside the onecloud repository (no go.mod above the working folder)")
		}
		dir = parent
	}
}
