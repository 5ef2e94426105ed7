// Package cells is the screen of the node console as a grid of character
// cells: what the console's screens draw into, and what its two outputs
// turn into bytes (a VT100 serial terminal, package vt) or pixels (the
// framebuffer, package fb). It knows nothing of either.
//
// A Chinese character takes two cells, as on every terminal: the first
// cell holds the rune with Wide set, the second is a Continuation.
package cells

import "unicode"

// Color is one of the 16 colours a VT100-class terminal and the VGA text
// palette share.
type Color uint8

// The 16 colours, in ANSI order (SGR 30-37, then 90-97 for the bright ones).
const (
	Black Color = iota
	Red
	Green
	Yellow
	Blue
	Magenta
	Cyan
	White
	BrightBlack
	BrightRed
	BrightGreen
	BrightYellow
	BrightBlue
	BrightMagenta
	BrightCyan
	BrightWhite
)

// Cell is one character cell.
type Cell struct {
	R      rune
	FG, BG Color
	Bold   bool
	// Wide marks a rune that takes this cell and the next; Continuation
	// marks that next cell, which draws nothing of its own.
	Wide, Continuation bool
}

// Blank is an empty cell in the default colours.
var Blank = Cell{R: ' ', FG: White, BG: Black}

// Frame is a screen: Rows rows of Cols cells.
type Frame struct {
	Cols, Rows int
	Cells      []Cell // row-major, len Cols*Rows
}

// New is a blank frame.
func New(cols, rows int) *Frame {
	f := &Frame{Cols: cols, Rows: rows, Cells: make([]Cell, cols*rows)}
	for i := range f.Cells {
		f.Cells[i] = Blank
	}
	return f
}

// At is the cell at column x, row y (0-based); out of range gives Blank.
func (f *Frame) At(x, y int) Cell {
	if x < 0 || y < 0 || x >= f.Cols || y >= f.Rows {
		return Blank
	}
	return f.Cells[y*f.Cols+x]
}

// Width is how many cells r takes: 2 for East Asian wide and full-width
// characters (CJK ideographs, full-width punctuation), 0 for combining
// marks and control characters, else 1.
func Width(r rune) int {
	switch {
	case r < 0x20 || r == 0x7f:
		return 0
	case unicode.Is(unicode.Mn, r):
		return 0
	case isWide(r):
		return 2
	}
	return 1
}

// isWide covers the East Asian Wide and Fullwidth ranges the console can
// meet: CJK, Hangul, kana, full-width forms and CJK punctuation.
func isWide(r rune) bool {
	return (r >= 0x1100 && r <= 0x115f) || (r >= 0x2e80 && r <= 0x303e) || (r >= 0x3041 && r <= 0x33ff) ||
		(r >= 0x3400 && r <= 0x4dbf) || (r >= 0x4e00 && r <= 0x9fff) || (r >= 0xa000 && r <= 0xa4cf) ||
		(r >= 0xac00 && r <= 0xd7a3) || (r >= 0xf900 && r <= 0xfaff) || (r >= 0xfe30 && r <= 0xfe4f) ||
		(r >= 0xff00 && r <= 0xff60) || (r >= 0xffe0 && r <= 0xffe6)
}

// StringWidth is the cells s takes.
func StringWidth(s string) int {
	n := 0
	for _, r := range s {
		n += Width(r)
	}
	return n
}

// Put writes s at column x, row y in fg on bg and returns the column after
// it. Text that would run past the right edge is cut; a wide rune that
// does not fit in the last cell is left out rather than split.
func (f *Frame) Put(x, y int, s string, fg, bg Color, bold bool) int {
	if y < 0 || y >= f.Rows {
		return x
	}
	for _, r := range s {
		w := Width(r)
		if w == 0 {
			continue
		}
		if x < 0 || x+w > f.Cols {
			break
		}
		i := y*f.Cols + x
		f.set(i, Cell{R: r, FG: fg, BG: bg, Bold: bold, Wide: w == 2})
		if w == 2 {
			f.set(i+1, Cell{R: ' ', FG: fg, BG: bg, Bold: bold, Continuation: true})
		}
		x += w
	}
	return x
}

// Fill paints the cells of a rectangle with r in fg on bg.
func (f *Frame) Fill(x, y, w, h int, r rune, fg, bg Color) {
	for row := max(y, 0); row < min(y+h, f.Rows); row++ {
		for col := max(x, 0); col < min(x+w, f.Cols); col++ {
			f.set(row*f.Cols+col, Cell{R: r, FG: fg, BG: bg})
		}
	}
}

// set writes cell i; a wide rune it cuts in half is blanked whole, so that
// no half of a Chinese character is left to shift the rest of the row.
func (f *Frame) set(i int, c Cell) {
	old := f.Cells[i]
	if old.Continuation && !c.Continuation && i%f.Cols > 0 {
		head := &f.Cells[i-1]
		*head = Cell{R: ' ', FG: head.FG, BG: head.BG}
	}
	if old.Wide && !(c.Wide && i+1 < len(f.Cells)) && i%f.Cols < f.Cols-1 {
		tail := &f.Cells[i+1]
		*tail = Cell{R: ' ', FG: tail.FG, BG: tail.BG}
	}
	f.Cells[i] = c
}

// Text is the frame as plain text, one line per row with trailing blanks
// cut: what golden files and serial-console tests compare.
func (f *Frame) Text() string {
	var b []rune
	for y := range f.Rows {
		line := []rune{}
		for x := range f.Cols {
			c := f.Cells[y*f.Cols+x]
			if c.Continuation {
				continue
			}
			line = append(line, c.R)
		}
		for len(line) > 0 && line[len(line)-1] == ' ' {
			line = line[:len(line)-1]
		}
		b = append(b, line...)
		b = append(b, '\n')
	}
	return string(b)
}
