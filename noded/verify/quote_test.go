package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/onecloud-edu/onecloud/noded/api"
)

func eccAK(t testing.TB, attrs tpm2.TPMAObject, curve tpm2.TPMECCCurve, hash tpm2.TPMAlgID) (tpm2.TPMTPublic, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return tpm2.TPMTPublic{
		Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: hash})},
			CurveID: curve,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: k.X.FillBytes(make([]byte, 32))},
			Y: tpm2.TPM2BECCParameter{Buffer: k.Y.FillBytes(make([]byte, 32))},
		}),
	}, k
}

func rsaAK(t testing.TB, bits int) (tpm2.TPMTPublic, *rsa.PrivateKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return tpm2.TPMTPublic{
		Type: tpm2.TPMAlgRSA, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: akAttrs,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgRSASSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256})},
			KeyBits: tpm2.TPMKeyBits(bits),
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: k.N.Bytes()}),
	}, k
}

var akAttrs = tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, Restricted: true, SignEncrypt: true}

func TestCheckAK(t *testing.T) {
	with := func(f func(a *tpm2.TPMAObject)) tpm2.TPMAObject {
		a := akAttrs
		f(&a)
		return a
	}
	good, _ := eccAK(t, akAttrs, tpm2.TPMECCNistP256, tpm2.TPMAlgSHA256)
	goodRSA, _ := rsaAK(t, 2048)
	shortRSA, _ := rsaAK(t, 1024)
	exportable, _ := eccAK(t, with(func(a *tpm2.TPMAObject) { a.FixedTPM = false }), tpm2.TPMECCNistP256, tpm2.TPMAlgSHA256)
	unrestricted, _ := eccAK(t, with(func(a *tpm2.TPMAObject) { a.Restricted = false }), tpm2.TPMECCNistP256, tpm2.TPMAlgSHA256)
	decrypting, _ := eccAK(t, with(func(a *tpm2.TPMAObject) { a.Decrypt = true }), tpm2.TPMECCNistP256, tpm2.TPMAlgSHA256)
	imported, _ := eccAK(t, with(func(a *tpm2.TPMAObject) { a.SensitiveDataOrigin = false }), tpm2.TPMECCNistP256, tpm2.TPMAlgSHA256)
	sha1, _ := eccAK(t, akAttrs, tpm2.TPMECCNistP256, tpm2.TPMAlgSHA1)
	p384, _ := eccAK(t, akAttrs, tpm2.TPMECCNistP384, tpm2.TPMAlgSHA256)
	offCurve, _ := eccAK(t, akAttrs, tpm2.TPMECCNistP256, tpm2.TPMAlgSHA256)
	pt, _ := offCurve.Unique.ECC()
	pt.Y.Buffer[31] ^= 1
	offCurve.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, pt)
	for _, tc := range []struct {
		name string
		pub  tpm2.TPMTPublic
		want string // "" accepts
	}{
		{"ECC P-256 restricted signing", good, ""},
		{"RSA 2048 restricted signing", goodRSA, ""},
		{"RSA 1024", shortRSA, "1024-bit"},
		{"not fixedTPM", exportable, "may leave its TPM"},
		{"not restricted", unrestricted, "not a restricted signing key"},
		{"decrypts too", decrypting, "not a restricted signing key"},
		{"imported", imported, "imported"},
		{"SHA-1 scheme", sha1, "SHA-256"},
		{"P-384", p384, "not P-256"},
		{"point off the curve", offCurve, "point"},
		{"EK template", tpm2.RSAEKTemplate, "not a restricted signing key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkAK(&tc.pub)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	quote := []byte("a TPMS_ATTEST")
	digest := sha256.Sum256(quote)
	ecPub, ecKey := eccAK(t, akAttrs, tpm2.TPMECCNistP256, tpm2.TPMAlgSHA256)
	rsaPub, rsaKey := rsaAK(t, 2048)
	ecAK, _ := checkAK(&ecPub)
	rsAK, _ := checkAK(&rsaPub)

	r, s, err := ecdsa.Sign(rand.Reader, ecKey, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	ecSig := tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
		Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()}})})
	rs, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	rsaSig := tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgRSASSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA, &tpm2.TPMSSignatureRSA{
		Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: rs}})})
	for _, tc := range []struct {
		name  string
		ak    crypto.PublicKey
		quote []byte
		sig   []byte
		ok    bool
	}{
		{"ECDSA", ecAK, quote, ecSig, true},
		{"RSASSA", rsAK, quote, rsaSig, true},
		{"ECDSA, other data", ecAK, []byte("another"), ecSig, false},
		{"RSASSA, other data", rsAK, []byte("another"), rsaSig, false},
		{"RSA signature for the ECC AK", ecAK, quote, rsaSig, false},
		{"garbage", ecAK, quote, []byte{1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifySignature(tc.ak, tc.quote, tc.sig)
			if (err == nil) != tc.ok {
				t.Fatalf("verifySignature = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestCheckPCRs(t *testing.T) {
	want := []int{0, 13}
	v0, v13 := make([]byte, 32), sha256.Sum256([]byte("x"))
	d := sha256.Sum256(append(append([]byte{}, v0...), v13[:]...))
	sel := func(h tpm2.TPMAlgID, pcrs ...uint) tpm2.TPMLPCRSelection {
		return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: h, PCRSelect: tpm2.PCClientCompatible.PCRs(pcrs...)}}}
	}
	good := &tpm2.TPMSQuoteInfo{PCRSelect: sel(tpm2.TPMAlgSHA256, 0, 13), PCRDigest: tpm2.TPM2BDigest{Buffer: d[:]}}
	banks := []api.PCRBank{{Bank: "sha256", Values: map[int][]byte{0: v0, 13: v13[:]}}}
	for _, tc := range []struct {
		name  string
		info  *tpm2.TPMSQuoteInfo
		banks []api.PCRBank
		want  string
	}{
		{"matching", good, banks, ""},
		{"SHA-1 bank quoted", &tpm2.TPMSQuoteInfo{PCRSelect: sel(tpm2.TPMAlgSHA1, 0, 13), PCRDigest: good.PCRDigest}, banks, "SHA-256 bank"},
		{"fewer PCRs quoted", &tpm2.TPMSQuoteInfo{PCRSelect: sel(tpm2.TPMAlgSHA256, 0), PCRDigest: good.PCRDigest}, banks, "covers PCRs [0]"},
		{"value missing", good, []api.PCRBank{{Bank: "sha256", Values: map[int][]byte{0: v0}}}, "PCR 13 is missing"},
		{"value altered", good, []api.PCRBank{{Bank: "sha256", Values: map[int][]byte{0: v13[:], 13: v13[:]}}}, "do not match"},
		{"no bank", good, nil, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkPCRs(tc.info, want, tc.banks)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParsePublicRejectsTrailingBytes(t *testing.T) {
	pub, _ := eccAK(t, akAttrs, tpm2.TPMECCNistP256, tpm2.TPMAlgSHA256)
	b := tpm2.Marshal(pub)
	if _, err := parsePublic(b); err != nil {
		t.Fatal(err)
	}
	if _, err := parsePublic(append(b, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	if _, err := parsePublic(b[:len(b)-1]); err == nil {
		t.Fatal("truncated public area accepted")
	}
}
