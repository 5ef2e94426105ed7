// Package attest is the attestation client that runs on a box: it proves to
// the cluster's verifier (noded/verify) which TPM the box has and what it
// booted. The wire types are in noded/api; the protocol and the choice of
// PCRs are documented in noded/verify.
//
// One attestation, on the box's TPM:
//
//  1. The EK is created from the TCG standard template (RSA 2048; ECC P256
//     when the TPM has no RSA), which gives back the very key the TPM's
//     manufacturer certified, and its certificate is read from NV
//     (0x01C00002 RSA, 0x01C0000A ECC) when the TPM has one.
//  2. A fresh attestation key (AK) is created: an ECC P256 (else RSA 2048)
//     restricted signing key, a primary key in the endorsement hierarchy
//     made unique by random bits in its template. Restricted means the TPM
//     signs with it only data it generated itself (quotes), never a digest
//     that merely looks like a quote.
//  3. The box sends EK, EK certificate and AK (api.AttestRequest); the
//     verifier answers with a credential made for the EK and the AK's name.
//  4. ActivateCredential recovers the secret; the TPM does it only when the
//     AK is loaded in the same TPM as the EK, under the EK's policy
//     (PolicySecret(endorsement)). That binds the AK to the EK.
//  5. The AK quotes the PCRs the verifier asked for over its nonce, and the
//     box sends the secret, the quote, the PCR values and the firmware's
//     event log (api.Proof).
//
// Why the endorsement hierarchy for the AK: a quote carries the TPM's reset
// and restart counters, which the verifier uses to refuse replayed quotes
// and rolled-back TPM state. The TPM obfuscates those counters, per signing
// key, in quotes signed by a key outside the endorsement and platform
// hierarchies (TPM 2.0 Part 3, FillInAttestInfo), so a fresh owner-hierarchy
// AK per attestation would make them useless. The endorsement hierarchy is
// also where the EK, which the AK is bound to, lives; its authorisation is
// empty on our boxes as on nearly every shipped PC. A new AK per attestation
// needs no NV and no persistent handle, and activation proves each one.
package attest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/onecloud-edu/onecloud/noded/api"
)

// NV indices of the EK certificates (TCG EK Credential Profile 2.0, 2.2.1.4).
const (
	NVIndexRSAEKCert = 0x01C00002
	NVIndexECCEKCert = 0x01C0000A
)

// DefaultPCRs are quoted when a challenge names none: the firmware's PCRs
// 0-7 and our boot measurements in PCR 13 (see noded/verify).
var DefaultPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7, 13}

// Algorithm selects the key type of the EK.
type Algorithm string

// EK algorithms.
const (
	AlgorithmAuto Algorithm = ""    // RSA 2048, ECC P256 when the TPM refuses RSA
	AlgorithmRSA  Algorithm = "rsa" // RSA 2048 only
	AlgorithmECC  Algorithm = "ecc" // ECC P256 only
)

// Options tune a Client; the zero value is the standard practice.
type Options struct {
	EKAlgorithm Algorithm
	Logger      *slog.Logger
}

// Client attests with one TPM. The TPM is reached through go-tpm's
// transport: /dev/tpmrm0 on a box (linuxtpm.Open), swtpm in tests.
type Client struct {
	tpm  transport.TPM
	opts Options
	log  *slog.Logger
}

// New returns a client of the TPM.
func New(tpm transport.TPM, opts Options) *Client {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Client{tpm: tpm, opts: opts, log: log}
}

// Verifier carries the two messages of an attestation to the verifier: HTTP
// to the cluster API in noded, a direct call in tests. A refusal comes back
// as an error that is an *api.Refusal.
type Verifier interface {
	Challenge(ctx context.Context, req api.AttestRequest) (api.Challenge, error)
	Prove(ctx context.Context, proof api.Proof) (api.Result, error)
}

// Attest runs one whole attestation. eventLog is the firmware's event log
// (firmware/measure). It returns the verifier's result when accepted; a
// refusal is an error that is an *api.Refusal (errors.As), with the reason
// the technician reads.
func (c *Client) Attest(ctx context.Context, v Verifier, machineID, serial string, eventLog []byte) (api.Result, error) {
	s, err := c.Begin(ctx, machineID, serial)
	if err != nil {
		return api.Result{}, err
	}
	defer s.Close()
	ch, err := v.Challenge(ctx, s.Request())
	if err != nil {
		return api.Result{}, fmt.Errorf("attestation challenge: %w", err)
	}
	proof, err := s.Answer(ctx, ch, eventLog)
	if err != nil {
		return api.Result{}, err
	}
	res, err := v.Prove(ctx, proof)
	if err != nil {
		return api.Result{}, fmt.Errorf("attestation proof: %w", err)
	}
	if err := res.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// Session is one attestation in progress: the EK and AK loaded in the TPM.
// Close it to free the TPM's object slots.
type Session struct {
	c   *Client
	ek  loaded
	ak  loaded
	req api.AttestRequest
}

type loaded struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	public []byte // TPMT_PUBLIC
}

