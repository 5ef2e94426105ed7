package power

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func event(typ, code uint16, value int32) []byte {
	b := make([]byte, eventSize)
	binary.LittleEndian.PutUint16(b[16:], typ)
	binary.LittleEndian.PutUint16(b[18:], code)
	binary.LittleEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestWaitPress(t *testing.T) {
	var in bytes.Buffer
	in.Write(event(0, 0, 0))            // EV_SYN
	in.Write(event(evKey, 30, 1))       // KEY_A
	in.Write(event(evKey, keyPower, 0)) // a release alone is no press
	if err := WaitPress(context.Background(), bytes.NewReader(in.Bytes())); err == nil {
		t.Fatal("no press in the stream, yet WaitPress returned nil")
	}
	in.Write(event(evKey, keyPower, 1))
	if err := WaitPress(context.Background(), bytes.NewReader(in.Bytes())); err != nil {
		t.Fatalf("WaitPress: %v", err)
	}
}

func TestButtons(t *testing.T) {
	root := t.TempDir()
	for dev, caps := range map[string]string{
		"event0": "4",                                         // LNXPWRBN in QEMU, older layout: not here
		"event1": "10000000000000 0",                          // KEY_POWER (116 = bit 52 of word 1)
		"event2": "3 0 0 0 0 0 0 fffffffffffffffe 0 ffffffff", // a keyboard without KEY_POWER
	} {
		p := filepath.Join(root, "sys/class/input", dev, "device/capabilities/key")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(caps+"\n"), 0o444)
	}
	got, err := Buttons(filepath.Join(root, "sys"), "/dev")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/dev/input/event1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Buttons = %q, want %q", got, want)
	}
}

func TestHasKey(t *testing.T) {
	for _, tc := range []struct {
		bitmap string
		key    int
		want   bool
	}{
		{"10000000000000 0", keyPower, true},
		{"10000000000000", keyPower, false}, // only one word: key 116 is in word 1
		{"0 10000000000000", keyPower, false},
		{"1 0", 64, true},
		{"zz 0", 64, false},
	} {
		if got := hasKey(tc.bitmap, tc.key); got != tc.want {
			t.Errorf("hasKey(%q, %d) = %v, want %v", tc.bitmap, tc.key, got, tc.want)
		}
	}
}
