package vt

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/firmware/console/cells"
)

// writes records each Write, to check how many bytes and calls a frame costs.
type writes struct{ calls [][]byte }

func (w *writes) Write(b []byte) (int, error) {
	w.calls = append(w.calls, bytes.Clone(b))
	return len(b), nil
}

func (w *writes) last() string {
	if len(w.calls) == 0 {
		return ""
	}
	return string(w.calls[len(w.calls)-1])
}

const clear = "\x1b[0m\x1b[?25l\x1b[?7l\x1b[H\x1b[2J"

func smallFrame() *cells.Frame {
	f := cells.New(6, 2)
	f.Put(0, 0, "状a", cells.Red, cells.Black, true)
	f.Put(0, 1, "ok", cells.BrightWhite, cells.Blue, false)
	return f
}

func TestRenderFull(t *testing.T) {
	var w writes
	r := NewRenderer(&w)
	if err := r.Render(smallFrame()); err != nil {
		t.Fatal(err)
	}
	want := clear +
		"\x1b[1;31;40m状a" + "\x1b[0;37;40m   " +
		"\x1b[2;1H" + "\x1b[97;44mok" + "\x1b[37;40m    "
	if len(w.calls) != 1 || w.last() != want {
		t.Errorf("full redraw in %d writes:\n got %q\nwant %q", len(w.calls), w.last(), want)
	}
}

func TestRenderDiff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f *cells.Frame)
		want   string
	}{
		{"nothing", func(*cells.Frame) {}, ""},
		{"one rune, new colours", func(f *cells.Frame) { f.Put(2, 0, "b", cells.Red, cells.Black, true) }, "\x1b[1;3H\x1b[1;31mb"},
		{"same colours as the last cell written", func(f *cells.Frame) { f.Put(5, 1, "z", cells.White, cells.Black, false) }, "\x1b[2;6Hz"},
		{"bold off needs a reset", func(f *cells.Frame) { f.Put(2, 0, "b", cells.Red, cells.Black, false) }, "\x1b[1;3H\x1b[31mb"},
		{"a short gap is written over", func(f *cells.Frame) {
			f.Put(1, 1, "K", cells.BrightWhite, cells.Blue, false)
			f.Put(4, 1, "x", cells.White, cells.Black, false)
		}, "\x1b[2;2H\x1b[97;44mK\x1b[37;40m  x"},
		{"wide replaced by wide", func(f *cells.Frame) { f.Put(0, 0, "态", cells.Red, cells.Black, true) }, "\x1b[H\x1b[1;31m态"},
		{"wide replaced by two narrow", func(f *cells.Frame) { f.Put(0, 0, "xy", cells.Red, cells.Black, true) }, "\x1b[H\x1b[1;31mxy"},
		{"only the continuation changed", func(f *cells.Frame) { f.Cells[1].BG = cells.Green }, "\x1b[H\x1b[1;31m状"},
		{"control characters never reach the terminal", func(f *cells.Frame) {
			f.Cells[3] = cells.Cell{R: 0x1b, FG: cells.White}
			f.Cells[4] = cells.Cell{R: 0x9b, FG: cells.White}
			f.Cells[5] = cells.Cell{R: '状', FG: cells.White} // wide rune in a narrow cell
		}, "\x1b[1;4H   "},
		{"wide rune with no room in the last column", func(f *cells.Frame) {
			f.Cells[11] = cells.Cell{R: '状', Wide: true, FG: cells.White}
		}, "\x1b[2;6H "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w writes
			r := NewRenderer(&w)
			if err := r.Render(smallFrame()); err != nil {
				t.Fatal(err)
			}
			f := smallFrame()
			tc.change(f)
			if err := r.Render(f); err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if len(w.calls) != 1 {
					t.Errorf("an unchanged frame wrote %q", w.last())
				}
				return
			}
			if len(w.calls) != 2 || w.last() != tc.want {
				t.Errorf("diff in %d writes:\n got %q\nwant %q", len(w.calls)-1, w.last(), tc.want)
			}
		})
	}
}

func TestRenderClockTick(t *testing.T) {
	var w writes
	r := NewRenderer(&w)
	f := cells.New(80, 25)
	f.Put(0, 0, "状态", cells.BrightWhite, cells.Blue, true)
	f.Put(72, 0, "12:00:00", cells.White, cells.Black, false)
	if err := r.Render(f); err != nil {
		t.Fatal(err)
	}
	if n := len(w.last()); n < 2000 {
		t.Errorf("full redraw of 80x25 is %d bytes; it cannot be under 2000", n)
	}
	f.Put(72, 0, "12:00:01", cells.White, cells.Black, false)
	if err := r.Render(f); err != nil {
		t.Fatal(err)
	}
	if got, want := w.last(), "\x1b[1;80H1"; got != want {
		t.Errorf("a clock tick: %q, want %q", got, want)
	}
	f.Put(72, 0, "12:00:10", cells.White, cells.Black, false)
	if err := r.Render(f); err != nil {
		t.Fatal(err)
	}
	if got, want := w.last(), "\x1b[1;79H10"; got != want {
		t.Errorf("a clock tick: %q, want %q", got, want)
	}
}

func TestRenderInvalidate(t *testing.T) {
	var w writes
	r := NewRenderer(&w)
	f := smallFrame()
	for i, step := range []func(){
		func() {},
		r.Invalidate,
		func() { f = cells.New(7, 2) }, // a new size is a new screen
	} {
		step()
		if err := r.Render(f); err != nil {
			t.Fatal(err)
		}
		if len(w.calls) != i+1 || !strings.HasPrefix(w.last(), clear) {
			t.Errorf("step %d: no full redraw: %q", i, w.last())
		}
	}
}

type failing struct{ n int }

func (f *failing) Write(b []byte) (int, error) {
	f.n++
	if f.n == 2 {
		return 0, errors.New("line down")
	}
	return len(b), nil
}

func TestRenderWriteError(t *testing.T) {
	w := &failing{}
	r := NewRenderer(w)
	f := smallFrame()
	if err := r.Render(f); err != nil {
		t.Fatal(err)
	}
	f.Put(0, 1, "x", cells.White, cells.Black, false)
	if err := r.Render(f); err == nil {
		t.Fatal("a write error was not returned")
	}
	// The terminal may show anything now: the next frame is drawn whole,
	// even though it is the same.
	var rec writes
	r.w = &rec
	if err := r.Render(f); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.last(), clear) {
		t.Errorf("after a write error: %q, want a full redraw", rec.last())
	}
}

func TestRestore(t *testing.T) {
	var w writes
	r := NewRenderer(&w)
	if err := r.Restore(); err != nil {
		t.Fatal(err)
	}
	if got := w.last(); !strings.Contains(got, "\x1b[?25h") || !strings.Contains(got, "\x1b[?7h") || !strings.Contains(got, "\x1b[0m") {
		t.Errorf("Restore wrote %q: want the cursor shown, wrap on, colours reset", got)
	}
}
