package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
)

var factory *attesttest.Factory

func TestMain(m *testing.M) { attesttest.Main(m, &factory) }

func TestBeginReadsEKAndCertificate(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		start    func(t *testing.T) *attesttest.Swtpm
		alg      Algorithm
		wantType tpm2.TPMAlgID
		wantCert bool
	}{
		{"manufactured RSA EK with certificate", func(t *testing.T) *attesttest.Swtpm { return factory.Manufactured(t, 0) }, AlgorithmAuto, tpm2.TPMAlgRSA, true},
		{"plain TPM, no certificate", func(t *testing.T) *attesttest.Swtpm { return factory.Plain(t) }, AlgorithmAuto, tpm2.TPMAlgRSA, false},
		{"ECC EK asked for, none in NV", func(t *testing.T) *attesttest.Swtpm { return factory.Manufactured(t, 0) }, AlgorithmECC, tpm2.TPMAlgECC, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw := tc.start(t)
			s, err := New(sw.Conn, Options{EKAlgorithm: tc.alg}).Begin(ctx, "oc-1", "S1")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			req := s.Request()
			if req.MachineID != "oc-1" || req.Serial != "S1" {
				t.Errorf("request names %q %q", req.MachineID, req.Serial)
			}
			ek, err := tpm2.Unmarshal[tpm2.TPMTPublic](req.EKPublic)
			if err != nil {
				t.Fatal(err)
			}
			if ek.Type != tc.wantType || !ek.ObjectAttributes.Restricted || !ek.ObjectAttributes.Decrypt {
				t.Errorf("EK type %#x attributes %+v", ek.Type, ek.ObjectAttributes)
			}
			if !tc.wantCert {
				if req.EKCertificate != nil {
					t.Fatalf("certificate of %d bytes from a TPM without one", len(req.EKCertificate))
				}
				return
			}
			cert, err := x509.ParseCertificate(req.EKCertificate)
			if err != nil {
				t.Fatalf("EK certificate: %v", err)
			}
			key, err := tpm2.Pub(*ek)
			if err != nil {
				t.Fatal(err)
			}
			if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key) {
				t.Fatal("the EK certificate is not for the EK the template gives")
			}
			// The fingerprint of the TPM's EK and of its certificate agree.
			h, err := api.EKHash(req.EKPublic)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
			if h != hex.EncodeToString(sum[:]) {
				t.Errorf("EKHash %s, certificate key hash %x", h, sum)
			}
		})
	}
}

