package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/bootstrap/machines"
)

const machinesUsage = `usage: bootstrapd machines COMMAND [ID] [flags]

The enrolment inbox: every box that asked to boot, and whether it may run.

commands:
  list    [-state pending|approved|rejected] [-json]   machines, first seen first
  show    ID [-json]                                   one machine in full
  approve ID -role ROLE [-school S]                    let the box run in ROLE
  reject  ID [-reason TEXT]                            keep the box from running
  assign  ID -role ROLE [-school S]                    move an approved box to another role
  forget  ID                                           remove the box; it is new at its next boot

ROLE is one of server, vdi, idv, tci. ID is a machine id (oc-525400123456) or
any MAC of the box. Every command takes -socket PATH, the admin socket of the
running bootstrapd (default /run/onecloud/bootstrapd.sock).
`

// machinesTimeout bounds one command, so that a wedged server does not
// hang the technician's shell.
const machinesTimeout = 30 * time.Second

// runMachines runs `bootstrapd machines ARGS...` (args without "machines").
func runMachines(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := machinesCLI{now: time.Now, loc: time.Local, stdout: stdout, stderr: stderr}
	return c.run(ctx, args)
}

// machinesCLI holds what tests replace: the clock and the time zone.
type machinesCLI struct {
	now            func() time.Time
	loc            *time.Location
	stdout, stderr io.Writer
}

// machinesSynopsis is a command's line of usage, for its -h.
func machinesSynopsis(cmd string) (string, bool) {
	switch cmd {
	case "list":
		return "list [-state pending|approved|rejected] [-json] [-socket PATH]", true
	case "show":
		return "show ID [-json] [-socket PATH]", true
	case "approve", "assign":
		return cmd + " ID -role ROLE [-school S] [-socket PATH]", true
	case "reject":
		return "reject ID [-reason TEXT] [-socket PATH]", true
	case "forget":
		return "forget ID [-socket PATH]", true
	}
	return "", false
}

func (c machinesCLI) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, machinesUsage)
		return flag.ErrHelp
	}
	cmd := args[0]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, machinesUsage)
		return nil
	}
	synopsis, ok := machinesSynopsis(cmd)
	if !ok {
		fmt.Fprint(c.stderr, machinesUsage)
		return fmt.Errorf("machines: unknown command %q", cmd)
	}
	fs := flag.NewFlagSet("machines "+cmd, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: bootstrapd machines %s\n", synopsis)
		fs.PrintDefaults()
	}
	socket := fs.String("socket", machines.DefaultSocket, "admin socket of the running bootstrapd")
	asJSON, state, role, school, reason := new(bool), new(string), new(string), new(string), new(string)
	switch cmd {
	case "list":
		fs.StringVar(state, "state", "", "only machines in this state: pending, approved or rejected")
		fs.BoolVar(asJSON, "json", false, "print JSON instead of a table")
	case "show":
		fs.BoolVar(asJSON, "json", false, "print JSON")
	case "approve", "assign":
		fs.StringVar(role, "role", "", "role: server, vdi, idv or tci")
		help := "school the box belongs to"
		if cmd == "assign" {
			help += " (default: keep the current one)"
		}
		fs.StringVar(school, "school", "", help)
	case "reject":
		fs.StringVar(reason, "reason", "", "why, shown on the box's screen")
	}
	id, err := parseMachineArgs(fs, args[1:], cmd != "list")
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the usage is printed
	}
	if err != nil {
		return err
	}
	if (cmd == "approve" || cmd == "assign") && *role == "" {
		return fmt.Errorf("machines %s needs -role: one of %s", cmd, machines.Roles)
	}

	ctx, cancel := context.WithTimeout(ctx, machinesTimeout)
	defer cancel()
	cl := machines.NewClient(*socket)
	defer cl.Close()
	switch cmd {
	case "list":
		ms, err := cl.List(ctx, enrolapi.State(*state))
		if err != nil {
			return err
		}
		if *asJSON {
			return c.printJSON(ms)
		}
		c.printTable(ms, *state)
		return nil
	case "show":
		m, err := cl.Get(ctx, id)
		if err != nil {
			return err
		}
		if *asJSON {
			return c.printJSON(m)
		}
		c.printMachine(m)
		return nil
	case "approve":
		m, err := cl.Approve(ctx, id, *role, *school)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s approved: role %s%s\n", m.ID, m.Role, schoolText(m.School))
	case "assign":
		m, err := cl.Assign(ctx, id, *role, *school)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s assigned: role %s%s; the box reboots into it when it next enrols\n", m.ID, m.Role, schoolText(m.School))
	case "reject":
		m, err := cl.Reject(ctx, id, *reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s rejected: %s\n", m.ID, m.Reason)
	case "forget":
		if err := cl.Forget(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s forgotten: it shows up as a new machine at its next boot\n", id)
	}
	return nil
}

// parseMachineArgs parses flags before and after the machine id, so that
// both `approve ID -role vdi` and `approve -role vdi ID` work.
func parseMachineArgs(fs *flag.FlagSet, args []string, wantID bool) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	id := ""
	if wantID {
		if fs.NArg() == 0 {
			return "", fmt.Errorf("%s needs a machine id: see `bootstrapd machines list`", fs.Name())
		}
		id = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return "", err
		}
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("%s: unexpected argument %q (see `bootstrapd machines help`)", fs.Name(), fs.Arg(0))
	}
	return id, nil
}

