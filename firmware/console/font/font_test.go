package font

import (
	"bytes"
	"testing"
)

func TestGlyph(t *testing.T) {
	for _, tc := range []struct {
		r    rune
		wide bool
	}{
		{'A', false}, {' ', false}, {'é', false}, {'─', false}, {'▀', false}, {'█', false}, {'→', false},
		{'状', true}, {'态', true}, {'，', true}, {'。', true},
	} {
		b, wide, ok := Glyph(tc.r)
		if !ok {
			t.Errorf("Glyph(%q): not in the font", tc.r)
			continue
		}
		if wide != tc.wide {
			t.Errorf("Glyph(%q): wide = %v, want %v", tc.r, wide, tc.wide)
		}
		if want := map[bool]int{false: 16, true: 32}[tc.wide]; len(b) != want {
			t.Errorf("Glyph(%q): %d bytes, want %d", tc.r, len(b), want)
		}
		if tc.r != ' ' && bytes.Count(b, []byte{0}) == len(b) {
			t.Errorf("Glyph(%q) is blank", tc.r)
		}
	}
	// Unifont's 'A': rows 6-13 of 0x18 0x24 0x24 0x42 0x42 0x7E 0x42 0x42.
	a, _, _ := Glyph('A')
	if want := []byte{0, 0, 0, 0, 0x18, 0x24, 0x24, 0x42, 0x42, 0x7e, 0x42, 0x42, 0x42, 0x42, 0, 0}; !bytes.Equal(a, want) {
		t.Errorf("Glyph('A') = % x, want % x", a, want)
	}
	full, _, _ := Glyph('█')
	if !bytes.Equal(full, bytes.Repeat([]byte{0xff}, 16)) {
		t.Errorf("Glyph('█') = % x, want all set", full)
	}
}

func TestMissingGlyph(t *testing.T) {
	for _, tc := range []struct {
		r    rune
		wide bool
	}{{0x10ffff, false}, {'龘', true}, {-1, false}} {
		b, wide, ok := Glyph(tc.r)
		if ok {
			t.Errorf("Glyph(%U) found; pick a rune the console does not use", tc.r)
		}
		if wide != tc.wide || !bytes.Equal(b, Box(tc.wide)) {
			t.Errorf("Glyph(%U) = % x wide %v, want the box, wide %v", tc.r, b, wide, tc.wide)
		}
	}
	if b := Box(false); len(b) != 16 || b[2] != 0x7e || b[7] != 0x42 || b[0] != 0 {
		t.Errorf("Box(false) = % x", b)
	}
	if b := Box(true); len(b) != 32 || b[4] != 0x7f || b[5] != 0xfe || b[15] != 0x02 {
		t.Errorf("Box(true) = % x", b)
	}
}

// TestGlyphsSorted checks the index of the committed file: Glyph's binary
// search needs it sorted, and every bitmap inside the file.
func TestGlyphsSorted(t *testing.T) {
	n := Len()
	if n < 95+96+128+32 {
		t.Fatalf("glyphs.bin holds %d glyphs: regenerate it with go generate", n)
	}
	prev := rune(-1)
	for i := range n {
		e := entry(i)
		r, size := rune(e&^wideBit), 16
		if e&wideBit != 0 {
			size = 32
		}
		if r <= prev {
			t.Fatalf("entry %d: %U after %U", i, r, prev)
		}
		if off := int(u32(header + i*entrySize + 4)); off < header+n*entrySize || off+size > len(glyphs) {
			t.Fatalf("entry %d (%U): bitmap at %d outside the file", i, r, off)
		}
		prev = r
	}
}
