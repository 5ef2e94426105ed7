// Package api holds the wire types of attestation, shared by the client on a
// box (noded/attest) and the verifier in noded's server mode (noded/verify),
// so the two cannot drift apart. They travel as JSON; byte fields are TPM
// structures in their TPM wire encoding, base64 in JSON as encoding/json does
// for []byte.
//
// The exchange is two round trips (see noded/verify for the whole protocol):
//
//	box                                  verifier
//	AttestRequest (EK, EK cert, AK)  ->  checks EK and identity, MakeCredential
//	                                 <-  Challenge (credential, nonce, PCRs)
//	Proof (secret, quote, log)       ->  checks activation, quote, log, policy
//	                                 <-  Result (accepted, or a Reason)
package api

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// Paths where the cluster API takes the two messages (POST, JSON). The
// server that mounts them is the cluster's; they are named here so that the
// client and the server agree.
const (
	ChallengePath = "/v1/attest/challenge" // AttestRequest in, Challenge or Result out
	ProofPath     = "/v1/attest/proof"     // Proof in, Result out
)

// AttestRequest opens an attestation: who the box says it is and the keys of
// its TPM.
type AttestRequest struct {
	// MachineID is the id the enrolment inbox gave the box ("oc-525400123456").
	MachineID string `json:"machine_id"`
	// Serial is the board's serial number from the inventory (DMI); the
	// verifier pins the EK to it.
	Serial string `json:"serial"`
	// EKPublic is the endorsement key's public area (TPMT_PUBLIC, as the TPM
	// returns it from CreatePrimary with the TCG template).
	EKPublic []byte `json:"ek_public"`
	// EKCertificate is the manufacturer's EK certificate (DER) from the
	// TPM's NV, when the TPM has one.
	EKCertificate []byte `json:"ek_certificate,omitempty"`
	// AKPublic is the attestation key's public area (TPMT_PUBLIC): a
	// restricted signing key created for this attestation.
	AKPublic []byte `json:"ak_public"`
	// CSR is a certificate request (PEM or DER) for the key the node will
	// use for mutual TLS; on success the cluster signs it and returns the
	// node certificate in Result. Its subject and SANs are ignored: the
	// certificate names what the cluster approved. Without it an accepted
	// attestation gets no certificate.
	CSR []byte `json:"csr,omitempty"`
	// PeerCSR is a second certificate request, for the key of the node's
	// etcd member. Only a machine approved as a server node gets it
	// signed (Result.PeerCertificate); other roles are not refused for
	// sending one, they get no peer certificate.
	PeerCSR []byte `json:"peer_csr,omitempty"`
}

// Challenge is the verifier's answer to an AttestRequest it accepts.
type Challenge struct {
	// SessionID names this attestation; the Proof must carry it.
	SessionID string `json:"session_id"`
	// CredentialBlob and EncryptedSecret are MakeCredential's output for the
	// EK and the AK's name (TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET
	// contents, without their size prefix): only the TPM holding both keys
	// recovers the secret inside.
	CredentialBlob  []byte `json:"credential_blob"`
	EncryptedSecret []byte `json:"encrypted_secret"`
	// Nonce goes into the quote's extraData (qualifying data).
	Nonce []byte `json:"nonce"`
	// PCRs and Bank say which PCRs to quote and read ("sha256").
	PCRs []int  `json:"pcrs"`
	Bank string `json:"bank"`
	// Expires is when the verifier forgets the session.
	Expires time.Time `json:"expires"`
}

// Proof answers a Challenge.
type Proof struct {
	SessionID string `json:"session_id"`
	// Secret is what ActivateCredential recovered from the challenge.
	Secret []byte `json:"secret"`
	// Quote is the TPMS_ATTEST the AK signed, exactly as the TPM returned it.
	Quote []byte `json:"quote"`
	// Signature is the TPMT_SIGNATURE over Quote.
	Signature []byte `json:"signature"`
	// PCRs are the values of the quoted PCRs, per bank.
	PCRs []PCRBank `json:"pcrs"`
	// EventLog is the firmware's event log of what it measured (TCG
	// crypto-agile format), replayed by the verifier against the quote.
	EventLog []byte `json:"event_log,omitempty"`
}

// PCRBank is the value of some PCRs in one hash bank.
type PCRBank struct {
	Bank   string         `json:"bank"` // "sha256"
	Values map[int][]byte `json:"values"`
}

