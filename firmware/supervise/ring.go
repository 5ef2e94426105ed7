package supervise

import (
	"bytes"
	"sync"
)

// Ring keeps the last lines a service wrote, for the console's log view.
// It is an io.Writer: a partial line waits for its newline, and an endless
// line is cut at maxLine so that one chatty service cannot eat the memory of a
// 5 W terminal.
type Ring struct {
	mu      sync.Mutex
	lines   []string
	next    int  // where the next line goes once the ring is full
	full    bool // whether lines has wrapped
	partial []byte
}

const maxLine = 1024

// NewRing keeps up to n lines.
func NewRing(n int) *Ring {
	if n < 1 {
		n = 1
	}
	return &Ring{lines: make([]string, n)}
}

// Write adds p, line by line.
func (r *Ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.partial = append(r.partial, p...)
			if len(r.partial) >= maxLine {
				r.add(string(r.partial[:maxLine]))
				r.partial = append(r.partial[:0], r.partial[maxLine:]...)
			}
			break
		}
		line := append(r.partial, p[:i]...)
		r.partial = r.partial[:0]
		for len(line) > maxLine {
			r.add(string(line[:maxLine]))
			line = line[maxLine:]
		}
		r.add(string(line))
		p = p[i+1:]
	}
	return n, nil
}

func (r *Ring) add(line string) {
	r.lines[r.next] = string(bytes.TrimRight([]byte(line), "\r"))
	r.next++
	if r.next == len(r.lines) {
		r.next = 0
		r.full = true
	}
}

// Last returns up to n of the newest complete lines, oldest first.
func (r *Ring) Last(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if n >= 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}
