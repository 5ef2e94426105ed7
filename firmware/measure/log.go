// Package measure records what the firmware is about to run in the TPM and in
// an event log that a verifier can replay.
//
// Everything goes into one PCR, PCR 13 (see PCR for why that one), in every
// active PCR bank of the TPM. The log is in the TCG canonical format, the
// crypto-agile event log of the TCG PC Client Platform Firmware Profile
// (section 10): a first TCG_PCR_EVENT (SHA-1 format) of type EV_NO_ACTION
// carrying the "Spec ID Event03" header, which lists the digest algorithms
// and their sizes, then one TCG_PCR_EVENT2 per measurement. That is the
// format of /sys/kernel/security/tpm0/binary_bios_measurements, so the same
// tools (tpm2_eventlog) and the same parser read both. All integers in the
// log are little-endian (unlike TPM command structures).
//
// docs/measured-boot.md describes what is measured when, and how a verifier
// replays the log.
package measure

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // the hashes of the PCR banks a TPM may have
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// PCR is the one PCR onecloud measures into. It is in the range the PC Client
// profile leaves to the operating system (8-15), and the only one there that
// no part of a Linux boot stack uses on our boxes: 8 and 9 are GRUB's and the
// kernel EFI stub's (which measures the initrd into 9), 10 is IMA's, 11 and
// 12 are systemd-stub's for unified kernel images, 14 is shim's (MOK) and 15
// is systemd's (volume keys, machine id). systemd-stub extends 13 only with
// system extension images (sysext), which our stack never loads. PCRs 16-23
// are debug, DRTM and application PCRs that may be reset at run time.
const PCR = 13

// Event types used in the log, from the PC Client Platform Firmware Profile.
const (
	// EventNoAction is information that is not extended into any PCR: the
	// Spec ID header, a startup locality.
	EventNoAction uint32 = 0x00000003
	// EventSeparator marks the end of a firmware phase (seen in firmware logs).
	EventSeparator uint32 = 0x00000004
	// EventTag is the type of tagged events, which the profile leaves to the
	// operating system; onecloud records configuration with it (ConfigTag).
	EventTag uint32 = 0x00000006
	// EventIPL is the type of an image the boot loader is about to run;
	// onecloud records images with it.
	EventIPL uint32 = 0x0000000D
)

// Event is one record of the log.
type Event struct {
	PCR  int
	Type uint32
	// Digests holds one digest per algorithm of the log that Go knows
	// (SHA-1, SHA-256, SHA-384, SHA-512); digests of other algorithms (SM3)
	// are skipped when parsing.
	Digests map[crypto.Hash][]byte
	Data    []byte
}

// algorithm is a digest algorithm as the log names it (a TPM_ALG_ID).
type algorithm struct {
	id   uint16
	size uint16
}

// algID is the TPM_ALG_ID of a hash Go knows.
func algID(h crypto.Hash) (uint16, bool) {
	switch h {
	case crypto.SHA1:
		return 0x0004, true
	case crypto.SHA256:
		return 0x000B, true
	case crypto.SHA384:
		return 0x000C, true
	case crypto.SHA512:
		return 0x000D, true
	}
	return 0, false
}

func hashOf(id uint16) (crypto.Hash, bool) {
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		if i, _ := algID(h); i == id {
			return h, true
		}
	}
	return 0, false
}

const (
	specIDSignature = "Spec ID Event03\x00"
	// sha1EventHeader is pcrIndex, eventType, a 20-byte SHA-1 digest and
	// eventDataSize: the fixed part of the first event.
	sha1EventHeader = 4 + 4 + 20 + 4
	// maxAlgorithms bounds the Spec ID header; TPMs have a handful of banks.
	maxAlgorithms = 64
	// maxDigestSize bounds the digest size of an algorithm Go does not know.
	maxDigestSize = 512
)

