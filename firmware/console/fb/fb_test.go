package fb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/onecloud-edu/onecloud/firmware/console/cells"
	"github.com/onecloud-edu/onecloud/firmware/console/font"
)

// xrgb is what bochs DRM reports: 32 bits, blue in the low byte.
func xrgb(w, h uint32) VarScreenInfo {
	return VarScreenInfo{XRes: w, YRes: h, XResVirtual: w, YResVirtual: h, BitsPerPixel: 32,
		Red: Bitfield{Offset: 16, Length: 8}, Green: Bitfield{Offset: 8, Length: 8}, Blue: Bitfield{Length: 8}}
}

func rgb565(w, h uint32) VarScreenInfo {
	return VarScreenInfo{XRes: w, YRes: h, XResVirtual: w, YResVirtual: h, BitsPerPixel: 16,
		Red: Bitfield{Offset: 11, Length: 5}, Green: Bitfield{Offset: 5, Length: 6}, Blue: Bitfield{Length: 5}}
}

// fake is framebuffer memory with a line longer than the visible width,
// as real ones often have.
type fake struct {
	mem    []byte
	stride int
	bpp    int
}

func newFake(t *testing.T, v VarScreenInfo) (*Screen, *fake) {
	t.Helper()
	f := &fake{bpp: int(v.BitsPerPixel) / 8}
	f.stride = int(v.XRes)*f.bpp + 64
	f.mem = bytes.Repeat([]byte{0xee}, f.stride*int(v.YResVirtual))
	s, err := NewScreen(f.mem, v, f.stride)
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

func (f *fake) at(x, y int) uint32 {
	off := y*f.stride + x*f.bpp
	if f.bpp == 2 {
		return uint32(binary.NativeEndian.Uint16(f.mem[off:]))
	}
	return binary.NativeEndian.Uint32(f.mem[off:])
}

func TestGrid(t *testing.T) {
	s, _ := newFake(t, xrgb(1024, 768))
	if s.Cols() != 128 || s.Rows() != 48 || s.MaxCols() != 128 || s.MaxRows() != 48 {
		t.Errorf("1024x768: %dx%d cells (max %dx%d), want 128x48", s.Cols(), s.Rows(), s.MaxCols(), s.MaxRows())
	}
	if err := s.SetGrid(80, 25); err != nil || s.Cols() != 80 || s.Rows() != 25 {
		t.Errorf("SetGrid(80, 25): %v, %dx%d", err, s.Cols(), s.Rows())
	}
	for _, bad := range [][2]int{{129, 25}, {80, 49}, {0, 25}, {80, -1}} {
		if err := s.SetGrid(bad[0], bad[1]); err == nil {
			t.Errorf("SetGrid(%d, %d): no error", bad[0], bad[1])
		}
	}
}

func TestDraw32(t *testing.T) {
	s, fb := newFake(t, xrgb(64, 48)) // 8x3 cells
	f := cells.New(8, 3)
	f.Put(0, 0, " ", cells.White, cells.Blue, false)
	f.Put(2, 1, "状", cells.BrightWhite, cells.Black, false)
	if n := s.Draw(f); n != 24 {
		t.Errorf("first Draw drew %d cells, want all 24", n)
	}
	// The blue cell is blue to its edges, and its neighbours are black.
	for y := range 16 {
		for x := range 8 {
			if got := fb.at(x, y); got != 0x0000aa {
				t.Fatalf("pixel %d,%d of a blue cell is %#x", x, y, got)
			}
		}
	}
	if got := fb.at(8, 0); got != 0 {
		t.Errorf("the cell beside it is %#x, want black", got)
	}
	// 状 covers the 16x16 pixels of cells 2-3 of row 1, exactly as its
	// glyph says, and nothing outside them.
	bm, wide, ok := font.Glyph('状')
	if !ok || !wide {
		t.Fatal("the font has no wide 状")
	}
	lit := 0
	for y := range 48 {
		for x := range 64 {
			px := fb.at(x, y)
			inside := x >= 16 && x < 32 && y >= 16 && y < 32
			if !inside {
				if px == 0xffffff {
					t.Fatalf("pixel %d,%d outside the cell of 状 is lit", x, y)
				}
				continue
			}
			set := binary.BigEndian.Uint16(bm[2*(y-16):])&(0x8000>>(x-16)) != 0
			if want := map[bool]uint32{true: 0xffffff, false: 0}[set]; px != want {
				t.Fatalf("pixel %d,%d of 状 is %#x, want %#x", x, y, px, want)
			}
			if set {
				lit++
			}
		}
	}
	if lit < 30 {
		t.Errorf("状 lit only %d pixels", lit)
	}
	// Pixels past the visible line are not the screen's: untouched.
	if fb.mem[64*4] != 0xee {
		t.Error("Draw wrote past the end of a line")
	}

	// The same frame again writes nothing.
	for i := range fb.mem {
		fb.mem[i] = 0x5a
	}
	if n := s.Draw(f); n != 0 {
		t.Errorf("an unchanged frame drew %d cells", n)
	}
	if i := bytes.IndexFunc(fb.mem, func(r rune) bool { return r != 0x5a }); i >= 0 {
		t.Fatalf("an unchanged frame wrote byte %d", i)
	}
	// One changed cell writes that cell only.
	f.Put(7, 2, "x", cells.Red, cells.Black, true)
	if n := s.Draw(f); n != 1 {
		t.Errorf("one changed cell: drew %d", n)
	}
	for y := range 48 {
		for x := range 64 {
			inside := x >= 56 && y >= 32
			if touched := fb.at(x, y) != 0x5a5a5a5a; touched != inside {
				t.Fatalf("pixel %d,%d: written %v, want %v", x, y, touched, inside)
			}
		}
	}
	// Bold is the bright colour.
	if !hasPixel(fb, 56, 32, 8, 16, 0xff5555) {
		t.Error("a bold red x has no bright red pixel")
	}
	// Invalidate draws everything again.
	s.Invalidate()
	if n := s.Draw(f); n != 24 {
		t.Errorf("after Invalidate drew %d cells, want 24", n)
	}
}

func hasPixel(fb *fake, x0, y0, w, h int, px uint32) bool {
	for y := y0; y < y0+h; y++ {
		for x := x0; x < x0+w; x++ {
			if fb.at(x, y) == px {
				return true
			}
		}
	}
	return false
}

func TestDraw16(t *testing.T) {
	s, fb := newFake(t, rgb565(32, 16))
	f := cells.New(4, 1)
	f.Put(0, 0, " ", cells.White, cells.Blue, false)
	f.Put(1, 0, " ", cells.White, cells.Yellow, false)
	f.Put(2, 0, "█", cells.BrightWhite, cells.Black, false)
	s.Draw(f)
	for _, tc := range []struct {
		x    int
		want uint32
	}{
		{0, 0x0015}, // blue 0xaa: 21 of 31
		{8, 0xaaa0}, // VGA brown aa5500: red 21<<11, green 21<<5
		{16, 0xffff},
		{24, 0x0000},
	} {
		if got := fb.at(tc.x+3, 7); got != tc.want {
			t.Errorf("pixel %d,7 = %#04x, want %#04x", tc.x+3, got, tc.want)
		}
	}
}

func TestSetGridCentres(t *testing.T) {
	s, fb := newFake(t, xrgb(64, 48))
	if err := s.SetGrid(4, 1); err != nil {
		t.Fatal(err)
	}
	f := cells.New(4, 1)
	f.Put(0, 0, " ", cells.White, cells.Red, false)
	s.Draw(f)
	// The grid is 32x16 pixels, at 16,16.
	for _, tc := range []struct {
		x, y int
		want uint32
	}{{16, 16, 0xaa0000}, {23, 31, 0xaa0000}, {15, 16, 0}, {16, 15, 0}, {24, 16, 0}, {0, 0, 0}, {63, 47, 0}} {
		if got := fb.at(tc.x, tc.y); got != tc.want {
			t.Errorf("pixel %d,%d = %#x, want %#x", tc.x, tc.y, got, tc.want)
		}
	}
}

func TestPanned(t *testing.T) {
	v := xrgb(16, 16)
	v.YResVirtual, v.YOffset = 32, 16 // the second of two pages is shown
	s, fb := newFake(t, v)
	f := cells.New(2, 1)
	f.Put(0, 0, "  ", cells.White, cells.Green, false)
	s.Draw(f)
	if fb.at(0, 0) != 0xeeeeeeee || fb.at(0, 16) != 0x00aa00 {
		t.Errorf("drew on the hidden page: %#x, shown %#x", fb.at(0, 0), fb.at(0, 16))
	}
}

func TestMismatchedWidths(t *testing.T) {
	// A narrow glyph in a wide cell is centred; a wide one in a narrow
	// cell squeezed into its 8 columns.
	a, _, _ := font.Glyph('A')
	got := glyph('A', 2)
	for i := range got {
		if got[i] != uint16(a[i])<<4 {
			t.Fatalf("row %d of a centred A: %#04x", i, got[i])
		}
	}
	squeezed := glyph('状', 1)
	lit := false
	for _, r := range squeezed {
		if r&0x00ff != 0 {
			t.Fatalf("a squeezed wide glyph spills out of its cell: %#04x", r)
		}
		lit = lit || r != 0
	}
	if !lit {
		t.Error("a squeezed 状 is blank")
	}
	// An orphan continuation or a wide rune in the last column: a blank
	// cell in its colours.
	s, fb := newFake(t, xrgb(16, 16))
	f := cells.New(2, 1)
	f.Cells[0] = cells.Cell{Continuation: true, BG: cells.Cyan}
	f.Cells[1] = cells.Cell{R: '状', Wide: true, FG: cells.White, BG: cells.Cyan}
	s.Draw(f)
	for x := range 16 {
		if got := fb.at(x, 8); got != 0x00aaaa {
			t.Fatalf("pixel %d,8 = %#x, want cyan", x, got)
		}
	}
}

func TestNewScreenRefuses(t *testing.T) {
	v8 := xrgb(64, 48)
	v8.BitsPerPixel = 8
	bgr := xrgb(64, 48)
	bgr.Red.Length = 0
	for _, tc := range []struct {
		name   string
		v      VarScreenInfo
		mem    int
		stride int
	}{
		{"8 bits per pixel", v8, 64 * 48, 64},
		{"no red channel", bgr, 64 * 48 * 4, 64 * 4},
		{"memory too small", xrgb(64, 48), 64*48*4 - 1, 64 * 4},
		{"line too short", xrgb(64, 48), 64 * 48 * 4, 63 * 4},
		{"smaller than a cell", xrgb(7, 48), 7 * 48 * 4, 7 * 4},
	} {
		if _, err := NewScreen(make([]byte, tc.mem), tc.v, tc.stride); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestStructLayout(t *testing.T) {
	if n := unsafe.Sizeof(VarScreenInfo{}); n != 160 {
		t.Errorf("VarScreenInfo is %d bytes; struct fb_var_screeninfo is 160", n)
	}
	want := uintptr(80) // struct fb_fix_screeninfo on 64-bit Linux
	if unsafe.Sizeof(uintptr(0)) == 4 {
		want = 68
	}
	if n := unsafe.Sizeof(fixScreenInfo{}); n != want {
		t.Errorf("fixScreenInfo is %d bytes, want %d", n, want)
	}
	if off := unsafe.Offsetof(fixScreenInfo{}.LineLength); off != 48 && want == 80 {
		t.Errorf("line_length at %d, want 48", off)
	}
}

func TestOpenNotAFramebuffer(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "fb0"), ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing device: %v", err)
	}
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p, ""); err == nil {
		t.Error("a regular file opened as a framebuffer")
	}
}
