package measure

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func TestImageEvent(t *testing.T) {
	sum := sha256.Sum256([]byte("kernel"))
	data := imageData("slot-a/vmlinuz", sum[:])
	if want := "onecloud image slot-a/vmlinuz sha256:"; !bytes.HasPrefix(data, []byte(want)) || len(data) != len(want)+64 {
		t.Fatalf("image data %q", data)
	}
	for _, tc := range []struct {
		name     string
		e        Event
		wantName string
		wantErr  string // "" for success; "other" for ErrOtherEvent
	}{
		{"measured image", Event{Type: EventIPL, Data: data, Digests: map[crypto.Hash][]byte{crypto.SHA256: sum[:]}}, "slot-a/vmlinuz", ""},
		{"name with spaces", Event{Type: EventIPL, Data: imageData("slot A kernel", sum[:])}, "slot A kernel", ""},
		{"other type", Event{Type: EventTag, Data: data}, "", "other"},
		{"GRUB's EV_IPL", Event{Type: EventIPL, Data: []byte("grub_cmd: linux /vmlinuz\x00")}, "", "other"},
		{"no hash", Event{Type: EventIPL, Data: []byte("onecloud image x")}, "", "other"},
		{"bad hex", Event{Type: EventIPL, Data: []byte("onecloud image x sha256:zz")}, "", "not 64 hex digits"},
		{"short hash", Event{Type: EventIPL, Data: []byte("onecloud image x sha256:abcd")}, "", "not 64 hex digits"},
		{"data disagrees with digest", Event{Type: EventIPL, Data: data,
			Digests: map[crypto.Hash][]byte{crypto.SHA256: make([]byte, 32)}}, "", "the log was altered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, got, err := tc.e.Image()
			switch {
			case tc.wantErr == "other":
				if !errors.Is(err, ErrOtherEvent) {
					t.Fatalf("err = %v, want ErrOtherEvent", err)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case name != tc.wantName || !bytes.Equal(got, sum[:]):
				t.Fatalf("Image() = %q %x", name, got)
			}
		})
	}
}

func TestConfigEvent(t *testing.T) {
	cfg := []byte(`{"role":"vdi"}`)
	d := configData("role", cfg)
	wantData := append([]byte{0x47, 0x46, 0x43, 0x4F, 19, 0, 0, 0}, "role\x00"+string(cfg)...)
	if !bytes.Equal(d, wantData) {
		t.Fatalf("config data %x, want %x", d, wantData)
	}
	s1, s256 := sha1.Sum(d), sha256.Sum256(d)
	good := Event{Type: EventTag, Data: d, Digests: map[crypto.Hash][]byte{crypto.SHA1: s1[:], crypto.SHA256: s256[:]}}
	with := func(f func(e *Event)) Event {
		e := good
		e.Digests = map[crypto.Hash][]byte{crypto.SHA1: s1[:], crypto.SHA256: s256[:]}
		e.Data = bytes.Clone(d)
		f(&e)
		return e
	}
	for _, tc := range []struct {
		name    string
		e       Event
		wantErr string
	}{
		{"measured configuration", good, ""},
		{"other type", with(func(e *Event) { e.Type = EventIPL }), "other"},
		{"other tag", with(func(e *Event) { e.Data[0] = 1 }), "other"},
		{"short", with(func(e *Event) { e.Data = e.Data[:6] }), "other"},
		{"size disagrees", with(func(e *Event) { e.Data[4] = 20 }), "20 bytes announced"},
		{"no kind", with(func(e *Event) { e.Data = append(e.Data[:4], 4, 0, 0, 0, 'r', 'o', 'l', 'e') }), "no valid kind"},
		{"changed data", with(func(e *Event) { e.Data[len(e.Data)-3] = 'x' }), "the log was altered"},
		{"changed SHA-1 digest only", with(func(e *Event) { e.Digests[crypto.SHA1] = make([]byte, 20) }), "SHA-1 digest"},
		{"no digests", with(func(e *Event) { e.Digests = nil }), "no digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, data, err := tc.e.Config()
			switch {
			case tc.wantErr == "other":
				if !errors.Is(err, ErrOtherEvent) {
					t.Fatalf("err = %v, want ErrOtherEvent", err)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case kind != "role" || !bytes.Equal(data, cfg):
				t.Fatalf("Config() = %q %q", kind, data)
			}
		})
	}
}

func TestRoleCanonical(t *testing.T) {
	for _, tc := range []struct {
		r    Role
		want string
	}{
		{Role{}, `{"id":"","role":"","school":"","server":""}`},
		{Role{ID: "oc-525400123456", Role: "vdi", School: "s01", Server: "http://10.77.1.1:8080/a?b=1&c=<2>"},
			`{"id":"oc-525400123456","role":"vdi","school":"s01","server":"http://10.77.1.1:8080/a?b=1&c=<2>"}`},
	} {
		if got := string(tc.r.Canonical()); got != tc.want {
			t.Errorf("Canonical() = %s, want %s", got, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"release.json", true}, {"slot A kernel", true}, {"", false}, {"a\nb", false},
		{strings.Repeat("x", 201), false}, {"\xff", false},
	} {
		if err := checkName("image name", tc.name); (err == nil) != tc.ok {
			t.Errorf("checkName(%q) = %v", tc.name, err)
		}
	}
	for _, tc := range []struct {
		kind string
		ok   bool
	}{
		{"role", true}, {"net-static", true}, {"", false}, {"Role", false}, {"a b", false}, {strings.Repeat("a", 33), false},
	} {
		if err := checkKind(tc.kind); (err == nil) != tc.ok {
			t.Errorf("checkKind(%q) = %v", tc.kind, err)
		}
	}
}
