package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap"
	"github.com/onecloud-edu/onecloud/bootstrap/admission"
	"github.com/onecloud-edu/onecloud/bootstrap/classify"
)

// runStats prints the running server's counters: how many boxes asked what,
// and what was ignored, refused, dropped or malformed.
func runStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", bootstrap.DefaultSocket, "bootstrapd's admin socket")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := fetchStats(ctx, *socket)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return writeStats(stdout, st)
}

func fetchStats(ctx context.Context, socket string) (bootstrap.Stats, error) {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://bootstrapd"+bootstrap.StatsPath, nil)
	if err != nil {
		return bootstrap.Stats{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return bootstrap.Stats{}, fmt.Errorf("bootstrapd is not answering on %s (%w): start it with `bootstrapd serve`", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return bootstrap.Stats{}, fmt.Errorf("bootstrapd answered %s to %s", resp.Status, bootstrap.StatsPath)
	}
	var st bootstrap.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return bootstrap.Stats{}, fmt.Errorf("bootstrapd's stats: %w", err)
	}
	return st, nil
}

// writeStats prints the counters as a two-column table, one section per service.
func writeStats(w io.Writer, st bootstrap.Stats) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "  %s\t%v\n", k, v) }
	if d := st.DHCP; d != nil {
		fmt.Fprintln(tw, "DHCP")
		classes := make([]string, 0, len(d.Requests))
		for c := range d.Requests {
			classes = append(classes, string(c))
		}
		slices.Sort(classes)
		for _, c := range classes {
			row("requests from "+c, d.Requests[classify.Class(c)])
		}
		row("offers", d.Offers)
		row("acks", d.Acks)
		row("naks", d.Naks)
		row("ignored", d.Ignored)
		row("malformed", d.Malformed)
		row("dropped (queue full)", d.Dropped)
		row("lease write errors", d.Errors)
	} else {
		fmt.Fprintln(tw, "DHCP\toff")
	}
	t := st.TFTP
	fmt.Fprintln(tw, "TFTP")
	row("transfers completed", t.Completed)
	row("failed / aborted", fmt.Sprintf("%d / %d", t.Failed, t.Aborted))
	row("bytes", t.Bytes)
	row("refused / malformed", fmt.Sprintf("%d / %d", t.Refused, t.Malformed))
	row("dropped (busy)", t.Dropped)
	h := st.HTTP
	fmt.Fprintln(tw, "HTTP")
	row("scripts", h.Scripts)
	row("files / bytes", fmt.Sprintf("%d / %d", h.Files, h.Bytes))
	row("not modified (304)", h.NotModified)
	row("busy (503)", h.Busy)
	row("enrolments", h.Enrolments)
	row("bad requests", h.BadRequests)
	for _, q := range []struct {
		name string
		a    admission.Stats
	}{{"Admission (HTTP)", st.Admission}, {"Admission (TFTP)", st.TFTPAdmission}} {
		fmt.Fprintln(tw, q.name)
		row("transfers now / queued", fmt.Sprintf("%d / %d", q.a.Active, q.a.Queued))
		row("admitted / rejected", fmt.Sprintf("%d / %d", q.a.Admitted, q.a.Rejected))
		row("longest wait", q.a.MaxWait)
	}
	return tw.Flush()
}
