package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"github.com/onecloud-edu/onecloud/hw"
)

var cliT0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// cliServer serves a store holding one machine of each kind on a socket
// in a temporary folder.
func cliServer(t *testing.T) (*machines.Store, string) {
	t.Helper()
	ctx := context.Background()
	s, err := machines.Open(filepath.Join(t.TempDir(), "machines.json"), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := func(sg machines.Sighting, at time.Time) {
		t.Helper()
		if _, err := s.Seen(ctx, sg, at); err != nil {
			t.Fatal(err)
		}
	}
	inv := &hw.Inventory{Schema: hw.Schema, Class: hw.ClassPC,
		DMI:    hw.DMI{Vendor: "Dell Inc.", Product: "OptiPlex 3000 Thin Client", Serial: "CZ1234ABC"},
		CPU:    hw.CPU{Model: "Intel(R) Pentium(R) Silver N6005 @ 2.00GHz", Cores: 4, Threads: 4},
		Memory: hw.Memory{TotalBytes: 8 << 30},
		Disks:  []hw.Disk{{Name: "mmcblk0", SizeBytes: 64e9}},
		NICs:   []hw.NIC{{Name: "eth0", MAC: "a0:36:9f:00:00:01"}, {Name: "wlan0", MAC: "a0:36:9f:00:00:02", Wireless: true}},
		TPM:    hw.TPM{Present: true, Version: "2.0"},
	}
	seen(machines.Sighting{MAC: "00:1b:21:00:00:01", Serial: "GOOD", Source: machines.SourceIPXE}, cliT0.Add(-72*time.Hour))
	seen(machines.Sighting{MAC: "00:1b:21:00:00:01", Serial: "EVIL", Source: machines.SourceIPXE}, cliT0.Add(-71*time.Hour))
	seen(machines.Sighting{MAC: "a0:36:9f:00:00:01", Source: machines.SourceIPXE}, cliT0)
	seen(machines.Sighting{MAC: "a0:36:9f:00:00:01", Addr: netip.MustParseAddr("10.77.1.23"), Source: machines.SourceFirmware, Inventory: inv}, cliT0.Add(3*time.Hour-3*time.Minute))
	seen(machines.Sighting{MAC: "52:54:00:00:00:01", Addr: netip.MustParseAddr("10.77.1.5"), Source: machines.SourceIPXE}, cliT0.Add(time.Minute))
	seen(machines.Sighting{MAC: "52:54:00:00:00:01", Addr: netip.MustParseAddr("10.77.1.5"), Source: machines.SourceIPXE}, cliT0.Add(3*time.Hour-10*time.Second))
	seen(machines.Sighting{MAC: "52:54:00:00:00:02", Vendor: "QEMU", Product: "Standard PC (Q35 + ICH9, 2009)", Source: machines.SourceIPXE}, cliT0.Add(2*time.Minute))
	if _, err := s.Approve(ctx, "oc-a0369f000001", "vdi", "s01"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reject(ctx, "oc-525400000002", "not ours"); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(t.TempDir(), "bootstrapd.sock")
	l, err := machines.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: machines.AdminHandler(s)}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return s, sock
}

func runCLI(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	c := machinesCLI{now: func() time.Time { return cliT0.Add(3 * time.Hour) }, loc: time.UTC, stdout: &out, stderr: &errOut}
	err = c.run(context.Background(), args)
	return out.String(), errOut.String(), err
}

// golden compares got with testdata/NAME; UPDATE_GOLDEN=1 rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 go test writes it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestMachinesGolden(t *testing.T) {
	_, sock := cliServer(t)
	tests := []struct {
		file string
		args []string
	}{
		{"machines_list.golden", []string{"list", "-socket", sock}},
		{"machines_list_pending.golden", []string{"list", "-state", "pending", "-socket", sock}},
		{"machines_show.golden", []string{"show", "oc-a0369f000001", "-socket", sock}},
		{"machines_show_conflict.golden", []string{"show", "-socket", sock, "00:1b:21:00:00:01"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out, errOut, err := runCLI(tt.args...)
			if err != nil || errOut != "" {
				t.Fatalf("%v: %v\n%s", tt.args, err, errOut)
			}
			golden(t, tt.file, out)
		})
	}
}