// SpecID returns the first event of a crypto-agile log that holds digests
// of the given algorithms, in that order: the TCG_EfiSpecIdEvent of the PC
// Client profile (platform class client, spec version 2.0, errata 2 as
// SeaBIOS writes it, UINTN of 8 bytes, no vendor information).
func SpecID(algs []crypto.Hash) (Event, error) {
	if len(algs) == 0 {
		return Event{}, errors.New("event log: no digest algorithm given")
	}
	var b []byte
	b = append(b, specIDSignature...)
	b = binary.LittleEndian.AppendUint32(b, 0) // platformClass: client
	b = append(b, 0, 2, 2, 2)                  // specVersionMinor, specVersionMajor, specErrata (rev. 1.05), uintnSize (UINT64)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(algs)))
	for i, h := range algs {
		id, ok := algID(h)
		if !ok {
			return Event{}, fmt.Errorf("event log: digest algorithm %v cannot be logged", h)
		}
		if slices.Contains(algs[:i], h) {
			return Event{}, fmt.Errorf("event log: digest algorithm %v given twice", h)
		}
		b = binary.LittleEndian.AppendUint16(b, id)
		b = binary.LittleEndian.AppendUint16(b, uint16(h.Size()))
	}
	b = append(b, 0) // vendorInfoSize
	return Event{PCR: 0, Type: EventNoAction, Digests: map[crypto.Hash][]byte{crypto.SHA1: make([]byte, 20)}, Data: b}, nil
}

// parseSpecID reads the algorithms of a Spec ID header (the event data of the
// first event). off is the offset of the data in the log, for errors.
func parseSpecID(d []byte, off int) ([]algorithm, error) {
	bad := func(at int, format string, args ...any) error {
		return fmt.Errorf("event log: Spec ID header at offset %d: %s", off+at, fmt.Sprintf(format, args...))
	}
	// signature, platformClass, 4 one-byte fields, numberOfAlgorithms
	const fixed = 16 + 4 + 4 + 4
	if len(d) < fixed {
		return nil, bad(0, "%d bytes, want at least %d", len(d), fixed)
	}
	n := binary.LittleEndian.Uint32(d[24:])
	if n == 0 || n > maxAlgorithms {
		return nil, bad(24, "%d digest algorithms, want 1 to %d", n, maxAlgorithms)
	}
	at := fixed
	if len(d) < at+int(n)*4+1 {
		return nil, bad(at, "too short for %d digest algorithms and the vendor information size", n)
	}
	algs := make([]algorithm, 0, n)
	for range n {
		a := algorithm{id: binary.LittleEndian.Uint16(d[at:]), size: binary.LittleEndian.Uint16(d[at+2:])}
		if h, ok := hashOf(a.id); ok && int(a.size) != h.Size() {
			return nil, bad(at, "algorithm %v has digest size %d, want %d", h, a.size, h.Size())
		}
		if a.size == 0 || a.size > maxDigestSize {
			return nil, bad(at, "algorithm 0x%04x has digest size %d, want 1 to %d", a.id, a.size, maxDigestSize)
		}
		if slices.ContainsFunc(algs, func(b algorithm) bool { return b.id == a.id }) {
			return nil, bad(at, "algorithm 0x%04x is listed twice", a.id)
		}
		algs = append(algs, a)
		at += 4
	}
	if vendor := int(d[at]); len(d) != at+1+vendor {
		return nil, bad(at, "vendor information of %d bytes leaves %d bytes unexplained", vendor, len(d)-at-1-vendor)
	}
	return algs, nil
}

