package verify

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/measure"
)

// Approval is what the enrolment inbox knows of an approved machine.
type Approval struct {
	MachineID string
	// EKHash is the EK fingerprint (api.EKHash) the technician recorded at
	// approval; "" when the machine was approved to be identified by its
	// EK certificate.
	EKHash string
}

// Machines answers which machines are approved; the cluster store
// implements it.
type Machines interface {
	// Approval returns the approval of the machine with this serial; ok is
	// false when the serial is not approved.
	Approval(ctx context.Context, serial string) (a Approval, ok bool, err error)
}

// Record is what the verifier remembers of a machine between attestations.
type Record struct {
	// EKHash is the EK pinned to the serial at its first accepted
	// attestation: any other EK for this serial is an alarm.
	EKHash string `json:"ek_hash"`
	// The TPM's counters and clock in the last accepted quote.
	ResetCount   uint32    `json:"reset_count"`
	RestartCount uint32    `json:"restart_count"`
	Clock        uint64    `json:"clock"`
	Accepted     time.Time `json:"accepted"`
}

// Store keeps the Records by serial. Saves of one serial never race: the
// verifier serialises the check-and-save of an attestation. Several
// verifiers sharing a store (etcd) should save with a compare-and-swap on
// the loaded revision.
type Store interface {
	Load(ctx context.Context, serial string) (r Record, ok bool, err error)
	Save(ctx context.Context, serial string, r Record) error
}

// MemoryStore is a Store in memory, for tests and a single verifier.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]Record
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string]Record{}} }

// Load implements Store.
func (s *MemoryStore) Load(_ context.Context, serial string) (Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[serial]
	return r, ok, nil
}

// Save implements Store.
func (s *MemoryStore) Save(_ context.Context, serial string, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[serial] = r
	return nil
}

// Released says whether an image digest (SHA-256) is that of a released
// bundle; the cluster's list of released bundles implements it.
type Released interface {
	Released(ctx context.Context, sha256 []byte) (bool, error)
}

// ReleasedSet is a fixed set of released digests, lower-case hex.
type ReleasedSet map[string]bool

// Released implements Released.
func (s ReleasedSet) Released(_ context.Context, sum []byte) (bool, error) {
	return s[hex.EncodeToString(sum)], nil
}

// Image is one image the firmware measured before running it.
type Image struct {
	Name   string `json:"name"`
	SHA256 []byte `json:"sha256"`
}

// Replayed is what an event log says the PCRs should hold, and what it
// measured.
type Replayed struct {
	// PCRs are the replayed values, per PCR index, in the bank asked for.
	PCRs map[int][]byte
	// Images are the images measured into measure.PCR, in order.
	Images []Image
	// Configs are the configurations measured (kind -> data; the last of
	// a kind wins), for the cluster to compare with what it assigned.
	Configs map[string][]byte
}

// EventLog reads the firmware's event log. MeasuredLog is the real one; a
// test may fake it.
type EventLog interface {
	// Replay parses log and replays it in the bank of h. An error means
	// the log cannot be read (errLogInvalid) or contradicts itself
	// (errLogTampered).
	Replay(log []byte, h crypto.Hash) (Replayed, error)
}

var (
	errLogInvalid  = errors.New("the event log cannot be read")
	errLogTampered = errors.New("the event log contradicts itself")
)

// MeasuredLog reads the TCG event log of firmware/measure.
type MeasuredLog struct{}

// Replay implements EventLog.
func (MeasuredLog) Replay(log []byte, h crypto.Hash) (Replayed, error) {
	events, err := measure.ParseLog(log)
	if err != nil {
		return Replayed{}, fmt.Errorf("%w: %w", errLogInvalid, err)
	}
	r := Replayed{PCRs: measure.Replay(events, h), Configs: map[string][]byte{}}
	for _, e := range events {
		if e.PCR != measure.PCR {
			continue
		}
		name, sum, err := e.Image()
		switch {
		case err == nil:
			r.Images = append(r.Images, Image{Name: name, SHA256: sum})
			continue
		case !errors.Is(err, measure.ErrOtherEvent):
			return Replayed{}, fmt.Errorf("%w: %w", errLogTampered, err)
		}
		kind, data, err := e.Config()
		switch {
		case err == nil:
			r.Configs[kind] = data
		case !errors.Is(err, measure.ErrOtherEvent):
			return Replayed{}, fmt.Errorf("%w: %w", errLogTampered, err)
		}
	}
	return r, nil
}
