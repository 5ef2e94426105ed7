package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/onecloud-edu/onecloud/noded/join"
	"github.com/onecloud-edu/onecloud/noded/pki"
)

// dmiSerial is where Linux shows the board's serial number.
const dmiSerial = "/sys/class/dmi/id/product_serial"

// OpenTPM opens the TPM at a device path; linuxtpm.Open on a box, a
// software TPM in tests.
type OpenTPM func(path string) (transport.TPMCloser, error)

// attestForJoin reads what -join needs (the cluster CA, the serial, the
// event log, the TPM), attests through noded/join and keeps what the cluster
// issued in the state folder. It returns the etcd endpoints to join through.
func attestForJoin(ctx context.Context, f serverFlags, open OpenTPM, log *slog.Logger) ([]string, error) {
	caPEM, err := os.ReadFile(f.ca)
	if err != nil {
		return nil, fmt.Errorf("-ca: the cluster's ca.crt (from the admin bundle) tells this node it talks to its own cluster: %w", err)
	}
	roots, err := pki.ParseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("-ca %s: %w", f.ca, err)
	}
	serial, err := boardSerial(f.serial)
	if err != nil {
		return nil, err
	}
	eventLog, err := os.ReadFile(f.eventLog)
	if err != nil {
		return nil, fmt.Errorf("read the firmware's event log (-event-log): %w", err)
	}
	tpm, err := open(f.tpm)
	if err != nil {
		return nil, fmt.Errorf("open the TPM %s (-tpm): %w", f.tpm, err)
	}
	defer tpm.Close()
	kit, err := join.Attest(ctx, join.Request{
		Server: f.join, Root: roots[0], Name: f.name, Addr: net.ParseIP(f.addr),
		Serial: serial, EventLog: eventLog, TPM: tpm, Log: log,
	})
	if err != nil {
		return nil, err
	}
	if err := kit.Write(f.state); err != nil {
		return nil, err
	}
	log.Info("attested: certificates written", "name", f.name, "pki", pki.Dir(f.state),
		"node_certificate_expires", kit.Node.NotAfter, "etcd_endpoints", kit.Endpoints)
	return kit.Endpoints, nil
}
