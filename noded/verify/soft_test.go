package verify

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/onecloud-edu/onecloud/noded/api"
)

// softRequest is an attestation request with keys made in software: enough
// to reach every check of the verifier without a TPM.
func softRequest(t testing.TB, e *env, serial string) api.AttestRequest {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek := tpm2.RSAEKTemplate
	ek.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: k.N.Bytes()})
	ak, _ := eccAK(t, akAttrs, tpm2.TPMECCNistP256, tpm2.TPMAlgSHA256)
	req := api.AttestRequest{MachineID: "oc-" + serial, Serial: serial, EKPublic: tpm2.Marshal(ek), AKPublic: tpm2.Marshal(ak)}
	h, err := api.EKHash(req.EKPublic)
	if err != nil {
		t.Fatal(err)
	}
	e.machines.approve(serial, Approval{MachineID: req.MachineID, EKHash: h})
	return req
}

func TestSessionsBounded(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(c *Config) { c.MaxSessions = 1; c.ChallengeTTL = time.Minute })
	req := softRequest(t, e, "SN-BUSY")
	if _, err := e.v.Challenge(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Challenge(ctx, req); !errors.Is(err, ErrBusy) {
		t.Fatalf("second challenge: %v, want ErrBusy", err)
	}
	e.advance(time.Minute)
	if _, err := e.v.Challenge(ctx, req); err != nil {
		t.Fatalf("after the first expired: %v", err)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"complete", Config{Machines: &approvals{}, Store: NewMemoryStore(), Released: ReleasedSet{}}, true},
		{"no store", Config{Machines: &approvals{}, Released: ReleasedSet{}}, false},
		{"PCR 24", Config{Machines: &approvals{}, Store: NewMemoryStore(), Released: ReleasedSet{}, PCRs: []int{24}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v", err)
			}
			if err == nil && v.cfg.PCRs[len(v.cfg.PCRs)-1] != 13 {
				t.Errorf("PCRs %v lack PCR 13", v.cfg.PCRs)
			}
		})
	}
}

// FuzzProof feeds arbitrary quotes, signatures, PCR values and logs to a
// session whose activation succeeded: none may crash the verifier or be
// accepted.
func FuzzProof(f *testing.F) {
	f.Add([]byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18}, []byte{0, 0x18, 0, 0x0b}, []byte{0}, []byte{})
	f.Add([]byte{}, []byte{}, []byte{}, []byte("x"))
	e := newEnv(f)
	var req api.AttestRequest
	f.Fuzz(func(t *testing.T, quote, sig, pcr, log []byte) {
		if req.Serial == "" {
			req = softRequest(t, e, "SN-FUZZ")
		}
		ch, err := e.v.Challenge(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		e.v.mu.Lock()
		s := e.v.sessions[ch.SessionID]
		e.v.mu.Unlock()
		p := api.Proof{SessionID: ch.SessionID, Secret: s.secret, Quote: quote, Signature: sig,
			PCRs: []api.PCRBank{{Bank: "sha256", Values: map[int][]byte{0: pcr}}}, EventLog: log}
		_, err = e.v.Verify(context.Background(), p)
		// Used sessions are kept until they expire; let them, so that the
		// fuzzer does not fill the verifier (which says ErrBusy then).
		e.advance(2 * time.Minute)
		var r *api.Refusal
		if !errors.As(err, &r) {
			t.Fatalf("Verify = %v, want a refusal", err)
		}
	})
}

// FuzzRequest feeds arbitrary EK, AK and certificate bytes to Challenge:
// a refusal every time, never a crash.
func FuzzRequest(f *testing.F) {
	f.Add(tpm2.Marshal(tpm2.RSAEKTemplate), tpm2.Marshal(tpm2.ECCEKTemplate), []byte{0x30, 0})
	f.Add([]byte{0, 1}, []byte{}, []byte{})
	e := newEnv(f)
	e.machines.approve("SN-FUZZ", Approval{MachineID: "oc-fuzz"})
	f.Fuzz(func(t *testing.T, ek, ak, cert []byte) {
		_, err := e.v.Challenge(context.Background(), api.AttestRequest{MachineID: "oc-fuzz", Serial: "SN-FUZZ", EKPublic: ek, AKPublic: ak, EKCertificate: cert})
		e.advance(2 * time.Minute)
		var r *api.Refusal
		if !errors.As(err, &r) {
			t.Fatalf("Challenge = %v, want a refusal", err)
		}
	})
}
