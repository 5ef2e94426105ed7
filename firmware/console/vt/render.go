// Package vt is the node console on a VT100-class terminal: the serial
// console, or the Linux text console when the box has no framebuffer. A
// Renderer turns frames into the escape sequences that draw them, sending
// only what changed, because the serial line runs at 115200 baud (about
// 11 KB/s: a full 80x25 screen takes a fifth of a second, a ticking clock
// should take a few bytes). A KeyReader turns what the terminal sends back
// into keys. MakeRaw and Size set up the tty both work on.
package vt

import (
	"fmt"
	"io"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/onecloud-edu/onecloud/firmware/console/cells"
)

// maxGap is the widest run of unchanged cells written over rather than
// jumped: a cursor move costs six to eight bytes.
const maxGap = 4

// Renderer draws frames on a terminal. It is not safe for concurrent use.
type Renderer struct {
	w    io.Writer
	prev *cells.Frame // what the terminal shows; nil: unknown
	buf  []byte

	// The terminal's state after the last write; valid only while prev is
	// not nil.
	x, y int // cursor, 0-based; x may be cols (after the last column)
	attr attr
}

// unknown is a colour no cell has, so the first cell sets both.
const unknown cells.Color = 255

type attr struct {
	fg, bg cells.Color
	bold   bool
}

// NewRenderer draws on w. Its first Render redraws the whole screen.
func NewRenderer(w io.Writer) *Renderer { return &Renderer{w: w} }

// Invalidate makes the next Render redraw the whole screen: for Ctrl-L, a
// terminal newly connected, or one that may have been written over.
func (r *Renderer) Invalidate() { r.prev = nil }

// Render brings the terminal from the last frame to f with one Write.
// After a write error the next Render redraws everything.
func (r *Renderer) Render(f *cells.Frame) error {
	r.buf = r.buf[:0]
	if r.prev == nil || r.prev.Cols != f.Cols || r.prev.Rows != f.Rows {
		r.full(f)
	} else {
		r.diff(f)
	}
	if len(r.buf) == 0 {
		return nil
	}
	if _, err := r.w.Write(r.buf); err != nil {
		r.prev = nil
		return fmt.Errorf("writing the console to the terminal: %w", err)
	}
	return nil
}

// Restore gives the terminal back as it was found: default colours,
// cursor shown, line wrap on, screen cleared.
func (r *Renderer) Restore() error {
	r.prev = nil
	if _, err := io.WriteString(r.w, "\x1b[0m\x1b[?25h\x1b[?7h\x1b[H\x1b[2J"); err != nil {
		return fmt.Errorf("restoring the terminal: %w", err)
	}
	return nil
}

// full redraws every cell. Auto-wrap is turned off so that writing the
// bottom-right cell cannot scroll the screen on terminals that wrap
// eagerly.
func (r *Renderer) full(f *cells.Frame) {
	r.buf = append(r.buf, "\x1b[0m\x1b[?25l\x1b[?7l\x1b[H\x1b[2J"...)
	r.x, r.y = 0, 0
	r.attr = attr{fg: unknown, bg: unknown} // after SGR 0: the terminal's own defaults
	for y := range f.Rows {
		r.run(f, y, 0, f.Cols)
	}
	r.keep(f)
}

// diff writes the runs of changed cells of each row.
func (r *Renderer) diff(f *cells.Frame) {
	for y := range f.Rows {
		row, old := f.Cells[y*f.Cols:(y+1)*f.Cols], r.prev.Cells[y*f.Cols:(y+1)*f.Cols]
		for x := 0; x < f.Cols; {
			if row[x] == old[x] {
				x++
				continue
			}
			start, end := x, x+1
			for gap := 0; end+gap < f.Cols && gap <= maxGap; {
				if row[end+gap] != old[end+gap] {
					end += gap + 1
					gap = 0
				} else {
					gap++
				}
			}
			// A wide rune is written whole: start at it when only its
			// continuation changed, and end after its continuation.
			if row[start].Continuation && start > 0 && row[start-1].Wide {
				start--
			}
			if row[end-1].Wide && end < f.Cols {
				end++
			}
			r.run(f, y, start, end)
			x = end
		}
	}
	r.keep(f)
}

