package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// target is a bound on a ratio (bootstrapd's figure over the peer's).
type target struct {
	atLeast bool // the ratio must be at least x (a rate); otherwise at most x (a time)
	x       float64
}

func (t target) String() string {
	if t.atLeast {
		return fmt.Sprintf("at least %.1fx", t.x)
	}
	return fmt.Sprintf("at most %.1fx", t.x)
}

func (t target) met(r float64) bool {
	if t.atLeast {
		return r >= t.x
	}
	return r <= t.x
}

// row is one line of the table. A row with a target gets a pass/FAIL verdict; one without is context.
type row struct {
	label      string
	ours, peer string
	ratio      float64 // ours over peer; 0 when it means nothing (a peer figure of 0)
	target     *target
	// extra, when set, decides the verdict together with the ratio (no failed boots in the storm).
	extraOK   *bool
	extraNote string
}

// section is a group of rows under a short heading that names the peer; how says how it was measured,
// printed as a numbered note under the table so that long words do not widen the first column.
type section struct {
	title string
	how   string
	rows  []row
}

// table is what bootbench prints: a heading, the sections, their notes and a footer.
type table struct {
	heading  []string
	ours     string // the first figure column's name: "bootstrapd"
	sections []section
	footer   []string
}

// verdict is the result cell of a row: pass, FAIL or empty for a row without a target.
func (r row) verdict() string {
	if r.target == nil {
		return ""
	}
	ok := r.ratio > 0 && r.target.met(r.ratio)
	if r.extraOK != nil && !*r.extraOK {
		ok = false
	}
	if ok {
		return "pass"
	}
	return "FAIL"
}

func (r row) targetCell() string {
	if r.target == nil {
		return ""
	}
	s := r.target.String()
	if r.extraNote != "" {
		s += ", " + r.extraNote
	}
	return s
}

func ratioCell(r float64) string {
	if r <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

// write prints the table with aligned columns. Every row has every cell, so that section headings do not
// break the columns; the padding this leaves at the ends of lines is trimmed.
func (t *table) write(w io.Writer) error {
	for _, h := range t.heading {
		fmt.Fprintln(w, h)
	}
	fmt.Fprintln(w)
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	line := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	line("", t.ours, "peer", "ratio", "target", "result")
	for i, s := range t.sections {
		line(fmt.Sprintf("%s [%d]", s.title, i+1), "", "", "", "", "")
		for _, r := range s.rows {
			line("  "+r.label, r.ours, r.peer, ratioCell(r.ratio), r.targetCell(), r.verdict())
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		fmt.Fprintln(w, strings.TrimRight(l, " "))
	}
	fmt.Fprintln(w)
	for i, s := range t.sections {
		fmt.Fprintln(w, wrap(fmt.Sprintf("[%d] %s", i+1, s.how), 110, "    "))
	}
	for _, f := range t.footer {
		fmt.Fprintln(w, f)
	}
	return nil
}

// ratio is a over b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// thousands writes n with commas: 12,345.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func secs(s float64) string {
	switch {
	case s < 0:
		return "-"
	case s < 10:
		return fmt.Sprintf("%.2fs", s)
	default:
		return fmt.Sprintf("%.1fs", s)
	}
}

func failures(n, of int) string {
	if n == 0 {
		return "no failures"
	}
	return fmt.Sprintf("%d of %d FAILED", n, of)
}

// wrap breaks s into lines of at most width characters at spaces, indenting the lines after the first.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && n+1+len(w) > width {
			b.WriteString("\n" + indent)
			n = len(indent)
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