// ParseLog reads a crypto-agile event log. The first event returned is the
// Spec ID header. Bytes of zero after the last event end the log (firmware
// hands over a zero-filled log area). Any other malformation is an error that
// says which event, at which offset, is wrong; ParseLog never panics.
func ParseLog(b []byte) ([]Event, error) {
	if len(b) < sha1EventHeader {
		return nil, fmt.Errorf("event log: %d bytes, too short for its first event (%d bytes at least)", len(b), sha1EventHeader)
	}
	first := Event{
		PCR:     int(binary.LittleEndian.Uint32(b)),
		Type:    binary.LittleEndian.Uint32(b[4:]),
		Digests: map[crypto.Hash][]byte{crypto.SHA1: slices.Clone(b[8:28])},
	}
	size := binary.LittleEndian.Uint32(b[28:])
	if first.Type != EventNoAction || uint64(size) > uint64(len(b)-sha1EventHeader) ||
		!bytes.HasPrefix(b[sha1EventHeader:sha1EventHeader+int(size)], []byte(specIDSignature)) {
		return nil, errors.New("event log: the first event is not a \"Spec ID Event03\" header: " +
			"not a crypto-agile TCG log (the SHA-1-only format of TPM 1.2 firmware is not supported)")
	}
	first.Data = slices.Clone(b[sha1EventHeader : sha1EventHeader+int(size)])
	algs, err := parseSpecID(first.Data, sha1EventHeader)
	if err != nil {
		return nil, err
	}
	events := []Event{first}
	for off := sha1EventHeader + int(size); off < len(b); {
		if allZero(b[off:]) {
			break
		}
		e, n, err := parseEvent2(b[off:], algs)
		if err != nil {
			return nil, fmt.Errorf("event log: event %d at offset %d: %w", len(events), off, err)
		}
		events = append(events, e)
		off += n
	}
	return events, nil
}

// parseEvent2 reads one TCG_PCR_EVENT2 and returns it with its length.
func parseEvent2(b []byte, algs []algorithm) (Event, int, error) {
	if len(b) < 12 {
		return Event{}, 0, fmt.Errorf("%d bytes left, too short for an event header", len(b))
	}
	e := Event{
		PCR:     int(binary.LittleEndian.Uint32(b)),
		Type:    binary.LittleEndian.Uint32(b[4:]),
		Digests: map[crypto.Hash][]byte{},
	}
	count := binary.LittleEndian.Uint32(b[8:])
	if count > uint32(len(algs)) {
		return Event{}, 0, fmt.Errorf("%d digests, but the header lists %d algorithms", count, len(algs))
	}
	at := 12
	var seen []uint16
	for range count {
		if len(b) < at+2 {
			return Event{}, 0, fmt.Errorf("digest at +%d: truncated", at)
		}
		id := binary.LittleEndian.Uint16(b[at:])
		i := slices.IndexFunc(algs, func(a algorithm) bool { return a.id == id })
		if i < 0 {
			return Event{}, 0, fmt.Errorf("digest at +%d: algorithm 0x%04x is not in the Spec ID header", at, id)
		}
		if slices.Contains(seen, id) {
			return Event{}, 0, fmt.Errorf("digest at +%d: algorithm 0x%04x appears twice", at, id)
		}
		seen = append(seen, id)
		at += 2
		size := int(algs[i].size)
		if len(b) < at+size {
			return Event{}, 0, fmt.Errorf("digest at +%d: %d bytes left, want %d", at, len(b)-at, size)
		}
		if h, ok := hashOf(id); ok {
			e.Digests[h] = slices.Clone(b[at : at+size])
		}
		at += size
	}
	if len(b) < at+4 {
		return Event{}, 0, fmt.Errorf("event size at +%d: truncated", at)
	}
	size := binary.LittleEndian.Uint32(b[at:])
	at += 4
	if uint64(size) > uint64(len(b)-at) {
		return Event{}, 0, fmt.Errorf("event data at +%d: %d bytes announced, %d left", at, size, len(b)-at)
	}
	e.Data = slices.Clone(b[at : at+int(size)])
	return e, at + int(size), nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// MarshalLog encodes events as a crypto-agile log. events[0] must be a Spec
// ID header (from SpecID or ParseLog); every later event is written with its
// digests in the header's order, and each digest must have the size the
// header gives. MarshalLog(ParseLog(b)) gives b back for any log whose
// algorithms Go knows and whose digests follow the header's order.
func MarshalLog(events []Event) ([]byte, error) {
	if len(events) == 0 {
		return nil, errors.New("event log: no events; the first must be the Spec ID header")
	}
	hdr := events[0]
	if hdr.Type != EventNoAction || !bytes.HasPrefix(hdr.Data, []byte(specIDSignature)) {
		return nil, errors.New("event log: the first event must be a Spec ID header (see SpecID)")
	}
	algs, err := parseSpecID(hdr.Data, sha1EventHeader)
	if err != nil {
		return nil, err
	}
	sha1 := hdr.Digests[crypto.SHA1]
	if sha1 == nil {
		sha1 = make([]byte, 20)
	}
	if len(sha1) != 20 {
		return nil, fmt.Errorf("event log: Spec ID header has a SHA-1 digest of %d bytes, want 20", len(sha1))
	}
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(hdr.PCR))
	b = binary.LittleEndian.AppendUint32(b, hdr.Type)
	b = append(b, sha1...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hdr.Data)))
	b = append(b, hdr.Data...)
	for i, e := range events[1:] {
		if e.PCR < 0 || int64(e.PCR) > 0xFFFFFFFF {
			return nil, fmt.Errorf("event log: event %d: PCR %d out of range", i+1, e.PCR)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(e.PCR))
		b = binary.LittleEndian.AppendUint32(b, e.Type)
		countAt := len(b)
		b = binary.LittleEndian.AppendUint32(b, 0)
		count := 0
		for _, a := range algs {
			h, ok := hashOf(a.id)
			if !ok {
				continue
			}
			d, ok := e.Digests[h]
			if !ok {
				continue
			}
			if len(d) != int(a.size) {
				return nil, fmt.Errorf("event log: event %d: %v digest of %d bytes, want %d", i+1, h, len(d), a.size)
			}
			b = binary.LittleEndian.AppendUint16(b, a.id)
			b = append(b, d...)
			count++
		}
		if count != len(e.Digests) {
			return nil, fmt.Errorf("event log: event %d has digests of algorithms the header does not list", i+1)
		}
		binary.LittleEndian.PutUint32(b[countAt:], uint32(count))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b, nil
}

