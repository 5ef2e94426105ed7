package measure

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/onecloud-edu/onecloud/internal/release"
)

// The event data onecloud writes, so that a verifier can tell what each
// event is about:
//
//   - an image (EV_IPL): "onecloud image <name> sha256:<64 hex digits>". The
//     digests of the event are those of the image's bytes, one per bank; the
//     data names the image and repeats its SHA-256 so that the log reads on
//     its own. Only the digests are bound to the PCR: a verifier takes the
//     image's digest from the event's SHA-256 digest and refuses an event
//     whose data says otherwise (Event.Image does both).
//   - a configuration (EV_EVENT_TAG): a TCG_PCClientTaggedEvent with
//     taggedEventID ConfigTag and taggedEventData "<kind>" NUL "<data>". Its
//     digests are the hashes of the whole event data, so the data itself is
//     bound to the PCR and a verifier reads the configuration from the log
//     after checking them (Event.Config does both).
const (
	imagePrefix = "onecloud image "
	imageHash   = " sha256:"
	// ConfigTag is the taggedEventID of onecloud's configuration events:
	// the ASCII letters "OCFG" read as a big-endian number.
	ConfigTag uint32 = 0x4F434647
	// maxName bounds image names and configuration kinds in the log.
	maxName = 200
	// maxConfig bounds a configuration; role configurations are ~150 bytes.
	maxConfig = 64 << 10
)

// ErrOtherEvent is returned by Event.Image and Event.Config for an event of
// another kind; check it with errors.Is.
var ErrOtherEvent = errors.New("not an onecloud event of this kind")

func checkName(what, s string) error {
	if s == "" || len(s) > maxName || !utf8.ValidString(s) {
		return fmt.Errorf("%s %q: want 1 to %d bytes of UTF-8", what, s, maxName)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%s %q: only printable characters, please", what, s)
		}
	}
	return nil
}

func checkKind(kind string) error {
	if kind == "" || len(kind) > 32 || strings.Trim(kind, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return fmt.Errorf("configuration kind %q: want 1 to 32 of a-z, 0-9 and '-'", kind)
	}
	return nil
}

func imageData(name string, sum []byte) []byte {
	return []byte(imagePrefix + name + imageHash + hex.EncodeToString(sum))
}

// Image returns the name and SHA-256 of the image that an event written by
// MeasureFile records. It fails with ErrOtherEvent for any other event, and
// with another error when the event's SHA-256 digest disagrees with its data
// (a tampered log): the digest, not the data, is what the PCR holds.
func (e Event) Image() (name string, sum []byte, err error) {
	s := string(e.Data)
	i := strings.LastIndex(s, imageHash)
	if e.Type != EventIPL || !strings.HasPrefix(s, imagePrefix) || i < len(imagePrefix) {
		return "", nil, ErrOtherEvent
	}
	name = s[len(imagePrefix):i]
	sum, err = hex.DecodeString(s[i+len(imageHash):])
	if err != nil || len(sum) != sha256.Size {
		return "", nil, fmt.Errorf("image event %q: the SHA-256 in its data is not 64 hex digits", name)
	}
	if d, ok := e.Digests[crypto.SHA256]; ok && !bytes.Equal(d, sum) {
		return "", nil, fmt.Errorf("image event %q: its data says sha256:%x but its digest is %x; the log was altered", name, sum, d)
	}
	return name, sum, nil
}

func configData(kind string, data []byte) []byte {
	tagged := append([]byte(kind+"\x00"), data...)
	b := binary.LittleEndian.AppendUint32(nil, ConfigTag)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(tagged)))
	return append(b, tagged...)
}

// Config returns the kind and data of a configuration that an event written
// by MeasureData records, after checking that each of the event's digests is
// the hash of its data. It fails with ErrOtherEvent for any other event.
func (e Event) Config() (kind string, data []byte, err error) {
	d := e.Data
	if e.Type != EventTag || len(d) < 8 || binary.LittleEndian.Uint32(d) != ConfigTag {
		return "", nil, ErrOtherEvent
	}
	tagged := d[8:]
	if n := binary.LittleEndian.Uint32(d[4:]); uint64(n) != uint64(len(tagged)) {
		return "", nil, fmt.Errorf("configuration event: tagged data of %d bytes announced, %d present", n, len(tagged))
	}
	k, rest, ok := bytes.Cut(tagged, []byte{0})
	if !ok || checkKind(string(k)) != nil {
		return "", nil, errors.New("configuration event: no valid kind before the NUL")
	}
	kind = string(k)
	if len(e.Digests) == 0 {
		return "", nil, fmt.Errorf("configuration event %s: no digest to check its data against", kind)
	}
	for h, got := range e.Digests {
		if !h.Available() {
			return "", nil, fmt.Errorf("configuration event %s: digest algorithm %v is not available to check it", kind, h)
		}
		w := h.New()
		w.Write(d)
		if want := w.Sum(nil); !bytes.Equal(got, want) {
			return "", nil, fmt.Errorf("configuration event %s: %v digest %x is not the hash of its data (%x); the log was altered", kind, h, got, want)
		}
	}
	return kind, bytes.Clone(rest), nil
}

// ReleaseImage is the image name (and path) under which the firmware
// measures its own release file, the identity of the image it runs.
const ReleaseImage = "/" + release.Path

// RoleKind is the kind of the configuration that decides a box's role.
const RoleKind = "role"

// Role is the configuration that decides a box's role, as the kernel command
// line gives it (onecloud.role, onecloud.school, onecloud.server,
// onecloud.id); empty when not given. It is measured as kind RoleKind.
type Role struct {
	ID     string `json:"id"`
	Role   string `json:"role"`
	School string `json:"school"`
	Server string `json:"server"`
}

// Canonical is the measured form of r: JSON with every key present, keys in
// sorted order, no white space and no HTML escaping. For the ASCII values the
// command line accepts this is the RFC 8785 (JCS) form, so a verifier in any
// language can rebuild the same bytes.
func (r Role) Canonical() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		panic(err) // four strings always encode
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
