package vt

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/console/input"
)

// chunks is a reader that returns one chunk a Read, then err (io.EOF).
type chunks struct {
	parts []string
	err   error
}

func (c *chunks) Read(b []byte) (int, error) {
	if len(c.parts) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		return 0, io.EOF
	}
	n := copy(b, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	if c.parts[0] == "" {
		c.parts = c.parts[1:]
	}
	return n, nil
}

// never is an ESC delay that never ends: a split sequence must be joined,
// not settled early.
func never(time.Duration) <-chan time.Time { return nil }

// readAll is every key until the reader's error.
func readAll(t *testing.T, k *KeyReader) ([]input.Key, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var keys []input.Key
	for {
		key, err := k.ReadKey(ctx)
		if err != nil {
			return keys, err
		}
		keys = append(keys, key)
	}
}

func k(c input.Code) input.Key { return input.Key{Code: c} }

func runes(s string) []input.Key {
	var keys []input.Key
	for _, r := range s {
		keys = append(keys, input.Of(r))
	}
	return keys
}

func TestDecodeKeys(t *testing.T) {
	long := "\x1b[" + strings.Repeat("1", 40) + "~"
	for _, tc := range []struct {
		in   string
		want []input.Key
	}{
		{"a", runes("a")},
		{"Az9 ~", runes("Az9 ~")},
		{"状态é", runes("状态é")},
		{"\r", []input.Key{k(input.Enter)}},
		{"\n", []input.Key{k(input.Enter)}},
		{"\r\n", []input.Key{k(input.Enter)}},
		{"\r\n\r\n", []input.Key{k(input.Enter), k(input.Enter)}},
		{"\r\r", []input.Key{k(input.Enter), k(input.Enter)}},
		{"\n\n", []input.Key{k(input.Enter), k(input.Enter)}},
		{"\ra\n", []input.Key{k(input.Enter), input.Of('a'), k(input.Enter)}},
		{"\x1bOM", []input.Key{k(input.Enter)}},
		{"\x1b", []input.Key{k(input.Esc)}},
		{"\x1bx", []input.Key{k(input.Esc), input.Of('x')}},
		{"\x1b\x1b[A", []input.Key{k(input.Esc), k(input.Up)}},
		{"\t", []input.Key{k(input.Tab)}},
		{"\x1b[Z", []input.Key{k(input.BackTab)}},
		{"\x7f\x08", []input.Key{k(input.Backspace), k(input.Backspace)}},
		{"\x1b[A\x1b[B\x1b[C\x1b[D", []input.Key{k(input.Up), k(input.Down), k(input.Right), k(input.Left)}},
		{"\x1bOA\x1bOB\x1bOC\x1bOD", []input.Key{k(input.Up), k(input.Down), k(input.Right), k(input.Left)}},
		{"\x1b[1;2A\x1b[1;5D", []input.Key{k(input.Up), k(input.Left)}},
		{"\x1b[H\x1bOH\x1b[1~\x1b[7~", []input.Key{k(input.Home), k(input.Home), k(input.Home), k(input.Home)}},
		{"\x1b[F\x1bOF\x1b[4~\x1b[8~", []input.Key{k(input.End), k(input.End), k(input.End), k(input.End)}},
		{"\x1b[5~\x1b[6~\x1b[3~\x1b[3;2~", []input.Key{k(input.PageUp), k(input.PageDown), k(input.Delete), k(input.Delete)}},
		{"\x1bOP\x1bOQ\x1bOR\x1bOS", []input.Key{k(input.F1), k(input.F2), k(input.F3), k(input.F4)}},
		{"\x1b[11~\x1b[12~\x1b[13~\x1b[14~\x1b[15~", []input.Key{k(input.F1), k(input.F2), k(input.F3), k(input.F4), k(input.F5)}},
		{"\x1b[[A\x1b[[B\x1b[[C\x1b[[D\x1b[[E", []input.Key{k(input.F1), k(input.F2), k(input.F3), k(input.F4), k(input.F5)}},
		{"\x1b[17~\x1b[18~\x1b[19~\x1b[20~\x1b[21~", []input.Key{k(input.F6), k(input.F7), k(input.F8), k(input.F9), k(input.F10)}},
		{"\x1b[1;2P\x1b[1;2S", []input.Key{k(input.F1), k(input.F4)}},
		{"\x03\x0c", []input.Key{k(input.CtrlC), k(input.CtrlL)}},
		// Garbage is dropped, and what follows it still decodes.
		{"\x00\x01\x02x", runes("x")},
		{"\xff\xfeq", runes("q")},
		{"\xc2\x9bq", runes("q")},                // C1 CSI in UTF-8
		{"\x1b[24;80Rq", runes("q")},             // cursor position report
		{"\x1b[?1;2cq", runes("q")},              // device attributes
		{"\x1b[2~\x1b[99~\x1b[16~q", runes("q")}, // Insert, unknown
		{"\x1b[[Zq\x1bOZq", runes("qq")},
		{"\x1b[1\x02q", runes("q")}, // a control byte inside a sequence
		{"\x1b[3;x~q", runes("~q")}, // malformed parameters
		{long + "q", runes("q")},    // too long to be a key
		{"q\x1b[", runes("q")},      // cut off by the end of input
		{"q\x1bO", runes("q")},
		{"q\x1b[[", runes("q")},
		{"q\xe7\x8a", runes("q")},
	} {
		whole := NewKeyReader(&chunks{parts: []string{tc.in}}, 0)
		whole.after = never
		got, err := readAll(t, whole)
		if !errors.Is(err, io.EOF) || !equal(got, tc.want) {
			t.Errorf("%q in one read: %v, %v; want %v", tc.in, got, err, tc.want)
		}
		whole.Close()

		var bytewise []string
		for i := range len(tc.in) {
			bytewise = append(bytewise, tc.in[i:i+1])
		}
		split := NewKeyReader(&chunks{parts: bytewise}, 0)
		split.after = never
		got, err = readAll(t, split)
		if !errors.Is(err, io.EOF) || !equal(got, tc.want) {
			t.Errorf("%q a byte a read: %v, %v; want %v", tc.in, got, err, tc.want)
		}
		split.Close()
	}
}