// Begin creates the EK and a fresh AK and returns the session whose
// Request goes to the verifier.
func (c *Client) Begin(ctx context.Context, machineID, serial string) (*Session, error) {
	s := &Session{c: c}
	var err error
	if s.ek, err = c.createEK(ctx); err != nil {
		return nil, err
	}
	cert, err := c.readEKCert(ctx, s.ek.public)
	if err != nil {
		// A box without a readable certificate can still attest with the
		// EK hash recorded at approval; the verifier decides.
		c.log.Warn("attest: EK certificate not readable, attesting with the EK alone", "machine", machineID, "err", err)
	}
	if s.ak, err = c.createAK(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.req = api.AttestRequest{
		MachineID:     machineID,
		Serial:        serial,
		EKPublic:      s.ek.public,
		EKCertificate: cert,
		AKPublic:      s.ak.public,
	}
	return s, nil
}

// Request is the opening message for the verifier.
func (s *Session) Request() api.AttestRequest { return s.req }

// Close flushes the EK and AK from the TPM.
func (s *Session) Close() error {
	var errs []error
	for _, h := range []tpm2.TPMHandle{s.ak.handle, s.ek.handle} {
		if h == 0 {
			continue
		}
		if _, err := (tpm2.FlushContext{FlushHandle: h}).Execute(s.c.tpm); err != nil {
			errs = append(errs, fmt.Errorf("flush TPM object %#x: %w", uint32(h), err))
		}
	}
	s.ak.handle, s.ek.handle = 0, 0
	return errors.Join(errs...)
}

// Answer activates the credential, quotes the PCRs over the nonce and
// returns the proof, with eventLog attached as it is.
func (s *Session) Answer(ctx context.Context, ch api.Challenge, eventLog []byte) (api.Proof, error) {
	if err := ctx.Err(); err != nil {
		return api.Proof{}, err
	}
	pcrs := ch.PCRs
	if len(pcrs) == 0 {
		pcrs = DefaultPCRs
	}
	if ch.Bank != "" && ch.Bank != "sha256" {
		return api.Proof{}, fmt.Errorf("the verifier asked for PCR bank %q; this client quotes sha256 only: update noded", ch.Bank)
	}
	sel, err := selection(pcrs)
	if err != nil {
		return api.Proof{}, fmt.Errorf("the verifier's PCR selection: %w", err)
	}

	secret, err := s.activate(ch)
	if err != nil {
		return api.Proof{}, err
	}
	if err := ctx.Err(); err != nil {
		return api.Proof{}, err
	}
	q, err := tpm2.Quote{
		SignHandle:     tpm2.NamedHandle{Handle: s.ak.handle, Name: s.ak.name},
		QualifyingData: tpm2.TPM2BData{Buffer: ch.Nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      sel,
	}.Execute(s.c.tpm)
	if err != nil {
		return api.Proof{}, fmt.Errorf("TPM quote: %w", err)
	}
	values, err := readPCRs(s.c.tpm, pcrs)
	if err != nil {
		return api.Proof{}, err
	}
	return api.Proof{
		SessionID: ch.SessionID,
		Secret:    secret,
		Quote:     q.Quoted.Bytes(),
		Signature: tpm2.Marshal(q.Signature),
		PCRs:      []api.PCRBank{{Bank: "sha256", Values: values}},
		EventLog:  eventLog,
	}, nil
}

// activate runs ActivateCredential: the AK is the object the credential
// names, the EK decrypts it under its policy PolicySecret(endorsement).
func (s *Session) activate(ch api.Challenge) ([]byte, error) {
	policy := func(t transport.TPM, h tpm2.TPMISHPolicy, nonce tpm2.TPM2BNonce) error {
		_, err := tpm2.PolicySecret{
			AuthHandle:    tpm2.TPMRHEndorsement,
			PolicySession: h,
			NonceTPM:      nonce,
		}.Execute(t)
		return err
	}
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.NamedHandle{Handle: s.ak.handle, Name: s.ak.name},
		KeyHandle: tpm2.AuthHandle{
			Handle: s.ek.handle,
			Name:   s.ek.name,
			Auth:   tpm2.Policy(tpm2.TPMAlgSHA256, 16, policy),
		},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: ch.CredentialBlob},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: ch.EncryptedSecret},
	}.Execute(s.c.tpm)
	if err != nil {
		return nil, fmt.Errorf("TPM credential activation (the challenge was not made for this TPM's EK and AK): %w", err)
	}
	return rsp.CertInfo.Buffer, nil
}

