package qr

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLinesShape(t *testing.T) {
	for _, text := range []string{"A", "PF2ABCDE 525400123456 525400123457", strings.Repeat("x", 300)} {
		m, err := Matrix(text)
		if err != nil {
			t.Fatalf("Matrix(%d bytes): %v", len(text), err)
		}
		lines, err := Lines(text)
		if err != nil {
			t.Fatalf("Lines: %v", err)
		}
		size := len(m) + 2*QuietZone
		if want := (size + 1) / 2; len(lines) != want {
			t.Errorf("%d modules: %d lines, want %d", len(m), len(lines), want)
		}
		for i, l := range lines {
			if n := utf8.RuneCountInString(l); n != size {
				t.Errorf("line %d is %d cells, want %d", i, n, size)
			}
		}
	}
}

// TestFinderPatterns checks the glyphs against the matrix where the
// standard fixes the modules: the three finder patterns are 7x7 squares
// whose outer ring is dark, with a light ring inside and a dark 3x3 core.
func TestFinderPatterns(t *testing.T) {
	lines, err := Lines("PF2ABCDE 525400123456")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Matrix("PF2ABCDE 525400123456")
	if err != nil {
		t.Fatal(err)
	}
	n := len(m)
	glyph := func(x, y int) rune { // module coordinates, quiet zone excluded
		row := []rune(lines[(y+QuietZone)/2])
		return row[x+QuietZone]
	}
	// QuietZone is even, so module row 0 is the top half of its line.
	for _, tc := range []struct {
		name string
		x, y int
		want rune
	}{
		{"top-left corner: dark over dark", 0, 0, full},
		{"top-left, row 6 over the light separator row 7", 0, 6, upper},
		{"top-left ring, light inner ring below", 1, 0, upper},
		{"top-left core", 3, 2, full},
		{"top-right corner", n - 1, 0, full},
		// A QR code has an odd number of modules, so with an even quiet
		// zone the last module row is the top half of a line over the
		// quiet zone.
		{"bottom-left corner over the quiet zone", 0, n - 1, upper},
		{"separator right of top-left finder", 7, 0, empty},
	} {
		if got := glyph(tc.x, tc.y); got != tc.want {
			t.Errorf("%s (%d,%d): %q, want %q", tc.name, tc.x, tc.y, got, tc.want)
		}
	}
	// The quiet zone is light all round.
	if strings.TrimSpace(lines[0]) != "" {
		t.Errorf("first line is not quiet: %q", lines[0])
	}
	for i, l := range lines {
		r := []rune(l)
		if r[0] != ' ' || r[1] != ' ' || r[len(r)-1] != ' ' || r[len(r)-2] != ' ' {
			t.Errorf("line %d has no quiet zone at its ends: %q", i, l)
		}
	}
}

func TestTooLong(t *testing.T) {
	_, err := Lines(strings.Repeat("\xff", 5000))
	if err == nil {
		t.Fatal("5000 bytes encoded without error")
	}
	if !strings.Contains(err.Error(), "5000 bytes") {
		t.Errorf("error does not say how long the text was: %v", err)
	}
}
