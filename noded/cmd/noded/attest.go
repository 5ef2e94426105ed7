package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/onecloud-edu/onecloud/firmware/measure"
	"github.com/onecloud-edu/onecloud/noded/nodecert"
	"github.com/onecloud-edu/onecloud/noded/pki"
)

// attestFlags are what `noded attest` is told.
type attestFlags struct {
	server, ca, name, serial, tpm, eventLog, dir string
}

// attestDeps are what runAttestWith reaches outside the process through;
// tests replace them.
type attestDeps struct {
	openTPM OpenTPM
	// clock is the system's when nil.
	clock nodecert.Clock
	// onChange, when set, is told every new status.
	onChange func(nodecert.Status)
}

// runAttest keeps a terminal's node certificate: it attests with the TPM
// through the cluster API, keeps the certificate in -dir, and attests again
// before it expires, until ctx ends.
func runAttest(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	return runAttestWith(ctx, args, stderr, log, attestDeps{openTPM: systemTPM(ctx)})
}

func runAttestWith(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger, deps attestDeps) error {
	f, err := parseAttestFlags(args, stderr)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(f.ca)
	if err != nil {
		return fmt.Errorf("-ca: the cluster's ca.crt tells this machine it talks to its own cluster: %w", err)
	}
	roots, err := pki.ParseCerts(caPEM)
	if err != nil {
		return fmt.Errorf("-ca %s: %w", f.ca, err)
	}
	serial, err := boardSerial(f.serial)
	if err != nil {
		return err
	}
	tpm, err := deps.openTPM(f.tpm)
	if err != nil {
		return fmt.Errorf("open the TPM %s (-tpm): %w", f.tpm, err)
	}
	defer tpm.Close()
	k, err := nodecert.New(nodecert.Config{
		Server: f.server, Root: roots[0], Name: f.name, Serial: serial, EventLog: f.eventLog,
		TPM: tpm, Dir: f.dir, Logger: log, Clock: deps.clock, OnChange: deps.onChange,
	})
	if err != nil {
		return err
	}
	log.Info("noded attest: keeping the node certificate", "name", f.name, "server", f.server, "dir", f.dir)
	return k.Run(ctx)
}

func parseAttestFlags(args []string, stderr io.Writer) (attestFlags, error) {
	var f attestFlags
	fs := flag.NewFlagSet("noded attest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.server, "server", "", "the cluster API to attest at, https://SERVER:9443 (required)")
	fs.StringVar(&f.ca, "ca", "", "the cluster's CA certificate, PEM (required)")
	fs.StringVar(&f.name, "name", "", "this machine's id as approved, oc-<MAC hex> (required)")
	fs.StringVar(&f.serial, "serial", "", "the board's serial number (default: read from "+dmiSerial+")")
	fs.StringVar(&f.tpm, "tpm", "/dev/tpmrm0", "the TPM device to attest with, or tcp:HOST:PORT for a software TPM (swtpm --server type=tcp)")
	fs.StringVar(&f.eventLog, "event-log", measure.LogPath, "the firmware's event log of what it measured")
	fs.StringVar(&f.dir, "dir", nodecert.DefaultDir, "where node.crt, node.key and status.json are kept")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if f.server == "" || f.ca == "" || f.name == "" {
		return f, errors.New("-server, -ca and -name are required: the cluster API, its ca.crt and this machine's id")
	}
	if u, err := url.Parse(f.server); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return f, fmt.Errorf("-server %q: want https://SERVER:PORT", f.server)
	}
	for name, v := range map[string]string{"-tpm": f.tpm, "-event-log": f.eventLog, "-dir": f.dir} {
		if v == "" {
			return f, fmt.Errorf("%s is empty", name)
		}
	}
	return f, nil
}

// boardSerial is the serial number given (-serial), else the one DMI shows.
func boardSerial(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	b, err := os.ReadFile(dmiSerial)
	if err != nil {
		return "", fmt.Errorf("read the board's serial number (give -serial): %w", err)
	}
	serial := strings.TrimSpace(string(b))
	if serial == "" {
		return "", fmt.Errorf("%s is empty: give the serial the machine was approved with as -serial", dmiSerial)
	}
	return serial, nil
}
