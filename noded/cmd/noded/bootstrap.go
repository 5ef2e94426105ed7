package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/onecloud-edu/onecloud/bootstrap"
	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/server"
)

// newBootstrap makes the boot server that runs inside this server node
// (-bootstrap FILE): DHCP, TFTP and HTTP as bootstrapd serves them, with the
// enrolment inbox in the cluster store instead of a file, so that every
// server node sees the same machines and `occtl` decides them. An approved
// box is told this node's cluster API and the cluster CA, to attest next.
//
// Its state (leases, published images) is in the bootstrap folder of the
// node's state folder: `bootstrapd publish -state STATE/bootstrap` publishes
// an image to it. The configuration's rules approve machines in the
// cluster's inbox (server.Config.Rules); declared machines are refused in
// the file, since `occtl declare` keeps them in the cluster.
func newBootstrap(f serverFlags, cfg bootstrap.Config, srv *server.Server, log *slog.Logger) (*bootstrap.Server, error) {
	caPEM, err := os.ReadFile(filepath.Join(pki.Dir(f.state), pki.CACertFile))
	if err != nil {
		return nil, fmt.Errorf("the cluster CA certificate that approved boxes are given: %w", err)
	}
	paths := bootstrap.Paths{State: BootstrapState(f.state), Socket: f.bootstrapSocket}
	return bootstrap.NewOnCluster(cfg, paths, bootstrap.OnCluster{
		Backend: srv,
		Cluster: enrolapi.Cluster{API: "https://" + srv.Addr().String(), CA: string(caPEM)},
	}, log)
}

// loadBootstrap reads the -bootstrap configuration, if any, before the
// cluster API starts: its rules are the inbox's.
func loadBootstrap(f serverFlags) (bootstrap.Config, error) {
	if f.bootstrap == "" {
		return bootstrap.Config{}, nil
	}
	cfg, err := bootstrap.LoadConfig(f.bootstrap)
	if err != nil {
		return cfg, fmt.Errorf("-bootstrap: %w", err)
	}
	return cfg, nil
}

// BootstrapState is the bootstrap server's state folder inside a server
// node's state folder.
func BootstrapState(state string) string { return filepath.Join(state, "bootstrap") }
