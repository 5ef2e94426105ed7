package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// File names inside a state folder's pki/ subfolder.
const (
	CACertFile     = "ca.crt"      // cluster root: what every party trusts
	CAKeyFile      = "ca.key"      // only on the node that holds the CA
	EtcdCACertFile = "etcd-ca.crt" // what etcd trusts
	EtcdCAKeyFile  = "etcd-ca.key"
	NodeCertFile   = "node.crt" // this node's cluster API identity
	NodeKeyFile    = "node.key"
	EtcdCertFile   = "etcd.crt" // this node's etcd member identity (leaf + etcd CA)
	EtcdKeyFile    = "etcd.key"
)

// ErrCAExists is returned by CreateCA when the folder already holds a CA.
var ErrCAExists = errors.New("a cluster CA already exists")

// Dir is the pki/ subfolder of a node's state folder.
func Dir(state string) string { return filepath.Join(state, "pki") }

// CreateCA makes a new cluster CA valid from now and writes it into dir
// (created 0700), keys 0600. It refuses to replace an existing CA: that would
// orphan every certificate of the cluster.
func CreateCA(dir string, now time.Time) (*CA, error) {
	if err := checkNoCA(dir); err != nil {
		return nil, err
	}
	ca, err := NewCA(now)
	if err != nil {
		return nil, err
	}
	if err := SaveCA(dir, ca); err != nil {
		return nil, err
	}
	return ca, nil
}

// SaveCA writes a CA made by NewCA into dir, refusing, like CreateCA, to
// replace an existing one.
func SaveCA(dir string, ca *CA) error {
	if ca.rootKey == nil || ca.etcdKey == nil {
		return errors.New("save CA: this CA has no private keys to save")
	}
	if err := checkNoCA(dir); err != nil {
		return err
	}
	// The root key goes first and exclusively: of two concurrent inits, one
	// loses here before writing anything else.
	if err := WriteKey(dir, CAKeyFile, ca.rootKey, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return existsError(dir, CAKeyFile)
		}
		return err
	}
	if err := WriteCert(dir, CACertFile, false, ca.Root); err != nil {
		return err
	}
	if err := WriteKey(dir, EtcdCAKeyFile, ca.etcdKey, false); err != nil {
		return err
	}
	return WriteCert(dir, EtcdCACertFile, false, ca.Etcd)
}

func checkNoCA(dir string) error {
	for _, name := range []string{CAKeyFile, CACertFile, EtcdCAKeyFile, EtcdCACertFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return existsError(dir, name)
		}
	}
	return nil
}

func existsError(dir, name string) error {
	return fmt.Errorf("%w in %s (found %s): refusing to overwrite it; remove it only if you mean to discard the cluster's identity and every certificate it issued", ErrCAExists, dir, name)
}

// LoadCA reads the CA with its private keys, to issue certificates.
func LoadCA(dir string) (*CA, error) {
	ca, err := LoadCACerts(dir)
	if err != nil {
		return nil, err
	}
	if ca.rootKey, err = readMatchingKey(filepath.Join(dir, CAKeyFile), ca.Root); err != nil {
		return nil, err
	}
	if ca.etcdKey, err = readMatchingKey(filepath.Join(dir, EtcdCAKeyFile), ca.Etcd); err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadCACerts reads only the CA certificates, for a node that verifies but
// does not issue. Issue on the result fails.
func LoadCACerts(dir string) (*CA, error) {
	root, err := readOneCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	etcd, err := readOneCert(filepath.Join(dir, EtcdCACertFile))
	if err != nil {
		return nil, err
	}
	if err := etcd.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("%s is not signed by %s: the pki folder %s mixes two clusters: %w", EtcdCACertFile, CACertFile, dir, err)
	}
	return &CA{Root: root, Etcd: etcd}, nil
}

func readOneCert(path string) (*x509.Certificate, error) {
	certs, err := ReadCerts(path)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

func readMatchingKey(path string, cert *x509.Certificate) (*ecdsa.PrivateKey, error) {
	k, err := ReadKey(path)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || !ek.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("key %s does not belong to certificate %q: restore the matching pair from backup", path, cert.Subject.CommonName)
	}
	return ek, nil
}

// ReadCerts reads a PEM file of one or more certificates, leaf first.
func ReadCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	certs, err := ParseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// ParseCerts decodes PEM certificates, leaf first.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("malformed certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE found")
	}
	return certs, nil
}

// ReadKey reads a PEM private key (PKCS#8, or SEC 1 "EC PRIVATE KEY").
func ReadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%s holds no PEM private key", path)
	}
	var k any
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("%s holds a PEM %q, not a private key", path, b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: malformed private key: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: key type %T cannot sign", path, k)
	}
	return s, nil
}

// EncodeCerts returns certificates as PEM, in order.
func EncodeCerts(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// EncodeKey returns a private key as PKCS#8 PEM.
func EncodeKey(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteCert writes certificates (leaf first) as dir/name, mode 0644. With
// replace, an existing file is replaced atomically (renewal: etcd rereads its
// files at every handshake and must never see half a file); without it, an
// existing file is an error wrapping fs.ErrExist.
func WriteCert(dir, name string, replace bool, certs ...*x509.Certificate) error {
	return writeFile(dir, name, EncodeCerts(certs...), 0o644, replace)
}

// WriteKey writes a private key as dir/name, mode 0600; replace as in
// WriteCert.
func WriteKey(dir, name string, key crypto.PrivateKey, replace bool) error {
	data, err := EncodeKey(key)
	if err != nil {
		return err
	}
	return writeFile(dir, name, data, 0o600, replace)
}

// writeFile writes through os.Root so that name cannot escape dir, via a
// temporary file so that readers see the old or the new content, never a mix.
func writeFile(dir, name string, data []byte, perm os.FileMode, replace bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer root.Close()
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := "." + name + ".tmp-" + hex.EncodeToString(rnd[:])
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		if replace {
			werr = root.Rename(tmp, name)
		} else {
			// A hard link fails when name exists, atomically.
			werr = root.Link(tmp, name)
		}
	}
	_ = root.Remove(tmp) // gone already after a rename
	if werr != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), werr)
	}
	if d, err := root.Open("."); err == nil {
		_ = d.Sync() // make the new name durable
		_ = d.Close()
	}
	return nil
}
