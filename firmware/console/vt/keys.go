package vt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/onecloud-edu/onecloud/firmware/console/input"
)

// DefaultEscDelay is how long a lone ESC waits for the rest of an escape
// sequence before it counts as the Esc key. A terminal sends a sequence in
// one burst (a few bytes take under a millisecond at 115200 baud); a
// console server reached over the network may split it, hence not less.
const DefaultEscDelay = 100 * time.Millisecond

// maxSeq is the longest escape sequence kept: anything longer is garbage.
const maxSeq = 16

// KeyReader decodes what a terminal sends into keys: a serial line, or the
// Linux console in raw mode (its keyboard sends the same sequences). A
// goroutine reads the underlying reader; close that reader, after Close,
// to end it. ReadKey must not be called concurrently.
type KeyReader struct {
	chunks chan []byte
	errc   chan error
	done   chan struct{}

	escDelay time.Duration
	// after is time.After; tests replace it to decide when a pause ends.
	after func(time.Duration) <-chan time.Time

	buf    []byte
	err    error // from the reader, returned once buf is spent
	skipLF bool  // the last key was a CR: an LF right after it is the same Enter
	inLong bool  // an overlong CSI sequence was dropped before its end
}

// NewKeyReader decodes the bytes of r, waiting escDelay (DefaultEscDelay
// if 0) after a lone ESC.
func NewKeyReader(r io.Reader, escDelay time.Duration) *KeyReader {
	if escDelay <= 0 {
		escDelay = DefaultEscDelay
	}
	k := &KeyReader{
		chunks:   make(chan []byte),
		errc:     make(chan error, 1),
		done:     make(chan struct{}),
		escDelay: escDelay,
		after:    time.After,
	}
	go k.pump(r)
	return k
}

func (k *KeyReader) pump(r io.Reader) {
	for {
		b := make([]byte, 256)
		n, err := r.Read(b)
		if n > 0 {
			select {
			case k.chunks <- b[:n]:
			case <-k.done:
				return
			}
		}
		if err != nil {
			k.errc <- err
			return
		}
	}
}

// Close stops decoding. The goroutine reading ends when its Read returns.
func (k *KeyReader) Close() error {
	select {
	case <-k.done:
	default:
		close(k.done)
	}
	return nil
}

// ReadKey is the next key. It returns the reader's error (io.EOF when the
// terminal hangs up) once every key before it is read, and ctx's error
// when ctx ends first. Bytes that are no key are dropped; an unfinished
// escape sequence or UTF-8 rune is settled after the ESC delay, so a
// ReadKey never waits forever on garbage.
func (k *KeyReader) ReadKey(ctx context.Context) (input.Key, error) {
	for {
		if key, ok := k.next(k.err != nil); ok {
			return key, nil
		}
		if k.err != nil { // next took everything: nothing more will come
			return input.Key{}, k.err
		}
		var pause <-chan time.Time
		if len(k.buf) > 0 {
			pause = k.after(k.escDelay)
		}
		select {
		case b := <-k.chunks:
			k.buf = append(k.buf, b...)
		case err := <-k.errc:
			if errors.Is(err, io.EOF) {
				k.err = io.EOF
			} else {
				k.err = fmt.Errorf("reading keys from the terminal: %w", err)
			}
		case <-pause:
			// Nothing followed: what is buffered is all there is.
			if key, ok := k.next(true); ok {
				return key, nil
			}
		case <-ctx.Done():
			return input.Key{}, ctx.Err()
		case <-k.done:
			return input.Key{}, errors.New("reading keys after Close")
		}
	}
}

// next decodes buffered bytes until it has a key, or needs more bytes
// (never when final: then it takes everything).
func (k *KeyReader) next(final bool) (input.Key, bool) {
	for len(k.buf) > 0 {
		// The rest of an overlong sequence, dropped in part already.
		if k.inLong {
			c := k.buf[0]
			k.inLong = c >= 0x20 && c <= 0x3f
			if k.inLong || (c >= 0x40 && c <= 0x7e) {
				k.buf = k.buf[1:]
				continue
			}
		}
		// CR LF is one Enter even when the LF comes in a later read.
		if k.skipLF {
			k.skipLF = false
			if k.buf[0] == '\n' {
				k.buf = k.buf[1:]
				continue
			}
		}
		key, n, ok := decode(k.buf, final)
		if n == 0 {
			return input.Key{}, false
		}
		cr := k.buf[n-1] == '\r'
		k.inLong = !ok && !final && n == len(k.buf) && n > maxSeq+2 && k.buf[1] == '['
		k.buf = k.buf[n:]
		if ok {
			k.skipLF = cr
			return key, true
		}
	}
	return input.Key{}, false
}

// decode reads one key from the start of b: the key, the bytes it took and
// whether they made a key (false: garbage, dropped). n is 0 when b is the
// start of a sequence or rune not complete yet; when final, b is all there
// is and decode always takes something.
func decode(b []byte, final bool) (key input.Key, n int, ok bool) {
	switch c := b[0]; {
	case c == 0x1b:
		return decodeEsc(b, final)
	case c == '\r', c == '\n':
		return input.Key{Code: input.Enter}, 1, true
	case c == '\t':
		return input.Key{Code: input.Tab}, 1, true
	case c == 0x7f, c == 0x08:
		return input.Key{Code: input.Backspace}, 1, true
	case c == 0x03:
		return input.Key{Code: input.CtrlC}, 1, true
	case c == 0x0c:
		return input.Key{Code: input.CtrlL}, 1, true
	case c < 0x20:
		return input.Key{}, 1, false
	case c < 0x7f:
		return input.Of(rune(c)), 1, true
	}
	if !utf8.FullRune(b) {
		if final {
			return input.Key{}, len(b), false
		}
		return input.Key{}, 0, false
	}
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError || !unicode.IsPrint(r) {
		return input.Key{}, size, false // invalid UTF-8, C1 controls
	}
	return input.Of(r), size, true
}

