package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

func TestResultErr(t *testing.T) {
	if err := (Result{Accepted: true}).Err(); err != nil {
		t.Fatalf("accepted result gives %v", err)
	}
	err := Result{Reason: ReasonEKChanged, Text: "swapped"}.Err()
	var r *Refusal
	if !errors.As(err, &r) || r.Reason != ReasonEKChanged || r.Text != "swapped" {
		t.Fatalf("Err() = %#v", err)
	}
	if got := r.Result(); got.Accepted || got.Reason != ReasonEKChanged {
		t.Fatalf("Result() = %+v", got)
	}
}

// PCR values keyed by index survive JSON (keys travel as strings).
func TestProofJSON(t *testing.T) {
	in := Proof{SessionID: "s", Secret: []byte{1}, PCRs: []PCRBank{{Bank: "sha256", Values: map[int][]byte{0: {0}, 13: {1, 2}}}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Proof
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip %+v -> %s -> %+v", in, b, out)
	}
}

func TestEKHash(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := tpm2.ECCEKTemplate
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: k.X.FillBytes(make([]byte, 32))},
		Y: tpm2.TPM2BECCParameter{Buffer: k.Y.FillBytes(make([]byte, 32))},
	})
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	got, err := EKHash(tpm2.Marshal(pub))
	if err != nil {
		t.Fatal(err)
	}
	if got != hex.EncodeToString(sum[:]) {
		t.Fatalf("EKHash = %s, want %x", got, sum)
	}
	// A point off the curve is not a key.
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
		Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
	})
	if _, err := EKHash(tpm2.Marshal(pub)); err == nil {
		t.Fatal("EKHash of an invalid point succeeded")
	}
	if _, err := EKHash([]byte{1, 2, 3}); err == nil {
		t.Fatal("EKHash of garbage succeeded")
	}
}
