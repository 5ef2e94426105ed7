package measure

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/onecloud-edu/onecloud/internal/atomicfile"
)

// LogPath is where the firmware keeps its event log on a box. /run is the
// tmpfs of this boot, so the log lives exactly as long as the PCR values it
// explains; noded sends it to the verifier with its quote.
const LogPath = "/run/onecloud/measurements.log"

// ErrNoTPM is returned by a Measurer made without a TPM.
var ErrNoTPM = errors.New("no TPM: nothing is measured, so this box boots but cannot attest")

// TPM is what a Measurer needs of a TPM 2.0. Device implements it with
// go-tpm; tests may fake it.
type TPM interface {
	// Banks returns the algorithms (TPM_ALG_ID) of the PCR banks in which
	// pcr is allocated.
	Banks(ctx context.Context, pcr int) ([]uint16, error)
	// Extend extends pcr with one digest per bank, in one command, so
	// that the banks never disagree.
	Extend(ctx context.Context, pcr int, digests map[crypto.Hash][]byte) error
	// Read returns the value of pcr in the bank of h.
	Read(ctx context.Context, pcr int, h crypto.Hash) ([]byte, error)
}

// Measurer extends PCR in every bank of a TPM and keeps the event log that
// explains it at a path, rewriting the whole log (temporary file and rename)
// after each measurement so that a reader never sees half of it. It is safe
// for concurrent use.
type Measurer struct {
	tpm  TPM
	path string
	log  *slog.Logger

	mu     sync.Mutex
	banks  []crypto.Hash
	events []Event // what the PCR holds, whether or not the file could be written
}

// NewMeasurer prepares to measure into tpm, logging to path (LogPath on a
// box), warning on log (nil: silent). A nil tpm gives a Measurer whose measurements fail with ErrNoTPM.
//
// When a log already exists at path it is continued: the PCR keeps its value
// across a restart of the firmware and across kexec, so a log handed over by
// the stage before explains the PCR only if the new events follow it. A log
// that cannot be read, or that lists other banks than the TPM has, is an
// error. Otherwise a new log with its Spec ID header is written at once.
func NewMeasurer(ctx context.Context, tpm TPM, path string, log *slog.Logger) (*Measurer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Measurer{tpm: tpm, path: path, log: log}
	if tpm == nil {
		return m, nil
	}
	ids, err := tpm.Banks(ctx, PCR)
	if err != nil {
		return nil, fmt.Errorf("read the TPM's PCR banks: %w", err)
	}
	for _, id := range ids {
		h, ok := hashOf(id)
		if !ok {
			// SM3_256 banks, common on TPMs sold in China: Go's standard
			// library cannot hash them. The bank's PCR stays unextended,
			// so a verifier must quote a bank that the log lists.
			log.Warn("PCR bank left unmeasured: no hash for its algorithm; attestation must quote another bank",
				"alg", fmt.Sprintf("0x%04x", id), "pcr", PCR)
			continue
		}
		m.banks = append(m.banks, h)
	}
	if len(m.banks) == 0 {
		return nil, fmt.Errorf("the TPM has no PCR bank for PCR %d in SHA-1, SHA-256, SHA-384 or SHA-512 (banks %#06x): "+
			"allocate a SHA-256 bank in the firmware setup", PCR, ids)
	}
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		hdr, err := SpecID(m.banks)
		if err != nil {
			return nil, err
		}
		m.events = []Event{hdr}
		if err := m.write(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("read the event log to continue it: %w", err)
	default:
		events, err := ParseLog(old)
		if err != nil {
			return nil, fmt.Errorf("continue the event log %s: %w", path, err)
		}
		if have := logBanks(events[0]); !sameSet(have, m.banks) {
			return nil, fmt.Errorf("the event log %s lists banks %v but the TPM has %v: it was not written on this boot of this box; "+
				"remove it only if PCR %d was reset since", path, have, m.banks, PCR)
		}
		m.events = events
	}
	return m, nil
}

// logBanks returns the algorithms Go knows of a Spec ID header.
func logBanks(hdr Event) []crypto.Hash {
	algs, err := parseSpecID(hdr.Data, 0)
	if err != nil {
		return nil
	}
	var hs []crypto.Hash
	for _, a := range algs {
		if h, ok := hashOf(a.id); ok {
			hs = append(hs, h)
		}
	}
	return hs
}

