// Package verify is the attestation verifier of noded's server mode: it
// decides whether a box is a genuine, approved machine that booted released
// images. It needs no TPM of its own. The box's side is noded/attest; the
// messages are in noded/api.
//
// # Protocol
//
//	box (noded/attest)                          verifier (this package)
//	------------------------------------------  ----------------------------------------------
//	CreatePrimary EK (TCG template), read the
//	EK certificate from NV, CreatePrimary a
//	fresh AK (restricted signing)
//	AttestRequest{machine, serial, EK, EK cert, AK}
//	                                        ->  1 the serial is approved (Machines)
//	                                            2 pinning: a serial pinned to another EK is an
//	                                              ALARM (ek-changed), whatever else is valid
//	                                            3 the EK is known: its certificate chains to a
//	                                              manufacturer CA and holds this EK, or its hash
//	                                              is the one recorded at approval or pinned
//	                                            4 the AK is a restricted signing key fixed to
//	                                              its TPM (fixedTPM, fixedParent, sensitive data
//	                                              origin), P256/ECDSA or RSA 2048/RSASSA, SHA-256
//	                                            5 MakeCredential in software: a random secret
//	                                              for the EK and the AK's name; a random nonce
//	                                        <-  Challenge{session, credential, nonce, PCRs}
//	ActivateCredential (EK policy:
//	PolicySecret(endorsement)), Quote the PCRs
//	over the nonce, PCR_Read, attach the log
//	Proof{session, secret, quote, signature, PCR values, event log}
//	                                        ->  6 the session exists, is within its time limit
//	                                              and unused; it is used up now, whatever follows
//	                                            7 the secret matches: the AK sits in the EK's TPM
//	                                            8 the quote is TPM-generated (magic, type), over
//	                                              our nonce, signed by the AK
//	                                            9 it covers exactly the PCRs asked for, and the
//	                                              reported values hash to its PCR digest
//	                                           10 the event log replays to the quoted PCR 13
//	                                           11 every image it measured is released
//	                                           12 reset count, restart count and clock have not
//	                                              gone backwards since the last accepted quote;
//	                                              they and the EK are saved for the serial
//	                                        <-  Result{accepted} or Result{reason, text}
//
// Every refusal carries an api.Reason and a text, and is logged with the
// machine id and serial; ek-changed is logged at error level as an alarm.
//
// # PCRs
//
// The quote covers the SHA-256 bank of PCRs 0-7 and 13. PCRs 0-7 are the
// platform firmware's (SRTM: firmware code and settings, option ROMs, boot
// loader, boot configuration, Secure Boot policy): they are quoted and
// reported in Attested so that a baseline per board model can be recorded
// and compared later; there is no policy on them yet, since there is no
// firmware event log to replay them from. PCR 13 is ours: the firmware
// (firmware/measure) extends it with every image it runs and the
// configuration that decides the role, and keeps the TCG event log the
// verifier replays. The SHA-256 bank is the one every TPM 2.0 we meet has
// allocated; SHA-1 is not trusted for this.
//
// # Why these checks stop what they stop
//
//   - A stolen disk in another box: another TPM, so another EK; with a
//     known serial that is ek-changed, otherwise the EK is unknown.
//   - A software TPM or a TPM of another machine answering for this one:
//     the credential is bound to the EK and the AK's name, so a TPM that
//     does not hold both cannot recover the secret (activation-failed).
//   - An old quote or log replayed: the nonce is fresh and used once, and
//     the TPM's counters and clock must move forward (quote-stale).
//   - A tampered image: its digest is not released (image-not-released),
//     and editing the log to hide it breaks the replay (event-log-mismatch).
//
// Challenge sessions live in the memory of the verifier that issued them:
// the proof must reach the same server node (the cluster API routes it
// there, or retries the whole attestation).
package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/onecloud-edu/onecloud/firmware/measure"
	"github.com/onecloud-edu/onecloud/noded/api"
)

// DefaultPCRs are the PCRs quoted: firmware 0-7 and ours (measure.PCR).
var DefaultPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7, measure.PCR}

// ErrBusy is returned by Challenge when too many attestations are in
// progress; the box should retry after a while (HTTP 503).
var ErrBusy = errors.New("too many attestations in progress, retry later")

