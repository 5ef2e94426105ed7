package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
)

// escapeKey is Ctrl-] (0x1d), the key that leaves the demo, as in telnet. The box never sees it. It
// cannot be part of a longer key: escape sequences (arrows, F-keys) start with 0x1b, and the bytes of a
// multi-byte UTF-8 character are all 0x80 or above.
const escapeKey = 0x1d

// forwardKeys sends what is typed on in to the box's console with send (Console.Send), read by read, until
// Ctrl-] is typed, when it returns nil after sending what came before it. It returns an error if in ends
// (io.EOF: the terminal went away) or send fails (QEMU has exited, or ctx has ended).
func forwardKeys(ctx context.Context, in io.Reader, send func(context.Context, string) error) error {
	buf := make([]byte, 256)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			keys, leave := beforeEscape(buf[:n])
			if len(keys) > 0 {
				if err := send(ctx, string(keys)); err != nil {
					return err
				}
			}
			if leave {
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
}

// beforeEscape splits typed bytes at Ctrl-]: it returns what came before it, for the box, and whether it
// was typed. What follows Ctrl-] was typed after the operator chose to leave, and is dropped.
func beforeEscape(p []byte) (keys []byte, leave bool) {
	if i := bytes.IndexByte(p, escapeKey); i >= 0 {
		return p[:i], true
	}
	return p, false
}

// screen is the terminal that the box's console and the demo's own lines share. A mutex keeps each write
// whole, so a host line never lands in the middle of one of the guest's writes; and since the guest's
// output may stop in the middle of a line (a prompt, a half-written log line), a host line then starts on
// a new line, so that it neither glues itself to the guest's text nor is overwritten by it.
//
// While the terminal is raw it does no output processing, so a bare "\n" would only move down, not back to
// the left margin: host lines then end in "\r\n". The guest's output is passed through as it is (its own
// tty already ends lines in "\r\n"), but for the few control sequences that would wipe the screen
// (droppedSequences).
type screen struct {
	out  io.Writer // stdout: the box's console and the demo's lines
	errs io.Writer // stderr: the harness's log lines and errors
	// lost is closed when a write to stdout fails: the terminal hung up or the pipe was closed, so
	// nobody is watching any more and the demo should leave.
	lost     chan struct{}
	lostOnce sync.Once

	mu      sync.Mutex
	raw     bool           // the terminal is in raw mode
	midLine bool           // the last thing written was the guest's, and it did not end a line
	seqs    sequenceFilter // drops the guest's control sequences that would upset the terminal
}

func newScreen(out, errs io.Writer) *screen {
	return &screen{out: out, errs: errs, lost: make(chan struct{})}
}

// setRaw tells the screen whether the terminal is raw.
func (s *screen) setRaw(raw bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw = raw
}

// say prints one of the demo's own lines on stdout, marked "demo: ", or on stderr once stdout is lost,
// so that the summary still reaches whoever reads stderr.
func (s *screen) say(format string, args ...any) {
	w := s.out
	select {
	case <-s.lost:
		w = s.errs
	default:
	}
	s.writeHost(w, "demo: "+fmt.Sprintf(format, args...)+"\n")
}

// warn prints a line on stderr as it is.
func (s *screen) warn(format string, args ...any) {
	s.writeHost(s.errs, fmt.Sprintf(format, args...)+"\n")
}

// guest is where the box's serial output goes (Config.SerialOut). Its writes never fail: if the terminal
// has gone, nobody is left to show the console to, and the serial log beside it must still get its copy.
func (s *screen) guest() io.Writer { return guestWriter{s} }

// diagnostics is where the harness writes (the Session's output): its log lines and errors, each one
// write of whole lines, shown on stderr like the demo's own lines.
func (s *screen) diagnostics() io.Writer { return hostWriter{s} }

func (s *screen) writeHost(w io.Writer, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.midLine {
		text = "\n" + text
		s.midLine = false
	}
	if s.raw {
		text = strings.ReplaceAll(text, "\n", "\r\n")
	}
	_, err := io.WriteString(w, text)
	s.noteFailure(w, err)
}

// noteFailure closes lost when a write to stdout has failed; there is nowhere to report it.
func (s *screen) noteFailure(w io.Writer, err error) {
	if err != nil && w == s.out {
		s.lostOnce.Do(func() { close(s.lost) })
	}
}

type guestWriter struct{ s *screen }

func (g guestWriter) Write(p []byte) (int, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	if out := g.s.seqs.filter(p); len(out) > 0 {
		_, err := g.s.out.Write(out)
		g.s.noteFailure(g.s.out, err)
		g.s.midLine = out[len(out)-1] != '\n'
	}
	return len(p), nil
}

// droppedSequences are the terminal control sequences that SeaBIOS's serial console sends as it starts:
// reset the terminal, turn line wrapping off, clear the screen. On the operator's terminal they would wipe
// the banner (and its hint how to try the CLI) and leave the terminal without line wrapping after the
// demo; the demo's screen is a scrolling log, so they are left out. The serial log keeps them.
var droppedSequences = [][]byte{[]byte("\x1bc"), []byte("\x1b[?7l"), []byte("\x1b[2J")}

// sequenceFilter drops droppedSequences from a stream of writes, also when one is split across writes.
type sequenceFilter struct {
	held []byte // the start of what may be a dropped sequence, at the end of the last write
}

// filter returns p without the dropped sequences. The end of p may be held back until the next write
// tells whether it starts one.
func (f *sequenceFilter) filter(p []byte) []byte {
	in := p
	if len(f.held) > 0 {
		in = append(f.held, p...)
		f.held = nil
	}
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		if in[i] != 0x1b {
			out = append(out, in[i])
			i++
			continue
		}
		rest, skip, partial := in[i:], 0, false
		for _, seq := range droppedSequences {
			if bytes.HasPrefix(rest, seq) {
				skip = len(seq)
				break
			}
			if len(rest) < len(seq) && bytes.HasPrefix(seq, rest) {
				partial = true
			}
		}
		switch {
		case skip > 0:
			i += skip
		case partial:
			f.held = append([]byte(nil), rest...)
			return out
		default:
			out = append(out, in[i])
			i++
		}
	}
	return out
}

type hostWriter struct{ s *screen }

func (h hostWriter) Write(p []byte) (int, error) {
	h.s.writeHost(h.s.errs, string(p))
	return len(p), nil
}

// sayLines prints text, the output of a command, line by line, indented under the demo's line before it.
func (s *screen) sayLines(text string) {
	text = strings.TrimRight(text, "\n")
	if strings.TrimSpace(text) == "" {
		return
	}
	for _, line := range strings.Split(text, "\n") {
		s.say("  %s", line)
	}
}