func sameSet(a, b []crypto.Hash) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(h crypto.Hash) bool { return !slices.Contains(b, h) })
}

// Banks returns the hashes of the banks the Measurer extends.
func (m *Measurer) Banks() []crypto.Hash {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.banks)
}

// MeasureFile measures the image at path, which is about to run, as an
// EV_IPL event named name ("slot-a/vmlinuz"). The caller must run the very
// bytes measured: read the image from a place nobody else writes to.
func (m *Measurer) MeasureFile(ctx context.Context, path, name string) error {
	if err := checkName("image name", name); err != nil {
		return err
	}
	if m.tpm == nil {
		return ErrNoTPM
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("measure %s: %w", name, err)
	}
	defer f.Close()
	hs := map[crypto.Hash]hash.Hash{crypto.SHA256: sha256.New()} // for the event data, whatever the banks
	ws := []io.Writer{hs[crypto.SHA256]}
	for _, h := range m.Banks() {
		if _, ok := hs[h]; !ok {
			hs[h] = h.New()
			ws = append(ws, hs[h])
		}
	}
	if _, err := io.Copy(io.MultiWriter(ws...), ctxReader{ctx, f}); err != nil {
		return fmt.Errorf("measure %s: read %s: %w", name, path, err)
	}
	ev := Event{PCR: PCR, Type: EventIPL, Digests: map[crypto.Hash][]byte{},
		Data: imageData(name, hs[crypto.SHA256].Sum(nil))}
	for _, h := range m.Banks() {
		ev.Digests[h] = hs[h].Sum(nil)
	}
	return m.record(ctx, ev)
}

// MeasureData measures a configuration of the given kind ("role": a-z, 0-9
// and '-') as an EV_EVENT_TAG event whose digests are the hashes of its
// event data, so that the data itself is bound to the PCR.
func (m *Measurer) MeasureData(ctx context.Context, kind string, data []byte) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if len(data) > maxConfig {
		return fmt.Errorf("configuration %s: %d bytes, at most %d", kind, len(data), maxConfig)
	}
	if m.tpm == nil {
		return ErrNoTPM
	}
	d := configData(kind, data)
	ev := Event{PCR: PCR, Type: EventTag, Digests: map[crypto.Hash][]byte{}, Data: d}
	for _, h := range m.Banks() {
		w := h.New()
		w.Write(d)
		ev.Digests[h] = w.Sum(nil)
	}
	return m.record(ctx, ev)
}

// record extends the PCR, then logs the event. The event is kept in memory
// once the PCR holds it, even when the file cannot be written, so that the
// next write (or the next measurement) brings the file back in step.
func (m *Measurer) record(ctx context.Context, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.tpm.Extend(ctx, PCR, ev.Digests); err != nil {
		return fmt.Errorf("extend PCR %d: %w", PCR, err)
	}
	m.events = append(m.events, ev)
	return m.write()
}

// write replaces the log file; m.mu is held (or m is not shared yet).
func (m *Measurer) write() error {
	b, err := MarshalLog(m.events)
	if err != nil {
		return err
	}
	// Readable by all: nothing in it is secret, it all goes to the verifier.
	if err := atomicfile.WriteFile(m.path, b, 0o644); err != nil {
		return fmt.Errorf("write the event log (PCR %d holds more than the file says until it is written): %w", PCR, err)
	}
	return nil
}

// Check replays the log and compares it with the TPM's PCR in every bank
// measured. A mismatch means something else extended the PCR (or a log was
// not handed over), and attestation of this boot will fail.
func (m *Measurer) Check(ctx context.Context) error {
	if m.tpm == nil {
		return ErrNoTPM
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var bad []string
	for _, h := range m.banks {
		got, err := m.tpm.Read(ctx, PCR, h)
		if err != nil {
			return fmt.Errorf("read PCR %d (%v): %w", PCR, h, err)
		}
		want := Replay(m.events, h)[PCR]
		if want == nil {
			want = make([]byte, h.Size())
		}
		if !bytes.Equal(got, want) {
			bad = append(bad, fmt.Sprintf("%v: TPM %x, log %x", h, got, want))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("PCR %d does not match the event log (something else extended it): %s", PCR, strings.Join(bad, "; "))
	}
	return nil
}

// ctxReader stops a long read (a large image) when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
