package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onecloud-edu/onecloud/noded/api"
)

// Times are shown in UTC to the minute: one cluster spans one time zone,
// and a fixed zone keeps the output of two machines comparable.
const timeLayout = "2006-01-02 15:04"

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// tableWriter aligns columns, and cuts the padding tabwriter leaves at the
// end of a row whose last cells are empty.
type tableWriter struct {
	*tabwriter.Writer
	buf bytes.Buffer
	out io.Writer
}

func table(out io.Writer) *tableWriter {
	t := &tableWriter{out: out}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

func (t *tableWriter) Flush() error {
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	for line := range strings.Lines(t.buf.String()) {
		b.WriteString(strings.TrimRight(line, " \n"))
		b.WriteByte('\n')
	}
	t.buf.Reset()
	_, err := io.WriteString(t.out, b.String())
	return err
}

func printNodes(out io.Writer, asJSON bool, nodes []api.Node) error {
	if asJSON {
		return printJSON(out, api.NodeList{Nodes: nodes})
	}
	w := table(out)
	fmt.Fprintln(w, "NAME\tROLE\tSCHOOL\tSTATE\tMEMBER\tADDRESS\tCERT EXPIRES\tLAST ATTESTED\tIMAGE\tREASON")
	for _, n := range nodes {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, dash(string(n.Role)), dash(n.School), n.State,
			dash(string(n.Member)), dash(strings.Join(n.Addresses, ",")), when(n.CertExpiry), when(n.LastAttested), dash(n.Image), n.Reason)
	}
	if len(nodes) == 0 {
		fmt.Fprintln(w, "(no node has attested yet)")
	}
	return w.Flush()
}

// attestation is a machine's last attestation in a few words; the whole
// text is in `occtl machines show ID`.
func attestation(a *api.AttestationStatus) string {
	switch {
	case a == nil:
		return "-"
	case a.Accepted:
		return "ok " + when(a.At)
	}
	return "refused: " + string(a.Reason)
}

func printMachines(out io.Writer, asJSON bool, ms []api.Machine) error {
	if asJSON {
		return printJSON(out, api.MachineList{Machines: ms})
	}
	w := table(out)
	fmt.Fprintln(w, "ID\tSTATE\tROLE\tSCHOOL\tSERIAL\tADDRESS\tLAST SEEN\tATTESTATION\tNOTE")
	for _, m := range ms {
		note := m.Reason
		if a := m.Attestation; a != nil && !a.Accepted && note == "" {
			note = a.Text
		}
		if m.RequestedRole != "" && note == "" {
			note = fmt.Sprintf("asks for role %s (occtl approve %s -role %s)", m.RequestedRole, m.ID, m.RequestedRole)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.State, dash(string(m.Role)), dash(m.School), dash(m.Serial),
			dash(m.Addr), when(m.LastSeen), attestation(m.Attestation), note)
	}
	if len(ms) == 0 {
		fmt.Fprintln(w, "(the inbox is empty)")
	}
	return w.Flush()
}

func printMachine(out io.Writer, asJSON bool, m api.Machine) error {
	if asJSON {
		return printJSON(out, m)
	}
	w := table(out)
	row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, dash(v)) }
	row("id", m.ID)
	row("state", string(m.State))
	row("role", string(m.Role))
	row("school", m.School)
	row("decided by", m.DecidedBy)
	row("reason", m.Reason)
	if m.Conflict {
		row("conflict", "yes: check the box before approving it")
	}
	row("MACs", strings.Join(m.MACs, " "))
	row("serial", m.Serial)
	row("vendor", m.Vendor)
	row("product", m.Product)
	row("uuid", m.UUID)
	row("address", m.Addr)
	row("first seen", when(m.FirstSeen))
	row("last seen", when(m.LastSeen))
	row("EK hash", m.EKHash)
	row("attestation", attestation(m.Attestation))
	if m.RequestedRole != "" {
		row("asks for role", fmt.Sprintf("%s, since %s", m.RequestedRole, when(m.RequestedAt)))
	}
	if a := m.Attestation; a != nil && !a.Accepted {
		row("refused at", when(a.At))
		row("why", a.Text)
	}
	return w.Flush()
}

func printCluster(out io.Writer, asJSON bool, st api.ClusterStatus) error {
	if asJSON {
		return printJSON(out, st)
	}
	health := "healthy"
	if !st.Healthy {
		health = "NOT HEALTHY"
	}
	fmt.Fprintf(out, "leader: %s, %d member(s), %s\n", dash(st.Leader), len(st.Members), health)
	w := table(out)
	fmt.Fprintln(w, "NAME\tID\tROLE\tLEADER\tHEALTHY\tRAFT TERM\tRAFT INDEX\tPEER URLS\tERROR")
	for _, m := range st.Members {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", dash(m.Name), m.ID, m.Role, yes(m.Leader), yes(m.Healthy),
			m.RaftTerm, m.RaftIndex, strings.Join(m.PeerURLs, ","), m.Error)
	}
	return w.Flush()
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printReleases(out io.Writer, asJSON bool, rs []api.Release) error {
	if asJSON {
		return printJSON(out, api.ReleaseList{Releases: rs})
	}
	w := table(out)
	fmt.Fprintln(w, "SHA256\tNAME\tADDED\tBY")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.SHA256, dash(r.Name), when(r.Added), dash(r.AddedBy))
	}
	return w.Flush()
}