func schoolText(s string) string {
	if s == "" {
		return ""
	}
	return ", school " + s
}

func (c machinesCLI) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", b)
	return err
}

func (c machinesCLI) printTable(ms []machines.Machine, state string) {
	if len(ms) == 0 {
		if state != "" {
			state += " "
		}
		fmt.Fprintf(c.stdout, "no %smachines\n", state)
		return
	}
	now := c.now()
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tROLE\tSCHOOL\tSERIAL\tMODEL\tADDRESS\tLAST SEEN")
	conflicts := false
	for _, m := range ms {
		st := string(m.State)
		if m.Conflict {
			st += "!"
			conflicts = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, st, cell(m.Role, 8), cell(m.School, 16),
			cell(m.Serial, 20), cell(strings.TrimSpace(m.Vendor+" "+m.Product), 28), cell(m.Addr, 39), ago(now, m.LastSeen))
	}
	tw.Flush()
	if conflicts {
		fmt.Fprintln(c.stdout, "! identity conflict: see `bootstrapd machines show ID`")
	}
}

// cell keeps a table cell short and never empty.
func cell(s string, max int) string {
	if s == "" {
		return "-"
	}
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

// ago says how long before now t was, in the largest whole unit: "3m ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

func (c machinesCLI) printMachine(m machines.Machine) {
	now := c.now()
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.In(c.loc).Format("2006-01-02 15:04:05 MST") + " (" + ago(now, t) + ")"
	}
	st := string(m.State)
	if m.DecidedBy != "" {
		st += " by " + m.DecidedBy
	}
	line("ID", m.ID)
	line("State", st)
	line("Role", m.Role)
	line("School", m.School)
	line("Reason", m.Reason)
	if m.Conflict {
		line("Conflict", "yes: the box's identity is in doubt (see Reason)")
	}
	line("MACs", strings.Join(m.MACs, ", "))
	line("Serial", m.Serial)
	line("Model", strings.TrimSpace(m.Vendor+" "+m.Product))
	line("UUID", m.UUID)
	line("Address", m.Addr)
	line("First seen", when(m.FirstSeen))
	line("Last seen", when(m.LastSeen))
	line("Hardware", hardwareText(m))
	tw.Flush()
}

// hardwareText sums up the inventory in one line.
func hardwareText(m machines.Machine) string {
	inv := m.Inventory
	if inv == nil {
		return "unknown until the firmware enrols"
	}
	parts := []string{inv.Class}
	if inv.CPU.Model != "" {
		parts = append(parts, fmt.Sprintf("%s (%d cores, %d threads)", inv.CPU.Model, inv.CPU.Cores, inv.CPU.Threads))
	}
	if inv.Memory.TotalBytes > 0 {
		parts = append(parts, fmt.Sprintf("%.1f GiB memory", float64(inv.Memory.TotalBytes)/(1<<30)))
	}
	var disks []string
	for _, d := range inv.Disks {
		disks = append(disks, fmt.Sprintf("%s %.0f GB", d.Name, float64(d.SizeBytes)/1e9))
	}
	if len(disks) > 0 {
		parts = append(parts, "disks "+strings.Join(disks, ", "))
	} else {
		parts = append(parts, "no disk")
	}
	if inv.TPM.Present {
		parts = append(parts, "TPM "+inv.TPM.Version)
	} else {
		parts = append(parts, "no TPM")
	}
	if n := len(inv.Problems); n > 0 {
		parts = append(parts, fmt.Sprintf("%d inventory problems", n))
	}
	return strings.Join(parts, "; ")
}
