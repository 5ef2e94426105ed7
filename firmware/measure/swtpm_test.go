package measure

import (
	"bytes"
	"context"
	"crypto"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
)

// TestMeasurerSWTPM measures into a real (software) TPM and checks that the
// log replays to the TPM's PCR 13 in every bank, SHA-1 and SHA-256 at least.
func TestMeasurerSWTPM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A fresh software TPM, started and stopped with the test (the same
	// helper the attestation tests use).
	dev := Device{TPM: attesttest.Start(t, t.TempDir()).Conn}
	dir := t.TempDir()
	path := filepath.Join(dir, "measurements.log")
	m, err := NewMeasurer(ctx, dev, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	banks := m.Banks()
	if !slices.Contains(banks, crypto.SHA1) || !slices.Contains(banks, crypto.SHA256) {
		t.Fatalf("banks %v, want SHA-1 and SHA-256 among them", banks)
	}
	compare := func(events []Event) {
		t.Helper()
		for _, h := range banks {
			got, err := dev.Read(ctx, PCR, h)
			if err != nil {
				t.Fatal(err)
			}
			if want := Replay(events, h)[PCR]; !bytes.Equal(got, want) {
				t.Errorf("%v: TPM PCR %d = %x, replay of the log = %x", h, PCR, got, want)
			}
		}
	}
	compare(measureBoth(t, ctx, m, dir))
	if err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}

	// Another stage continues the log on the same boot.
	m2, err := NewMeasurer(ctx, dev, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := measureBoth(t, ctx, m2, dir)
	if len(events) != 5 {
		t.Fatalf("%d events, want 5", len(events))
	}
	compare(events)

	// A stage that starts a new log while the PCR holds measurements (a
	// log not handed over) is caught by Check.
	m3, err := NewMeasurer(ctx, dev, filepath.Join(dir, "other.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m3.Check(ctx); err == nil {
		t.Fatal("Check accepted a new log for a PCR that holds measurements")
	}
}
