// Command image-builder builds the onecloud boot image (kernel + initramfs)
// reproducibly, and helps move the kernel pin.
//
//	image-builder [build] [flags]   the onecloud image, into out/image
//	image-builder bare [flags]      the bare u-root reference image, into out/bare
//	image-builder kernel-pin        the newest Debian 6.1 kernel package, ready to pin
//
// Run it from anywhere inside the repository, as root on a Debian machine
// (it fetches the kernel with apt-get). Progress goes to standard error;
// see docs/image.md for what the image holds.
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
	"strings"
	"syscall"

	"github.com/onecloud-edu/onecloud/image-builder/image"
	"github.com/onecloud-edu/onecloud/image-builder/kernel"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "image-builder: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := "build"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("image-builder "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output directory (default: out/image, or out/bare for the bare profile, in the repository)")
	commit := fs.String("commit", os.Getenv("ONECLOUD_COMMIT"), "commit to record instead of asking git ($ONECLOUD_COMMIT)")
	cache := fs.String("cache", image.DefaultCacheDir(), "downloads cache ($ONECLOUD_CACHE, else /var/cache/onecloud)")
	verbose := fs.Bool("v", false, "log u-root's builder and other details")
	update := fs.Bool("update", os.Geteuid() == 0, "kernel-pin: run apt-get update first (on by default as root)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: image-builder [build|bare|kernel-pin] [flags]\n\n"+
			"  build       build the onecloud image (kernel + initramfs, manifest, size report)\n"+
			"  bare        build the bare u-root reference image for boot benchmarks\n"+
			"  kernel-pin  print the newest Debian kernel package of the pinned series, ready to pin\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	switch sub {
	case "build", "bare":
		profile := image.Onecloud()
		if sub == "bare" {
			profile = image.Bare()
		}
		root, err := image.ModuleRoot(ctx, ".")
		if err != nil {
			return err
		}
		_, err = image.Build(ctx, image.Options{
			Profile: profile, SourceDir: root, OutDir: *out, CacheDir: *cache, Commit: *commit,
			Progress: stderr, Log: log,
		})
		return err
	case "kernel-pin":
		return kernelPin(ctx, *cache, *update, stdout, log)
	default:
		fs.Usage()
		return fmt.Errorf("unknown subcommand %q", sub)
	}
}

// kernelPin finds the newest kernel package of the pinned series, downloads
// it into the cache to check its digest, and prints the pin lines to paste
// into image-builder/kernel/pin.go. When the newest is only in the security
// suite, it also offers the newest of the main suite, which stays on the
// mirror longer.
func kernelPin(ctx context.Context, cacheDir string, update bool, w io.Writer, log *slog.Logger) error {
	if update {
		log.Info("running apt-get update to see what the mirror has today")
		if err := kernel.UpdateLists(ctx); err != nil {
			return err
		}
	}
	current := kernel.Pinned()
	cands, err := kernel.Candidates(ctx, current)
	if err != nil {
		return err
	}
	offers := []kernel.Candidate{cands[0]}
	if !cands[0].InMain() {
		for _, c := range cands[1:] {
			if c.InMain() {
				offers = append(offers, c)
				break
			}
		}
	}
	cache := kernel.Cache{Dir: filepath.Join(cacheDir, "kernel"), Downloader: kernel.Apt{Log: log}, Unpacker: kernel.Dpkg{}, Log: log}
	fmt.Fprintf(w, "Current pin: %s\n", current)
	for i, c := range offers {
		deb, cached, err := cache.FetchDeb(ctx, c.Pin)
		if err != nil {
			return fmt.Errorf("check the digest the archive index gives: %w", err)
		}
		how := "downloaded now"
		if cached {
			how = "already in the cache"
		}
		switch {
		case i == 0 && c.InMain():
			fmt.Fprintf(w, "\nNewest package of the series, in %s:\n", strings.Join(c.Suites, ", "))
		case i == 0:
			fmt.Fprintf(w, "\nNewest package of the series, only in %s (newest security fixes; leaves the mirror at the next security update):\n",
				strings.Join(c.Suites, ", "))
		default:
			fmt.Fprintf(w, "\nNewest package in a main suite, %s (stays on the mirror until the next point release):\n",
				strings.Join(c.Suites, ", "))
		}
		fmt.Fprintf(w, "\tPinnedPackage = %q\n\tPinnedVersion = %q\n\tPinnedSHA256  = %q\n", c.Package, c.Version, c.SHA256)
		fmt.Fprintf(w, "  (sha256 checked against %s, %s)\n", deb, how)
	}
	if offers[0].Pin == current {
		fmt.Fprintf(w, "\nThe pin is the newest package already.\n")
		return nil
	}
	fmt.Fprintf(w, "\nTo move the pin, paste one block into image-builder/kernel/pin.go, run make test and commit.\n")
	return nil
}
