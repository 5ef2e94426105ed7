package ui

import (
	"fmt"
	"time"

	"github.com/onecloud-edu/onecloud/internal/pinhash"
)

// PINChecker checks the console PIN. The console process backs it with
// the hash the cluster set, re-read when the cluster changes it.
type PINChecker interface {
	// Configured says whether a PIN is set; without one the admin menu
	// stays closed.
	Configured() bool
	// Check reports whether pin is the PIN.
	Check(pin string) bool
}

// MaxPINLength bounds what the PIN screen takes; a console PIN is 4 to 8
// digits (internal/pinhash.CheckPIN).
const MaxPINLength = 8

// PBKDF2Checker checks a PIN against the hash the cluster set, in
// internal/pinhash's format (pbkdf2-sha256$ITER$SALT$HASH); its zero value
// has no PIN set.
type PBKDF2Checker struct {
	hash string
}

// NewPBKDF2Checker takes a hash apart; an empty hash means no PIN is set.
func NewPBKDF2Checker(hash string) (*PBKDF2Checker, error) {
	if hash == "" {
		return &PBKDF2Checker{}, nil
	}
	if _, err := pinhash.Parse(hash); err != nil {
		return nil, fmt.Errorf("%w; set the console PIN again from the cluster (occtl console set-pin)", err)
	}
	return &PBKDF2Checker{hash: hash}, nil
}

// Configured says whether a PIN is set.
func (c *PBKDF2Checker) Configured() bool { return c != nil && c.hash != "" }

// Check derives the key of pin and compares it in constant time.
func (c *PBKDF2Checker) Check(pin string) bool {
	if !c.Configured() {
		return false
	}
	ok, err := pinhash.Verify(c.hash, pin)
	return ok && err == nil
}

// LockState is the PIN lockout, shared by the screen's and the serial
// console's models through a LockStore.
type LockState struct {
	// Failures are the wrong PINs since the last lock (or success).
	Failures int `json:"failures"`
	// Rounds are the locks since the last right PIN: the next lock lasts
	// LockBase * 2^Rounds.
	Rounds int       `json:"rounds"`
	Until  time.Time `json:"until,omitzero"`
}

// LockStore keeps the LockState; the console process backs it with a file
// so that both consoles and a restart see the same lock.
type LockStore interface {
	Load() (LockState, error)
	Save(LockState) error
}

// Lockout policy.
const (
	MaxPINTries = 5
	LockBase    = 30 * time.Second
	LockMax     = time.Hour
)

// lockFor is how long the lock after round (0-based) lasts.
func lockFor(round int) time.Duration {
	d := LockBase
	for range round {
		d *= 2
		if d >= LockMax {
			return LockMax
		}
	}
	return d
}

// afterFailure is the state after a wrong PIN at now.
func (s LockState) afterFailure(now time.Time) LockState {
	s.Failures++
	if s.Failures >= MaxPINTries {
		s.Until = now.Add(lockFor(s.Rounds))
		s.Rounds++
		s.Failures = 0
	}
	return s
}

// MemoryLockStore is a LockStore in memory, for tests and for a console
// process that has nowhere to write.
type MemoryLockStore struct{ State LockState }

// Load returns the state.
func (m *MemoryLockStore) Load() (LockState, error) { return m.State, nil }

// Save keeps the state.
func (m *MemoryLockStore) Save(s LockState) error { m.State = s; return nil }
