// Command bench measures what the issue asks of the image, and prints it as one table: how long the image
// takes to build (cold and warm caches), how big the initramfs is (each component compressed and not), and
// how long a box takes from power-on to "onecloud: ready" under QEMU TCG, side by side with a bare u-root
// image (u-root's core commands, no modules) booting to its uinit. The ratio of the two boot medians is our
// firmware's overhead; the target is at most 1.5x. Benchmarks are measured and printed, never asserted: a
// ratio over the target is reported, and the exit status stays 0.
//
//	go run ./qemu-tests/cmd/bench [-skip-cold] [-boots 5] [-json FILE]   (as root; make bench)
//
// In order, it:
//
//  1. builds the image-builder command once, so that no build timing includes compiling the builder;
//  2. unless -skip-cold, builds the onecloud image with an empty Go build cache and an empty kernel cache
//     (fresh temporary GOCACHE and ONECLOUD_CACHE: the kernel package is downloaded and unpacked again);
//  3. builds the onecloud image and the bare image twice each with the real caches, and times the second
//     build of each (the first one only makes sure the caches are warm);
//  4. reads the sizes from the built images' manifests;
//  5. boots the two images -boots times each, alternating (onecloud, bare, onecloud, bare, ...) so that both
//     see the same load on the machine, one VM at a time, with the same QEMU settings, and times each boot
//     from QEMU's start to the marker line on the serial console.
//
// Everything goes below out/bench/ at the repository root: the images (image/, bare/), the build logs and
// every boot's serial console with the host time of each line (logs/). out/image is never touched.
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
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/image-builder/image"
	"github.com/onecloud-edu/onecloud/internal/loadavg"
	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

// target is the bound on the firmware's boot overhead: the onecloud image's median boot-to-ready
// time over the bare image's median boot-to-uinit time.
const target = 1.5

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	skipCold    bool
	skipBuild   bool
	boots       int
	bootTimeout time.Duration
	jsonPath    string
	outDir      string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.skipCold, "skip-cold", false, "skip the cold-cache build (it takes 2 to 3 minutes)")
	fs.BoolVar(&o.skipBuild, "skip-build", false, "build nothing: boot and measure the images already in -out (image/, bare/)")
	fs.IntVar(&o.boots, "boots", 5, "boots of each image (the median is reported)")
	fs.DurationVar(&o.bootTimeout, "boot-timeout", 3*time.Minute, "longest wait for the marker line of one boot")
	fs.StringVar(&o.jsonPath, "json", "", "also write every figure, each boot included, to this JSON file")
	fs.StringVar(&o.outDir, "out", "", "folder for the images and logs (default out/bench at the repository root)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bench [flags]   (as root)\n\n"+
			"Times the image build (cold and warm caches), sizes the initramfs, and times boot-to-ready of the\n"+
			"onecloud image against a bare u-root image under QEMU TCG; prints one table.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.boots < 1 {
		return o, fmt.Errorf("-boots %d: boot each image at least once", o.boots)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("run as root (make bench): the boots need network namespaces, a bridge and dnsmasq, and a cold build fetches the kernel with apt-get")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	root, err := image.ModuleRoot(ctx, ".")
	if err != nil {
		return err
	}
	if o.outDir == "" {
		o.outDir = filepath.Join(root, "out", "bench")
	}
	if o.outDir, err = filepath.Abs(o.outDir); err != nil {
		return err
	}
	logDir := filepath.Join(o.outDir, "logs")
	// The logs of an earlier run would mix with this run's.
	if err := os.RemoveAll(logDir); err != nil {
		return fmt.Errorf("clear the old logs: %w", err)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}

	// The session owns every VM, namespace and temporary folder of the run: Close tears them down,
	// newest first, on every way out (an error, Ctrl-C, or a harness failure, which exits through it).
	sess := harness.NewSession(ctx, "bench", stderr)
	defer sess.Close()
	sess.Cleanup(removeRunScratch) // registered first, so it runs last
	defer func() {
		if err != nil {
			// A failed session keeps the harness's logs (QEMU's stderr, dnsmasq's log, each VM's
			// console) in out/qemu-logs/bench/, which the error may point to.
			sess.Errorf("bench: stopped early")
		}
	}()

	r := &Report{Started: time.Now().UTC(), Target: target, Boots: o.boots, Logs: logDir, CPUs: runtime.NumCPU()}
	ours := imageSpec{Name: "onecloud", Profile: "build", Dir: filepath.Join(o.outDir, "image"),
		Marker: readyLine, MAC: "52:54:00:be:00:01"}
	bare := imageSpec{Name: "bare", Profile: "bare", Dir: filepath.Join(o.outDir, "bare"),
		Marker: image.BareMarker, MAC: "52:54:00:be:00:02"}

	if !o.skipBuild {
		b, err := newBuilder(ctx, sess, root, logDir, stderr, log)
		if err != nil {
			return err
		}
		if r.Builds, err = b.measureBuilds(ctx, ours, bare, !o.skipCold); err != nil {
			return err
		}
	}
	for _, img := range []imageSpec{ours, bare} {
		s, err := readSizes(img)
		if err != nil {
			return err
		}
		r.Sizes = append(r.Sizes, s)
	}
	r.Commit, r.Go, r.Kernel = r.Sizes[0].Commit, r.Sizes[0].Go, r.Sizes[0].Kernel
	r.QEMU = qemuVersion(ctx)

	r.LoadBefore = loadavg.Read()
	if r.Runs, err = bootAll(ctx, sess, []imageSpec{ours, bare}, o.boots, o.bootTimeout, logDir, log); err != nil {
		return err
	}
	r.LoadAfter = loadavg.Read()
	r.summarize([]imageSpec{ours, bare})

	if err := r.writeTable(stdout); err != nil {
		return err
	}
	if o.jsonPath != "" {
		if err := r.writeJSON(o.jsonPath); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "every figure, each boot included: %s\n", o.jsonPath)
	}
	return nil
}
