package pinhash

import (
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("731946")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, Prefix+"100000$") || strings.Contains(h, "731946") {
		t.Errorf("hash %q: want the format with the default cost and no PIN in it", h)
	}
	for _, tc := range []struct {
		pin  string
		want bool
	}{{"731946", true}, {"731947", false}, {"", false}, {"7319460", false}} {
		if ok, err := Verify(h, tc.pin); err != nil || ok != tc.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tc.pin, ok, err, tc.want)
		}
	}
	if h2, _ := Hash("731946"); h2 == h {
		t.Error("two hashes of one PIN are equal: the salt is not random")
	}
}

func TestBadInput(t *testing.T) {
	for _, pin := range []string{"123", "123456789", "12a4", " 1234"} {
		if _, err := Hash(pin); err == nil {
			t.Errorf("Hash(%q): no error", pin)
		}
	}
	for _, h := range []string{
		"", "1234", "sha1$1$a$b", Prefix + "10$c2FsdHNhbHQ$" + strings.Repeat("A", 43),
		Prefix + "100000$!!$" + strings.Repeat("A", 43), Prefix + "100000$c2FsdHNhbHQ$AAAA",
	} {
		if ok, err := Verify(h, "1234"); ok || err == nil {
			t.Errorf("Verify with hash %q: %v, %v; want an error", h, ok, err)
		}
	}
}
