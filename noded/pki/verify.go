package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Verify checks that chain[0] is a valid certificate of kind k at time at:
// it chains to roots (chain[1:] are offered as intermediates), it is not a
// CA, it carries every key usage the kind needs, and its organisation is the
// kind's. Use (*CA).Roots for roots, or a pool made from ca.crt (etcd-ca.crt
// for peers) where the CA's keys are absent.
func Verify(roots *x509.CertPool, chain []*x509.Certificate, k Kind, at time.Time) error {
	if len(chain) == 0 || chain[0] == nil {
		return errors.New("no certificate presented")
	}
	leaf := chain[0]
	who := fmt.Sprintf("%s certificate %q", k, leaf.Subject.CommonName)
	if k.org() == "" {
		return fmt.Errorf("unknown certificate kind %d", int(k))
	}
	// Expiry first, with its own message: it is the common failure, and the
	// fix (renew) differs from a forged or foreign certificate.
	if at.After(leaf.NotAfter) {
		return fmt.Errorf("%s expired at %s: renew it (re-attest the node, or issue a new admin certificate)", who, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if at.Before(leaf.NotBefore) {
		return fmt.Errorf("%s is not valid before %s: check this machine's clock", who, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if leaf.IsCA {
		return fmt.Errorf("%s is a CA certificate, not a %s certificate", who, k)
	}
	if !slices.Contains(leaf.Subject.Organization, k.org()) {
		return fmt.Errorf("%s has organisation %q, want %q: it was issued for another purpose", who, leaf.Subject.Organization, k.org())
	}
	for _, u := range k.usages() {
		if !slices.Contains(leaf.ExtKeyUsage, u) {
			return fmt.Errorf("%s lacks the %s usage", who, usageName(u))
		}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     k.usages(),
	}); err != nil {
		return fmt.Errorf("%s is not from this cluster's CA: %w", who, err)
	}
	return nil
}

// Verify checks a certificate of kind k against this CA at the CA's clock.
func (ca *CA) Verify(chain []*x509.Certificate, k Kind) error {
	return Verify(ca.Roots(k), chain, k, ca.now())
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "TLS server"
	case x509.ExtKeyUsageClientAuth:
		return "TLS client"
	}
	return fmt.Sprintf("extended key usage %d", int(u))
}
