// Package pki is the cluster's certificate authority: it creates the CA,
// issues the certificates that node, etcd member and administrator present
// to each other, and verifies them.
//
// The CA has two levels. The root signs node and admin certificates (the
// cluster API trusts the root). An intermediate, the etcd CA, signs etcd
// member certificates only, and etcd trusts only that intermediate: every
// terminal holds a root-signed node certificate, and none of them must be able
// to talk to etcd directly or pose as a member.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// Kind says what a certificate is for; it decides the signer, the key usage,
// the organisation and the default lifetime.
type Kind int

const (
	// Node is a box of the cluster (server or terminal): it serves and calls
	// the cluster API. Issued after attestation, renewed by re-attestation.
	Node Kind = iota + 1
	// Peer is an etcd member: peer traffic, etcd's client port, and noded's
	// own etcd client on a server node.
	Peer
	// Admin is a person using occtl or the web console: client only.
	Admin
)

// Organisations mark the kind inside the certificate, so that a verifier
// can tell an administrator from a node without a lookup.
const (
	OrgNodes  = "onecloud:nodes"
	OrgEtcd   = "onecloud:etcd"
	OrgAdmins = "onecloud:admins"
)

// Lifetimes. Node certificates are short so that a box that stops attesting
// (stolen, tampered) drops out within a day. Peer certificates live longer
// because an expired one stops the store itself, not one box; they are renewed
// with the node certificate all the same. Admin certificates belong to people
// and are renewed by hand.
const (
	DefaultNodeTTL  = 24 * time.Hour
	DefaultPeerTTL  = 30 * 24 * time.Hour
	DefaultAdminTTL = 365 * 24 * time.Hour
	caTTL           = 10 * 365 * 24 * time.Hour
	// backdate tolerates clocks a few minutes apart between the CA holder
	// and the nodes that check its certificates.
	backdate = 5 * time.Minute
)