// Config is what a Verifier needs. Machines, Store, Released are required.
type Config struct {
	// ManufacturerRoots are the TPM manufacturers' root CAs; EK
	// certificates must chain to one. Nil trusts no certificate: every EK
	// must then be recorded at approval.
	ManufacturerRoots *x509.CertPool
	// ManufacturerIntermediates are the manufacturers' intermediate CAs.
	ManufacturerIntermediates *x509.CertPool
	Machines                  Machines
	Store                     Store
	Released                  Released
	// Log reads event logs; nil means MeasuredLog.
	Log EventLog
	// PCRs to quote; nil means DefaultPCRs. measure.PCR is always added.
	PCRs []int
	// AllowNoImage accepts a box whose log measured no image at all (a box
	// that did not run the measuring loader). Off, such a box is refused:
	// a firmware that skipped measuring must not slip through.
	AllowNoImage bool
	// ChallengeTTL is how long a box has to answer; 0 means one minute.
	ChallengeTTL time.Duration
	// MaxSessions bounds attestations in progress; 0 means 10,000.
	MaxSessions int
	// Now and Rand default to time.Now and crypto/rand.
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
}

// Verifier checks attestations. It is safe for concurrent use.
type Verifier struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session

	// commit serialises the check-and-save of the record of one serial;
	// serials hash onto the stripes, so attestations of different
	// machines rarely wait for each other's store round trip.
	commit [64]sync.Mutex
}

// session is one challenge the verifier issued.
type session struct {
	machineID, serial string
	ekHash            string
	ekCertified       bool
	ak                crypto.PublicKey
	secret, nonce     []byte
	pcrs              []int
	expires           time.Time
	used              bool
}

// Attested is what an accepted attestation established; the cluster issues
// the node certificate from it.
type Attested struct {
	MachineID string
	Serial    string
	EKHash    string
	// EKCertified says the EK was identified by a manufacturer certificate
	// (rather than by a hash recorded at approval or pinned).
	EKCertified bool
	// AK is the attestation key's public key (*ecdsa.PublicKey or
	// *rsa.PublicKey), bound to the EK by the activation.
	AK crypto.PublicKey
	// PCRs are the quoted SHA-256 PCR values.
	PCRs    map[int][]byte
	Images  []Image
	Configs map[string][]byte
	Clock   tpm2.TPMSClockInfo
}

