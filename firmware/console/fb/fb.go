// Package fb draws the node console on the box's own screen through the
// Linux framebuffer (/dev/fb0; the bochs DRM driver's in QEMU), because
// the Linux text console cannot draw Chinese. Each cell is 8x16 pixels (a
// wide cell 16x16) of package font, in the 16 VGA colours, and only the
// cells that changed since the last frame are drawn.
//
// A Screen draws into any byte slice laid out as the framebuffer says
// (VarScreenInfo, line length); Open maps the real one and puts the text
// console behind it in graphics mode so fbcon's cursor and kernel messages
// do not draw over it.
package fb

import (
	"encoding/binary"
	"fmt"

	"github.com/onecloud-edu/onecloud/firmware/console/cells"
	"github.com/onecloud-edu/onecloud/firmware/console/font"
)

// Cell size in pixels; a wide cell is two cells.
const (
	CellWidth  = 8
	CellHeight = font.Height
)

// Bitfield is struct fb_bitfield: where one colour channel sits in a pixel.
type Bitfield struct {
	Offset, Length, MSBRight uint32
}

// VarScreenInfo is struct fb_var_screeninfo (linux/fb.h), as
// FBIOGET_VSCREENINFO fills it.
type VarScreenInfo struct {
	XRes, YRes               uint32 // visible resolution
	XResVirtual, YResVirtual uint32
	XOffset, YOffset         uint32 // of the visible part in the virtual one
	BitsPerPixel             uint32
	Grayscale                uint32
	Red, Green, Blue, Transp Bitfield
	NonStd                   uint32
	Activate                 uint32
	Height, Width            uint32 // in mm
	AccelFlags               uint32
	Pixclock                 uint32
	LeftMargin, RightMargin  uint32
	UpperMargin, LowerMargin uint32
	HSyncLen, VSyncLen       uint32
	Sync, VMode, Rotate      uint32
	Colorspace               uint32
	Reserved                 [4]uint32
}

// palette is the VGA text-mode colours, in cells.Color (ANSI) order: the
// colours of the Linux console the technician knows.
func palette(c cells.Color) (r, g, b uint8) {
	switch c & 15 {
	case cells.Black:
		return 0x00, 0x00, 0x00
	case cells.Red:
		return 0xaa, 0x00, 0x00
	case cells.Green:
		return 0x00, 0xaa, 0x00
	case cells.Yellow:
		return 0xaa, 0x55, 0x00 // VGA's brown
	case cells.Blue:
		return 0x00, 0x00, 0xaa
	case cells.Magenta:
		return 0xaa, 0x00, 0xaa
	case cells.Cyan:
		return 0x00, 0xaa, 0xaa
	case cells.White:
		return 0xaa, 0xaa, 0xaa
	case cells.BrightBlack:
		return 0x55, 0x55, 0x55
	case cells.BrightRed:
		return 0xff, 0x55, 0x55
	case cells.BrightGreen:
		return 0x55, 0xff, 0x55
	case cells.BrightYellow:
		return 0xff, 0xff, 0x55
	case cells.BrightBlue:
		return 0x55, 0x55, 0xff
	case cells.BrightMagenta:
		return 0xff, 0x55, 0xff
	case cells.BrightCyan:
		return 0x55, 0xff, 0xff
	}
	return 0xff, 0xff, 0xff
}

// Screen draws frames into framebuffer memory. It is not safe for
// concurrent use.
type Screen struct {
	mem    []byte
	bpp    int // bytes per pixel: 2 or 4
	stride int // bytes per line
	base   int // offset of the visible top-left pixel
	xres   int
	yres   int
	pixels [16]uint32 // the palette as pixel values

	cols, rows int // the grid drawn
	ox, oy     int // its top-left pixel
	prev       []cells.Cell
	valid      bool // prev is what the memory shows
}

// NewScreen draws into mem, laid out as v and lineLength (the
// FBIOGET_FSCREENINFO line_length, bytes per line) say. Only 32 and 16
// bits per pixel are supported: bochs DRM gives XRGB8888, and RGB565 is
// the common other; an 8-bit palette mode is refused.
func NewScreen(mem []byte, v VarScreenInfo, lineLength int) (*Screen, error) {
	s := &Screen{mem: mem, stride: lineLength, xres: int(v.XRes), yres: int(v.YRes)}
	switch v.BitsPerPixel {
	case 32:
		s.bpp = 4
	case 16:
		s.bpp = 2
	default:
		return nil, fmt.Errorf("framebuffer has %d bits per pixel; the console draws 32 or 16 (boot with a video mode that has them)", v.BitsPerPixel)
	}
	if v.Red.Length == 0 || v.Green.Length == 0 || v.Blue.Length == 0 || v.Red.Length > 8 || v.Green.Length > 8 || v.Blue.Length > 8 {
		return nil, fmt.Errorf("framebuffer colour layout red %d:%d green %d:%d blue %d:%d is not a true-colour one the console draws",
			v.Red.Offset, v.Red.Length, v.Green.Offset, v.Green.Length, v.Blue.Offset, v.Blue.Length)
	}
	s.base = int(v.YOffset)*lineLength + int(v.XOffset)*s.bpp
	if s.xres < CellWidth || s.yres < CellHeight || lineLength < s.xres*s.bpp ||
		s.base+(s.yres-1)*lineLength+s.xres*s.bpp > len(mem) {
		return nil, fmt.Errorf("framebuffer of %dx%d at %d bytes a line does not fit its %d bytes of memory", s.xres, s.yres, lineLength, len(mem))
	}
	for c := range s.pixels {
		r, g, b := palette(cells.Color(c))
		s.pixels[c] = channel(r, v.Red) | channel(g, v.Green) | channel(b, v.Blue)
	}
	s.cols, s.rows = s.MaxCols(), s.MaxRows()
	return s, nil
}

