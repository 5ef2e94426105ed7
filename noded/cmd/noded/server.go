package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/cluster"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/server"
)

// serverFlags are what `noded server` is told; the state folder is the one
// `noded init` made.
type serverFlags struct {
	state, name, addr             string
	peerPort, clientPort, apiPort int
}

// runServer runs noded's server mode on the node that holds the cluster CA:
// its etcd member (founding the cluster of one on the first start,
// rejoining it afterwards) and the cluster API on top of it. It serves
// until ctx ends.
func runServer(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	f, err := parseServerFlags(args, stderr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(f.addr)
	pkiDir := filepath.Join(f.state, "pki")
	ca, err := pki.LoadCA(pkiDir)
	if err != nil {
		return fmt.Errorf("%w (run `noded init -state %s -name %s -addr %s` first on the cluster's first node)", err, f.state, f.name, f.addr)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, pki.NodeCertFile), filepath.Join(pkiDir, pki.NodeKeyFile))
	if err != nil {
		return fmt.Errorf("this node's certificate: %w", err)
	}

	cfg := cluster.StateConfig(f.state, f.name, ip, log.With("component", "etcd"))
	cfg.PeerAddr = net.JoinHostPort(f.addr, strconv.Itoa(f.peerPort))
	cfg.ClientAddr = net.JoinHostPort(f.addr, strconv.Itoa(f.clientPort))
	member, err := cluster.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer member.Close()

	srv, err := server.New(server.Config{
		Addr: net.JoinHostPort(f.addr, strconv.Itoa(f.apiPort)), CA: ca, Certificate: cert,
		KV: member.Client(), Members: member, Logger: log.With("component", "api"),
	})
	if err != nil {
		return err
	}
	log.Info("noded: server mode serving", "name", f.name, "api", "https://"+srv.Addr().String(),
		"etcd_client", cfg.ClientURL(), "etcd_peer", cfg.PeerURL())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-member.Done():
		<-done
		return errors.New("the etcd member stopped: see the log above")
	}
}

func parseServerFlags(args []string, stderr io.Writer) (serverFlags, error) {
	var f serverFlags
	fs := flag.NewFlagSet("noded server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.state, "state", "/var/lib/onecloud/noded", "state folder made by `noded init`")
	fs.StringVar(&f.name, "name", "", "this node's name, as given to `noded init` (required)")
	fs.StringVar(&f.addr, "addr", "", "this node's IP address, as given to `noded init` (required)")
	fs.IntVar(&f.peerPort, "peer-port", cluster.DefaultPeerPort, "etcd peer port")
	fs.IntVar(&f.clientPort, "client-port", cluster.DefaultClientPort, "etcd client port")
	fs.IntVar(&f.apiPort, "api-port", api.DefaultPort, "cluster API port (HTTPS, mutual TLS)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if f.name == "" || f.addr == "" {
		return f, errors.New("-name and -addr are required: the node's name and address as given to `noded init`")
	}
	if net.ParseIP(f.addr) == nil {
		return f, fmt.Errorf("-addr %q is not an IP address", f.addr)
	}
	for _, p := range []int{f.peerPort, f.clientPort, f.apiPort} {
		if p < 1 || p > 65535 {
			return f, fmt.Errorf("port %d is not 1-65535", p)
		}
	}
	return f, nil
}