// startupLocality is the data of the EV_NO_ACTION event by which firmware
// says that PCR 0 started at its locality rather than at zero (PC Client
// profile, section 10.4.5.3): the signature and one byte of locality.
const startupLocality = "StartupLocality\x00"

// Replay computes the PCR values that the events of the log give with hash
// h, for every PCR the log extends: each PCR starts at all zeros (PCR 0 at
// its startup locality when the log records one) and is extended with each
// event's digest in turn; EV_NO_ACTION events are not extended. A PCR with an
// event lacking a digest for h, or with a digest of the wrong size, cannot be
// replayed and is left out, so that a comparison with the TPM fails. An
// unavailable h gives an empty map.
func Replay(events []Event, h crypto.Hash) map[int][]byte {
	pcrs := map[int][]byte{}
	if !h.Available() {
		return pcrs
	}
	start := map[int][]byte{}
	broken := map[int]bool{}
	for _, e := range events {
		if e.Type == EventNoAction {
			if e.PCR == 0 && len(e.Data) == len(startupLocality)+1 && bytes.HasPrefix(e.Data, []byte(startupLocality)) {
				v := make([]byte, h.Size())
				v[len(v)-1] = e.Data[len(startupLocality)]
				start[0] = v
			}
			continue
		}
		d, ok := e.Digests[h]
		if !ok || len(d) != h.Size() {
			broken[e.PCR] = true
			continue
		}
		cur, ok := pcrs[e.PCR]
		if !ok {
			cur = start[e.PCR]
			if cur == nil {
				cur = make([]byte, h.Size())
			}
		}
		w := h.New()
		w.Write(cur)
		w.Write(d)
		pcrs[e.PCR] = w.Sum(nil)
	}
	for p := range broken {
		delete(pcrs, p)
	}
	return pcrs
}
