package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Series is one measured operation: every latency, how long the whole
// series took (for the throughput) and how many attempts failed.
type Series struct {
	Name    string
	Clients int // concurrent clients; 0 where concurrency means nothing
	Lat     []time.Duration
	Elapsed time.Duration
	Errors  int
}

// Report is every figure of one run; the table is made from it.
type Report struct {
	Started    time.Time
	Go         string
	CPUs       int
	Quick      bool
	RoundTrips []Series // one per client count
	Joins      Series
	Reads      Series
	Writes     Series
	LoadBefore string
	LoadAfter  string
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of ds, or
// -1 when ds is empty. Nearest rank, not interpolation: every figure in the
// table is a latency that was really seen.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = max(1, min(rank, len(s)))
	return s[rank-1]
}

// perSecond is how many of the series' operations completed per second of
// its wall time, or -1 when it cannot be told.
func (s Series) perSecond() float64 {
	if s.Elapsed <= 0 || len(s.Lat) == 0 {
		return -1
	}
	return float64(len(s.Lat)) / s.Elapsed.Seconds()
}

// writeTable prints the report as one aligned table.
func (r *Report) writeTable(w io.Writer) error {
	mode := "full run"
	if r.Quick {
		mode = "quick run (-quick): few samples, the p99 is close to the maximum"
	}
	fmt.Fprintf(w, "\nonecloud cluster bench  %s  %s  host: %d CPUs  %s\n", r.Started.Format("2006-01-02 15:04 UTC"), r.Go, r.CPUs, mode)
	fmt.Fprintf(w, "in-process cluster API on 127.0.0.1, embedded etcd (production raft timing), swtpm software TPMs\n\n")

	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	row("", "samples", "p50", "p99", "throughput", "")
	row("Attestation round trip: enrol + activate + quote + verify", "", "", "", "", "")
	for _, s := range r.RoundTrips {
		row(fmt.Sprintf("  %d swtpm client%s at once", s.Clients, plural(s.Clients)), samples(s), ms(percentile(s.Lat, 50)), ms(percentile(s.Lat, 99)),
			rate(s.perSecond(), "attestations/s"), failures(s))
	}
	row("Server node join: -join start to promoted voter", "", "", "", "", "")
	j := r.Joins
	note := ""
	if len(j.Lat) > 0 {
		note = "min " + ms(slices.Min(j.Lat)) + ", max " + ms(slices.Max(j.Lat))
	}
	if f := failures(j); f != "" {
		note = strings.TrimPrefix(note+"; "+f, "; ")
	}
	row("  second swtpm node joins a 1-node cluster, median", samples(j), ms(percentile(j.Lat, 50)), "-", "-", note)
	row("Cluster API, admin client (mutual TLS), 1-node cluster", "", "", "", "", "")
	row("  read: GET /v1/nodes", samples(r.Reads), ms(percentile(r.Reads.Lat, 50)), ms(percentile(r.Reads.Lat, 99)), rate(r.Reads.perSecond(), "requests/s"), failures(r.Reads))
	row("  write: POST /v1/releases", samples(r.Writes), ms(percentile(r.Writes.Lat, 50)), ms(percentile(r.Writes.Lat, 99)), rate(r.Writes.perSecond(), "requests/s"), failures(r.Writes))
	if err := tw.Flush(); err != nil {
		return err
	}
	// Section rows leave padding at the ends of lines.
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
	fmt.Fprintf(w, "\nload average (1, 5, 15 min): %s before, %s after", r.LoadBefore, r.LoadAfter)
	if busy(r.LoadBefore, r.CPUs) || busy(r.LoadAfter, r.CPUs) {
		fmt.Fprint(w, ": more runnable processes than CPUs, other work shared the machine; expect noisy figures")
	}
	_, err := fmt.Fprintln(w)
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func samples(s Series) string { return strconv.Itoa(len(s.Lat)) }

// ms prints a latency in milliseconds, or "-" for none.
func ms(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

func rate(perSecond float64, unit string) string {
	if perSecond < 0 {
		return "-"
	}
	return strconv.FormatFloat(perSecond, 'f', 1, 64) + " " + unit
}

func failures(s Series) string {
	if s.Errors == 0 {
		return ""
	}
	return fmt.Sprintf("%d failed (see stderr)", s.Errors)
}

// busy reports whether the 1-minute load average exceeds the CPUs.
func busy(load string, cpus int) bool {
	f := strings.Fields(load)
	if len(f) == 0 {
		return false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return err == nil && v > float64(cpus)
}
