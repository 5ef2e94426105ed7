// Package pinhash hashes and checks the node console's PIN. The cluster
// keeps only the hash and hands it to the boxes; a box compares in
// constant time. The format is one line that says how it was made:
//
//	pbkdf2-sha256$ITERATIONS$SALT$HASH
//
// with SALT and HASH in unpadded standard base64 (RFC 4648). PBKDF2 is in
// Go's standard library and cheap enough for a thin terminal's CPU, and a
// 4-to-8-digit PIN is protected by the console's lockout, not by the hash
// alone: the hash keeps the PIN from being read off a stolen disk or a
// captured enrolment answer.
package pinhash

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Prefix starts every hash of this format.
const Prefix = "pbkdf2-sha256$"

// DefaultIterations is the cost of a new hash: about 0.1 s on a thin
// terminal's CPU.
const DefaultIterations = 100_000

// The iterations a hash may say: a hash with more would stall a console.
const (
	minIterations = 1_000
	maxIterations = 10_000_000
)

// CheckPIN says what is wrong with a PIN a technician chose: 4 to 8 digits,
// as on a phone.
func CheckPIN(pin string) error {
	if len(pin) < 4 || len(pin) > 8 || strings.Trim(pin, "0123456789") != "" {
		return errors.New("a console PIN is 4 to 8 digits")
	}
	return nil
}

// Hash makes the hash of pin with a new random salt.
func Hash(pin string) (string, error) { return HashWith(pin, DefaultIterations) }

// HashWith is Hash at another cost (tests use the lowest, 1,000).
func HashWith(pin string, iterations int) (string, error) {
	if err := CheckPIN(pin); err != nil {
		return "", err
	}
	if iterations < minIterations || iterations > maxIterations {
		return "", fmt.Errorf("console PIN hash: %d iterations (want %d to %d)", iterations, minIterations, maxIterations)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum, err := pbkdf2.Key(sha256.New, pin, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("%s%d$%s$%s", Prefix, iterations, enc.EncodeToString(salt), enc.EncodeToString(sum)), nil
}

// Parsed is a hash taken apart.
type Parsed struct {
	Iterations int
	Salt, Sum  []byte
}

// Parse checks a hash's form without any PIN.
func Parse(hash string) (Parsed, error) {
	rest, ok := strings.CutPrefix(hash, Prefix)
	parts := strings.Split(rest, "$")
	if !ok || len(parts) != 3 {
		return Parsed{}, errors.New("not a console PIN hash (want pbkdf2-sha256$ITERATIONS$SALT$HASH)")
	}
	iter, err := strconv.Atoi(parts[0])
	if err != nil || iter < minIterations || iter > maxIterations {
		return Parsed{}, fmt.Errorf("console PIN hash: %q iterations (want 1,000 to 10,000,000)", parts[0])
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[1])
	if err != nil || len(salt) < 8 {
		return Parsed{}, errors.New("console PIN hash: the salt is not base64 of at least 8 bytes")
	}
	sum, err := enc.DecodeString(parts[2])
	if err != nil || len(sum) != sha256.Size {
		return Parsed{}, errors.New("console PIN hash: the hash is not base64 of 32 bytes")
	}
	return Parsed{Iterations: iter, Salt: salt, Sum: sum}, nil
}

// Verify reports whether pin matches hash; an unusable hash matches
// nothing and says why.
func Verify(hash, pin string) (bool, error) {
	p, err := Parse(hash)
	if err != nil {
		return false, err
	}
	sum, err := pbkdf2.Key(sha256.New, pin, p.Salt, p.Iterations, sha256.Size)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(sum, p.Sum) == 1, nil
}