// New returns a verifier.
func New(cfg Config) (*Verifier, error) {
	if cfg.Machines == nil || cfg.Store == nil || cfg.Released == nil {
		return nil, errors.New("verify: Machines, Store and Released are required")
	}
	if cfg.Log == nil {
		cfg.Log = MeasuredLog{}
	}
	if cfg.PCRs == nil {
		cfg.PCRs = DefaultPCRs
	}
	cfg.PCRs = slices.Sorted(slices.Values(append(slices.Clone(cfg.PCRs), measure.PCR)))
	cfg.PCRs = slices.Compact(cfg.PCRs)
	for _, p := range cfg.PCRs {
		if p < 0 || p > 23 {
			return nil, fmt.Errorf("verify: PCR %d does not exist (0-23)", p)
		}
	}
	if cfg.ChallengeTTL <= 0 {
		cfg.ChallengeTTL = time.Minute
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Verifier{cfg: cfg, log: log, sessions: map[string]*session{}}, nil
}

// refuse logs a refusal and returns it as an error.
func (v *Verifier) refuse(machineID, serial string, reason api.Reason, format string, args ...any) error {
	r := &api.Refusal{Reason: reason, Text: fmt.Sprintf(format, args...)}
	if reason == api.ReasonEKChanged {
		v.log.Error("attestation ALARM: known serial with another EK", "machine", machineID, "serial", serial, "reason", reason, "text", r.Text)
	} else {
		v.log.Warn("attestation refused", "machine", machineID, "serial", serial, "reason", reason, "text", r.Text)
	}
	return r
}

// Challenge checks an attestation request and returns the challenge for
// it. A refusal is an *api.Refusal; other errors are the verifier's own
// (store unreachable, ErrBusy).
func (v *Verifier) Challenge(ctx context.Context, req api.AttestRequest) (api.Challenge, error) {
	id, serial := req.MachineID, req.Serial
	if serial == "" || len(serial) > 256 || len(id) > 256 {
		return api.Challenge{}, v.refuse(id, serial, api.ReasonMalformed, "the request has no serial number, or an overlong serial or machine id")
	}
	ekPub, err := parsePublic(req.EKPublic)
	if err != nil {
		return api.Challenge{}, v.refuse(id, serial, api.ReasonMalformed, "EK public area: %v", err)
	}
	ekHash, err := api.EKHash(req.EKPublic)
	if err != nil {
		return api.Challenge{}, v.refuse(id, serial, api.ReasonMalformed, "%v", err)
	}
	akPub, err := parsePublic(req.AKPublic)
	if err != nil {
		return api.Challenge{}, v.refuse(id, serial, api.ReasonMalformed, "AK public area: %v", err)
	}

	approval, ok, err := v.cfg.Machines.Approval(ctx, serial)
	if err != nil {
		return api.Challenge{}, fmt.Errorf("look up the approval of serial %q: %w", serial, err)
	}
	if !ok {
		return api.Challenge{}, v.refuse(id, serial, api.ReasonNotApproved, "serial %q is not an approved machine: approve it in the enrolment inbox first", serial)
	}
	rec, known, err := v.cfg.Store.Load(ctx, serial)
	if err != nil {
		return api.Challenge{}, fmt.Errorf("load the attestation record of serial %q: %w", serial, err)
	}

	// Pinning comes before everything that could vouch for the EK: a
	// genuine TPM with a valid certificate in a known serial's place is
	// exactly the swap the pin exists to catch.
	if known && rec.EKHash != "" && rec.EKHash != ekHash {
		return api.Challenge{}, v.refuse(id, serial, api.ReasonEKChanged,
			"serial %q is pinned to EK %s but came with EK %s: the TPM or board was replaced, or another box claims this serial; check the machine before re-approving it", serial, short(rec.EKHash), short(ekHash))
	}
	if approval.EKHash != "" && approval.EKHash != ekHash {
		return api.Challenge{}, v.refuse(id, serial, api.ReasonEKChanged,
			"serial %q was approved with EK %s but came with EK %s: the TPM or board was replaced, or another box claims this serial; check the machine before re-approving it", serial, short(approval.EKHash), short(ekHash))
	}
	certified, certErr := v.checkEKCert(req.EKCertificate, ekPub)
	recorded := approval.EKHash == ekHash || (known && rec.EKHash == ekHash)
	switch {
	case certified:
	case recorded && certErr != nil:
		// The technician vouched for this EK; a certificate we cannot
		// check (an unknown vendor's) does not take that back.
		v.log.Info("attestation: EK certificate not trusted, EK known by its recorded hash", "machine", id, "serial", serial, "err", certErr)
	case recorded:
	case certErr != nil && len(req.EKCertificate) > 0:
		return api.Challenge{}, v.refuse(id, serial, api.ReasonEKCertUntrusted,
			"the EK certificate is not trusted (%v): a TPM of an unknown manufacturer, or a forged certificate; add the manufacturer's CA, or record the EK hash %s at approval", certErr, ekHash)
	default:
		return api.Challenge{}, v.refuse(id, serial, api.ReasonEKUnknown,
			"the TPM has no EK certificate and EK %s was not recorded at approval: record it to approve this machine", ekHash)
	}

	akKey, err := checkAK(akPub)
	if err != nil {
		return api.Challenge{}, v.refuse(id, serial, api.ReasonAKInvalid, "%v", err)
	}
	ek, err := tpm2.ImportEncapsulationKey(ekPub)
	if err != nil {
		return api.Challenge{}, v.refuse(id, serial, api.ReasonMalformed, "the EK cannot encrypt a credential: %v", err)
	}
	secret, nonce, sid := make([]byte, 32), make([]byte, 32), make([]byte, 16)
	for _, b := range [][]byte{secret, nonce, sid} {
		if _, err := io.ReadFull(v.cfg.Rand, b); err != nil {
			return api.Challenge{}, fmt.Errorf("random numbers for a challenge: %w", err)
		}
	}
	blob, encSecret, err := tpm2.CreateCredential(v.cfg.Rand, ek, akName(req.AKPublic), secret)
	if err != nil {
		return api.Challenge{}, fmt.Errorf("make the credential for serial %q: %w", serial, err)
	}

	now := v.cfg.Now()
	s := &session{
		machineID: id, serial: serial, ekHash: ekHash, ekCertified: certified, ak: akKey,
		secret: secret, nonce: nonce, pcrs: v.cfg.PCRs,
		expires: now.Add(v.cfg.ChallengeTTL),
	}
	key := hex.EncodeToString(sid)
	if err := v.addSession(key, s, now); err != nil {
		return api.Challenge{}, err
	}
	v.log.Info("attestation challenged", "machine", id, "serial", serial, "ek", short(ekHash), "ek_certified", certified)
	return api.Challenge{
		SessionID:       key,
		CredentialBlob:  blob,
		EncryptedSecret: encSecret,
		Nonce:           nonce,
		PCRs:            slices.Clone(s.pcrs),
		Bank:            "sha256",
		Expires:         s.expires,
	}, nil
}

func (v *Verifier) addSession(key string, s *session, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.sessions) >= v.cfg.MaxSessions {
		maps.DeleteFunc(v.sessions, func(_ string, s *session) bool { return !now.Before(s.expires) })
		if len(v.sessions) >= v.cfg.MaxSessions {
			return ErrBusy
		}
	}
	v.sessions[key] = s
	return nil
}