func TestAKIsFreshRestrictedSigningKey(t *testing.T) {
	sw := factory.Plain(t)
	c := New(sw.Conn, Options{})
	var aks [][]byte
	for range 2 {
		s, err := c.Begin(context.Background(), "oc-1", "S1")
		if err != nil {
			t.Fatal(err)
		}
		aks = append(aks, s.Request().AKPublic)
		ak, err := tpm2.Unmarshal[tpm2.TPMTPublic](s.Request().AKPublic)
		if err != nil {
			t.Fatal(err)
		}
		a := ak.ObjectAttributes
		if !a.Restricted || !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
			t.Errorf("AK attributes %+v", a)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	if bytes.Equal(aks[0], aks[1]) {
		t.Fatal("two attestations got the same AK")
	}
}

func TestAnswerQuotesAndReadsPCRs(t *testing.T) {
	sw := factory.Plain(t)
	// Put a value in PCR 13, as the firmware would.
	d := sha256.Sum256([]byte("image"))
	if _, err := (tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: 13, Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: d[:]}}},
	}).Execute(sw.Conn); err != nil {
		t.Fatal(err)
	}
	s, err := New(sw.Conn, Options{}).Begin(context.Background(), "oc-1", "S1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A challenge this client can answer without a verifier: the TPM's own
	// MakeCredential for its EK and the AK.
	mc, err := tpm2.MakeCredential{Handle: s.ek.handle, Credential: tpm2.TPM2BDigest{Buffer: []byte("secret")}, ObjectName: s.ak.name}.Execute(sw.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ch := api.Challenge{SessionID: "s", CredentialBlob: mc.CredentialBlob.Buffer, EncryptedSecret: mc.Secret.Buffer, Nonce: []byte("nonce")}
	p, err := s.Answer(context.Background(), ch, []byte("log"))
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Secret) != "secret" || p.SessionID != "s" || string(p.EventLog) != "log" {
		t.Errorf("proof %q %q %q", p.Secret, p.SessionID, p.EventLog)
	}
	q, err := tpm2.Unmarshal[tpm2.TPMSAttest](p.Quote)
	if err != nil {
		t.Fatal(err)
	}
	if string(q.ExtraData.Buffer) != "nonce" {
		t.Errorf("quote over %q", q.ExtraData.Buffer)
	}
	// Nine PCRs take two PCR_Reads (eight digests at most per answer).
	vals := p.PCRs[0].Values
	if len(vals) != len(DefaultPCRs) {
		t.Fatalf("read %d PCRs, want %d", len(vals), len(DefaultPCRs))
	}
	want := sha256.Sum256(append(make([]byte, 32), d[:]...))
	if !bytes.Equal(vals[13], want[:]) {
		t.Errorf("PCR 13 = %x, want %x", vals[13], want)
	}
	h := sha256.New()
	for _, i := range DefaultPCRs {
		h.Write(vals[i])
	}
	info, _ := q.Attested.Quote()
	if !bytes.Equal(h.Sum(nil), info.PCRDigest.Buffer) {
		t.Error("the PCR values read do not hash to the quoted digest")
	}
}

func TestAnswerRefusesBadChallenges(t *testing.T) {
	sw := factory.Plain(t)
	s, err := New(sw.Conn, Options{}).Begin(context.Background(), "oc-1", "S1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		ch   api.Challenge
		want string
	}{
		{"other bank", context.Background(), api.Challenge{Bank: "sha1"}, "sha256 only"},
		{"PCR out of range", context.Background(), api.Challenge{PCRs: []int{0, 24}}, "PCR 24 does not exist"},
		{"credential for another TPM", context.Background(), api.Challenge{CredentialBlob: []byte{0, 1, 2}, EncryptedSecret: []byte{3}}, "credential activation"},
		{"cancelled", cancelled, api.Challenge{}, "canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Answer(tc.ctx, tc.ch, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestTrimDER(t *testing.T) {
	long := append([]byte{0x30, 0x82, 0x01, 0x00}, make([]byte, 256)...)
	for _, tc := range []struct {
		name    string
		in      []byte
		want    int // length kept; -1 for an error
		wantErr string
	}{
		{"short form", []byte{0x30, 0x02, 1, 2}, 4, ""},
		{"padded", []byte{0x30, 0x02, 1, 2, 0xff, 0xff}, 4, ""},
		{"long form", append(long, 0, 0, 0), 260, ""},
		{"not a sequence", []byte{0x31, 0x02, 1, 2}, -1, "not DER"},
		{"truncated", []byte{0x30, 0x05, 1, 2}, -1, "truncated"},
		{"length of lengths", []byte{0x30, 0x85, 1, 2, 3, 4, 5}, -1, "bad DER length"},
		{"empty", nil, -1, "not DER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := trimDER(tc.in)
			if tc.want < 0 {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("trimDER = %d bytes, %v; want %d", len(got), err, tc.want)
			}
		})
	}
}

func TestUnknownAlgorithm(t *testing.T) {
	sw := factory.Plain(t)
	_, err := New(sw.Conn, Options{EKAlgorithm: "dsa"}).Begin(context.Background(), "oc-1", "S1")
	if err == nil || !strings.Contains(err.Error(), `"dsa"`) {
		t.Fatalf("err = %v", err)
	}
}
