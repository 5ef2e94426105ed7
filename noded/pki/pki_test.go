package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(t0)
	if err != nil {
		t.Fatal(err)
	}
	ca.Now = func() time.Time { return t0 }
	return ca
}

func issue(t *testing.T, ca *CA, id Identity) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue(&key.PublicKey, id)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", id, err)
	}
	return c, key
}

func TestCAShape(t *testing.T) {
	ca := newTestCA(t)
	if !ca.Root.IsCA || ca.Root.CheckSignatureFrom(ca.Root) != nil {
		t.Error("root is not a self-signed CA")
	}
	if got := ca.Root.NotAfter.Sub(t0); got < 10*365*24*time.Hour-time.Hour {
		t.Errorf("root lives %v, want 10 years", got)
	}
	if _, ok := ca.Root.PublicKey.(*ecdsa.PublicKey); !ok || ca.Root.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Error("root key is not ECDSA P-256")
	}
	if err := ca.Etcd.CheckSignatureFrom(ca.Root); err != nil || !ca.Etcd.IsCA || !ca.Etcd.MaxPathLenZero {
		t.Errorf("etcd CA is not a path-length-0 intermediate of the root: %v", err)
	}
}

func TestIssue(t *testing.T) {
	ca := newTestCA(t)
	ip := net.ParseIP("10.0.0.5")
	tests := []struct {
		id        Identity
		org       string
		ttl       time.Duration
		usages    []x509.ExtKeyUsage
		dns       []string
		ips       []string
		signer    *x509.Certificate
		wantNoIPs bool
	}{
		{Identity{Kind: Node, Name: "srv1", IPs: []net.IP{ip}}, OrgNodes, DefaultNodeTTL,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []string{"srv1"}, []string{"10.0.0.5"}, ca.Root, false},
		{Identity{Kind: Node, Name: "t-042", IPs: []net.IP{ip}, TTL: time.Hour}, OrgNodes, time.Hour,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []string{"t-042"}, []string{"10.0.0.5"}, ca.Root, false},
		{Identity{Kind: Peer, Name: "srv1", IPs: []net.IP{ip}}, OrgEtcd, DefaultPeerTTL,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []string{"srv1", "localhost"}, []string{"10.0.0.5", "127.0.0.1", "::1"}, ca.Etcd, false},
		{Identity{Kind: Admin, Name: "Li.Wei@bureau"}, OrgAdmins, DefaultAdminTTL,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil, ca.Root, true},
	}
	for _, tt := range tests {
		t.Run(tt.id.Kind.String()+"/"+tt.id.Name, func(t *testing.T) {
			c, _ := issue(t, ca, tt.id)
			if c.Subject.CommonName != tt.id.Name || !slices.Equal(c.Subject.Organization, []string{tt.org}) {
				t.Errorf("subject %v, want CN=%s O=%s", c.Subject, tt.id.Name, tt.org)
			}
			if got := c.NotAfter.Sub(t0); got != tt.ttl {
				t.Errorf("lifetime %v, want %v", got, tt.ttl)
			}
			if !c.NotBefore.Before(t0) {
				t.Error("NotBefore is not backdated for clock skew")
			}
			if !slices.Equal(c.ExtKeyUsage, tt.usages) || c.IsCA {
				t.Errorf("usages %v IsCA %v, want %v", c.ExtKeyUsage, c.IsCA, tt.usages)
			}
			if !slices.Equal(c.DNSNames, tt.dns) {
				t.Errorf("DNS SANs %v, want %v", c.DNSNames, tt.dns)
			}
			var ips []string
			for _, a := range c.IPAddresses {
				ips = append(ips, a.String())
			}
			if !slices.Equal(ips, tt.ips) {
				t.Errorf("IP SANs %v, want %v", ips, tt.ips)
			}
			if err := c.CheckSignatureFrom(tt.signer); err != nil {
				t.Errorf("not signed by %s: %v", tt.signer.Subject.CommonName, err)
			}
			if err := ca.Verify(append([]*x509.Certificate{c}, ca.Chain(tt.id.Kind)...), tt.id.Kind); err != nil {
				t.Errorf("fresh certificate does not verify: %v", err)
			}
		})
	}
}

