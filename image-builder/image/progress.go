package image

import (
	"fmt"
	"io"
	"time"
)

// progress prints a build's steps, each as it starts and with its duration
// when it ends, so that a slow step is visible while it runs:
//
//	[3/8] build Go busybox and initramfs (24 commands) ... 38.2s
type progress struct {
	w     io.Writer
	total int
	n     int
	now   func() time.Time
	begin time.Time
	// stepStart is when the running step started; zero between steps.
	stepStart time.Time
}

func newProgress(w io.Writer, total int, now func() time.Time) *progress {
	return &progress{w: w, total: total, now: now, begin: now()}
}

// step announces the next step and returns the function that ends it. The
// function takes an optional note ("cached", "12 modules") printed after the
// duration.
func (p *progress) step(format string, args ...any) (done func(note string, args ...any)) {
	p.n++
	p.stepStart = p.now()
	fmt.Fprintf(p.w, "[%d/%d] %s ... ", p.n, p.total, fmt.Sprintf(format, args...))
	return func(note string, args ...any) {
		fmt.Fprintf(p.w, "%s", seconds(p.now().Sub(p.stepStart)))
		if note != "" {
			fmt.Fprintf(p.w, ", %s", fmt.Sprintf(note, args...))
		}
		fmt.Fprintln(p.w)
		p.stepStart = time.Time{}
	}
}

// fail ends a step that is still running with "failed", so that the error
// the caller prints starts on a line of its own.
func (p *progress) fail() {
	if !p.stepStart.IsZero() {
		fmt.Fprintf(p.w, "failed after %s\n", seconds(p.now().Sub(p.stepStart)))
		p.stepStart = time.Time{}
	}
}

// elapsed is the time since the progress began.
func (p *progress) elapsed() time.Duration {
	return p.now().Sub(p.begin)
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}
