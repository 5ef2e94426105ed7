// Package join is a new server node's way into the cluster: it attests
// with its TPM through a server node's cluster API, checks everything the
// cluster issued for it, and keeps it in the node's state folder, from
// which noded/cluster.Join enters etcd as a learner.
//
// Nothing is written unless the cluster accepted this machine as a server
// node, and the certificates are checked against the cluster CA the
// technician gave (-ca): a node never joins a cluster it was not told to.
package join

import (
	"bytes"
	"context"
	"crypto/ecdsa"
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

// EndpointsFile, in the state folder, lists the etcd client URLs a joining
// server node was given, one a line. It is written before any certificate,
// so that a node that has certificates but no such file is known to be the
// node that founded the cluster (`noded init`), and a joined node that
// stopped before it was promoted finishes its join on the next start.
const EndpointsFile = "join-endpoints"

// ServerFile, in the state folder, names the cluster API the node attested
// through: it attests there again to renew its node certificate.
const ServerFile = "join-server"

// Request is what a node attests with.
type Request struct {
	// Server is a server node's cluster API ("https://10.0.0.11:9443").
	Server string
	// Root is the cluster CA certificate the technician gave this node.
	Root *x509.Certificate
	// Name is the machine id the cluster approved (oc-<MAC hex>); Addr the
	// address the other members reach this node at.
	Name string
	Addr net.IP
	// Serial is the board's serial number; EventLog the firmware's.
	Serial   string
	EventLog []byte
	TPM      transport.TPM
	// Timeout bounds each API request; 0 means the client's default.
	Timeout time.Duration
	Log     *slog.Logger
}

// Kit is what the cluster issued to a new server node, checked.
type Kit struct {
	// Server is the cluster API the node attested through.
	Server                   string
	Root, EtcdCA, Node, Peer *x509.Certificate
	NodeKey, PeerKey         *ecdsa.PrivateKey
	// Endpoints are the etcd client URLs of the voting members.
	Endpoints []string
}

// Attest attests this node through r.Server and returns the certificates
// the cluster issued, after checking that they are this cluster's, name
// this node and its address, and include an etcd member certificate.
func Attest(ctx context.Context, r Request) (Kit, error) {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if r.Root == nil || r.TPM == nil || r.Name == "" || r.Addr == nil {
		return Kit{}, errors.New("join: Root, TPM, Name and Addr are required")
	}
	if r.Serial == "" {
		return Kit{}, errors.New("join: the board's serial number is empty: give the serial the machine was approved with")
	}
	pool := x509.NewCertPool()
	pool.AddCert(r.Root)
	k := Kit{Server: r.Server, Root: r.Root}
	var err error
	if k.NodeKey, err = pki.NewKey(); err != nil {
		return Kit{}, err
	}
	if k.PeerKey, err = pki.NewKey(); err != nil {
		return Kit{}, err
	}
	csr, err := pki.NewCSR(k.NodeKey, r.Name)
	if err != nil {
		return Kit{}, err
	}
	peerCSR, err := pki.NewCSR(k.PeerKey, r.Name)
	if err != nil {
		return Kit{}, err
	}
	client, err := api.NewClient(api.ClientConfig{Server: r.Server, CA: pool, Timeout: r.Timeout})
	if err != nil {
		return Kit{}, fmt.Errorf("-join: %w", err)
	}
	defer client.Close()
	log.Info("attesting to join the cluster", "name", r.Name, "addr", r.Addr, "serial", r.Serial, "via", r.Server)
	res, err := attest.New(r.TPM, attest.Options{Logger: log}).Attest(ctx,
		api.Attestation{Client: client, CSR: csr, PeerCSR: peerCSR}, r.Name, r.Serial, r.EventLog)
	if err != nil {
		return Kit{}, fmt.Errorf("attest at %s: %w", r.Server, err)
	}

	if k.Node, err = x509.ParseCertificate(res.NodeCertificate); err != nil {
		return Kit{}, fmt.Errorf("the cluster accepted this machine but sent no usable node certificate: %w", err)
	}
	if cn := k.Node.Subject.CommonName; cn != r.Name {
		return Kit{}, fmt.Errorf("the cluster knows this machine as %q: start it with -name %s", cn, cn)
	}
	if len(res.PeerCertificate) == 0 {
		return Kit{}, fmt.Errorf("the cluster accepted machine %s, but not as a server node (no etcd member certificate): approve it with role %q and start again", r.Name, api.RoleServer)
	}
	if k.Peer, err = x509.ParseCertificate(res.PeerCertificate); err != nil {
		return Kit{}, fmt.Errorf("etcd member certificate from the cluster: %w", err)
	}
	if k.EtcdCA, err = x509.ParseCertificate(res.EtcdCACertificate); err != nil {
		return Kit{}, fmt.Errorf("etcd CA certificate from the cluster: %w", err)
	}
	if !bytes.Equal(res.CACertificate, r.Root.Raw) {
		return Kit{}, errors.New("the cluster sent another CA certificate than the one this node was given (-ca): is it this cluster's?")
	}
	now := time.Now()
	if err := pki.Verify(pool, []*x509.Certificate{k.Node}, pki.Node, now); err != nil {
		return Kit{}, err
	}
	if err := k.EtcdCA.CheckSignatureFrom(r.Root); err != nil {
		return Kit{}, fmt.Errorf("the etcd CA the cluster sent is not signed by the cluster CA: %w", err)
	}
	etcdPool := x509.NewCertPool()
	etcdPool.AddCert(k.EtcdCA)
	if err := pki.Verify(etcdPool, []*x509.Certificate{k.Peer}, pki.Peer, now); err != nil {
		return Kit{}, err
	}
	if !slices.ContainsFunc(k.Peer.IPAddresses, r.Addr.Equal) {
		// The cluster names the address it saw this node attest from.
		return Kit{}, fmt.Errorf("the etcd member certificate names %v, not -addr %s: attest from the address the other members reach this node at", k.Peer.IPAddresses, r.Addr)
	}
	if len(res.EtcdEndpoints) == 0 {
		return Kit{}, errors.New("the cluster sent no etcd endpoints to join through")
	}
	k.Endpoints = res.EtcdEndpoints
	return k, nil
}

// Write keeps the kit in a state folder: the endpoints first, then the
// certificates and keys under the names `noded init` uses, node.crt last
// (with it, the folder counts as set up).
func (k Kit) Write(state string) error {
	if k.Server == "" || k.Root == nil || k.EtcdCA == nil || k.Node == nil || k.Peer == nil || k.NodeKey == nil || k.PeerKey == nil || len(k.Endpoints) == 0 {
		return errors.New("join: an incomplete kit (a certificate, key or the endpoints missing): attest again")
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return fmt.Errorf("create state folder: %w", err)
	}
	root, err := os.OpenRoot(state)
	if err != nil {
		return fmt.Errorf("open state folder: %w", err)
	}
	defer root.Close()
	if err := root.WriteFile(EndpointsFile, []byte(strings.Join(k.Endpoints, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("record the etcd endpoints to join through: %w", err)
	}
	if err := root.WriteFile(ServerFile, []byte(k.Server+"\n"), 0o600); err != nil {
		return fmt.Errorf("record the cluster API this node attests through: %w", err)
	}
	dir := pki.Dir(state)
	for _, w := range []func() error{
		func() error { return pki.WriteCert(dir, pki.CACertFile, true, k.Root) },
		func() error { return pki.WriteCert(dir, pki.EtcdCACertFile, true, k.EtcdCA) },
		func() error { return pki.WriteKey(dir, pki.EtcdKeyFile, k.PeerKey, true) },
		func() error { return pki.WriteCert(dir, pki.EtcdCertFile, true, k.Peer, k.EtcdCA) },
		func() error { return pki.WriteKey(dir, pki.NodeKeyFile, k.NodeKey, true) },
		func() error { return pki.WriteCert(dir, pki.NodeCertFile, true, k.Node) },
	} {
		if err := w(); err != nil {
			return err
		}
	}
	return nil
}

// ReadServer returns the cluster API a joined node attested through.
func ReadServer(state string) (string, error) {
	b, err := os.ReadFile(filepath.Join(state, ServerFile))
	if err != nil {
		return "", fmt.Errorf("the cluster API this node joined through (to renew its certificate): %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadEndpoints returns the endpoints of a node that joined (or began to);
// ok is false for a node that founded the cluster or never joined.
func ReadEndpoints(state string) (endpoints []string, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(state, EndpointsFile))
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
		return nil, false, fmt.Errorf("%s lists no etcd endpoint: remove it and join again", filepath.Join(state, EndpointsFile))
	}
	return endpoints, true, nil
}
