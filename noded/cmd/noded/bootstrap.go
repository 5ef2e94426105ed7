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
// an image to it.
func newBootstrap(f serverFlags, srv *server.Server, log *slog.Logger) (*bootstrap.Server, error) {
	cfg, err := bootstrap.LoadConfig(f.bootstrap)
	if err != nil {
		return nil, fmt.Errorf("-bootstrap: %w", err)
	}
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

// BootstrapState is the bootstrap server's state folder inside a server
// node's state folder.
func BootstrapState(state string) string { return filepath.Join(state, "bootstrap") }
