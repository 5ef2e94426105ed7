// Command noded is the node daemon that runs on every onecloud box.
//
// Without a subcommand it serves the node's local status (release,
// inventory, addresses, uptime, service states) as JSON on a unix socket,
// which the firmware's status screen reads. Later issues give it its real
// work: KVM desktops, host networking, attestation and the cluster.
//
// Subcommands:
//
//	noded init -state DIR -name NODE -addr IP     create the cluster CA, this node's certificates and the first admin certificate
//	noded server -state DIR -name NODE -addr IP   server mode: this node's etcd member and the cluster API (HTTPS, mutual TLS)
//	noded server -state DIR -name NODE -addr IP -join https://SERVER:9443 -ca ca.crt [-tpm /dev/tpmrm0]
//	                                              a new server node: attest with the TPM, then join etcd as a learner, promoted once caught up
//	noded attest -server https://SERVER:9443 -ca ca.crt -name ID   a box's node certificate: attest with the TPM, renew before expiry
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/internal/release"
	"github.com/onecloud-edu/onecloud/noded/localapi"
	"github.com/onecloud-edu/onecloud/noded/status"
)

func main() {
	if len(os.Args) > 1 {
		// Subcommands; without one noded serves the local status API.
		var run func(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error
		switch os.Args[1] {
		case "init":
			if err := runInit(os.Args[2:], os.Stdout, time.Now()); err != nil {
				fmt.Fprintln(os.Stderr, "noded init:", err)
				os.Exit(1)
			}
			return
		case "server":
			run = runServer
		case "attest":
			run = runAttest
		}
		if run != nil {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := run(ctx, os.Args[2:], os.Stderr, log); err != nil {
				fmt.Fprintf(os.Stderr, "noded %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	socket := flag.String("socket", localapi.SocketPath, "unix socket of the local status API")
	root := flag.String("root", "/", "root of the file system to describe (tests point it at a recorded tree)")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *socket, *root, log); err != nil {
		log.Error("noded stopped", "err", err)
		fmt.Fprintln(os.Stderr, "noded:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, socket, root string, log *slog.Logger) error {
	rel, err := release.Read(root)
	if err != nil {
		log.Warn("release file unreadable", "err", err)
	}
	log.Info("noded starting", "release", rel.String(), "pid", os.Getpid())
	g := &status.Gatherer{Root: root, Interfaces: status.Netlink, Hostname: os.Hostname}
	return localapi.Serve(ctx, socket, g.Status, log)
}
