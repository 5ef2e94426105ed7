// Command bootstrapd is the standalone zero-touch boot server: DHCP (proxy
// or full), TFTP and HTTP for network-booting boxes, and the enrolment inbox
// that the technician works with `bootstrapd machines`.
//
//	bootstrapd serve -config /etc/onecloud/bootstrap.json -state /var/lib/onecloud/bootstrap
//	bootstrapd publish -state /var/lib/onecloud/bootstrap out/image
//	bootstrapd machines list
//
// See docs/bootstrap.md.
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
	"runtime/pprof"
	"syscall"

	"github.com/onecloud-edu/onecloud/bootstrap"
	"github.com/onecloud-edu/onecloud/bootstrap/images"
)

// Defaults for a machine-room install.
const (
	defaultConfig = "/etc/onecloud/bootstrap.json"
	defaultState  = "/var/lib/onecloud/bootstrap"
)

const usage = `bootstrapd: the onecloud zero-touch boot server (docs/bootstrap.md)

usage:
  bootstrapd serve    [-config FILE] [-state DIR] [-socket PATH] [-log-level LEVEL]
  bootstrapd publish  [-state DIR] IMAGE_DIR     publish an image-builder output folder
  bootstrapd machines list|show|approve|reject|assign|forget ...   the enrolment inbox
  bootstrapd stats    [-json]                    what the running server has answered, ignored and refused
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bootstrapd:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "publish":
		return runPublish(ctx, args[1:], stdout, stderr)
	case "machines":
		return runMachines(ctx, args[1:], stdout, stderr)
	case "stats":
		return runStats(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfig, "configuration file (JSON, docs/bootstrap.md)")
	state := fs.String("state", defaultState, "state folder: leases, machines, published images")
	socket := fs.String("socket", bootstrap.DefaultSocket, "admin socket for `bootstrapd machines` (mode 0600)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until the server stops (for `go tool pprof`)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("-log-level %q: want debug, info, warn or error", *level)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	cfg, err := bootstrap.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	srv, err := bootstrap.New(cfg, bootstrap.Paths{State: *state, Socket: *socket}, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	state := fs.String("state", defaultState, "state folder of the server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("publish takes one image folder (image-builder's output, e.g. out/image)")
	}
	store, err := images.Open(bootstrap.ImagesDir(*state))
	if err != nil {
		return err
	}
	last := -1
	v, err := store.Publish(ctx, fs.Arg(0), func(done, total int64) {
		if total <= 0 {
			return
		}
		if pct := int(done * 100 / total); pct/10 != last/10 {
			last = pct
			fmt.Fprintf(stderr, "publish: %3d%% (%d of %d MB)\n", pct, done>>20, total>>20)
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, v)
	return nil
}