// createEK creates the EK from the TCG template in the endorsement
// hierarchy. The TPM derives it from its endorsement seed, so it is the key
// in the manufacturer's certificate, whatever was done before.
func (c *Client) createEK(ctx context.Context) (loaded, error) {
	if err := ctx.Err(); err != nil {
		return loaded{}, err
	}
	try := []tpm2.TPMTPublic{tpm2.RSAEKTemplate, tpm2.ECCEKTemplate}
	switch c.opts.EKAlgorithm {
	case AlgorithmRSA:
		try = try[:1]
	case AlgorithmECC:
		try = try[1:]
	case AlgorithmAuto:
	default:
		return loaded{}, fmt.Errorf("EK algorithm %q: use rsa, ecc or nothing", c.opts.EKAlgorithm)
	}
	var errs []error
	for _, tmpl := range try {
		k, err := createPrimary(c.tpm, tpm2.TPMRHEndorsement, tmpl)
		if err == nil {
			return k, nil
		}
		errs = append(errs, err)
		// Only a TPM that refuses the template (no RSA, key size) makes
		// ECC worth a try; a dead transport would only fail again.
		var rc tpm2.TPMRC
		if !errors.As(err, &rc) {
			break
		}
	}
	return loaded{}, fmt.Errorf("create the TPM's endorsement key (is the endorsement hierarchy's password empty?): %w", errors.Join(errs...))
}

// createAK creates a fresh attestation key: random bits in the unique field
// of the template make the TPM derive a key it never derived before.
func (c *Client) createAK(ctx context.Context) (loaded, error) {
	if err := ctx.Err(); err != nil {
		return loaded{}, err
	}
	var errs []error
	for _, tmpl := range []func() (tpm2.TPMTPublic, error){akTemplateECC, akTemplateRSA} {
		t, err := tmpl()
		if err != nil {
			return loaded{}, err
		}
		k, err := createPrimary(c.tpm, tpm2.TPMRHEndorsement, t)
		if err == nil {
			return k, nil
		}
		errs = append(errs, err)
		var rc tpm2.TPMRC
		if !errors.As(err, &rc) {
			break
		}
	}
	return loaded{}, fmt.Errorf("create an attestation key in the TPM: %w", errors.Join(errs...))
}

func createPrimary(t transport.TPM, hierarchy tpm2.TPMHandle, tmpl tpm2.TPMTPublic) (loaded, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: hierarchy, Auth: tpm2.PasswordAuth(nil)},
		InPublic:      tpm2.New2B(tmpl),
	}.Execute(t)
	if err != nil {
		return loaded{}, err
	}
	// The public area goes out exactly as the TPM encoded it: its Name,
	// which the credential and the quote refer to, is a hash of these bytes.
	return loaded{handle: rsp.ObjectHandle, name: rsp.Name, public: rsp.OutPublic.Bytes()}, nil
}

// akAttributes are those of a key that signs only TPM-generated data and
// never leaves the TPM.
var akAttributes = tpm2.TPMAObject{
	FixedTPM:            true,
	FixedParent:         true,
	SensitiveDataOrigin: true,
	UserWithAuth:        true,
	NoDA:                true,
	Restricted:          true,
	SignEncrypt:         true,
}

func akTemplateECC() (tpm2.TPMTPublic, error) {
	x := make([]byte, 32)
	if _, err := rand.Read(x); err != nil {
		return tpm2.TPMTPublic{}, err
	}
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: akAttributes,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: x},
			Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
		}),
	}, nil
}

func akTemplateRSA() (tpm2.TPMTPublic, error) {
	n := make([]byte, 256)
	if _, err := rand.Read(n); err != nil {
		return tpm2.TPMTPublic{}, err
	}
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgRSA,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: akAttributes,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTRSAScheme{
				Scheme:  tpm2.TPMAlgRSASSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			KeyBits: 2048,
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: n}),
	}, nil
}

// readEKCert reads the EK certificate from the NV index for the EK's type;
// nil when the TPM has none.
func (c *Client) readEKCert(ctx context.Context, ekPublic []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ekPublic)
	if err != nil {
		return nil, err
	}
	index := tpm2.TPMHandle(NVIndexRSAEKCert)
	if pub.Type == tpm2.TPMAlgECC {
		index = NVIndexECCEKCert
	}
	nv, err := tpm2.NVReadPublic{NVIndex: index}.Execute(c.tpm)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCHandle) {
			return nil, nil // no certificate: not an error
		}
		return nil, fmt.Errorf("read the public area of NV index %#x: %w", uint32(index), err)
	}
	b, err := readNV(c.tpm, index, nv)
	if err != nil {
		return nil, err
	}
	return trimDER(b)
}

