package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
	"github.com/onecloud-edu/onecloud/noded/nodecert"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/server/servertest"
)

func TestAttestFlags(t *testing.T) {
	base := []string{"-server", "https://10.0.0.11:9443", "-ca", "ca.crt", "-name", "oc-525400123456"}
	f, err := parseAttestFlags(base, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.tpm != "/dev/tpmrm0" || f.dir != nodecert.DefaultDir || f.eventLog != "/run/onecloud/measurements.log" || f.serial != "" {
		t.Errorf("defaults: %+v", f)
	}
	for _, tt := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"-ca", "ca.crt", "-name", "oc-1"}, "-server"},
		{[]string{"-server", "https://10.0.0.11:9443", "-name", "oc-1"}, "-ca"},
		{[]string{"-server", "https://10.0.0.11:9443", "-ca", "ca.crt"}, "-name"},
		{append(base[2:], "-server", "http://10.0.0.11:9443"), "want https://"},
		{append(base[2:], "-server", "https://10.0.0.11:9443/v1"), "want https://"},
		{append(base[2:], "-server", "10.0.0.11:9443"), "want https://"},
		{append(base, "-dir", ""), "-dir is empty"},
		{append(base, "-tpm", ""), "-tpm is empty"},
		{append(base, "extra"), "unexpected arguments"},
		{append(base, "-no-such-flag"), "not defined"},
	} {
		if _, err := parseAttestFlags(tt.args, io.Discard); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseAttestFlags(%q) = %v, want an error about %q", tt.args, err, tt.want)
		}
	}
	// The command itself stops at bad flags, before it opens anything.
	if err := runAttest(t.Context(), []string{"-name", "oc-1"}, io.Discard, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("runAttest without -server: %v", err)
	}
}

// TestAttestSetupErrors: what runAttest reads before it attests is checked
// with an error that names the flag.
func TestAttestSetupErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, pki.EncodeCerts(ca.Root), 0o644); err != nil {
		t.Fatal(err)
	}
	noTPM := func(string) (transport.TPMCloser, error) { return nil, errors.New("no such device") }
	for _, tt := range []struct {
		ca, want string
	}{
		{filepath.Join(dir, "missing.crt"), "-ca"},
		{notPEM, "-ca " + notPEM},
		{caFile, "open the TPM"},
	} {
		args := []string{"-server", "https://127.0.0.1:9", "-ca", tt.ca, "-name", "oc-1", "-serial", "SN", "-dir", dir}
		err := runAttestWith(t.Context(), args, io.Discard, slog.New(slog.DiscardHandler), attestDeps{openTPM: noTPM})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("-ca %s: %v, want an error about %q", tt.ca, err, tt.want)
		}
	}
}

// testClock is the cluster's test clock with real timers: the run below
// ends at the first verdict.
type testClock struct{ *servertest.Clock }

func (testClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// TestAttestRun: `noded attest` on an approved terminal earns a node
// certificate, keeps it in -dir and says so in status.json.
func TestAttestRun(t *testing.T) {
	tpms := attesttest.NewFactory(t.TempDir())
	e := servertest.Start(t)
	kernel := []byte("terminal kernel 6.12")
	e.Release(t, "6.12", kernel)
	b := servertest.NewBox(t, tpms, "52:54:00:00:02:01", "SN-TERMINAL", kernel)
	b.Enrol(t, e)
	if _, err := e.Client(t, &e.Admin).Approve(t.Context(), b.ID, api.ApproveRequest{Role: api.RoleTCI, EKHash: b.EKHash(t)}); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	logFile, caFile, dir := filepath.Join(tmp, "measurements.log"), filepath.Join(tmp, "ca.crt"), filepath.Join(tmp, "node")
	if err := os.WriteFile(logFile, b.EventLog(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, pki.EncodeCerts(e.CA.Root), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var last nodecert.Status
	deps := attestDeps{
		openTPM: func(path string) (transport.TPMCloser, error) {
			if path != "swtpm" {
				return nil, errors.New("the -tpm path did not reach the opener")
			}
			return nopClose{b.TPM.Conn}, nil
		},
		clock: testClock{e.Clock},
		onChange: func(s nodecert.Status) {
			if last = s; s.State != nodecert.Attesting {
				cancel()
			}
		},
	}
	args := []string{"-server", e.URL, "-ca", caFile, "-name", b.ID, "-serial", b.Serial,
		"-tpm", "swtpm", "-event-log", logFile, "-dir", dir}
	if err := runAttestWith(ctx, args, io.Discard, servertest.Logger(t, slog.LevelInfo), deps); err != nil {
		t.Fatal(err)
	}
	if last.State != nodecert.Accepted {
		t.Fatalf("last status %+v, want accepted", last)
	}
	certs, err := pki.ReadCerts(filepath.Join(dir, nodecert.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	if certs[0].Subject.CommonName != b.ID || !certs[0].NotAfter.Equal(last.Expires) {
		t.Errorf("kept certificate for %q expiring %v; status %+v", certs[0].Subject.CommonName, certs[0].NotAfter, last)
	}
	if s, err := nodecert.Read(dir); err != nil || s.State != nodecert.Accepted || !s.Expires.Equal(last.Expires) {
		t.Errorf("status.json: %+v, %v", s, err)
	}
}