// decodeEsc reads a key starting with ESC: xterm and Linux console CSI
// sequences (ESC [), VT100 application keys (ESC O), or Esc itself.
func decodeEsc(b []byte, final bool) (input.Key, int, bool) {
	esc := input.Key{Code: input.Esc}
	if len(b) == 1 {
		if final {
			return esc, 1, true
		}
		return input.Key{}, 0, false
	}
	switch b[1] {
	case 'O':
		if len(b) == 2 {
			if final {
				return input.Key{}, 2, false
			}
			return input.Key{}, 0, false
		}
		code, ok := ss3(b[2])
		return input.Key{Code: code}, 3, ok
	case '[':
		return decodeCSI(b, final)
	}
	// ESC then anything else: Esc pressed, then that key (or Alt+key,
	// which the console has no use for beyond its key).
	return esc, 1, true
}

// ss3 is the key of ESC O c: VT100 application-mode cursor and keypad
// keys and F1-F4.
func ss3(c byte) (input.Code, bool) {
	switch c {
	case 'M':
		return input.Enter, true // keypad Enter
	case 'P', 'Q', 'R', 'S':
		return input.F1 + input.Code(c-'P'), true
	}
	return cursorKey(c)
}

// cursorKey is the key of the final byte c of ESC [ c or ESC O c.
func cursorKey(c byte) (input.Code, bool) {
	switch c {
	case 'A':
		return input.Up, true
	case 'B':
		return input.Down, true
	case 'C':
		return input.Right, true
	case 'D':
		return input.Left, true
	case 'H':
		return input.Home, true
	case 'F':
		return input.End, true
	}
	return 0, false
}

// csiFinal is the key of ESC [ params c for a final byte c other than ~.
func csiFinal(c byte) (input.Code, bool) {
	switch c {
	case 'Z':
		return input.BackTab, true
	case 'P', 'Q', 'R', 'S': // xterm's F1-F4 with modifiers: ESC [ 1 ; 2 P
		return input.F1 + input.Code(c-'P'), true
	}
	return cursorKey(c)
}

// csiTilde is the key of ESC [ n ~ (xterm, Linux console, VT220).
func csiTilde(n int) (input.Code, bool) {
	switch {
	case n == 1 || n == 7:
		return input.Home, true
	case n == 3:
		return input.Delete, true
	case n == 4 || n == 8:
		return input.End, true
	case n == 5:
		return input.PageUp, true
	case n == 6:
		return input.PageDown, true
	case n >= 11 && n <= 15:
		return input.F1 + input.Code(n-11), true
	case n >= 17 && n <= 21: // 16 is skipped, as on the VT220
		return input.F6 + input.Code(n-17), true
	}
	return 0, false // 2 (Insert), F11 and beyond: no use here
}

func decodeCSI(b []byte, final bool) (input.Key, int, bool) {
	more := func() (input.Key, int, bool) {
		if final {
			return input.Key{}, len(b), false
		}
		return input.Key{}, 0, false
	}
	if len(b) > 2 && b[2] == '[' {
		if len(b) == 3 {
			return more()
		}
		// The Linux console's F1-F5: ESC [ [ A..E.
		if c := b[3]; c >= 'A' && c <= 'E' {
			return input.Key{Code: input.F1 + input.Code(c-'A')}, 4, true
		}
		return input.Key{}, 4, false
	}
	// Parameter bytes 0x30-0x3f, intermediates 0x20-0x2f, then a final
	// byte 0x40-0x7e (ECMA-48).
	i := 2
	for i < len(b) && b[i] >= 0x20 && b[i] <= 0x3f {
		i++
	}
	if i-2 > maxSeq {
		if i < len(b) && b[i] >= 0x40 && b[i] <= 0x7e {
			i++ // its final byte goes too
		}
		return input.Key{}, i, false
	}
	if i == len(b) {
		return more()
	}
	f := b[i]
	if f < 0x40 || f > 0x7e {
		// Not a sequence after all: drop ESC [ and what came with it,
		// and decode the stray byte afresh.
		return input.Key{}, i, false
	}
	params := b[2:i]
	first, rest, ok := firstParam(params)
	if !ok {
		return input.Key{}, i + 1, false
	}
	if f == '~' {
		code, ok := csiTilde(first)
		return input.Key{Code: code}, i + 1, ok
	}
	code, known := csiFinal(f)
	// With parameters, only "1;modifiers" is a key (xterm's Shift-Up is
	// ESC [ 1 ; 2 A); anything else, such as a cursor position report
	// ESC [ 24 ; 80 R, is not.
	if len(params) > 0 && (first != 1 || !rest) {
		known = false
	}
	return input.Key{Code: code}, i + 1, known
}

// firstParam is the first numeric parameter of a CSI sequence (1 when
// empty) and whether others follow; ok is false for private or malformed
// parameters.
func firstParam(p []byte) (n int, more, ok bool) {
	if len(p) == 0 {
		return 1, false, true
	}
	i := 0
	for ; i < len(p) && p[i] >= '0' && p[i] <= '9'; i++ {
		n = n*10 + int(p[i]-'0')
		if n > 1000 {
			return 0, false, false
		}
	}
	if i == 0 {
		return 0, false, false
	}
	if i == len(p) {
		return n, false, true
	}
	if p[i] != ';' {
		return 0, false, false
	}
	for _, c := range p[i+1:] {
		if (c < '0' || c > '9') && c != ';' {
			return 0, false, false
		}
	}
	return n, true, true
}
