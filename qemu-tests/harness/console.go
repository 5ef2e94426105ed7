package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Console is a VM's serial port: everything the guest writes is appended to <vm>.serial.log and kept in
// memory for Expect; Send and SendLine type into it.
type Console struct {
	in         deadlineWriter // QEMU's stdin, or the second port's socket: what we type
	logPath    string
	readerDone chan struct{}

	writeMu sync.Mutex

	mu      sync.Mutex
	out     []byte        // everything the guest wrote, with '\r' removed
	pos     int           // Expect matches start here: what earlier matches consumed is behind it
	changed chan struct{} // closed and replaced whenever out grows or the console closes
	closed  bool
}

const (
	tailLines   = 40               // how much serial output an Expect error shows
	sendTimeout = 30 * time.Second // bounds a blocked write when ctx has no deadline
)

// deadlineWriter is where typing goes: a pipe (*os.File) or a socket (net.Conn).
type deadlineWriter interface {
	io.Writer
	SetWriteDeadline(time.Time) error
}

// newConsole starts copying out (QEMU's stdout) into w (the log file, and more) and memory until EOF,
// that is until QEMU exits, and then closes log.
func newConsole(out io.Reader, in deadlineWriter, w io.Writer, log io.Closer, logPath string) *Console {
	c := &Console{in: in, logPath: logPath, changed: make(chan struct{}), readerDone: make(chan struct{})}
	go c.copy(out, w, log)
	return c
}

func (c *Console) copy(r io.Reader, w io.Writer, log io.Closer) {
	defer close(c.readerDone)
	defer log.Close()
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = w.Write(buf[:n])
			c.append(buf[:n])
		}
		if err != nil {
			c.mu.Lock()
			c.closed = true
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
			return
		}
	}
}

func (c *Console) append(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range p {
		if b != '\r' {
			c.out = append(c.out, b)
		}
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// Expect waits until the serial output, after what earlier Expect calls matched, matches the regular
// expression pattern, and returns the match and its submatches (m[0] is the whole match). The output is
// searched with '\r' removed, so (?m)^...$ works on lines. Like expect(1) it consumes: a second Expect for
// the same pattern needs a second occurrence.
//
// It gives up after timeout (if positive) or when ctx ends, and when QEMU exits without the pattern having
// appeared; the error then ends with the last 40 lines of serial output and the log's path. Mind that the
// guest's terminal echoes what SendLine typed: a pattern should match the answer, not the question.
func (c *Console) Expect(ctx context.Context, pattern string, timeout time.Duration) ([]string, error) {
	return c.wait(ctx, pattern, timeout, true)
}

// Seen is Expect without consuming: it searches all the output since boot,
// before or after what Expect calls matched, and leaves their position
// alone. It is for lines whose order against others is not fixed (a result
// the firmware may print before or after its ready line).
func (c *Console) Seen(ctx context.Context, pattern string, timeout time.Duration) ([]string, error) {
	return c.wait(ctx, pattern, timeout, false)
}

func (c *Console) wait(ctx context.Context, pattern string, timeout time.Duration, consume bool) ([]string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("expect: %w", err)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	for {
		c.mu.Lock()
		from := 0
		if consume {
			from = c.pos
		}
		if loc := re.FindSubmatchIndex(c.out[from:]); loc != nil {
			m := make([]string, len(loc)/2)
			for i := range m {
				if loc[2*i] >= 0 {
					m[i] = string(c.out[from+loc[2*i] : from+loc[2*i+1]])
				}
			}
			if consume {
				c.pos += loc[1]
			}
			c.mu.Unlock()
			return m, nil
		}
		changed, closed := c.changed, c.closed
		c.mu.Unlock()
		if closed {
			return nil, fmt.Errorf("the serial console closed (QEMU exited) before %q appeared; %s", pattern, c.tail())
		}
		select {
		case <-changed:
		case <-ctx.Done():
			what := ctx.Err()
			if errors.Is(what, context.DeadlineExceeded) && timeout > 0 {
				what = fmt.Errorf("no match within %s: %w", timeout, what)
			}
			return nil, fmt.Errorf("waiting for %q on the serial console: %w; %s", pattern, what, c.tail())
		}
	}
}

// tail describes the end of the output for an error message.
func (c *Console) tail() string {
	c.mu.Lock()
	out := string(c.out)
	c.mu.Unlock()
	return fmt.Sprintf("the last %d lines of serial output (all of it in %s):\n%s", tailLines, c.logPath, lastLines(out, tailLines))
}

// Output returns everything the guest has written so far, with '\r' removed.
func (c *Console) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.out)
}

// LogPath is the file the serial output is written to.
func (c *Console) LogPath() string { return c.logPath }

// Send types s as it is. A write only blocks if QEMU stops reading (the guest does not drain its UART and
// the 64 KiB pipe is full); ctx's deadline, or sendTimeout if it has none, bounds that.
func (c *Console) Send(ctx context.Context, s string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("type on the serial console: %w", err)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	deadline := time.Now().Add(sendTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.in.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("serial console: %w", err)
	}
	if _, err := io.WriteString(c.in, s); err != nil {
		return fmt.Errorf("type on the serial console (has QEMU exited?): %w", err)
	}
	return nil
}

// SendLine types line and Enter. Enter is a carriage return, as a serial terminal sends it; the guest's
// tty turns it into '\n' for a program reading lines.
func (c *Console) SendLine(ctx context.Context, line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return fmt.Errorf("SendLine %q: one line at a time", line)
	}
	return c.Send(ctx, line+"\r")
}
