package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/nodecert"
	"github.com/onecloud-edu/onecloud/noded/pki"
)

// TestServerAfterInit is the first node's life: `noded init`, then `noded
// server` founds the cluster of one and serves the cluster API, which the
// admin certificate from init reads and a client without one cannot.
func TestServerAfterInit(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	var out bytes.Buffer
	if err := runInit([]string{"-state", state, "-name", "srv1", "-addr", "127.0.0.1"}, &out, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The node certificate is replaced by one at the end of its life: the
	// server must renew it from its own CA at once, and serve the new one.
	pkiDir := filepath.Join(state, "pki")
	ca, err := pki.LoadCA(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	old, err := ca.Issue(&key.PublicKey, pki.Identity{Kind: pki.Node, Name: "srv1", IPs: []net.IP{net.ParseIP("127.0.0.1")}, TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteKey(pkiDir, pki.NodeKeyFile, key, true); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteCert(pkiDir, pki.NodeCertFile, true, old); err != nil {
		t.Fatal(err)
	}

	port := func() string { _, p, _ := net.SplitHostPort(freeAddr(t)); return p }
	apiPort := port()
	args := []string{"-state", state, "-name", "srv1", "-addr", "127.0.0.1",
		"-peer-port", port(), "-client-port", port(), "-api-port", apiPort}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, args, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("noded server: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("noded server did not stop within 30 s of its context ending")
		}
	}()

	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(state, "pki", pki.CACertFile))
	if err != nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("cluster CA: %v", err)
	}
	admin, err := tls.LoadX509KeyPair(filepath.Join(state, "admin-admin", adminCertFile), filepath.Join(state, "admin-admin", adminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	url := "https://127.0.0.1:" + apiPort
	c, err := api.NewClient(api.ClientConfig{Server: url, CA: roots, Certificate: &admin, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	var st api.ClusterStatus
	deadline := time.Now().Add(40 * time.Second)
	for {
		st, err = c.ClusterStatus(ctx)
		if err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("noded server stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster API never answered: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(st.Members) != 1 || !strings.Contains(st.Members[0].Name, "srv1") {
		t.Errorf("cluster status = %+v, want one member srv1", st)
	}

	for {
		conn, err := tls.Dial("tcp", "127.0.0.1:"+apiPort, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{admin}})
		if err != nil {
			t.Fatal(err)
		}
		served := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if served.NotAfter.After(old.NotAfter.Add(time.Hour)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster API still serves the certificate that expires %v", served.NotAfter)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, err := nodecert.Read(pkiDir); err != nil || st.State != nodecert.Accepted || !st.Expires.After(old.NotAfter) {
		t.Errorf("node certificate status: %+v, %v; want accepted with the renewed certificate", st, err)
	}

	anon, err := api.NewClient(api.ClientConfig{Server: url, CA: roots, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.ClusterStatus(ctx); err == nil {
		t.Error("a client without a certificate read the cluster status")
	}
}

func TestServerFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-state", "s"},
		{"-state", "s", "-name", "srv1", "-addr", "not-an-ip"},
		{"-state", "s", "-name", "srv1", "-addr", "10.0.0.1", "-api-port", "0"},
		{"-state", "s", "-name", "srv1", "-addr", "10.0.0.1", "extra"},
	} {
		if _, err := parseServerFlags(args, io.Discard); err == nil {
			t.Errorf("parseServerFlags(%q) accepted it", args)
		}
	}
	state := filepath.Join(t.TempDir(), "none")
	err := runServer(context.Background(), []string{"-state", state, "-name", "srv1", "-addr", "127.0.0.1"}, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "noded init") {
		t.Errorf("server without init: %v, want advice to run noded init", err)
	}
}
