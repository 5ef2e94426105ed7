package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/google/go-tpm/tpm2"

	"github.com/onecloud-edu/onecloud/noded/api"
)

// parsePublic reads a TPMT_PUBLIC and insists that it is exactly the bytes
// given: the AK's name is a hash of them, and trailing bytes would let two
// different byte strings stand for one key.
func parsePublic(b []byte) (*tpm2.TPMTPublic, error) {
	if len(b) == 0 || len(b) > 4096 {
		return nil, fmt.Errorf("%d bytes", len(b))
	}
	p, err := tpm2.Unmarshal[tpm2.TPMTPublic](b)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tpm2.Marshal(*p), b) {
		return nil, errors.New("not a canonical TPMT_PUBLIC")
	}
	return p, nil
}

// akName is the TPM Name of the AK: its name algorithm (SHA-256, checked by
// checkAK) followed by the hash of its public area.
func akName(public []byte) []byte {
	sum := sha256.Sum256(public)
	return append(binary.BigEndian.AppendUint16(nil, uint16(tpm2.TPMAlgSHA256)), sum[:]...)
}

// checkAK accepts a restricted signing key that cannot leave its TPM, with
// a SHA-256 scheme, and returns its public key.
func checkAK(p *tpm2.TPMTPublic) (crypto.PublicKey, error) {
	a := p.ObjectAttributes
	switch {
	case p.NameAlg != tpm2.TPMAlgSHA256:
		return nil, fmt.Errorf("the AK's name algorithm is %#x, not SHA-256", uint16(p.NameAlg))
	case !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin:
		return nil, errors.New("the AK may leave its TPM or was imported (fixedTPM, fixedParent, sensitiveDataOrigin must be set)")
	case !a.Restricted || !a.SignEncrypt || a.Decrypt:
		return nil, errors.New("the AK is not a restricted signing key: it could sign data that only looks like a quote")
	}
	key, err := tpm2.Pub(*p)
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		parms, _ := p.Parameters.ECCDetail()
		if parms.CurveID != tpm2.TPMECCNistP256 {
			return nil, fmt.Errorf("the AK's curve %#x is not P-256", uint16(parms.CurveID))
		}
		if parms.Scheme.Scheme != tpm2.TPMAlgECDSA {
			return nil, fmt.Errorf("the AK's scheme %#x is not ECDSA", uint16(parms.Scheme.Scheme))
		}
		if d, err := parms.Scheme.Details.ECDSA(); err != nil || d.HashAlg != tpm2.TPMAlgSHA256 {
			return nil, errors.New("the AK does not sign with SHA-256")
		}
		if _, err := k.ECDH(); err != nil {
			return nil, fmt.Errorf("the AK's point: %w", err)
		}
	case *rsa.PublicKey:
		parms, _ := p.Parameters.RSADetail()
		if k.N.BitLen() < 2048 || k.E != 65537 {
			return nil, fmt.Errorf("the AK is a %d-bit RSA key with exponent %d; want 2048 bits or more and 65537", k.N.BitLen(), k.E)
		}
		if parms.Scheme.Scheme != tpm2.TPMAlgRSASSA {
			return nil, fmt.Errorf("the AK's scheme %#x is not RSASSA", uint16(parms.Scheme.Scheme))
		}
		if d, err := parms.Scheme.Details.RSASSA(); err != nil || d.HashAlg != tpm2.TPMAlgSHA256 {
			return nil, errors.New("the AK does not sign with SHA-256")
		}
	default:
		return nil, fmt.Errorf("the AK is a %T", key)
	}
	return key, nil
}

// verifySignature checks a TPMT_SIGNATURE over quote with the AK.
func verifySignature(ak crypto.PublicKey, quote, sig []byte) error {
	s, err := tpm2.Unmarshal[tpm2.TPMTSignature](sig)
	if err != nil {
		return fmt.Errorf("unreadable signature: %w", err)
	}
	digest := sha256.Sum256(quote)
	switch k := ak.(type) {
	case *ecdsa.PublicKey:
		e, err := s.Signature.ECDSA()
		if s.SigAlg != tpm2.TPMAlgECDSA || err != nil || e.Hash != tpm2.TPMAlgSHA256 {
			return errors.New("not an ECDSA SHA-256 signature")
		}
		r, ss := new(big.Int).SetBytes(e.SignatureR.Buffer), new(big.Int).SetBytes(e.SignatureS.Buffer)
		if !ecdsa.Verify(k, digest[:], r, ss) {
			return errors.New("bad ECDSA signature")
		}
	case *rsa.PublicKey:
		r, err := s.Signature.RSASSA()
		if s.SigAlg != tpm2.TPMAlgRSASSA || err != nil || r.Hash != tpm2.TPMAlgSHA256 {
			return errors.New("not an RSASSA SHA-256 signature")
		}
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], r.Sig.Buffer); err != nil {
			return err
		}
	default:
		return fmt.Errorf("AK of type %T", ak)
	}
	return nil
}

// checkPCRs checks that the quote covers exactly the SHA-256 bank of want
// and that the reported values hash to its digest; it returns the values.
func checkPCRs(info *tpm2.TPMSQuoteInfo, want []int, banks []api.PCRBank) (map[int][]byte, error) {
	if len(info.PCRSelect.PCRSelections) != 1 || info.PCRSelect.PCRSelections[0].Hash != tpm2.TPMAlgSHA256 {
		return nil, errors.New("the quote does not cover exactly the SHA-256 bank")
	}
	if got := selected(info.PCRSelect.PCRSelections[0].PCRSelect); !slices.Equal(got, want) {
		return nil, fmt.Errorf("the quote covers PCRs %v, not %v", got, want)
	}
	var values map[int][]byte
	for _, b := range banks {
		if b.Bank == "sha256" {
			values = b.Values
		}
	}
	h := sha256.New()
	out := make(map[int][]byte, len(want))
	for _, p := range want {
		v, ok := values[p]
		if !ok || len(v) != sha256.Size {
			return nil, fmt.Errorf("the SHA-256 value of PCR %d is missing", p)
		}
		h.Write(v) // in ascending PCR order, as the TPM hashes them
		out[p] = v
	}
	if !bytes.Equal(h.Sum(nil), info.PCRDigest.Buffer) {
		return nil, errors.New("the reported PCR values do not match the quoted PCR digest: they were altered, or changed between quote and read")
	}
	return out, nil
}

// selected lists the PCRs of a selection bitmap, ascending.
func selected(bitmap []byte) []int {
	var out []int
	for i, b := range bitmap {
		for bit := range 8 {
			if b&(1<<bit) != 0 {
				out = append(out, i*8+bit)
			}
		}
	}
	return out
}
