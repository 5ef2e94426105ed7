package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/onecloud-edu/onecloud/bootstrap"
	"github.com/onecloud-edu/onecloud/firmware/measure"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest/tcptpm"
	"github.com/onecloud-edu/onecloud/noded/cluster"
	"github.com/onecloud-edu/onecloud/noded/join"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/server"
)

// serverFlags are what `noded server` is told; the state folder is the one
// `noded init` made.
type serverFlags struct {
	state, name, addr             string
	peerPort, clientPort, apiPort int
	// Joining an existing cluster (-join): its API, its CA certificate,
	// and what this machine attests with.
	join, ca, tpm, serial, eventLog string
	// ekCA is the TPM manufacturers' CA certificates (PEM) that EK
	// certificates must chain to.
	ekCA string
	// bootstrap, when set, is a bootstrap configuration: this node also
	// serves DHCP, TFTP and HTTP boot, with its inbox in the cluster.
	bootstrap, bootstrapSocket string
}

// serverDeps are what runServerWith reaches outside the process through;
// tests replace them.
type serverDeps struct {
	openTPM OpenTPM
	// ready, when set, is told the cluster API once it is about to serve.
	ready func(*server.Server)
}

// runServer runs noded's server mode: its etcd member and the cluster API
// on top of it, until ctx ends. On the node `noded init` made, the member
// founds the cluster of one on the first start and rejoins it afterwards.
// With -join and an empty state folder, the node first attests with its
// TPM through an existing server node's API, keeps the certificates it
// earns, and joins the cluster as a learner that is promoted once caught
// up; later starts rejoin (and finish an interrupted promotion).
func runServer(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	return runServerWith(ctx, args, stderr, log, serverDeps{openTPM: systemTPM(ctx)})
}

// systemTPM opens -tpm: tcp:HOST:PORT is a software TPM (swtpm --server
// type=tcp), as in the lab; anything else is a TPM device.
func systemTPM(ctx context.Context) OpenTPM {
	return func(path string) (transport.TPMCloser, error) {
		if strings.HasPrefix(path, tcptpm.Scheme) {
			return tcptpm.Dial(ctx, path)
		}
		return linuxtpm.Open(path)
	}
}

func runServerWith(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger, deps serverDeps) error {
	f, err := parseServerFlags(args, stderr)
	if err != nil {
		return err
	}
	// A mistake in the boot configuration shows before etcd starts.
	bootCfg, err := loadBootstrap(f)
	if err != nil {
		return err
	}
	ip := net.ParseIP(f.addr)
	pkiDir := pki.Dir(f.state)
	endpoints, joined, err := join.ReadEndpoints(f.state)
	if err != nil {
		return err
	}
	switch {
	case exists(filepath.Join(pkiDir, pki.NodeCertFile)):
		// Set up before: restart.
	case f.join != "":
		if endpoints, err = attestForJoin(ctx, f, deps.openTPM, log); err != nil {
			return err
		}
		joined = true
	default:
		return fmt.Errorf("no certificates in %s: run `noded init -state %s -name %s -addr %s` on the cluster's first node, or give -join https://SERVER:%d -ca ca.crt to join a cluster", pkiDir, f.state, f.name, f.addr, api.DefaultPort)
	}
	// Only the node that made the cluster CA holds its keys; the others
	// verify with its certificates and turn attestations away.
	loadCA := pki.LoadCACerts
	if exists(filepath.Join(pkiDir, pki.CAKeyFile)) {
		loadCA = pki.LoadCA
	}
	ca, err := loadCA(pkiDir)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, pki.NodeCertFile), filepath.Join(pkiDir, pki.NodeKeyFile))
	if err != nil {
		return fmt.Errorf("this node's certificate: %w", err)
	}

	cfg := cluster.StateConfig(f.state, f.name, ip, log.With("component", "etcd"))
	cfg.PeerAddr = net.JoinHostPort(f.addr, strconv.Itoa(f.peerPort))
	cfg.ClientAddr = net.JoinHostPort(f.addr, strconv.Itoa(f.clientPort))
	var member *cluster.Member
	if joined {
		member, err = cluster.Join(ctx, cfg, endpoints)
	} else {
		member, err = cluster.Start(ctx, cfg)
	}
	if err != nil {
		return err
	}
	defer member.Close()

	ekRoots, ekIntermediates, err := loadEKCAs(f.ekCA)
	if err != nil {
		return err
	}
	keeper, closeTPM := serverCertKeeper(f, ca, deps.openTPM, log)
	defer closeTPM()
	srv, err := server.New(server.Config{
		Addr: net.JoinHostPort(f.addr, strconv.Itoa(f.apiPort)), CA: ca, Certificate: cert, CurrentCertificate: current(keeper),
		KV: member.Client(), Members: member, Logger: log.With("component", "api"),
		ManufacturerRoots: ekRoots, ManufacturerIntermediates: ekIntermediates, Rules: bootCfg.Rules,
	})
	if err != nil {
		return err
	}
	var boot *bootstrap.Server
	if f.bootstrap != "" {
		if boot, err = newBootstrap(f, bootCfg, srv, log.With("component", "bootstrap")); err != nil {
			return err
		}
	}
	if deps.ready != nil {
		deps.ready(srv)
	}
	log.Info("noded: server mode serving", "name", f.name, "api", "https://"+srv.Addr().String(),
		"etcd_client", cfg.ClientURL(), "etcd_peer", cfg.PeerURL(), "bootstrap", f.bootstrap != "")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	bootDone := make(chan error, 1)
	if boot != nil {
		go func() { bootDone <- boot.Run(ctx) }()
	}
	keeperDone := make(chan struct{})
	defer func() { <-keeperDone }()
	go func() {
		defer close(keeperDone)
		if keeper != nil {
			if err := keeper.Run(ctx); err != nil {
				log.Error("this node's certificate will NOT be renewed", "err", err)
			}
		}
	}()
	select {
	case err := <-done:
		cancel()
		if boot != nil {
			<-bootDone
		}
		return err
	case err := <-bootDone:
		cancel()
		<-done
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("bootstrap: %w", err)
	case <-member.Done():
		cancel()
		<-done
		if boot != nil {
			<-bootDone
		}
		return errors.New("the etcd member stopped: see the log above")
	}
}