func TestIssueRefuses(t *testing.T) {
	ca := newTestCA(t)
	good, _ := NewKey()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pub  any
		id   Identity
		want string
	}{
		{"empty name", &good.PublicKey, Identity{Kind: Node}, "not a valid host name"},
		{"upper case node", &good.PublicKey, Identity{Kind: Node, Name: "SRV1"}, "not a valid host name"},
		{"slash in node", &good.PublicKey, Identity{Kind: Peer, Name: "a/b"}, "not a valid host name"},
		{"leading dash", &good.PublicKey, Identity{Kind: Node, Name: "-a"}, "not a valid host name"},
		{"admin with space", &good.PublicKey, Identity{Kind: Admin, Name: "li wei"}, "admin name"},
		{"admin with IPs", &good.PublicKey, Identity{Kind: Admin, Name: "li", IPs: []net.IP{net.IPv4(1, 2, 3, 4)}}, "leave IPs empty"},
		{"no kind", &good.PublicKey, Identity{Name: "x"}, "unknown certificate kind"},
		{"negative TTL", &good.PublicKey, Identity{Kind: Node, Name: "x", TTL: -time.Hour}, "negative"},
		{"short RSA", &small.PublicKey, Identity{Kind: Node, Name: "x"}, "too short"},
		{"P-224", &p224.PublicKey, Identity{Kind: Node, Name: "x"}, "not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ca.Issue(tt.pub, tt.id)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Issue = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestIssueCapsAtIssuerExpiry(t *testing.T) {
	ca := newTestCA(t)
	ca.Now = func() time.Time { return ca.Root.NotAfter.Add(-time.Hour) }
	c, _ := issue(t, ca, Identity{Kind: Node, Name: "n"})
	if !c.NotAfter.Equal(ca.Root.NotAfter) {
		t.Errorf("NotAfter %v, want capped at the root's %v", c.NotAfter, ca.Root.NotAfter)
	}
}

func TestIssueCSR(t *testing.T) {
	ca := newTestCA(t)
	key, _ := NewKey()
	csr, err := NewCSR(key, "evil-claims-admin")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.IssueCSR(csr, Identity{Kind: Node, Name: "t-001", IPs: []net.IP{net.IPv4(10, 1, 2, 3)}})
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Error("certificate is not for the requester's key")
	}
	if c.Subject.CommonName != "t-001" {
		t.Errorf("CN %q: the CSR's subject must not be trusted", c.Subject.CommonName)
	}

	// A request whose signature does not match its key proves nothing.
	other, _ := NewKey()
	otherCSR, _ := NewCSR(other, "x")
	tampered := bytes.Clone(otherCSR)
	der := pemBody(t, tampered)
	der[len(der)-5] ^= 0xff
	if _, err := ca.IssueCSR(der, Identity{Kind: Node, Name: "x"}); err == nil {
		t.Error("tampered CSR accepted")
	}
	if _, err := ca.IssueCSR([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), Identity{Kind: Node, Name: "x"}); err == nil || !strings.Contains(err.Error(), "CERTIFICATE REQUEST") {
		t.Errorf("wrong PEM type: %v", err)
	}
	if _, err := ca.IssueCSR([]byte("garbage"), Identity{Kind: Node, Name: "x"}); err == nil {
		t.Error("garbage CSR accepted")
	}
}

func pemBody(t *testing.T, p []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}

