package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A vendor bundle holds roots and intermediates: the self-signed ones are
// roots, and an EK certificate from the intermediate chains through both.
func TestLoadEKCAs(t *testing.T) {
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ekKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := func(n int64, name string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	mustCert := func(tmpl, parent *x509.Certificate, pub, priv any) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	root := mustCert(ca(1, "vendor root"), ca(1, "vendor root"), &rootKey.PublicKey, rootKey)
	inter := mustCert(ca(2, "vendor EK CA"), root, &interKey.PublicKey, rootKey)
	ek := mustCert(&x509.Certificate{SerialNumber: big.NewInt(3), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)},
		inter, &ekKey.PublicKey, interKey)

	dir := t.TempDir()
	bundle := filepath.Join(dir, "vendors.pem")
	var pemBytes []byte
	for _, c := range []*x509.Certificate{inter, root} { // any order
		pemBytes = append(pemBytes, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(bundle, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	roots, inters, err := loadEKCAs(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ek.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("an EK certificate from the vendor's intermediate does not verify with the bundle: %v", err)
	}
	// The intermediate is not a root: without it as an intermediate,
	// nothing chains.
	if _, err := ek.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		t.Error("the intermediate was taken as a root")
	}

	if r, i, err := loadEKCAs(""); r != nil || i != nil || err != nil {
		t.Errorf("no -ek-ca: %v %v %v, want nothing trusted and no error", r, i, err)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.pem"), garbage} {
		if _, _, err := loadEKCAs(path); err == nil || !strings.Contains(err.Error(), "-ek-ca") {
			t.Errorf("loadEKCAs(%s): %v, want an error naming -ek-ca", path, err)
		}
	}
}
