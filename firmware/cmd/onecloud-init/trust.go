package main

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/onecloud-edu/onecloud/firmware/enrol"
	"github.com/onecloud-edu/onecloud/firmware/measure"
	"github.com/onecloud-edu/onecloud/firmware/netup"
	"github.com/onecloud-edu/onecloud/firmware/supervise"
	"github.com/onecloud-edu/onecloud/internal/atomicfile"
)

// Where the firmware keeps what the cluster's trust needs. All of it is in
// /run: a PXE-booted box starts over at every boot, and attests again.
const (
	// clusterCAPath is the cluster CA the enrolment answer named.
	clusterCAPath = "/run/onecloud/cluster-ca.crt"
	// nodeCertDir is where a terminal keeps its node certificate.
	nodeCertDir = "/run/onecloud/node"
	// serverState is a server node's state folder (its etcd data too).
	serverState = "/run/onecloud/server"
	tpmDevice   = "/dev/tpmrm0"
)

// startTrust starts the service that makes an approved box part of its
// cluster, once enrolment approved it in the role it runs and the boot
// server named the cluster: a server node attests and joins etcd
// (`noded server -join`), a terminal attests and keeps its node
// certificate fresh (`noded attest`). It says why when it cannot, and
// reports whether it started anything.
func (b *boot) startTrust(ctx context.Context, sup *supervise.Supervisor, st enrol.State, bootMAC string, nics []netup.NIC) bool {
	if st.Phase != enrol.PhaseApproved || st.Rebooting || st.Cluster == nil {
		return false
	}
	if !b.opts.Noded {
		return false
	}
	if !b.inv.TPM.Present {
		b.note("no TPM: this box cannot attest, so the cluster will not trust it")
		return true // said once; nothing will change without a TPM
	}
	serial := b.inv.DMI.Serial
	if serial == "" {
		b.note("the board has no serial number (DMI): this box cannot attest; the cluster pins the TPM to the serial")
		return true
	}
	noded, err := exec.LookPath("noded")
	if err != nil {
		b.note("noded is not in this image, this box cannot attest: %v", err)
		return true
	}
	if err := atomicfile.WriteFile(clusterCAPath, []byte(st.Cluster.CA), 0o644); err != nil {
		b.note("cannot keep the cluster CA certificate, this box cannot attest: %v", err)
		return true
	}
	svc := supervise.Service{Name: "attest", Path: noded, Args: []string{"attest",
		"-server", st.Cluster.API, "-ca", clusterCAPath, "-name", st.ID, "-serial", serial,
		"-tpm", tpmDevice, "-event-log", measure.LogPath, "-dir", nodeCertDir}}
	if st.Role == "server" {
		addr := bootAddr(nics, bootMAC)
		if addr == "" {
			b.note("a server node needs an address to join the cluster with; %s has none", bootMAC)
			return false // try again when the network changes
		}
		svc = supervise.Service{Name: "server", Path: noded, Args: []string{"server",
			"-state", serverState, "-name", st.ID, "-addr", addr,
			"-join", st.Cluster.API, "-ca", clusterCAPath, "-serial", serial,
			"-tpm", tpmDevice, "-event-log", measure.LogPath}}
	}
	if err := sup.Start(ctx, svc); err != nil {
		b.note("cannot start %s: %v", svc.Name, err)
		return true
	}
	fmt.Fprintf(b.console, "onecloud: attesting to the cluster at %s as %s (noded %s)\n", st.Cluster.API, st.ID, svc.Args[0])
	return true
}

// bootAddr is the address of the NIC the box enrolled through.
func bootAddr(nics []netup.NIC, mac string) string {
	for _, n := range nics {
		if n.MAC == mac && n.Lease != nil && (n.Phase == netup.PhaseBound || n.Phase == netup.PhaseStatic) {
			return n.Lease.Addr.Addr().String()
		}
	}
	return ""
}