// readNV reads a whole NV index in chunks the TPM accepts.
func readNV(t transport.TPM, index tpm2.TPMHandle, nv *tpm2.NVReadPublicResponse) ([]byte, error) {
	pub, err := nv.NVPublic.Contents()
	if err != nil {
		return nil, err
	}
	// EK certificate indices are readable with their own empty
	// authorisation (AUTHREAD) or the owner's (OWNERREAD).
	auth := tpm2.AuthHandle{Handle: index, Name: nv.NVName, Auth: tpm2.PasswordAuth(nil)}
	if !pub.Attributes.AuthRead {
		if !pub.Attributes.OwnerRead {
			return nil, fmt.Errorf("NV index %#x is readable neither with its own nor the owner's authorisation", uint32(index))
		}
		auth = tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
	}
	chunk := nvBufferMax(t)
	out := make([]byte, 0, pub.DataSize)
	for off := 0; off < int(pub.DataSize); {
		n := min(chunk, int(pub.DataSize)-off)
		rsp, err := tpm2.NVRead{
			AuthHandle: auth,
			NVIndex:    tpm2.NamedHandle{Handle: index, Name: nv.NVName},
			Size:       uint16(n),
			Offset:     uint16(off),
		}.Execute(t)
		if err != nil {
			return nil, fmt.Errorf("read NV index %#x at %d: %w", uint32(index), off, err)
		}
		if len(rsp.Data.Buffer) == 0 {
			return nil, fmt.Errorf("read NV index %#x at %d: the TPM returned nothing", uint32(index), off)
		}
		out = append(out, rsp.Data.Buffer...)
		off += len(rsp.Data.Buffer)
	}
	return out, nil
}

// nvBufferMax is the largest NV read the TPM takes (TPM_PT_NV_BUFFER_MAX);
// 512 when it does not say, which every TPM 2.0 accepts.
func nvBufferMax(t transport.TPM) int {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(tpm2.TPMPTNVBufferMax),
		PropertyCount: 1,
	}.Execute(t)
	if err == nil {
		if props, err := rsp.CapabilityData.Data.TPMProperties(); err == nil {
			for _, p := range props.TPMProperty {
				if p.Property == tpm2.TPMPTNVBufferMax && p.Value > 0 {
					return int(min(p.Value, 4096))
				}
			}
		}
	}
	return 512
}

// trimDER cuts the padding some vendors leave after the certificate in its
// NV index, using the length in the outer SEQUENCE's header.
func trimDER(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 0x30 {
		return nil, errors.New("the EK certificate in NV is not DER")
	}
	n, hdr := int(b[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(b) < 2+k {
			return nil, errors.New("the EK certificate in NV has a bad DER length")
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		hdr += k
	}
	if hdr+n > len(b) {
		return nil, errors.New("the EK certificate in NV is truncated")
	}
	return b[:hdr+n], nil
}

// selection is the sha256 selection of pcrs, which must be PC Client PCRs.
func selection(pcrs []int) (tpm2.TPMLPCRSelection, error) {
	var u []uint
	for _, p := range pcrs {
		if p < 0 || p > 23 {
			return tpm2.TPMLPCRSelection{}, fmt.Errorf("PCR %d does not exist", p)
		}
		u = append(u, uint(p))
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash:      tpm2.TPMAlgSHA256,
		PCRSelect: tpm2.PCClientCompatible.PCRs(u...),
	}}}, nil
}

// readPCRs reads the sha256 values of pcrs. A TPM returns at most eight
// digests per PCR_Read, and says which ones in its answer.
func readPCRs(t transport.TPM, pcrs []int) (map[int][]byte, error) {
	want := slices.Clone(pcrs)
	slices.Sort(want)
	want = slices.Compact(want)
	out := make(map[int][]byte, len(want))
	for len(want) > 0 {
		sel, err := selection(want)
		if err != nil {
			return nil, err
		}
		rsp, err := tpm2.PCRRead{PCRSelectionIn: sel}.Execute(t)
		if err != nil {
			return nil, fmt.Errorf("read PCRs: %w", err)
		}
		var got []int
		for _, s := range rsp.PCRSelectionOut.PCRSelections {
			if s.Hash != tpm2.TPMAlgSHA256 {
				continue
			}
			for i, b := range s.PCRSelect {
				for bit := range 8 {
					if b&(1<<bit) != 0 {
						got = append(got, i*8+bit)
					}
				}
			}
		}
		if len(got) == 0 || len(got) != len(rsp.PCRValues.Digests) {
			return nil, errors.New("read PCRs: the TPM has no sha256 bank for them (enable it in the firmware setup)")
		}
		progress := false
		for i, p := range got {
			if slices.Contains(want, p) {
				progress = true
			}
			out[p] = rsp.PCRValues.Digests[i].Buffer
		}
		if !progress {
			return nil, fmt.Errorf("read PCRs: the TPM does not return PCRs %v", want)
		}
		want = slices.DeleteFunc(want, func(p int) bool { _, ok := out[p]; return ok })
	}
	return out, nil
}
