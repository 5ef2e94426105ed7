package main

import (
	"bytes"
	"context"
	"crypto"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/noded/cluster"
	"github.com/onecloud-edu/onecloud/noded/pki"
)

func TestInit(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	now := time.Now()
	var out bytes.Buffer
	if err := runInit([]string{"-state", state, "-name", "srv1", "-addr", "10.0.0.1", "-admin", "li"}, &out, now); err != nil {
		t.Fatal(err)
	}
	pkiDir := pki.Dir(state)
	adminDir := filepath.Join(state, "admin-li")
	if !strings.Contains(out.String(), adminDir) {
		t.Errorf("output does not say where the admin bundle is:\n%s", out.String())
	}
	for _, f := range []string{
		filepath.Join(pkiDir, pki.CAKeyFile), filepath.Join(pkiDir, pki.EtcdCAKeyFile),
		filepath.Join(pkiDir, pki.NodeKeyFile), filepath.Join(pkiDir, pki.EtcdKeyFile),
		filepath.Join(adminDir, adminKeyFile),
	} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state folder: %v", err)
	}

	ca, err := pki.LoadCA(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		kind pki.Kind
		cn   string
	}{
		{filepath.Join(pkiDir, pki.NodeCertFile), pki.Node, "srv1"},
		{filepath.Join(pkiDir, pki.EtcdCertFile), pki.Peer, "srv1"},
		{filepath.Join(adminDir, adminCertFile), pki.Admin, "li"},
	}
	for _, tt := range tests {
		chain, err := pki.ReadCerts(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.Verify(ca.Roots(tt.kind), chain, tt.kind, now); err != nil {
			t.Errorf("%s: %v", tt.path, err)
		}
		if chain[0].Subject.CommonName != tt.cn {
			t.Errorf("%s: CN %q, want %q", tt.path, chain[0].Subject.CommonName, tt.cn)
		}
		if tt.kind != pki.Admin && (len(chain[0].IPAddresses) == 0 || chain[0].IPAddresses[0].String() != "10.0.0.1") {
			t.Errorf("%s: IP SANs %v", tt.path, chain[0].IPAddresses)
		}
	}
	// The bundle's ca.crt is the root the admin's tools will trust.
	bundleCA, err := pki.ReadCerts(filepath.Join(adminDir, pki.CACertFile))
	if err != nil || !bundleCA[0].Equal(ca.Root) {
		t.Errorf("admin bundle CA: %v", err)
	}
	// The admin's key matches the certificate.
	key, err := pki.ReadKey(filepath.Join(adminDir, adminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pki.ReadCerts(filepath.Join(adminDir, adminCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(admin[0].PublicKey) {
		t.Error("admin key does not match the admin certificate")
	}

	// A second init refuses and leaves the CA as it was.
	before, _ := os.ReadFile(filepath.Join(pkiDir, pki.CAKeyFile))
	err = runInit([]string{"-state", state, "-name", "srv1", "-addr", "10.0.0.1", "-admin-out", t.TempDir()}, &out, now)
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second init = %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(pkiDir, pki.CAKeyFile))
	if !bytes.Equal(before, after) {
		t.Error("second init changed the CA key")
	}
}

func TestInitRefusesBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no name", []string{"-addr", "10.0.0.1"}, "required"},
		{"no addr", []string{"-name", "srv1"}, "required"},
		{"bad addr", []string{"-name", "srv1", "-addr", "srv1.local"}, "not an IP"},
		{"bad name", []string{"-name", "SRV 1", "-addr", "10.0.0.1"}, "not a valid host name"},
		{"bad admin", []string{"-name", "srv1", "-addr", "10.0.0.1", "-admin", "a b"}, "admin name"},
		{"stray argument", []string{"-name", "srv1", "-addr", "10.0.0.1", "extra"}, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			var out bytes.Buffer
			err := runInit(append([]string{"-state", state}, tt.args...), &out, time.Now())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("runInit = %v, want error containing %q", err, tt.want)
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Errorf("a refused init left %s behind", state)
			}
		})
	}
}

// TestInitThenStart proves that the state folder init lays out is the one
// the cluster package reads: a one-node cluster starts from it and serves.
func TestInitThenStart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	var out bytes.Buffer
	if err := runInit([]string{"-state", state, "-name", "srv1", "-addr", "127.0.0.1"}, &out, time.Now()); err != nil {
		t.Fatal(err)
	}
	cfg := cluster.StateConfig(state, "srv1", net.IPv4(127, 0, 0, 1), nil)
	cfg.PeerAddr, cfg.ClientAddr = freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	m, err := cluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Client().Put(ctx, cluster.Prefix+"probe", "ok"); err != nil {
		t.Fatalf("write to the new cluster: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(state, "etcd")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("etcd data folder: %v", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