// Result is the verifier's verdict.
type Result struct {
	Accepted bool `json:"accepted"`
	// Reason and Text say why a box was refused: Reason for programs and
	// for searching logs, Text for the technician.
	Reason Reason `json:"reason,omitempty"`
	Text   string `json:"text,omitempty"`
	// NodeCertificate is the short-lived node certificate (DER) the cluster
	// issues on success; empty until the cluster signs one.
	NodeCertificate []byte `json:"node_certificate,omitempty"`
	// The rest is what a server node needs to join the cluster store; it
	// is filled in only for a machine approved as a server node that sent
	// a PeerCSR.
	//
	// PeerCertificate is its etcd member certificate (DER), signed by the
	// etcd CA, EtcdCACertificate that CA (DER): etcd presents and trusts
	// the pair. CACertificate is the cluster CA (DER). EtcdEndpoints are
	// the client URLs of the voting etcd members, which the new member
	// asks to add it as a learner and to promote it.
	PeerCertificate   []byte   `json:"peer_certificate,omitempty"`
	EtcdCACertificate []byte   `json:"etcd_ca_certificate,omitempty"`
	CACertificate     []byte   `json:"ca_certificate,omitempty"`
	EtcdEndpoints     []string `json:"etcd_endpoints,omitempty"`
}

// Err turns a refusal into a *Refusal error; nil when accepted.
func (r Result) Err() error {
	if r.Accepted {
		return nil
	}
	return &Refusal{Reason: r.Reason, Text: r.Text}
}

// Refusal is a refused attestation as a Go error, so both sides can pass it
// up with errors.As.
type Refusal struct {
	Reason Reason
	Text   string
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("attestation refused (%s): %s", r.Reason, r.Text)
}

// Result is the refusal as it travels.
func (r *Refusal) Result() Result {
	return Result{Reason: r.Reason, Text: r.Text}
}

// Reason is why a verifier refused a box. The values are stable: they are
// recorded, shown in `occtl machines` and searched for in logs.
type Reason string

// Refusal reasons. Each comment says what it means for the technician.
const (
	// The request or proof could not be read: a client bug or a forgery.
	ReasonMalformed Reason = "malformed"
	// The serial is not an approved machine: approve it in the inbox first.
	ReasonNotApproved Reason = "not-approved"
	// No EK certificate and no EK recorded at approval: the TPM cannot be
	// identified. Approve the machine with its EK hash, or install the
	// TPM manufacturer's CA.
	ReasonEKUnknown Reason = "ek-unknown"
	// The EK certificate does not chain to a known manufacturer CA, or does
	// not match the EK: a fake or unknown TPM.
	ReasonEKCertUntrusted Reason = "ek-cert-untrusted"
	// ALARM: a known serial came with another EK than the one pinned to it:
	// the TPM or board was swapped, or someone impersonates the machine.
	ReasonEKChanged Reason = "ek-changed"
	// The AK is not a restricted signing key fixed to the TPM.
	ReasonAKInvalid Reason = "ak-invalid"
	// The session is unknown or expired: the box must start again.
	ReasonSessionUnknown Reason = "session-unknown"
	// The session was already answered once: a replayed proof.
	ReasonSessionUsed Reason = "session-used"
	// The activated secret is wrong: the AK does not sit in the TPM that
	// holds the EK.
	ReasonActivationFailed Reason = "activation-failed"
	// The quote is not a TPM-generated quote, or its signature does not
	// verify with the AK.
	ReasonQuoteInvalid Reason = "quote-invalid"
	// The quote was made over another nonce: an old or foreign quote.
	ReasonNonceMismatch Reason = "nonce-mismatch"
	// The quote does not cover the PCRs asked for, or the reported PCR
	// values do not hash to the quoted digest.
	ReasonPCRMismatch Reason = "pcr-mismatch"
	// The TPM's reset/restart counters or clock went backwards since the
	// last accepted quote: a replayed quote or a rolled-back TPM state.
	ReasonQuoteStale Reason = "quote-stale"
	// The event log cannot be read.
	ReasonEventLogInvalid Reason = "event-log-invalid"
	// Replaying the event log does not give the quoted PCR: the log was
	// tampered with or is not this boot's.
	ReasonEventLogMismatch Reason = "event-log-mismatch"
	// The box booted an image whose digest is not a released one.
	ReasonImageNotReleased Reason = "image-not-released"
)

// EKHash is the fingerprint of an endorsement key: the SHA-256, in hex, of
// its public key in PKIX (SubjectPublicKeyInfo) DER. It is what a
// technician records when approving a machine without an EK certificate;
// the same value comes from a certificate (openssl x509 -pubkey -noout |
// openssl pkey -pubin -outform der | sha256sum) or from the TPM
// (tpm2_readpublic -f der).
func EKHash(ekPublic []byte) (string, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ekPublic)
	if err != nil {
		return "", fmt.Errorf("EK public area: %w", err)
	}
	key, err := tpm2.Pub(*pub)
	if err != nil {
		return "", fmt.Errorf("EK public key: %w", err)
	}
	if k, ok := key.(*ecdsa.PublicKey); ok {
		// go-tpm does not check that the point is on the curve.
		if _, err := k.ECDH(); err != nil {
			return "", fmt.Errorf("EK public key: %w", err)
		}
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", fmt.Errorf("EK public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}
