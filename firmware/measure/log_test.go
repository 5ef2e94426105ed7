package measure

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"reflect"
	"strings"
	"testing"
)

// unhex decodes hex written with spaces and line breaks for reading.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenHeader is the Spec ID event for SHA-1 and SHA-256, written by hand
// from the PC Client Platform Firmware Profile, section 10.4.5.1.
const goldenHeader = `
	00000000 03000000                              pcrIndex 0, EV_NO_ACTION
	0000000000000000000000000000000000000000       SHA-1 digest: zero
	25000000                                       eventDataSize 37
	5370656320494420 4576656e74303300              "Spec ID Event03\0"
	00000000                                       platformClass client
	00 02 02 02                                    version 2.0, errata 2, UINTN 8 bytes
	02000000                                       two algorithms
	0400 1400                                      SHA-1, 20 bytes
	0b00 2000                                      SHA-256, 32 bytes
	00                                             no vendor information
`

// goldenIPL is a TCG_PCR_EVENT2 for PCR 13, EV_IPL, data "x".
const goldenIPL = `
	0d000000 0d000000 02000000                     pcrIndex 13, EV_IPL, two digests
	0400 1111111111111111111111111111111111111111
	0b00 2222222222222222222222222222222222222222222222222222222222222222
	01000000 78                                    eventSize 1, "x"
`

func iplEvent() Event {
	return Event{PCR: 13, Type: EventIPL, Data: []byte("x"), Digests: map[crypto.Hash][]byte{
		crypto.SHA1: bytes.Repeat([]byte{0x11}, 20), crypto.SHA256: bytes.Repeat([]byte{0x22}, 32),
	}}
}

func TestGoldenBytes(t *testing.T) {
	hdr, err := SpecID([]crypto.Hash{crypto.SHA1, crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalLog([]Event{hdr, iplEvent()})
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, stripComments(goldenHeader+goldenIPL))
	if !bytes.Equal(b, want) {
		t.Fatalf("MarshalLog:\n got %x\nwant %x", b, want)
	}
	events, err := ParseLog(want)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || !reflect.DeepEqual(events[1], iplEvent()) || !reflect.DeepEqual(events[0], hdr) {
		t.Fatalf("ParseLog(golden) = %+v", events)
	}
}

// stripComments keeps the first hex columns of each line of a golden text.
func stripComments(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		for _, f := range strings.Fields(line) {
			if _, err := hex.DecodeString(f); err != nil {
				break
			}
			out = append(out, f)
		}
	}
	return strings.Join(out, "")
}

