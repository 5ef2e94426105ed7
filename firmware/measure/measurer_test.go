package measure

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// softTPM is a TPM with PCRs in memory: it extends as a TPM does, so the
// Measurer's log can be checked against it.
type softTPM struct {
	banks     []uint16
	extendErr error

	mu   sync.Mutex
	pcrs map[crypto.Hash][]byte // PCR 13 per bank
}

func newSoftTPM(banks ...uint16) *softTPM {
	return &softTPM{banks: banks, pcrs: map[crypto.Hash][]byte{}}
}

func (s *softTPM) Banks(ctx context.Context, pcr int) ([]uint16, error) { return s.banks, nil }

func (s *softTPM) Extend(ctx context.Context, pcr int, digests map[crypto.Hash][]byte) error {
	if s.extendErr != nil {
		return s.extendErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, d := range digests {
		cur := s.pcrs[h]
		if cur == nil {
			cur = make([]byte, h.Size())
		}
		w := h.New()
		w.Write(cur)
		w.Write(d)
		s.pcrs[h] = w.Sum(nil)
	}
	return nil
}

func (s *softTPM) Read(ctx context.Context, pcr int, h crypto.Hash) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.pcrs[h]; v != nil {
		return bytes.Clone(v), nil
	}
	return make([]byte, h.Size()), nil
}

const (
	algSHA1, algSHA256, algSM3 = 0x0004, 0x000B, 0x0012
)

// measureBoth measures an image and a role as the firmware does, and
// returns the log file's events.
func measureBoth(t *testing.T, ctx context.Context, m *Measurer, dir string) []Event {
	t.Helper()
	img := filepath.Join(dir, "release.json")
	if err := os.WriteFile(img, []byte(`{"version":"1.2.3"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.MeasureFile(ctx, img, "release.json"); err != nil {
		t.Fatal(err)
	}
	role := Role{ID: "oc-525400123456", Role: "vdi", School: "s01", Server: "http://10.77.1.1:8080"}
	if err := m.MeasureData(ctx, RoleKind, role.Canonical()); err != nil {
		t.Fatal(err)
	}
	return readLog(t, filepath.Join(dir, "measurements.log"))
}

func readLog(t *testing.T, path string) []Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	events, err := ParseLog(b)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func TestMeasurer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tpm := newSoftTPM(algSHA1, algSHA256, algSM3)
	m, err := NewMeasurer(ctx, tpm, filepath.Join(dir, "measurements.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Banks(); len(got) != 2 || got[0] != crypto.SHA1 || got[1] != crypto.SHA256 {
		t.Fatalf("banks %v, want SHA-1 and SHA-256 (SM3 skipped)", got)
	}
	if ev := readLog(t, filepath.Join(dir, "measurements.log")); len(ev) != 1 {
		t.Fatalf("a new log holds %d events, want the header alone", len(ev))
	}
	if err := m.Check(ctx); err != nil {
		t.Fatalf("Check of a fresh log: %v", err)
	}
	events := measureBoth(t, ctx, m, dir)
	if len(events) != 3 {
		t.Fatalf("%d events, want header, image, role", len(events))
	}
	img := events[1]
	sum := sha256.Sum256([]byte(`{"version":"1.2.3"}`))
	s1 := sha1.Sum([]byte(`{"version":"1.2.3"}`))
	if img.PCR != PCR || img.Type != EventIPL || !bytes.Equal(img.Digests[crypto.SHA256], sum[:]) || !bytes.Equal(img.Digests[crypto.SHA1], s1[:]) {
		t.Fatalf("image event %+v", img)
	}
	if name, got, err := img.Image(); err != nil || name != "release.json" || !bytes.Equal(got, sum[:]) {
		t.Fatalf("Image() = %q %x %v", name, got, err)
	}
	kind, data, err := events[2].Config()
	if err != nil || kind != RoleKind || !strings.Contains(string(data), `"role":"vdi"`) {
		t.Fatalf("Config() = %q %q %v", kind, data, err)
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		want, _ := tpm.Read(ctx, PCR, h)
		if got := Replay(events, h)[PCR]; !bytes.Equal(got, want) {
			t.Errorf("%v: replay %x, TPM %x", h, got, want)
		}
	}
	if err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}

	// Something else extends PCR 13: Check says so.
	tpm.Extend(ctx, PCR, map[crypto.Hash][]byte{crypto.SHA256: make([]byte, 32)})
	if err := m.Check(ctx); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Check after a foreign extend: %v", err)
	}
}

func TestMeasurerContinuesLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "measurements.log")
	tpm := newSoftTPM(algSHA256)
	m, err := NewMeasurer(ctx, tpm, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	measureBoth(t, ctx, m, dir)
	// The firmware starts again (or the next stage after kexec): the PCR
	// still holds the measurements, and the log goes on.
	m2, err := NewMeasurer(ctx, tpm, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Check(ctx); err != nil {
		t.Fatalf("continued log: %v", err)
	}
	if events := measureBoth(t, ctx, m2, dir); len(events) != 5 {
		t.Fatalf("%d events after continuing, want 5", len(events))
	}
	if err := m2.Check(ctx); err != nil {
		t.Fatal(err)
	}

	// A log for other banks is refused.
	if _, err := NewMeasurer(ctx, newSoftTPM(algSHA1, algSHA256), path, nil); err == nil || !strings.Contains(err.Error(), "lists banks") {
		t.Fatalf("log with other banks: %v", err)
	}
	// So is a log that does not parse.
	if err := os.WriteFile(path, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMeasurer(ctx, tpm, path, nil); err == nil || !strings.Contains(err.Error(), "continue the event log") {
		t.Fatalf("junk log: %v", err)
	}
}

func TestMeasurerFailures(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "measurements.log")

	t.Run("no TPM", func(t *testing.T) {
		m, err := NewMeasurer(ctx, nil, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{
			m.MeasureFile(ctx, "/etc/hostname", "x"), m.MeasureData(ctx, "role", nil), m.Check(ctx),
		} {
			if !errors.Is(err, ErrNoTPM) {
				t.Errorf("err = %v, want ErrNoTPM", err)
			}
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a log was written without a TPM: %v", err)
		}
	})
	t.Run("only banks Go cannot hash", func(t *testing.T) {
		if _, err := NewMeasurer(ctx, newSoftTPM(algSM3), path, nil); err == nil || !strings.Contains(err.Error(), "allocate a SHA-256 bank") {
			t.Fatalf("err = %v", err)
		}
	})

	tpm := newSoftTPM(algSHA256)
	m, err := NewMeasurer(ctx, tpm, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"missing image", m.MeasureFile(ctx, filepath.Join(dir, "nope"), "nope"), "no such file"},
		{"bad name", m.MeasureFile(ctx, path, "a\nb"), "printable"},
		{"bad kind", m.MeasureData(ctx, "Role!", nil), "configuration kind"},
		{"huge config", m.MeasureData(ctx, "role", make([]byte, maxConfig+1)), "at most"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, tc.err, tc.want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.MeasureFile(cancelled, path, "log"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled MeasureFile: %v", err)
	}
	tpm.extendErr = errors.New("TPM_RC_LOCALITY")
	if err := m.MeasureData(ctx, "role", []byte("{}")); err == nil || !strings.Contains(err.Error(), "TPM_RC_LOCALITY") {
		t.Errorf("failed extend: %v", err)
	}
	// Nothing of the failures reached the TPM or the log.
	if ev := readLog(t, path); len(ev) != 1 {
		t.Errorf("log holds %d events after failures, want 1", len(ev))
	}
	if err := m.Check(ctx); err != nil {
		t.Error(err)
	}
}