func (k Kind) String() string {
	switch k {
	case Node:
		return "node"
	case Peer:
		return "etcd peer"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

func (k Kind) org() string {
	switch k {
	case Node:
		return OrgNodes
	case Peer:
		return OrgEtcd
	case Admin:
		return OrgAdmins
	}
	return ""
}

func (k Kind) usages() []x509.ExtKeyUsage {
	if k == Admin {
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
}

func (k Kind) defaultTTL() time.Duration {
	switch k {
	case Peer:
		return DefaultPeerTTL
	case Admin:
		return DefaultAdminTTL
	}
	return DefaultNodeTTL
}

// Identity is what a certificate asserts. It comes from the caller (the
// verifier after attestation, or the technician), never from a CSR's subject.
type Identity struct {
	Kind Kind
	// Name is the node name (a DNS label or name) or the admin's name; it
	// becomes the common name, and for nodes and peers a DNS SAN.
	Name string
	// IPs are the addresses the node is reached at (node and peer only).
	IPs []net.IP
	// TTL overrides the kind's default lifetime.
	TTL time.Duration
}

// CA holds the cluster CA's certificates and keys.
type CA struct {
	Root *x509.Certificate
	Etcd *x509.Certificate // intermediate that signs Peer certificates
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time

	rootKey *ecdsa.PrivateKey
	etcdKey *ecdsa.PrivateKey
}

// NewKey makes the key type the cluster uses everywhere: ECDSA P-256.
func NewKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	return k, nil
}

// NewCA creates a self-signed root and the etcd intermediate, valid for ten
// years from now.
func NewCA(now time.Time) (*CA, error) {
	rootKey, err := NewKey()
	if err != nil {
		return nil, err
	}
	etcdKey, err := NewKey()
	if err != nil {
		return nil, err
	}
	rootTmpl := caTemplate("onecloud cluster CA", now)
	rootTmpl.MaxPathLen = 1
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, fmt.Errorf("self-sign cluster CA: %w", err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, fmt.Errorf("parse new cluster CA: %w", err)
	}
	etcdTmpl := caTemplate("onecloud etcd CA", now)
	etcdTmpl.MaxPathLenZero = true
	etcdDER, err := x509.CreateCertificate(rand.Reader, etcdTmpl, root, &etcdKey.PublicKey, rootKey)
	if err != nil {
		return nil, fmt.Errorf("sign etcd CA: %w", err)
	}
	etcd, err := x509.ParseCertificate(etcdDER)
	if err != nil {
		return nil, fmt.Errorf("parse new etcd CA: %w", err)
	}
	return &CA{Root: root, Etcd: etcd, rootKey: rootKey, etcdKey: etcdKey}, nil
}

func caTemplate(cn string, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"onecloud"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caTTL),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// mustSerial returns a random positive 127-bit serial (RFC 5280 allows up to
// 20 octets). crypto/rand does not fail on Linux, hence no error path.
func mustSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return n.Add(n, big.NewInt(1))
}

func (ca *CA) now() time.Time {
	if ca.Now != nil {
		return ca.Now()
	}
	return time.Now()
}

// Chain returns the certificates a holder of a kind's certificate presents
// after its own: the etcd intermediate for peers, nothing for the rest.
func (ca *CA) Chain(k Kind) []*x509.Certificate {
	if k == Peer {
		return []*x509.Certificate{ca.Etcd}
	}
	return nil
}

// Roots returns the trust anchor that certificates of kind k are verified
// against: the etcd intermediate for peers, the root otherwise.
func (ca *CA) Roots(k Kind) *x509.CertPool {
	p := x509.NewCertPool()
	if k == Peer {
		p.AddCert(ca.Etcd)
	} else {
		p.AddCert(ca.Root)
	}
	return p
}

// Issue signs a certificate for pub asserting id.
func (ca *CA) Issue(pub crypto.PublicKey, id Identity) (*x509.Certificate, error) {
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	if err := id.check(); err != nil {
		return nil, err
	}
	ttl := id.TTL
	if ttl == 0 {
		ttl = id.Kind.defaultTTL()
	}
	parent, key := ca.Root, ca.rootKey
	if id.Kind == Peer {
		parent, key = ca.Etcd, ca.etcdKey
	}
	if key == nil {
		return nil, errors.New("this CA was loaded without its private keys: issue certificates on the node that holds the cluster CA")
	}
	now := ca.now()
	notAfter := now.Add(ttl)
	if notAfter.After(parent.NotAfter) {
		// A certificate cannot outlive its issuer in any useful way.
		notAfter = parent.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{CommonName: id.Name, Organization: []string{id.Kind.org()}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           id.Kind.usages(),
		BasicConstraintsValid: true,
	}
	if id.Kind != Admin {
		tmpl.DNSNames = []string{id.Name}
		tmpl.IPAddresses = append(tmpl.IPAddresses, id.IPs...)
	}
	if id.Kind == Peer {
		// noded reaches its own etcd member over loopback.
		tmpl.DNSNames = append(tmpl.DNSNames, "localhost")
		tmpl.IPAddresses = appendIfMissing(tmpl.IPAddresses, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("sign %s certificate for %q: %w", id.Kind, id.Name, err)
	}
	return x509.ParseCertificate(der)
}

// IssueCSR signs a certificate for the key in a certificate request (DER or
// PEM), so that the requester keeps its private key. The request's subject
// and SANs are ignored: what a certificate asserts is decided by whoever
// approved the requester, passed in id.
func (ca *CA) IssueCSR(csr []byte, id Identity) (*x509.Certificate, error) {
	if b, _ := pem.Decode(csr); b != nil {
		if b.Type != "CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("expected a PEM CERTIFICATE REQUEST, got %q", b.Type)
		}
		csr = b.Bytes
	}
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		return nil, fmt.Errorf("certificate request is malformed: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request is not signed by its own key (the requester does not hold it): %w", err)
	}
	return ca.Issue(req.PublicKey, id)
}

// NewCSR makes a certificate request for key, naming name; the node sends it
// and keeps key.
func NewCSR(key crypto.Signer, name string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

func (id Identity) check() error {
	switch id.Kind {
	case Node, Peer:
		if !validHostname(id.Name) {
			return fmt.Errorf("node name %q is not a valid host name: use lower-case letters, digits, '-' and '.', labels of at most 63 characters", id.Name)
		}
	case Admin:
		if !validAdminName(id.Name) {
			return fmt.Errorf("admin name %q is not valid: use 1 to 64 letters, digits, '.', '_', '-' and '@'", id.Name)
		}
		if len(id.IPs) > 0 {
			return errors.New("admin certificates name a person, not addresses: leave IPs empty")
		}
	default:
		return fmt.Errorf("unknown certificate kind %d", int(id.Kind))
	}
	for _, ip := range id.IPs {
		if ip.To16() == nil {
			return fmt.Errorf("address %v for %q is not an IP address", ip, id.Name)
		}
	}
	if id.TTL < 0 {
		return fmt.Errorf("lifetime %v for %q is negative", id.TTL, id.Name)
	}
	return nil
}

func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ECDSA curve %s is not accepted: use P-256 or P-384", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		// TPM-resident keys are often RSA 2048.
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too short: use at least 2048", k.N.BitLen())
		}
	default:
		return fmt.Errorf("public key type %T is not accepted: use ECDSA P-256", pub)
	}
	return nil
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func validAdminName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-@", c)) {
			return false
		}
	}
	return true
}

func appendIfMissing(ips []net.IP, add ...net.IP) []net.IP {
next:
	for _, a := range add {
		for _, ip := range ips {
			if ip.Equal(a) {
				continue next
			}
		}
		ips = append(ips, a)
	}
	return ips
}

// CanIssue reports whether this CA holds its private keys (LoadCA, NewCA)
// rather than only its certificates (LoadCACerts).
func (ca *CA) CanIssue() bool { return ca.rootKey != nil && ca.etcdKey != nil }
