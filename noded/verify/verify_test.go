package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/onecloud-edu/onecloud/firmware/measure"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest"
	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
)

var factory *attesttest.Factory

func TestMain(m *testing.M) { attesttest.Main(m, &factory) }

var (
	releasedKernel = []byte("onecloud kernel 1.0, released")
	patchedKernel  = []byte("onecloud kernel 1.0, patched by someone")
)

// approvals is the enrolment inbox of a test.
type approvals struct {
	mu sync.Mutex
	m  map[string]Approval
}

func (a *approvals) Approval(_ context.Context, serial string) (Approval, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	x, ok := a.m[serial]
	return x, ok, nil
}

func (a *approvals) approve(serial string, x Approval) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m[serial] = x
}

// logBuffer collects the verifier's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a verifier with its inputs.
type env struct {
	v        *Verifier
	machines *approvals
	store    *MemoryStore
	logs     *logBuffer

	mu  sync.Mutex
	now time.Time
}

func newEnv(t testing.TB, edit ...func(*Config)) *env {
	t.Helper()
	// The CA first: the verifier's clock must not be before the test
	// CA's certificates, issued a moment ago.
	ca := factory.CA(t)
	e := &env{machines: &approvals{m: map[string]Approval{}}, store: NewMemoryStore(), logs: &logBuffer{}, now: time.Now()}
	sum := sha256.Sum256(releasedKernel)
	cfg := Config{
		ManufacturerRoots:         ca.Roots,
		ManufacturerIntermediates: ca.Intermediates,
		Machines:                  e.machines,
		Store:                     e.store,
		Released:                  ReleasedSet{hex.EncodeToString(sum[:]): true},
		Now:                       e.clock,
		Logger:                    slog.New(slog.NewTextHandler(e.logs, nil)),
	}
	for _, f := range edit {
		f(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.v = v
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// Challenge and Prove carry the messages through JSON, as the cluster API
// does, so the wire types are exercised too (e's attest.Verifier).
func (e *env) Challenge(ctx context.Context, req api.AttestRequest) (api.Challenge, error) {
	ch, err := e.v.Challenge(ctx, wire(req))
	if err != nil {
		return api.Challenge{}, err
	}
	return wire(ch), nil
}

func (e *env) Prove(ctx context.Context, p api.Proof) (api.Result, error) {
	_, err := e.v.Verify(ctx, wire(p))
	var r *api.Refusal
	if errors.As(err, &r) {
		return wire(r.Result()), nil
	}
	if err != nil {
		return api.Result{}, err
	}
	return wire(api.Result{Accepted: true}), nil
}

func wire[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// box is a machine under test: a TPM whose PCR 13 holds what the firmware
// measured, and the firmware's event log of it.
type box struct {
	id, serial string
	tpm        *attesttest.Swtpm
	client     *attest.Client
	log        []byte
}

// newBox measures kernel into tpm's PCR 13 with firmware/measure, as the
// firmware does before it runs it, and a role configuration.
func newBox(t testing.TB, tpm *attesttest.Swtpm, serial string, kernel []byte, opts attest.Options) *box {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	img := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(img, kernel, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "measurements.log")
	m, err := measure.NewMeasurer(ctx, measure.Device{TPM: tpm.Conn}, logPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.MeasureFile(ctx, img, "slot-a/vmlinuz"); err != nil {
		t.Fatal(err)
	}
	if err := m.MeasureData(ctx, "role", []byte(`{"role":"vdi"}`)); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	return &box{id: "oc-" + strings.ToLower(serial), serial: serial, tpm: tpm, client: attest.New(tpm.Conn, opts), log: log}
}

func (b *box) attest(e *env) error {
	_, err := b.client.Attest(context.Background(), e, b.id, b.serial, b.log)
	return err
}

// session opens an attestation by hand, for the tests that tamper.
func (b *box) session(t testing.TB) *attest.Session {
	t.Helper()
	s, err := b.client.Begin(context.Background(), b.id, b.serial)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ekHash is the fingerprint of the box's EK, as a technician would record
// it. The session is closed at once: without a resource manager a TPM
// holds three objects, and a session holds two.
func ekHash(t testing.TB, b *box) string {
	t.Helper()
	s, err := b.client.Begin(context.Background(), b.id, b.serial)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := api.EKHash(s.Request().EKPublic)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAccepted(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tpm       func(t *testing.T) *attesttest.Swtpm
		opts      attest.Options
		recordEK  bool // approve with the EK hash
		certified bool
	}{
		{"RSA EK certified by its manufacturer", func(t *testing.T) *attesttest.Swtpm { return factory.Manufactured(t, 0) }, attest.Options{}, false, true},
		{"RSA EK recorded at approval", func(t *testing.T) *attesttest.Swtpm { return factory.Plain(t) }, attest.Options{}, true, false},
		{"ECC EK recorded at approval", func(t *testing.T) *attesttest.Swtpm { return factory.Plain(t) }, attest.Options{EKAlgorithm: attest.AlgorithmECC}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			b := newBox(t, tc.tpm(t), "SN-ACCEPT", releasedKernel, tc.opts)
			a := Approval{MachineID: b.id}
			if tc.recordEK {
				a.EKHash = ekHash(t, b)
			}
			e.machines.approve(b.serial, a)

			s := b.session(t)
			ch, err := e.Challenge(context.Background(), s.Request())
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Answer(context.Background(), ch, b.log)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.v.Verify(context.Background(), wire(p))
			if err != nil {
				t.Fatalf("refused: %v\nlog:\n%s", err, e.logs)
			}
			sum := sha256.Sum256(releasedKernel)
			if got.MachineID != b.id || got.Serial != b.serial || got.EKCertified != tc.certified ||
				len(got.Images) != 1 || got.Images[0].Name != "slot-a/vmlinuz" || !bytes.Equal(got.Images[0].SHA256, sum[:]) ||
				string(got.Configs["role"]) != `{"role":"vdi"}` || len(got.PCRs) != len(DefaultPCRs) {
				t.Errorf("attested %+v", got)
			}
			rec, ok, _ := e.store.Load(context.Background(), b.serial)
			if !ok || rec.EKHash != got.EKHash || rec.Clock != got.Clock.Clock {
				t.Errorf("record %+v after %+v", rec, got.Clock)
			}
			if !strings.Contains(e.logs.String(), "attestation accepted") {
				t.Errorf("no acceptance logged:\n%s", e.logs)
			}
		})
	}
}

// A box attests again after a reboot (TPM reset: PCRs cleared, reset count
// up) with the EK pinned at its first attestation.
func TestReattestAfterReboot(t *testing.T) {
	e := newEnv(t)
	tpm := factory.Manufactured(t, 0)
	b := newBox(t, tpm, "SN-REBOOT", releasedKernel, attest.Options{})
	e.machines.approve(b.serial, Approval{MachineID: b.id})
	if err := b.attest(e); err != nil {
		t.Fatal(err)
	}
	first, _, _ := e.store.Load(context.Background(), b.serial)
	tpm.Stop()
	b2 := newBox(t, attesttest.Start(t, tpm.Dir), b.serial, releasedKernel, attest.Options{})
	if err := b2.attest(e); err != nil {
		t.Fatalf("after reboot: %v", err)
	}
	second, _, _ := e.store.Load(context.Background(), b.serial)
	if second.ResetCount <= first.ResetCount {
		t.Errorf("reset count %d then %d", first.ResetCount, second.ResetCount)
	}
}

// refusal checks that err is a refusal for reason, logged with the machine.
func refusal(t *testing.T, e *env, err error, reason api.Reason, machine string) {
	t.Helper()
	var r *api.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("err = %v, want a refusal %s", err, reason)
	}
	if r.Reason != reason || r.Text == "" {
		t.Fatalf("refused with %s (%s), want %s", r.Reason, r.Text, reason)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "reason="+string(reason)) || (machine != "" && !strings.Contains(logs, "machine="+machine)) {
		t.Errorf("refusal not logged with reason %s and machine %s:\n%s", reason, machine, logs)
	}
}

func TestRefused(t *testing.T) {
	ctx := context.Background()
	// good is an approved box with a certified TPM that booted the
	// released kernel.
	good := func(t *testing.T, e *env, serial string) *box {
		b := newBox(t, factory.Manufactured(t, 0), serial, releasedKernel, attest.Options{})
		e.machines.approve(serial, Approval{MachineID: b.id})
		return b
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		// run attacks and returns the verifier's error and the machine
		// the refusal must be logged with.
		run  func(t *testing.T, e *env) (string, error)
		want api.Reason
	}{
		{"wrong nonce", nil, func(t *testing.T, e *env) (string, error) {
			b := good(t, e, "SN-NONCE")
			s := b.session(t)
			ch, err := e.Challenge(ctx, s.Request())
			if err != nil {
				t.Fatal(err)
			}
			nonce := ch.Nonce
			ch.Nonce = bytes.Repeat([]byte{7}, 32)
			p, err := s.Answer(ctx, ch, b.log)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(nonce, ch.Nonce) {
				t.Fatal("the test nonce is the verifier's")
			}
			_, err = e.v.Verify(ctx, p)
			return b.id, err
		}, api.ReasonNonceMismatch},

		{"replayed proof", nil, func(t *testing.T, e *env) (string, error) {
			b := good(t, e, "SN-REPLAY")
			s := b.session(t)
			ch, err := e.Challenge(ctx, s.Request())
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Answer(ctx, ch, b.log)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.v.Verify(ctx, p); err != nil {
				t.Fatalf("first proof refused: %v", err)
			}
			_, err = e.v.Verify(ctx, p)
			return b.id, err
		}, api.ReasonSessionUsed},

		{"replayed quote in a new session", nil, func(t *testing.T, e *env) (string, error) {
			b := good(t, e, "SN-OLDQUOTE")
			var proofs []api.Proof
			for range 2 {
				s, err := b.client.Begin(ctx, b.id, b.serial)
				if err != nil {
					t.Fatal(err)
				}
				ch, err := e.Challenge(ctx, s.Request())
				if err != nil {
					t.Fatal(err)
				}
				p, err := s.Answer(ctx, ch, b.log)
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				proofs = append(proofs, p)
			}
			if _, err := e.v.Verify(ctx, proofs[0]); err != nil {
				t.Fatalf("first proof refused: %v", err)
			}
			p := proofs[1]
			p.Quote, p.Signature, p.PCRs = proofs[0].Quote, proofs[0].Signature, proofs[0].PCRs
			_, err := e.v.Verify(ctx, p)
			return b.id, err
		}, api.ReasonNonceMismatch},

		{"rolled-back TPM state", nil, func(t *testing.T, e *env) (string, error) {
			b := good(t, e, "SN-ROLLBACK")
			// The TPM lives on: an hour passes before it attests.
			advanceClock(t, b.tpm.Conn, time.Hour)
			if err := b.attest(e); err != nil {
				t.Fatal(err)
			}
			b.tpm.Stop()
			// A copy of the TPM's earlier state (same chip, same EK)
			// answers next: its counters and clock are behind.
			clone := newBox(t, factory.Manufactured(t, 0), b.serial, releasedKernel, attest.Options{})
			return b.id, clone.attest(e)
		}, api.ReasonQuoteStale},

		{"image not released", nil, func(t *testing.T, e *env) (string, error) {
			b := newBox(t, factory.Manufactured(t, 0), "SN-PATCHED", patchedKernel, attest.Options{})
			e.machines.approve(b.serial, Approval{MachineID: b.id})
			return b.id, b.attest(e)
		}, api.ReasonImageNotReleased},

		{"no image measured", nil, func(t *testing.T, e *env) (string, error) {
			tpm := factory.Manufactured(t, 0)
			b := &box{id: "oc-sn-nothing", serial: "SN-NOTHING", tpm: tpm, client: attest.New(tpm.Conn, attest.Options{})}
			e.machines.approve(b.serial, Approval{MachineID: b.id})
			hdr, err := measure.SpecID([]crypto.Hash{crypto.SHA256})
			if err != nil {
				t.Fatal(err)
			}
			log, err := measure.MarshalLog([]measure.Event{hdr})
			if err != nil {
				t.Fatal(err)
			}
			b.log = log
			return b.id, b.attest(e)
		}, api.ReasonImageNotReleased},

		{"PCR values altered", nil, func(t *testing.T, e *env) (string, error) {
			b := good(t, e, "SN-PCRS")
			s := b.session(t)
			ch, err := e.Challenge(ctx, s.Request())
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Answer(ctx, ch, b.log)
			if err != nil {
				t.Fatal(err)
			}
			p.PCRs[0].Values[0] = bytes.Repeat([]byte{1}, 32)
			_, err = e.v.Verify(ctx, p)
			return b.id, err
		}, api.ReasonPCRMismatch},

		{"quote forged to match altered PCRs", nil, func(t *testing.T, e *env) (string, error) {
			b := good(t, e, "SN-FORGED")
			s := b.session(t)
			ch, err := e.Challenge(ctx, s.Request())
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Answer(ctx, ch, b.log)
			if err != nil {
				t.Fatal(err)
			}
			// Claim other PCR values and rewrite the quote's digest to match.
			vals := p.PCRs[0].Values
			vals[0] = bytes.Repeat([]byte{1}, 32)
			h := sha256.New()
			for _, i := range DefaultPCRs {
				h.Write(vals[i])
			}
			q, err := tpm2.Unmarshal[tpm2.TPMSAttest](p.Quote)
			if err != nil {
				t.Fatal(err)
			}
			info, err := q.Attested.Quote()
			if err != nil {
				t.Fatal(err)
			}
			info.PCRDigest.Buffer = h.Sum(nil)
			q.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, info)
			p.Quote = tpm2.Marshal(*q)
			_, err = e.v.Verify(ctx, p)
			return b.id, err
		}, api.ReasonQuoteInvalid},

		{"unknown EK", nil, func(t *testing.T, e *env) (string, error) {
			b := newBox(t, factory.Plain(t), "SN-NOCERT", releasedKernel, attest.Options{})
			e.machines.approve(b.serial, Approval{MachineID: b.id})
			return b.id, b.attest(e)
		}, api.ReasonEKUnknown},

		{"EK certificate from an unknown CA", func(c *Config) {
			c.ManufacturerRoots, c.ManufacturerIntermediates = otherCA(t), nil
		}, func(t *testing.T, e *env) (string, error) {
			b := good(t, e, "SN-OTHERCA")
			return b.id, b.attest(e)
		}, api.ReasonEKCertUntrusted},

		{"AK not bound to the EK", nil, func(t *testing.T, e *env) (string, error) {
			// The genuine, certified EK of box a with an AK of another
			// TPM b: the credential is sealed to a's EK for b's AK.
			a := good(t, e, "SN-SPLIT")
			b := newBox(t, factory.Plain(t), "SN-SPLIT", releasedKernel, attest.Options{})
			sa, sb := a.session(t), b.session(t)
			req := sa.Request()
			req.AKPublic = sb.Request().AKPublic
			ch, err := e.Challenge(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sb.Answer(ctx, ch, b.log); err == nil {
				t.Fatal("the AK's TPM activated a credential made for another TPM's EK")
			}
			if _, err := sa.Answer(ctx, ch, a.log); err == nil {
				t.Fatal("the EK's TPM activated a credential for an AK it does not hold")
			}
			// All b can send is a guess.
			guess := make([]byte, 32)
			rand.Read(guess)
			_, err = e.v.Verify(ctx, api.Proof{SessionID: ch.SessionID, Secret: guess})
			return a.id, err
		}, api.ReasonActivationFailed},

		{"tampered event log", nil, func(t *testing.T, e *env) (string, error) {
			// The box ran the patched kernel and rewrites its log to say
			// it ran the released one.
			b := newBox(t, factory.Manufactured(t, 0), "SN-TAMPER", patchedKernel, attest.Options{})
			e.machines.approve(b.serial, Approval{MachineID: b.id})
			events, err := measure.ParseLog(b.log)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(releasedKernel)
			n := 0
			for i, ev := range events {
				if _, _, err := ev.Image(); err == nil {
					events[i].Digests = map[crypto.Hash][]byte{crypto.SHA256: sum[:]}
					events[i].Data = []byte("onecloud image slot-a/vmlinuz sha256:" + hex.EncodeToString(sum[:]))
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d image events in the log", n)
			}
			if b.log, err = measure.MarshalLog(events); err != nil {
				t.Fatal(err)
			}
			return b.id, b.attest(e)
		}, api.ReasonEventLogMismatch},

		{"unreadable event log", nil, func(t *testing.T, e *env) (string, error) {
			b := good(t, e, "SN-BADLOG")
			b.log = []byte("not a log")
			return b.id, b.attest(e)
		}, api.ReasonEventLogInvalid},

		{"known serial with a new EK (recorded at approval)", nil, func(t *testing.T, e *env) (string, error) {
			old := newBox(t, factory.Plain(t), "SN-SWAP", releasedKernel, attest.Options{})
			e.machines.approve(old.serial, Approval{MachineID: old.id, EKHash: ekHash(t, old)})
			b := newBox(t, factory.Plain(t), "SN-SWAP", releasedKernel, attest.Options{})
			return b.id, b.attest(e)
		}, api.ReasonEKChanged},

		{"known serial with a new, certified EK (pinned)", nil, func(t *testing.T, e *env) (string, error) {
			b := good(t, e, "SN-PIN")
			if err := b.attest(e); err != nil {
				t.Fatal(err)
			}
			// Another genuine chip, valid certificate, same serial.
			other := newBox(t, factory.Manufactured(t, 1), b.serial, releasedKernel, attest.Options{})
			return b.id, other.attest(e)
		}, api.ReasonEKChanged},

		{"serial not approved", nil, func(t *testing.T, e *env) (string, error) {
			b := newBox(t, factory.Manufactured(t, 0), "SN-STRANGER", releasedKernel, attest.Options{})
			return b.id, b.attest(e)
		}, api.ReasonNotApproved},

		{"late answer", nil, func(t *testing.T, e *env) (string, error) {
			b := good(t, e, "SN-LATE")
			s := b.session(t)
			ch, err := e.Challenge(ctx, s.Request())
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Answer(ctx, ch, b.log)
			if err != nil {
				t.Fatal(err)
			}
			e.advance(2 * time.Minute)
			_, err = e.v.Verify(ctx, p)
			return "", err
		}, api.ReasonSessionUnknown},

		{"EK as AK", nil, func(t *testing.T, e *env) (string, error) {
			b := good(t, e, "SN-EKAK")
			req := b.session(t).Request()
			req.AKPublic = req.EKPublic
			_, err := e.Challenge(ctx, req)
			return b.id, err
		}, api.ReasonAKInvalid},

		{"garbage EK", nil, func(t *testing.T, e *env) (string, error) {
			_, err := e.Challenge(ctx, api.AttestRequest{MachineID: "oc-x", Serial: "SN-X", EKPublic: []byte{0, 1}, AKPublic: []byte{0, 1}})
			return "oc-x", err
		}, api.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var edit []func(*Config)
			if tc.edit != nil {
				edit = append(edit, tc.edit)
			}
			e := newEnv(t, edit...)
			machine, err := tc.run(t, e)
			refusal(t, e, err, tc.want, machine)
		})
	}
}

// otherCA is a CA that issued no EK certificate.
func otherCA(t testing.TB) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Some Other TPM Vendor Root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return pool
}

// advanceClock moves the TPM's Clock forward by d with TPM2_ClockSet, as
// if the TPM had run that much longer. go-tpm's tpm2 package has no
// ClockSet, so the command is built here (Part 3, 29.2).
func advanceClock(t testing.TB, tpm interface{ Send([]byte) ([]byte, error) }, d time.Duration) {
	t.Helper()
	rc, err := tpm2.ReadClock{}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	newTime := rc.CurrentTime.ClockInfo.Clock + uint64(d.Milliseconds())
	var cmd []byte
	cmd = binary.BigEndian.AppendUint16(cmd, uint16(tpm2.TPMSTSessions))
	cmd = binary.BigEndian.AppendUint32(cmd, 0) // size, set below
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(tpm2.TPMCCClockSet))
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(tpm2.TPMRHOwner))
	// One password session with an empty password: handle, nonce size,
	// attributes, password size.
	cmd = binary.BigEndian.AppendUint32(cmd, 9)
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(tpm2.TPMRSPW))
	cmd = binary.BigEndian.AppendUint16(cmd, 0)
	cmd = append(cmd, 0)
	cmd = binary.BigEndian.AppendUint16(cmd, 0)
	cmd = binary.BigEndian.AppendUint64(cmd, newTime)
	binary.BigEndian.PutUint32(cmd[2:], uint32(len(cmd)))
	rsp, err := tpm.Send(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if code := binary.BigEndian.Uint32(rsp[6:10]); code != 0 {
		t.Fatalf("TPM2_ClockSet: %v", tpm2.TPMRC(code))
	}
}