// loadEKCAs reads the TPM manufacturers' CA certificates (-ek-ca): the
// self-signed ones are roots, the others intermediates. No file means no EK
// certificate is trusted, and machines are approved with their EK hash.
func loadEKCAs(path string) (roots, intermediates *x509.CertPool, err error) {
	if path == "" {
		return nil, nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("-ek-ca: %w", err)
	}
	certs, err := pki.ParseCerts(b)
	if err != nil {
		return nil, nil, fmt.Errorf("-ek-ca %s: %w", path, err)
	}
	roots, intermediates = x509.NewCertPool(), x509.NewCertPool()
	for _, c := range certs {
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			roots.AddCert(c)
		} else {
			intermediates.AddCert(c)
		}
	}
	return roots, intermediates, nil
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
	fs.StringVar(&f.join, "join", "", "join the cluster whose API is at this URL (https://SERVER:9443), attesting with this machine's TPM; only with an empty state folder")
	fs.StringVar(&f.ca, "ca", "", "with -join: the cluster's ca.crt (from the admin bundle)")
	fs.StringVar(&f.tpm, "tpm", "/dev/tpmrm0", "with -join: the TPM device to attest with, or tcp:HOST:PORT for a software TPM (swtpm --server type=tcp)")
	fs.StringVar(&f.serial, "serial", "", "with -join: the board's serial number (default: read from "+dmiSerial+")")
	fs.StringVar(&f.eventLog, "event-log", measure.LogPath, "with -join: the firmware's event log of what it measured")
	fs.StringVar(&f.ekCA, "ek-ca", "", "TPM manufacturers' CA certificates (PEM) that EK certificates must chain to; without it, machines are approved with their EK hash")
	fs.StringVar(&f.bootstrap, "bootstrap", "", "also serve network boot (DHCP, TFTP, HTTP) with this bootstrap configuration (docs/bootstrap.md), the inbox in the cluster")
	fs.StringVar(&f.bootstrapSocket, "bootstrap-socket", bootstrap.DefaultSocket, "with -bootstrap: its admin socket (`bootstrapd stats`)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if f.name == "" || f.addr == "" {
		return f, errors.New("-name and -addr are required: the node's name and address as given to `noded init`")
	}
	if f.join != "" && f.ca == "" {
		return f, errors.New("-join needs -ca: the cluster's ca.crt (from the admin bundle), so that this node knows it talks to its own cluster")
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

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
