package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest"
	"github.com/onecloud-edu/onecloud/noded/pki"
)

// joinFile, in the state folder, lists the etcd client URLs a joining
// server node was given, one a line. It is written before any certificate,
// so that a node that has certificates but no such file is known to be the
// node that founded the cluster (`noded init`), and a joined node that
// stopped before it was promoted finishes its join on the next start.
const joinFile = "join-endpoints"

// dmiSerial is where Linux shows the board's serial number.
const dmiSerial = "/sys/class/dmi/id/product_serial"

// OpenTPM opens the TPM at a device path; linuxtpm.Open on a box, a
// software TPM in tests.
type OpenTPM func(path string) (transport.TPMCloser, error)

// attestForJoin attests this node through the cluster API at f.join with
// its TPM and writes what the cluster issued into the state folder: the
// node certificate, the etcd member certificate, the CA certificates and
// the etcd endpoints. It returns the endpoints. Nothing is written unless
// the cluster accepted this machine as a server node.
func attestForJoin(ctx context.Context, f serverFlags, open OpenTPM, log *slog.Logger) ([]string, error) {
	caPEM, err := os.ReadFile(f.ca)
	if err != nil {
		return nil, fmt.Errorf("-ca: the cluster's ca.crt (from the admin bundle) tells this node it talks to its own cluster: %w", err)
	}
	roots, err := pki.ParseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("-ca %s: %w", f.ca, err)
	}
	root := roots[0]
	pool := x509.NewCertPool()
	pool.AddCert(root)
	serial := f.serial
	if serial == "" {
		b, err := os.ReadFile(dmiSerial)
		if err != nil {
			return nil, fmt.Errorf("read the board's serial number (give -serial): %w", err)
		}
		serial = strings.TrimSpace(string(b))
	}
	if serial == "" {
		return nil, fmt.Errorf("%s is empty: give the serial the machine was approved with as -serial", dmiSerial)
	}
	eventLog, err := os.ReadFile(f.eventLog)
	if err != nil {
		return nil, fmt.Errorf("read the firmware's event log (-event-log): %w", err)
	}

	nodeKey, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	peerKey, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(nodeKey, f.name)
	if err != nil {
		return nil, err
	}
	peerCSR, err := pki.NewCSR(peerKey, f.name)
	if err != nil {
		return nil, err
	}
	client, err := api.NewClient(api.ClientConfig{Server: f.join, CA: pool})
	if err != nil {
		return nil, fmt.Errorf("-join: %w", err)
	}
	defer client.Close()
	tpm, err := open(f.tpm)
	if err != nil {
		return nil, fmt.Errorf("open the TPM %s (-tpm): %w", f.tpm, err)
	}
	defer tpm.Close()
	log.Info("attesting to join the cluster", "name", f.name, "addr", f.addr, "serial", serial, "via", f.join)
	res, err := attest.New(tpm, attest.Options{Logger: log}).Attest(ctx,
		api.Attestation{Client: client, CSR: csr, PeerCSR: peerCSR}, f.name, serial, eventLog)
	if err != nil {
		return nil, fmt.Errorf("attest at %s: %w", f.join, err)
	}

	node, err := x509.ParseCertificate(res.NodeCertificate)
	if err != nil {
		return nil, fmt.Errorf("the cluster accepted this machine but sent no usable node certificate: %w", err)
	}
	if node.Subject.CommonName != f.name {
		return nil, fmt.Errorf("the cluster knows this machine as %q: start it with -name %s", node.Subject.CommonName, node.Subject.CommonName)
	}
	if len(res.PeerCertificate) == 0 {
		return nil, fmt.Errorf("the cluster accepted machine %s, but not as a server node (no etcd member certificate): approve it with role %q and start again", f.name, api.RoleServer)
	}
	peer, err := x509.ParseCertificate(res.PeerCertificate)
	if err != nil {
		return nil, fmt.Errorf("etcd member certificate from the cluster: %w", err)
	}
	etcdCA, err := x509.ParseCertificate(res.EtcdCACertificate)
	if err != nil {
		return nil, fmt.Errorf("etcd CA certificate from the cluster: %w", err)
	}
	if !bytes.Equal(res.CACertificate, root.Raw) {
		return nil, fmt.Errorf("the cluster sent another CA certificate than %s: is -ca this cluster's?", f.ca)
	}
	now := time.Now()
	if err := pki.Verify(pool, []*x509.Certificate{node}, pki.Node, now); err != nil {
		return nil, err
	}
	if err := etcdCA.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("the etcd CA the cluster sent is not signed by %s: %w", f.ca, err)
	}
	etcdPool := x509.NewCertPool()
	etcdPool.AddCert(etcdCA)
	if err := pki.Verify(etcdPool, []*x509.Certificate{peer}, pki.Peer, now); err != nil {
		return nil, err
	}
	ip := net.ParseIP(f.addr)
	if !slices.ContainsFunc(peer.IPAddresses, ip.Equal) {
		// The cluster names the address it saw this node attest from.
		return nil, fmt.Errorf("the etcd member certificate names %v, not -addr %s: attest from the address the other members reach this node at", peer.IPAddresses, f.addr)
	}
	if len(res.EtcdEndpoints) == 0 {
		return nil, errors.New("the cluster sent no etcd endpoints to join through")
	}

	dir := pki.Dir(f.state)
	if err := os.MkdirAll(f.state, 0o700); err != nil {
		return nil, fmt.Errorf("create state folder: %w", err)
	}
	if err := writeJoinFile(f.state, res.EtcdEndpoints); err != nil {
		return nil, err
	}
	// node.crt goes last: with it, the folder counts as set up.
	writes := []func() error{
		func() error { return pki.WriteCert(dir, pki.CACertFile, true, root) },
		func() error { return pki.WriteCert(dir, pki.EtcdCACertFile, true, etcdCA) },
		func() error { return pki.WriteKey(dir, pki.EtcdKeyFile, peerKey, true) },
		func() error { return pki.WriteCert(dir, pki.EtcdCertFile, true, peer, etcdCA) },
		func() error { return pki.WriteKey(dir, pki.NodeKeyFile, nodeKey, true) },
		func() error { return pki.WriteCert(dir, pki.NodeCertFile, true, node) },
	}
	for _, w := range writes {
		if err := w(); err != nil {
			return nil, err
		}
	}
	log.Info("attested: certificates written", "name", f.name, "pki", dir, "node_certificate_expires", node.NotAfter, "etcd_endpoints", res.EtcdEndpoints)
	return res.EtcdEndpoints, nil
}

func writeJoinFile(state string, endpoints []string) error {
	root, err := os.OpenRoot(state)
	if err != nil {
		return fmt.Errorf("open state folder: %w", err)
	}
	defer root.Close()
	if err := root.WriteFile(joinFile, []byte(strings.Join(endpoints, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("record the etcd endpoints to join through: %w", err)
	}
	return nil
}

// readJoinFile returns the endpoints of a node that joined (or began to);
// ok is false for a node that founded the cluster or never joined.
func readJoinFile(state string) (endpoints []string, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(state, joinFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the etcd endpoints this node joined through: %w", err)
	}
	for l := range strings.Lines(string(b)) {
		if l = strings.TrimSpace(l); l != "" {
			endpoints = append(endpoints, l)
		}
	}
	if len(endpoints) == 0 {
		return nil, false, fmt.Errorf("%s lists no etcd endpoint: remove it and join again", filepath.Join(state, joinFile))
	}
	return endpoints, true, nil
}