func readSeaBIOS(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/seabios-swtpm.log")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The SeaBIOS log was recorded from a QEMU 7.2 guest with a swtpm 0.7.1 TPM
// (testdata/README.md). The PCR values are those tpm2_eventlog (tpm2-tools
// 5.4) computed from the same file: an independent implementation.
func TestSeaBIOSLog(t *testing.T) {
	b := readSeaBIOS(t)
	for _, tc := range []struct {
		name string
		log  []byte
	}{
		{"as the kernel gives it", b},
		{"in a zero-filled log area", append(bytes.Clone(b), make([]byte, 4096)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := ParseLog(tc.log)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != 14 {
				t.Fatalf("%d events, want 14", len(events))
			}
			wantPCRs := map[crypto.Hash]map[int]string{
				crypto.SHA1: {
					0: "3a3f780f11a4b49969fcaa80cd6e3957c33b2275",
					1: "a895c7b5706460d9f6f7e52160c5dfa5fb10ac80",
					2: "6e46b2485972c7c8b2393563deefff862e4bb0d7",
					4: "a9fdeb07a0c479c74e3db3e9493d2c3189766507",
					7: "3a3f780f11a4b49969fcaa80cd6e3957c33b2275",
				},
				crypto.SHA256: {
					0: "e21b703ee69c77476bccb43ec0336a9a1b2914b378944f7b00a10214ca8fea93",
					1: "ae4f973389c19ba4314f767fa1e68f374c76516b0546cfadebd51d568e922e8e",
					2: "75493ca74d1c3e6a5c946e670aa39ada384b375ddac11b1c328ae9ae42e6bf51",
					4: "1eb9aa21337cc1fa31ce5f56900d7bf59b9dda366823095aed06544caa2557ca",
					7: "e21b703ee69c77476bccb43ec0336a9a1b2914b378944f7b00a10214ca8fea93",
				},
				crypto.SHA384: {
					4: "ca46430982425114bdd4bd6ce30ea5730fd3b9218b6de134469cd41de85f5e16cdc81663df63e44dcdffd0c1be43bb4c",
				},
				crypto.SHA512: {
					4: "1bc9c09c9d06a77f087c399a038465385f496754367953ed359524d50bf8755d7cd84fb45d563df82868f958b85b3fc7020504e94815925995c656e1564153a8",
				},
			}
			for h, want := range wantPCRs {
				got := Replay(events, h)
				if len(got) != 8 {
					t.Errorf("%v: replay gives %d PCRs, want 0-7", h, len(got))
				}
				for pcr, v := range want {
					if hex.EncodeToString(got[pcr]) != v {
						t.Errorf("%v PCR %d = %x, want %s", h, pcr, got[pcr], v)
					}
				}
			}
			// EV_ACTION strings and separators are measured as the hash of
			// their data: a check on where the parser cut each event.
			checked := 0
			for i, e := range events {
				if e.Type != 0x5 && e.Type != EventSeparator {
					continue
				}
				checked++
				if s := sha256.Sum256(e.Data); !bytes.Equal(e.Digests[crypto.SHA256], s[:]) {
					t.Errorf("event %d: SHA-256 digest %x is not the hash of its data %q", i, e.Digests[crypto.SHA256], e.Data)
				}
			}
			if checked < 8 {
				t.Errorf("only %d action and separator events", checked)
			}
			// SeaBIOS's own tagged events are not onecloud configuration.
			if _, _, err := events[1].Config(); err != ErrOtherEvent {
				t.Errorf("SeaBIOS tagged event read as configuration: %v", err)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	hdr4, err := SpecID([]crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512})
	if err != nil {
		t.Fatal(err)
	}
	hdr1, err := SpecID([]crypto.Hash{crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	sha256Only := iplEvent()
	delete(sha256Only.Digests, crypto.SHA1)
	noDigests := Event{PCR: 0, Type: EventNoAction, Digests: map[crypto.Hash][]byte{}, Data: []byte("StartupLocality\x00\x03")}
	for _, tc := range []struct {
		name string
		log  func(t *testing.T) []byte
	}{
		{"SeaBIOS", func(t *testing.T) []byte { return readSeaBIOS(t) }},
		{"header only", func(t *testing.T) []byte { return mustMarshal(t, hdr4) }},
		{"one bank", func(t *testing.T) []byte { return mustMarshal(t, hdr1, sha256Only, sha256Only) }},
		{"fewer digests than banks, empty data", func(t *testing.T) []byte {
			e := sha256Only
			e.Data = []byte{}
			return mustMarshal(t, hdr4, e, noDigests)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.log(t)
			events, err := ParseLog(b)
			if err != nil {
				t.Fatal(err)
			}
			again, err := MarshalLog(events)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("MarshalLog(ParseLog(b)) differs:\n got %x\nwant %x", again, b)
			}
		})
	}
}

func mustMarshal(t *testing.T, events ...Event) []byte {
	t.Helper()
	b, err := MarshalLog(events)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseLogErrors(t *testing.T) {
	good := unhex(t, stripComments(goldenHeader+goldenIPL))
	const first = 32 + 37 // offset of the first TCG_PCR_EVENT2
	set := func(at int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[at:], v)
		return b
	}
	for _, tc := range []struct {
		name string
		log  []byte
		want string
	}{
		{"empty", nil, "too short for its first event"},
		{"not a log", []byte(strings.Repeat("hello, world ", 10)), "not a crypto-agile TCG log"},
		{"first event of another type", set(4, 0x0d), "not a crypto-agile TCG log"},
		{"header size beyond the end", set(28, 0xff, 0xff), "not a crypto-agile TCG log"},
		{"no algorithms", set(32+24, 0), "0 digest algorithms"},
		{"too many algorithms", set(32+24, 0xff), "255 digest algorithms"},
		{"wrong SHA-256 size", set(32+32+2, 0x21), "has digest size 33, want 32"},
		{"algorithm twice", set(32+32, 0x04, 0, 0x14), "listed twice"},
		{"zero digest size", set(32+32, 0x12, 0, 0, 0), "digest size 0"},
		{"vendor size beyond the header", set(32+36, 5), "vendor information"},
		{"truncated event header", good[:first+7], "event 1 at offset 69: 7 bytes left"},
		{"more digests than algorithms", set(first+8, 3), "3 digests, but the header lists 2"},
		{"unknown digest algorithm", set(first+12, 0x0c), "algorithm 0x000c is not in the Spec ID header"},
		{"digest algorithm twice", set(first+12+22, 0x04), "appears twice"},
		{"truncated digest", good[:first+12+2+10], "10 bytes left, want 20"},
		{"no event size", good[:first+12+22+34+2], "event size at +68: truncated"},
		{"event size beyond the end", set(first+12+22+34, 2), "2 bytes announced, 1 left"},
		{"garbage after the last event", append(bytes.Clone(good), 0, 0, 1), "event 2 at offset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := ParseLog(tc.log)
			if err == nil {
				t.Fatalf("ParseLog accepted it: %+v", events)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestMarshalLogErrors(t *testing.T) {
	hdr, err := SpecID([]crypto.Hash{crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	short := iplEvent()
	short.Digests = map[crypto.Hash][]byte{crypto.SHA256: {1, 2, 3}}
	for _, tc := range []struct {
		name   string
		events []Event
		want   string
	}{
		{"nothing", nil, "no events"},
		{"no header", []Event{iplEvent()}, "must be a Spec ID header"},
		{"digest of an unlisted bank", []Event{hdr, iplEvent()}, "the header does not list"},
		{"digest of the wrong size", []Event{hdr, short}, "digest of 3 bytes, want 32"},
		{"negative PCR", []Event{hdr, {PCR: -1}}, "PCR -1 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := MarshalLog(tc.events); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("MarshalLog error %v, want it to say %q", err, tc.want)
			}
		})
	}
	if _, err := SpecID(nil); err == nil {
		t.Error("SpecID(nil) succeeded")
	}
	if _, err := SpecID([]crypto.Hash{crypto.SHA256, crypto.SHA256}); err == nil {
		t.Error("SpecID with a bank twice succeeded")
	}
	if _, err := SpecID([]crypto.Hash{crypto.MD5}); err == nil {
		t.Error("SpecID with MD5 succeeded")
	}
}

func TestReplay(t *testing.T) {
	d1, d2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	ext := func(pcr, d []byte) []byte {
		s := sha256.Sum256(append(bytes.Clone(pcr), d...))
		return s[:]
	}
	zero := make([]byte, 32)
	locality3 := append(make([]byte, 31), 3)
	ev := func(pcr int, typ uint32, d []byte) Event {
		return Event{PCR: pcr, Type: typ, Digests: map[crypto.Hash][]byte{crypto.SHA256: d}}
	}
	for _, tc := range []struct {
		name   string
		events []Event
		want   map[int][]byte
	}{
		{"nothing", nil, map[int][]byte{}},
		{"two events, two PCRs", []Event{ev(13, EventIPL, d1), ev(13, EventTag, d2), ev(8, EventIPL, d2)},
			map[int][]byte{13: ext(ext(zero, d1), d2), 8: ext(zero, d2)}},
		{"no-action events are not extended", []Event{ev(13, EventNoAction, d1), ev(13, EventIPL, d2)},
			map[int][]byte{13: ext(zero, d2)}},
		{"startup locality 3", []Event{
			{PCR: 0, Type: EventNoAction, Data: []byte("StartupLocality\x00\x03")}, ev(0, EventSeparator, d1)},
			map[int][]byte{0: ext(locality3, d1)}},
		{"a missing digest leaves its PCR out", []Event{ev(13, EventIPL, d1), {PCR: 13, Type: EventIPL}, ev(8, EventIPL, d1)},
			map[int][]byte{8: ext(zero, d1)}},
		{"a short digest leaves its PCR out", []Event{ev(13, EventIPL, d1[:20])}, map[int][]byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Replay(tc.events, crypto.SHA256); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Replay = %x, want %x", got, tc.want)
			}
		})
	}
	// SHA-1 of the same events: each bank is replayed with its own digests.
	s := sha1.Sum(append(make([]byte, 20), bytes.Repeat([]byte{9}, 20)...))
	e := Event{PCR: 13, Type: EventIPL, Digests: map[crypto.Hash][]byte{crypto.SHA1: bytes.Repeat([]byte{9}, 20), crypto.SHA256: d1}}
	if got := Replay([]Event{e}, crypto.SHA1)[13]; !bytes.Equal(got, s[:]) {
		t.Fatalf("SHA-1 replay = %x, want %x", got, s)
	}
}

func FuzzParseLog(f *testing.F) {
	f.Add(readSeaBIOS(f))
	hdr, _ := SpecID([]crypto.Hash{crypto.SHA1, crypto.SHA256})
	good, _ := MarshalLog([]Event{hdr, iplEvent()})
	f.Add(good)
	f.Add(good[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		events, err := ParseLog(b)
		if err != nil {
			return
		}
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			Replay(events, h)
		}
		for _, e := range events {
			e.Image()
			e.Config()
		}
		// What parses must encode and parse back to the same events
		// (unless it holds digests of algorithms Go does not know).
		again, err := MarshalLog(events)
		if err != nil {
			return
		}
		events2, err := ParseLog(again)
		if err != nil {
			t.Fatalf("re-encoded log does not parse: %v", err)
		}
		if !reflect.DeepEqual(events, events2) {
			t.Fatalf("re-encoded log parses differently")
		}
	})
}