func TestMachinesJSON(t *testing.T) {
	_, sock := cliServer(t)
	out, _, err := runCLI("list", "-json", "-state", "approved", "-socket", sock)
	if err != nil {
		t.Fatal(err)
	}
	var ms []machines.Machine
	if err := json.Unmarshal([]byte(out), &ms); err != nil || len(ms) != 1 || ms[0].ID != "oc-a0369f000001" || ms[0].Inventory == nil {
		t.Fatalf("list -json: %v %+v\n%s", err, ms, out)
	}
	out, _, err = runCLI("show", "oc-525400000002", "-json", "-socket", sock)
	if err != nil {
		t.Fatal(err)
	}
	var m machines.Machine
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.State != enrolapi.Rejected || m.Reason != "not ours" {
		t.Fatalf("show -json: %v %+v", err, m)
	}
}

func TestMachinesCommands(t *testing.T) {
	s, sock := cliServer(t)
	missing := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		name    string
		args    []string
		wantOut string // substring of stdout
		wantErr string // substring of the error; "" for none
	}{
		{"approve", []string{"approve", "oc-525400000001", "-role", "tci", "-school", "s02", "-socket", sock}, "oc-525400000001 approved: role tci, school s02", ""},
		{"assign keeps school", []string{"assign", "-socket", sock, "-role", "idv", "525400000001"}, "oc-525400000001 assigned: role idv, school s02;", ""},
		{"reject", []string{"reject", "oc-525400000001", "-reason", "stolen", "-socket", sock}, "oc-525400000001 rejected: stolen", ""},
		{"reject default reason", []string{"reject", "oc-a0369f000001", "-socket", sock}, "rejected: rejected by a technician", ""},
		{"assign rejected", []string{"assign", "oc-a0369f000001", "-role", "vdi", "-socket", sock}, "", "oc-a0369f000001 is rejected, not approved: approve it with `bootstrapd machines approve oc-a0369f000001 -role ROLE`"},
		{"forget", []string{"forget", "oc-525400000002", "-socket", sock}, "oc-525400000002 forgotten", ""},
		{"forget again", []string{"forget", "oc-525400000002", "-socket", sock}, "", "no machine oc-525400000002: see `bootstrapd machines list`"},
		{"approve without role", []string{"approve", "oc-525400000001", "-socket", sock}, "", "machines approve needs -role: one of server, vdi, idv, tci"},
		{"approve bad role", []string{"approve", "oc-525400000001", "-role", "desktop", "-socket", sock}, "", `role "desktop"`},
		{"show without id", []string{"show", "-socket", sock}, "", "machines show needs a machine id"},
		{"list with an argument", []string{"list", "pending", "-socket", sock}, "", `unexpected argument "pending"`},
		{"list bad state", []string{"list", "-state", "new", "-socket", sock}, "", `state "new": want pending, approved or rejected`},
		{"unknown command", []string{"delete", "x"}, "", `unknown command "delete"`},
		{"unknown flag", []string{"list", "-all"}, "", "flag provided but not defined: -all"},
		{"not running", []string{"list", "-socket", missing}, "", "bootstrapd is not running (no socket at " + missing + "): start it with `bootstrapd serve`"},
		{"help", []string{"help"}, "forget  ID", ""},
		{"command help", []string{"approve", "-h"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCLI(tt.args...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
			case !strings.Contains(out, tt.wantOut):
				t.Fatalf("output %q, want it to contain %q", out, tt.wantOut)
			}
		})
	}
	if m, err := s.Get("oc-525400000001"); err != nil || m.State != enrolapi.Rejected || m.Reason != "stolen" {
		t.Errorf("the store after the commands: %+v, %v", m, err)
	}
	if _, errOut, _ := runCLI("approve", "-h"); !strings.Contains(errOut, "usage: bootstrapd machines approve ID -role ROLE") {
		t.Errorf("approve -h printed %q", errOut)
	}
	if _, errOut, err := runCLI(); err == nil || !strings.Contains(errOut, "commands:") {
		t.Errorf("no command: %v, %q; want the usage and an error", err, errOut)
	}
}

func TestAgo(t *testing.T) {
	now := cliT0
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "never"},
		{now.Add(time.Second), "just now"}, // clocks disagree
		{now.Add(-12 * time.Second), "12s ago"},
		{now.Add(-3*time.Minute - 59*time.Second), "3m ago"},
		{now.Add(-47 * time.Hour), "47h ago"},
		{now.Add(-50 * time.Hour), "2d ago"},
	}
	for _, tt := range tests {
		if got := ago(now, tt.t); got != tt.want {
			t.Errorf("ago(%v) = %q, want %q", now.Sub(tt.t), got, tt.want)
		}
	}
}