func equal(a, b []input.Key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEscPause: a lone ESC is the Esc key once the pause ends, and
// unfinished sequences are dropped then rather than waited on forever.
func TestEscPause(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	kr := NewKeyReader(pr, time.Hour)
	defer kr.Close()
	pauses := make(chan time.Time)
	kr.after = func(d time.Duration) <-chan time.Time {
		if d != time.Hour {
			t.Errorf("pause of %v, want the ESC delay given", d)
		}
		return pauses
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// pauses is unbuffered and ReadKey waits on it only with bytes
	// buffered, so each pause below ends after the bytes written before it
	// are read, and before those written after.
	go func() {
		pw.Write([]byte("\x1b"))
		pauses <- time.Time{}
	}()
	if key, err := kr.ReadKey(ctx); err != nil || key != k(input.Esc) {
		t.Errorf("lone ESC: %v, %v", key, err)
	}
	// The pause drops an unfinished sequence; ReadKey waits on for a key.
	go func() {
		pw.Write([]byte("\x1b[1"))
		pauses <- time.Time{}
		pw.Write([]byte("q"))
	}()
	if key, err := kr.ReadKey(ctx); err != nil || key != input.Of('q') {
		t.Errorf("after an unfinished sequence: %v, %v; want q", key, err)
	}
}

func TestEscDelayReal(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	kr := NewKeyReader(pr, 10*time.Millisecond)
	defer kr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go pw.Write([]byte("\x1b[12"))
	go func() {
		time.Sleep(50 * time.Millisecond)
		pw.Write([]byte("\x1b"))
	}()
	start := time.Now()
	// The unfinished sequence is dropped after the delay; the ESC that
	// follows it is the Esc key after another.
	if key, err := kr.ReadKey(ctx); err != nil || key != k(input.Esc) {
		t.Errorf("got %v, %v; want Esc", key, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Esc took %v", d)
	}
}

func TestReadKeyCancel(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	kr := NewKeyReader(pr, 0)
	defer kr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := kr.ReadKey(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadKey with a cancelled context: %v", err)
	}
	kr.Close()
	if _, err := kr.ReadKey(context.Background()); err == nil {
		t.Error("ReadKey after Close: no error")
	}
}

func TestReadKeyError(t *testing.T) {
	boom := errors.New("port gone")
	kr := NewKeyReader(&chunks{parts: []string{"ab"}, err: boom}, 0)
	defer kr.Close()
	got, err := readAll(t, kr)
	if !errors.Is(err, boom) || !equal(got, runes("ab")) {
		t.Errorf("got %v, %v; want a, b, then the error", got, err)
	}
	if _, err := kr.ReadKey(context.Background()); !errors.Is(err, boom) {
		t.Errorf("a second ReadKey: %v, want the error again", err)
	}
}