// keep remembers f as what the terminal shows.
func (r *Renderer) keep(f *cells.Frame) {
	if r.prev == nil || len(r.prev.Cells) != len(f.Cells) {
		r.prev = &cells.Frame{Cells: make([]cells.Cell, len(f.Cells))}
	}
	r.prev.Cols, r.prev.Rows = f.Cols, f.Rows
	copy(r.prev.Cells, f.Cells)
}

// run writes the cells [start, end) of row y.
func (r *Renderer) run(f *cells.Frame, y, start, end int) {
	r.move(start, y)
	for x := start; x < end; x++ {
		c := f.Cells[y*f.Cols+x]
		r.sgr(attr{fg: c.FG & 15, bg: c.BG & 15, bold: c.Bold})
		switch {
		case c.Wide && x+1 < f.Cols:
			// The terminal moves two columns; the next cell, its
			// continuation, draws nothing of its own.
			if cells.Width(c.R) == 2 && unicode.IsPrint(c.R) {
				r.buf = utf8.AppendRune(r.buf, c.R)
			} else {
				r.buf = append(r.buf, printable(c.R), ' ')
			}
			x++
			r.x += 2
		default:
			// A narrow cell, an orphan continuation, or a wide rune
			// with no room left: exactly one column, whatever the rune,
			// so the cursor stays where the renderer thinks it is and
			// no control character reaches the terminal.
			if c.Continuation || c.Wide || cells.Width(c.R) != 1 || !unicode.IsPrint(c.R) {
				r.buf = append(r.buf, ' ')
			} else {
				r.buf = utf8.AppendRune(r.buf, c.R)
			}
			r.x++
		}
	}
}

// printable is a narrow stand-in for a rune marked wide that is not.
func printable(rn rune) byte {
	if rn >= 0x20 && rn < 0x7f {
		return byte(rn)
	}
	return ' '
}

// move puts the cursor at column x, row y (0-based) unless it is there.
// Always by cursor addressing, never CR LF: on a terminal with fewer rows
// than the frame a line feed would scroll the whole screen.
func (r *Renderer) move(x, y int) {
	if x == r.x && y == r.y {
		return
	}
	r.buf = append(r.buf, "\x1b["...)
	if x == 0 && y == 0 {
		r.buf = append(r.buf, 'H')
	} else {
		r.buf = strconv.AppendInt(r.buf, int64(y+1), 10)
		r.buf = append(r.buf, ';')
		r.buf = strconv.AppendInt(r.buf, int64(x+1), 10)
		r.buf = append(r.buf, 'H')
	}
	r.x, r.y = x, y
}

// sgr sets the colours and weight, sending only what changed. Turning
// bold off needs a reset (SGR 22 is not VT100), after which both colours
// are sent again.
func (r *Renderer) sgr(a attr) {
	if a == r.attr {
		return
	}
	r.buf = append(r.buf, "\x1b["...)
	reset := r.attr.bold && !a.bold
	if reset {
		r.buf = append(r.buf, "0;"...)
	}
	if a.bold && (reset || !r.attr.bold) {
		r.buf = append(r.buf, "1;"...)
	}
	if reset || a.fg != r.attr.fg {
		r.buf = strconv.AppendInt(r.buf, int64(colour(a.fg, 30, 90)), 10)
		r.buf = append(r.buf, ';')
	}
	if reset || a.bg != r.attr.bg {
		r.buf = strconv.AppendInt(r.buf, int64(colour(a.bg, 40, 100)), 10)
		r.buf = append(r.buf, ';')
	}
	r.buf[len(r.buf)-1] = 'm'
	r.attr = a
}

// colour is the SGR parameter of c: base+c for the first eight colours,
// bright+c-8 for the bright ones.
func colour(c cells.Color, base, bright int) int {
	if c >= 8 {
		return bright + int(c) - 8
	}
	return base + int(c)
}