// take returns the session of a proof and marks it used: a session is
// answered once, right or wrong, so a secret cannot be guessed twice.
func (v *Verifier) take(key string, now time.Time) (*session, api.Reason) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.sessions[key]
	switch {
	case !ok || !now.Before(s.expires):
		delete(v.sessions, key)
		return nil, api.ReasonSessionUnknown
	case s.used:
		return s, api.ReasonSessionUsed
	}
	// Kept until it expires, so that a replay is told apart from a
	// session never issued.
	s.used = true
	return s, ""
}

// Verify checks a proof. It returns what the attestation established; a
// refusal is an *api.Refusal, other errors are the verifier's own.
func (v *Verifier) Verify(ctx context.Context, p api.Proof) (*Attested, error) {
	now := v.cfg.Now()
	s, reason := v.take(p.SessionID, now)
	switch reason {
	case api.ReasonSessionUnknown:
		return nil, v.refuse("", "", reason, "attestation session %q is unknown or expired: start the attestation again", trim(p.SessionID))
	case api.ReasonSessionUsed:
		return nil, v.refuse(s.machineID, s.serial, reason, "attestation session was already answered: a replayed proof")
	}
	id, serial := s.machineID, s.serial

	if subtle.ConstantTimeCompare(p.Secret, s.secret) != 1 {
		return nil, v.refuse(id, serial, api.ReasonActivationFailed,
			"the activated secret is wrong: the AK is not in the TPM that holds the EK")
	}
	attest, err := tpm2.Unmarshal[tpm2.TPMSAttest](p.Quote)
	if err != nil {
		return nil, v.refuse(id, serial, api.ReasonQuoteInvalid, "the quote is not a TPM-generated attestation: %v", err)
	}
	if attest.Magic != tpm2.TPMGeneratedValue || attest.Type != tpm2.TPMSTAttestQuote {
		return nil, v.refuse(id, serial, api.ReasonQuoteInvalid, "the quote is not a TPM-generated quote (magic %#x, type %#x)", uint32(attest.Magic), uint16(attest.Type))
	}
	// The nonce before the signature: a quote from another session fails
	// here with the reason that explains it.
	if !bytes.Equal(attest.ExtraData.Buffer, s.nonce) {
		return nil, v.refuse(id, serial, api.ReasonNonceMismatch, "the quote was made over another nonce: an old or foreign quote")
	}
	if err := verifySignature(s.ak, p.Quote, p.Signature); err != nil {
		return nil, v.refuse(id, serial, api.ReasonQuoteInvalid, "the quote's signature does not verify with the AK: %v", err)
	}
	info, err := attest.Attested.Quote()
	if err != nil {
		return nil, v.refuse(id, serial, api.ReasonQuoteInvalid, "the quote carries no quote information: %v", err)
	}
	pcrs, err := checkPCRs(info, s.pcrs, p.PCRs)
	if err != nil {
		return nil, v.refuse(id, serial, api.ReasonPCRMismatch, "%v", err)
	}

	replayed, err := v.cfg.Log.Replay(p.EventLog, crypto.SHA256)
	switch {
	case errors.Is(err, errLogTampered):
		return nil, v.refuse(id, serial, api.ReasonEventLogMismatch, "%v", err)
	case err != nil:
		return nil, v.refuse(id, serial, api.ReasonEventLogInvalid, "%v", err)
	}
	want := replayed.PCRs[measure.PCR]
	if want == nil {
		want = make([]byte, sha256.Size) // no event: the PCR is still at its reset value
	}
	if got := pcrs[measure.PCR]; !bytes.Equal(got, want) {
		return nil, v.refuse(id, serial, api.ReasonEventLogMismatch,
			"the event log replays PCR %d to %x but the TPM quoted %x: the log was altered or is not this boot's", measure.PCR, want, got)
	}
	if len(replayed.Images) == 0 && !v.cfg.AllowNoImage {
		return nil, v.refuse(id, serial, api.ReasonImageNotReleased, "the event log measured no image: the box did not boot through the measuring firmware")
	}
	for _, img := range replayed.Images {
		ok, err := v.cfg.Released.Released(ctx, img.SHA256)
		if err != nil {
			return nil, fmt.Errorf("look up released images: %w", err)
		}
		if !ok {
			return nil, v.refuse(id, serial, api.ReasonImageNotReleased,
				"image %q (sha256:%x) is not a released image: the box runs a modified or unreleased image", img.Name, img.SHA256)
		}
	}

	if err := v.commitRecord(ctx, s, attest.ClockInfo, now); err != nil {
		return nil, err
	}
	v.log.Info("attestation accepted", "machine", id, "serial", serial, "ek", short(s.ekHash), "images", len(replayed.Images))
	return &Attested{
		MachineID:   id,
		Serial:      serial,
		EKHash:      s.ekHash,
		EKCertified: s.ekCertified,
		AK:          s.ak,
		PCRs:        pcrs,
		Images:      replayed.Images,
		Configs:     replayed.Configs,
		Clock:       attest.ClockInfo,
	}, nil
}