func TestVerify(t *testing.T) {
	ca := newTestCA(t)
	otherCA := newTestCA(t)
	node, _ := issue(t, ca, Identity{Kind: Node, Name: "srv1"})
	peer, _ := issue(t, ca, Identity{Kind: Peer, Name: "srv1"})
	admin, _ := issue(t, ca, Identity{Kind: Admin, Name: "li"})
	foreign, _ := issue(t, otherCA, Identity{Kind: Node, Name: "srv1"})
	foreignAdmin, _ := issue(t, otherCA, Identity{Kind: Admin, Name: "li"})

	tests := []struct {
		name  string
		roots *x509.CertPool
		chain []*x509.Certificate
		kind  Kind
		at    time.Time
		want  string // "" means valid
	}{
		{"node", ca.Roots(Node), []*x509.Certificate{node}, Node, t0, ""},
		{"admin", ca.Roots(Admin), []*x509.Certificate{admin}, Admin, t0, ""},
		{"peer against etcd CA", ca.Roots(Peer), []*x509.Certificate{peer}, Peer, t0, ""},
		{"peer against root with chain", ca.Roots(Node), []*x509.Certificate{peer, ca.Etcd}, Peer, t0, ""},
		{"node expired", ca.Roots(Node), []*x509.Certificate{node}, Node, t0.Add(DefaultNodeTTL + time.Second), "expired"},
		{"node not yet valid", ca.Roots(Node), []*x509.Certificate{node}, Node, t0.Add(-time.Hour), "not valid before"},
		{"admin as node", ca.Roots(Node), []*x509.Certificate{admin}, Node, t0, "organisation"},
		{"node as admin", ca.Roots(Admin), []*x509.Certificate{node}, Admin, t0, "organisation"},
		{"node as peer", ca.Roots(Peer), []*x509.Certificate{node}, Peer, t0, "organisation"},
		{"root-signed cannot reach etcd", ca.Roots(Peer), []*x509.Certificate{admin}, Admin, t0, "not from this cluster's CA"},
		{"foreign CA", ca.Roots(Node), []*x509.Certificate{foreign}, Node, t0, "not from this cluster's CA"},
		{"foreign admin", ca.Roots(Admin), []*x509.Certificate{foreignAdmin}, Admin, t0, "not from this cluster's CA"},
		{"CA as leaf", ca.Roots(Node), []*x509.Certificate{ca.Etcd}, Node, t0, "CA certificate"},
		{"nothing", ca.Roots(Node), nil, Node, t0, "no certificate"},
		{"bad kind", ca.Roots(Node), []*x509.Certificate{node}, Kind(9), t0, "unknown certificate kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.roots, tt.chain, tt.kind, tt.at)
			if tt.want == "" && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Verify = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// TestMutualTLS runs real handshakes over an in-memory pipe: the node and
// admin certificates work for the cluster API, and only peer certificates
// get into a server that trusts the etcd CA.
func TestMutualTLS(t *testing.T) {
	ca, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair := func(id Identity) tls.Certificate {
		c, k := issue(t, ca, id)
		chain := [][]byte{c.Raw}
		for _, x := range ca.Chain(id.Kind) {
			chain = append(chain, x.Raw)
		}
		return tls.Certificate{Certificate: chain, PrivateKey: k}
	}
	server := pair(Identity{Kind: Peer, Name: "srv1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	tests := []struct {
		name    string
		trust   Kind // the server's client CA
		client  *tls.Certificate
		wantErr bool
	}{
		{"admin to API", Node, ptr(pair(Identity{Kind: Admin, Name: "li"})), false},
		{"node to API", Node, ptr(pair(Identity{Kind: Node, Name: "t-1"})), false},
		{"peer to etcd", Peer, ptr(pair(Identity{Kind: Peer, Name: "srv2"})), false},
		{"node to etcd", Peer, ptr(pair(Identity{Kind: Node, Name: "t-1"})), true},
		{"admin to etcd", Peer, ptr(pair(Identity{Kind: Admin, Name: "li"})), true},
		{"no certificate", Node, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			srv := tls.Server(a, &tls.Config{
				Certificates: []tls.Certificate{server},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    ca.Roots(tt.trust),
				MinVersion:   tls.VersionTLS13,
			})
			ccfg := &tls.Config{RootCAs: ca.Roots(Node), ServerName: "srv1", MinVersion: tls.VersionTLS13}
			if tt.client != nil {
				ccfg.Certificates = []tls.Certificate{*tt.client}
			}
			cli := tls.Client(b, ccfg)
			done := make(chan error, 1)
			go func() {
				err := srv.Handshake()
				a.Close() // unblock the client when the server refuses
				done <- err
			}()
			cerr := cli.Handshake()
			if cerr == nil {
				// TLS 1.3: the server judges the client's certificate after
				// the client thinks it is done; reading takes its verdict
				// (and on net.Pipe unblocks the server's alert).
				_, cerr = cli.Read(make([]byte, 1))
			}
			serr := <-done
			if got := serr != nil; got != tt.wantErr {
				t.Errorf("server handshake error %v, want error: %v (client: %v)", serr, tt.wantErr, cerr)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestCreateLoadCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ca, err := CreateCA(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{
		CAKeyFile: 0o600, EtcdCAKeyFile: 0o600, CACertFile: 0o644, EtcdCACertFile: 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&^want != 0 {
			t.Errorf("%s mode %v, want at most %v", name, fi.Mode().Perm(), want)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("pki dir mode %v, want 0700", fi.Mode().Perm())
	}
	before, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))

	if _, err := CreateCA(dir, t0); !errors.Is(err, ErrCAExists) {
		t.Fatalf("second CreateCA = %v, want ErrCAExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if !bytes.Equal(before, after) {
		t.Fatal("refused CreateCA changed the CA key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("pki dir holds %d entries, want the 4 CA files (no temporaries left)", len(entries))
	}

	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	loaded.Now = func() time.Time { return t0 }
	ca.Now = loaded.Now
	c, _ := issue(t, loaded, Identity{Kind: Peer, Name: "srv2"})
	if err := ca.Verify([]*x509.Certificate{c}, Peer); err != nil {
		t.Errorf("certificate from the reloaded CA does not verify against the original: %v", err)
	}

	certsOnly, err := LoadCACerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewKey()
	if _, err := certsOnly.Issue(&key.PublicKey, Identity{Kind: Node, Name: "x"}); err == nil {
		t.Error("a CA loaded without keys issued a certificate")
	}

	// A key that is not the certificate's is caught at load.
	if err := WriteKey(dir, EtcdCAKeyFile, key, true); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(dir); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("LoadCA with a swapped key = %v", err)
	}
}

func TestCreateCARefusesPartialCA(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CACertFile), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateCA(dir, t0); !errors.Is(err, ErrCAExists) {
		t.Fatalf("CreateCA over a lone ca.crt = %v, want ErrCAExists", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Error("refused CreateCA wrote a key")
	}
}

func TestWriteReplace(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	a, ka := issue(t, ca, Identity{Kind: Node, Name: "a"})
	b, _ := issue(t, ca, Identity{Kind: Node, Name: "b"})
	if err := WriteCert(dir, "n.crt", false, a); err != nil {
		t.Fatal(err)
	}
	if err := WriteCert(dir, "n.crt", false, b); !errors.Is(err, fs.ErrExist) {
		t.Errorf("exclusive write over an existing file = %v, want fs.ErrExist", err)
	}
	if err := WriteCert(dir, "n.crt", true, b, ca.Root); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCerts(filepath.Join(dir, "n.crt"))
	if err != nil || len(got) != 2 || got[0].Subject.CommonName != "b" {
		t.Fatalf("after replace: %v %v", got, err)
	}
	if err := WriteKey(dir, "n.key", ka, false); err != nil {
		t.Fatal(err)
	}
	k, err := ReadKey(filepath.Join(dir, "n.key"))
	if err != nil || !ka.PublicKey.Equal(k.Public()) {
		t.Fatalf("key round trip: %v", err)
	}
	if err := WriteCert(dir, "../escape.crt", true, a); err == nil {
		t.Error("a name escaping the folder was written")
	}
	if _, err := ReadKey(filepath.Join(dir, "n.crt")); err == nil {
		t.Error("a certificate was read as a key")
	}
}
