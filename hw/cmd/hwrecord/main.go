// Command hwrecord records the part of /sys and /proc that the hardware
// inventory (package hw) reads, to make test data from real machines.
//
// On the machine to record, as root:
//
//	hwrecord -o /tmp/rec                 # a directory: /tmp/rec/sys, /tmp/rec/proc
//	hwrecord -tar rec.tar                # the same as a tar archive
//	hwrecord -tar - -armor > /dev/ttyS0  # base64 between marker lines, for a serial console
//
// Back on the development machine, unpack a tar or a console log that holds
// an armored recording into the test data:
//
//	hwrecord -from serial.log -o hw/testdata/NAME
//
// Files that cannot be read are left out with a warning: on a live machine
// the carrier of an interface that is down reads as "invalid argument", and
// that absence is what the inventory reports as "unknown".
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/onecloud-edu/onecloud/hw"
	"github.com/onecloud-edu/onecloud/hw/record"
)

func main() {
	root := flag.String("root", "/", "root of the machine to record (its sys and proc)")
	from := flag.String("from", "", "read a recording from this tar file or console log instead of -root")
	dir := flag.String("o", "", "write the recording into this directory")
	tarOut := flag.String("tar", "", "write the recording as a tar archive to this file (- for stdout)")
	armor := flag.Bool("armor", false, "with -tar: base64 between marker lines, safe for a serial console")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: hwrecord [-root DIR | -from FILE] (-o DIR | -tar FILE [-armor])\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	if (*dir == "") == (*tarOut == "") || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(ctx, log, *root, *from, *dir, *tarOut, *armor); err != nil {
		log.Error("hwrecord failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, root, from, dir, tarOut string, armor bool) error {
	tree, err := load(ctx, log, root, from)
	if err != nil {
		return err
	}
	if dir != "" {
		if err := tree.WriteDir(dir); err != nil {
			return err
		}
		log.Info("recorded", "files", len(tree.Paths()), "dir", dir)
		return nil
	}
	var tarball bytes.Buffer
	if err := tree.WriteTar(&tarball); err != nil {
		return err
	}
	out := tarball.Bytes()
	if armor {
		var armored bytes.Buffer
		if err := record.Armor(&armored, out); err != nil {
			return err
		}
		out = armored.Bytes()
	}
	if tarOut == "-" {
		_, err = os.Stdout.Write(out)
		return err
	}
	return os.WriteFile(tarOut, out, 0o644)
}

// load reads the tree from a live root or from a recording file.
func load(ctx context.Context, log *slog.Logger, root, from string) (*record.Tree, error) {
	if from == "" {
		tree, err := record.Read(ctx, root, hw.Sources())
		for _, e := range unjoin(err) {
			log.Warn("left out", "err", e)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return tree, nil
	}
	data, err := os.ReadFile(from)
	if err != nil {
		return nil, err
	}
	if record.IsArmored(data) {
		if data, err = record.Unarmor(data); err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
	}
	tree, err := record.ReadTar(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return tree, nil
}

// unjoin splits an error made by errors.Join into its parts.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