// commitRecord checks the TPM's counters and clock against the last
// accepted quote and saves the new ones, with the EK pinned.
func (v *Verifier) commitRecord(ctx context.Context, s *session, c tpm2.TPMSClockInfo, now time.Time) error {
	h := fnv.New32a()
	h.Write([]byte(s.serial))
	mu := &v.commit[h.Sum32()%uint32(len(v.commit))]
	mu.Lock()
	defer mu.Unlock()
	rec, known, err := v.cfg.Store.Load(ctx, s.serial)
	if err != nil {
		return fmt.Errorf("load the attestation record of serial %q: %w", s.serial, err)
	}
	if known && rec.EKHash != "" && rec.EKHash != s.ekHash {
		// Another attestation of this serial pinned another EK while
		// this one was in flight.
		return v.refuse(s.machineID, s.serial, api.ReasonEKChanged,
			"serial %q was pinned to EK %s during this attestation, which came with EK %s", s.serial, short(rec.EKHash), short(s.ekHash))
	}
	// The counters only grow, and Clock only grows within one reset and
	// restart; after a TPM Reset (a reboot) Clock may restart lower when
	// the TPM was not shut down in order.
	if known && rec.EKHash == s.ekHash {
		older := c.ResetCount < rec.ResetCount ||
			c.ResetCount == rec.ResetCount && c.RestartCount < rec.RestartCount ||
			c.ResetCount == rec.ResetCount && c.RestartCount == rec.RestartCount && c.Clock <= rec.Clock
		if older {
			return v.refuse(s.machineID, s.serial, api.ReasonQuoteStale,
				"the TPM's state (resets %d, restarts %d, clock %d ms) is not newer than at the last accepted attestation (%d, %d, %d): a replayed quote or a rolled-back TPM",
				c.ResetCount, c.RestartCount, c.Clock, rec.ResetCount, rec.RestartCount, rec.Clock)
		}
	}
	rec = Record{EKHash: s.ekHash, ResetCount: c.ResetCount, RestartCount: c.RestartCount, Clock: c.Clock, Accepted: now}
	if err := v.cfg.Store.Save(ctx, s.serial, rec); err != nil {
		return fmt.Errorf("save the attestation record of serial %q: %w", s.serial, err)
	}
	return nil
}

// checkEKCert says whether cert is a manufacturer certificate of ek.
func (v *Verifier) checkEKCert(der []byte, ek *tpm2.TPMTPublic) (bool, error) {
	if len(der) == 0 {
		return false, errors.New("no EK certificate")
	}
	if v.cfg.ManufacturerRoots == nil {
		return false, errors.New("no manufacturer CA is configured")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return false, fmt.Errorf("unreadable certificate: %w", err)
	}
	// EK certificates carry TCG extensions (subject directory attributes,
	// a critical SAN of directory names) and the TCG EK key usage; only
	// the chain and the key matter here.
	cert.UnhandledCriticalExtensions = nil
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:         v.cfg.ManufacturerRoots,
		Intermediates: v.cfg.ManufacturerIntermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		CurrentTime:   v.cfg.Now(),
	}); err != nil {
		return false, err
	}
	key, err := tpm2.Pub(*ek)
	if err != nil {
		return false, err
	}
	if k, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(key) {
		return false, errors.New("the certificate is for another key than this EK")
	}
	return true, nil
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// trim keeps a client's string short enough for a log line.
func trim(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
