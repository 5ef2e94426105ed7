package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/onecloud-edu/onecloud/noded/pki"
)

// Files of the admin bundle the technician copies to their laptop.
const (
	adminCertFile = "admin.crt"
	adminKeyFile  = "admin.key"
)

// runInit creates a new cluster on this node: the cluster CA, this node's
// node and etcd certificates, and the first admin certificate. Everything is
// issued in memory first, so that a bad argument leaves nothing on disk.
func runInit(args []string, out io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("noded init", flag.ContinueOnError)
	fs.SetOutput(out)
	state := fs.String("state", "/var/lib/onecloud/noded", "state folder of this node (created 0700)")
	name := fs.String("name", "", "this node's name, a host name such as srv1 (required)")
	addr := fs.String("addr", "", "this node's IP address on the server network (required)")
	admin := fs.String("admin", "admin", "name of the first administrator (the certificate's CN)")
	adminOut := fs.String("admin-out", "", "folder for the admin certificate bundle (default STATE/admin-NAME)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *name == "" || *addr == "" {
		return errors.New("-name and -addr are required, e.g. noded init -name srv1 -addr 10.0.0.1")
	}
	ip := net.ParseIP(*addr)
	if ip == nil {
		return fmt.Errorf("-addr %q is not an IP address", *addr)
	}
	if *adminOut == "" {
		*adminOut = filepath.Join(*state, "admin-"+*admin)
	}
	pkiDir := pki.Dir(*state)
	for _, f := range []string{filepath.Join(*adminOut, adminCertFile), filepath.Join(*adminOut, adminKeyFile)} {
		if _, err := os.Lstat(f); err == nil {
			return fmt.Errorf("%s already exists: move the old admin bundle away first", f)
		}
	}

	ca, err := pki.NewCA(now)
	if err != nil {
		return err
	}
	ca.Now = func() time.Time { return now }
	type issued struct {
		cert *x509.Certificate
		key  *ecdsa.PrivateKey
	}
	issue := func(id pki.Identity) (issued, error) {
		key, err := pki.NewKey()
		if err != nil {
			return issued{}, err
		}
		c, err := ca.Issue(&key.PublicKey, id)
		return issued{c, key}, err
	}
	node, err := issue(pki.Identity{Kind: pki.Node, Name: *name, IPs: []net.IP{ip}})
	if err != nil {
		return err
	}
	etcd, err := issue(pki.Identity{Kind: pki.Peer, Name: *name, IPs: []net.IP{ip}})
	if err != nil {
		return err
	}
	adm, err := issue(pki.Identity{Kind: pki.Admin, Name: *admin})
	if err != nil {
		return err
	}

	if err := os.MkdirAll(*state, 0o700); err != nil {
		return fmt.Errorf("create state folder: %w", err)
	}
	if err := pki.SaveCA(pkiDir, ca); err != nil {
		return err
	}
	writes := []func() error{
		func() error { return pki.WriteKey(pkiDir, pki.NodeKeyFile, node.key, true) },
		func() error { return pki.WriteCert(pkiDir, pki.NodeCertFile, true, node.cert) },
		func() error { return pki.WriteKey(pkiDir, pki.EtcdKeyFile, etcd.key, true) },
		func() error { return pki.WriteCert(pkiDir, pki.EtcdCertFile, true, etcd.cert, ca.Etcd) },
		func() error { return pki.WriteKey(*adminOut, adminKeyFile, adm.key, false) },
		func() error { return pki.WriteCert(*adminOut, adminCertFile, false, adm.cert) },
		func() error { return pki.WriteCert(*adminOut, pki.CACertFile, true, ca.Root) },
	}
	for _, w := range writes {
		if err := w(); err != nil {
			return err
		}
	}

	fmt.Fprintf(out, "cluster CA created in %s (keep %s secret and backed up: it signs every certificate of the cluster)\n", pkiDir, pki.CAKeyFile)
	fmt.Fprintf(out, "node %s (%s): %s valid until %s, etcd member certificate %s\n", *name, ip,
		filepath.Join(pkiDir, pki.NodeCertFile), node.cert.NotAfter.UTC().Format(time.RFC3339), filepath.Join(pkiDir, pki.EtcdCertFile))
	fmt.Fprintf(out, "admin certificate for %q written to %s (%s, %s, %s), valid until %s\n", *admin, *adminOut,
		adminCertFile, adminKeyFile, pki.CACertFile, adm.cert.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "copy that folder to your laptop (e.g. scp -r root@%s:%s .), then delete it from this node\n", ip, *adminOut)
	return nil
}