// channel places the 8-bit value c in a pixel as f says, keeping its top
// f.Length bits.
func channel(c uint8, f Bitfield) uint32 {
	return uint32(c) >> (8 - f.Length) << f.Offset
}

// MaxCols and MaxRows are the largest grid the resolution holds: 128x48
// at 1024x768.
func (s *Screen) MaxCols() int { return s.xres / CellWidth }

// MaxRows: see MaxCols.
func (s *Screen) MaxRows() int { return s.yres / CellHeight }

// Cols and Rows are the grid Draw draws: MaxCols x MaxRows unless SetGrid
// chose a smaller one.
func (s *Screen) Cols() int { return s.cols }

// Rows: see Cols.
func (s *Screen) Rows() int { return s.rows }

// SetGrid draws a grid of cols x rows cells centred on the screen, the
// rest black: for a UI designed for 80x25 on a large screen. The next
// Draw redraws everything.
func (s *Screen) SetGrid(cols, rows int) error {
	if cols < 1 || rows < 1 || cols > s.MaxCols() || rows > s.MaxRows() {
		return fmt.Errorf("a grid of %dx%d cells does not fit the %dx%d screen (at most %dx%d)", cols, rows, s.xres, s.yres, s.MaxCols(), s.MaxRows())
	}
	s.cols, s.rows = cols, rows
	s.ox = (s.xres - cols*CellWidth) / 2
	s.oy = (s.yres - rows*CellHeight) / 2
	s.Invalidate()
	return nil
}

// Invalidate makes the next Draw paint every pixel: after someone else
// (fbcon, a VT switch) may have drawn on the screen.
func (s *Screen) Invalidate() { s.valid = false }

// Draw shows f in the grid and returns how many cells it drew: none when
// nothing changed. Cells of f outside the grid are cut; grid cells
// outside f are blank.
func (s *Screen) Draw(f *cells.Frame) int {
	if !s.valid {
		s.clear()
		s.prev = make([]cells.Cell, s.cols*s.rows)
	}
	drawn := 0
	for y := range s.rows {
		for x := 0; x < s.cols; x++ {
			c := f.At(x, y)
			i := y*s.cols + x
			if c.Wide && x+1 < s.cols {
				next := f.At(x+1, y)
				if !s.valid || c != s.prev[i] || next != s.prev[i+1] {
					s.cell(x, y, c, 2)
					s.prev[i], s.prev[i+1] = c, next
					drawn += 2
				}
				x++
				continue
			}
			if s.valid && c == s.prev[i] {
				continue
			}
			if c.Continuation || c.Wide {
				// An orphan continuation, or a wide rune in the last
				// column: a blank cell in its colours.
				c.R = ' '
			}
			s.cell(x, y, c, 1)
			s.prev[i] = c
			drawn++
		}
	}
	s.valid = true
	return drawn
}

// clear paints the whole visible screen black.
func (s *Screen) clear() {
	for y := range s.yres {
		s.fill(0, y, s.xres, s.pixels[cells.Black])
	}
}

func (s *Screen) fill(x, y, w int, px uint32) {
	off := s.base + y*s.stride + x*s.bpp
	for range w {
		s.put(off, px)
		off += s.bpp
	}
}

func (s *Screen) put(off int, px uint32) {
	if s.bpp == 4 {
		binary.NativeEndian.PutUint32(s.mem[off:], px)
	} else {
		binary.NativeEndian.PutUint16(s.mem[off:], uint16(px))
	}
}

// cell draws c over w cells (1, or 2 for a wide rune) at column x, row y.
// Bold is drawn as the bright colour, as the VGA text console does.
func (s *Screen) cell(x, y int, c cells.Cell, w int) {
	fgc := c.FG & 15
	if c.Bold && fgc < 8 {
		fgc += 8
	}
	fg, bg := s.pixels[fgc], s.pixels[c.BG&15]
	bits := glyph(c.R, w)
	px0 := s.ox + x*CellWidth
	for row := range CellHeight {
		off := s.base + (s.oy+y*CellHeight+row)*s.stride + px0*s.bpp
		line := bits[row]
		for col := range w * CellWidth {
			px := bg
			if line&(1<<(15-col)) != 0 {
				px = fg
			}
			s.put(off, px)
			off += s.bpp
		}
	}
}

// glyph is r as 16 rows of 16 bits, leftmost pixel in the top bit, sized
// for w cells: a glyph narrower than its cells is centred, a wide glyph in
// one cell is squeezed (each pair of columns ORed) rather than cut.
func glyph(r rune, w int) [CellHeight]uint16 {
	var rows [CellHeight]uint16
	if r == ' ' {
		return rows
	}
	bm, wide, _ := font.Glyph(r)
	for i := range rows {
		switch {
		case wide && w == 2:
			rows[i] = binary.BigEndian.Uint16(bm[2*i:])
		case !wide && w == 1:
			rows[i] = uint16(bm[i]) << 8
		case !wide: // narrow glyph, wide cell
			rows[i] = uint16(bm[i]) << 4
		default: // wide glyph, narrow cell
			v := binary.BigEndian.Uint16(bm[2*i:])
			var n uint16
			for b := range 8 {
				if v&(0xc000>>(2*b)) != 0 {
					n |= 0x8000 >> b
				}
			}
			rows[i] = n
		}
	}
	return rows
}
