package hw

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// source reads the files of one root and keeps a list of the problems it
// meets, so that one bad file costs only the fields it feeds and Collect can
// still return everything else.
//
// Every problem is an *fs.PathError whose Path is the file as opened (root
// joined with the sysfs path), so the operator sees which file is wrong.
type source struct {
	root     string
	problems []error
}

// path returns the file name of rel (a slash-separated path below the root).
func (s *source) path(rel string) string {
	return filepath.Join(s.root, filepath.FromSlash(rel))
}

// fail records that the file rel is malformed, with what was wrong and
// what was expected.
func (s *source) fail(rel, format string, args ...any) {
	s.problems = append(s.problems, &fs.PathError{Op: "parse", Path: s.path(rel), Err: fmt.Errorf(format, args...)})
}

// text returns the content of rel with surrounding white space trimmed.
// ok is false when the file is absent, which is not a problem: optional
// things (DMI, a disk's serial) are simply missing on some machines. Any
// other read error is recorded as a problem.
func (s *source) text(rel string) (value string, ok bool) {
	b, err := os.ReadFile(s.path(rel))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.problems = append(s.problems, err)
		}
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// optional returns the content of rel, or "" when it is absent or
// unreadable (the latter recorded as a problem).
func (s *source) optional(rel string) string {
	v, _ := s.text(rel)
	return v
}

// required returns the whole content of a file every Linux machine has
// (/proc/cpuinfo), untrimmed so that line numbers in problems are right.
// There an absent file is a problem too.
func (s *source) required(rel string) (string, bool) {
	b, err := os.ReadFile(s.path(rel))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = &fs.PathError{Op: "open", Path: s.path(rel), Err: fmt.Errorf("%w: is this the root of a Linux machine with /proc mounted?", fs.ErrNotExist)}
		}
		s.problems = append(s.problems, err)
		return "", false
	}
	return string(b), true
}

// volatile is text for attributes that the kernel refuses to read while a
// device is not ready or cannot tell: carrier and speed of an interface
// that is down fail with EINVAL, speed of a driver without link settings
// (some Wi-Fi) with EOPNOTSUPP, and a device going away gives ENODEV. Such
// a refusal means "unknown", not a problem.
func (s *source) volatile(rel string) (string, bool) {
	b, err := os.ReadFile(s.path(rel))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.EINVAL) &&
			!errors.Is(err, syscall.EOPNOTSUPP) && !errors.Is(err, syscall.ENODEV) {
			s.problems = append(s.problems, err)
		}
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// flag reads a file holding "0" or "1". A missing file is false.
func (s *source) flag(rel string) bool {
	v, ok := s.text(rel)
	if !ok {
		return false
	}
	switch v {
	case "0":
		return false
	case "1":
		return true
	}
	s.fail(rel, "want 0 or 1, got %q", v)
	return false
}

// exists reports whether rel exists, without following a link at the end:
// sysfs links such as device or phy80211 may dangle in a recorded tree.
func (s *source) exists(rel string) bool {
	_, err := os.Lstat(s.path(rel))
	return err == nil
}

// link returns the target of the link rel, or "" if rel is not a link.
func (s *source) link(rel string) string {
	target, err := os.Readlink(s.path(rel))
	if err != nil {
		return ""
	}
	return filepath.ToSlash(target)
}

// names returns the entries of the directory rel, sorted. An absent
// directory (no TPM class, no network) has no entries and is no problem.
func (s *source) names(rel string) []string {
	entries, err := os.ReadDir(s.path(rel))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.problems = append(s.problems, err)
		}
		return nil
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// uint parses a decimal unsigned number from rel, recording a problem that
// says what was expected when it is not one.
func (s *source) uint(rel, what string) (uint64, bool) {
	v, ok := s.text(rel)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		s.fail(rel, "want %s, got %q", what, v)
		return 0, false
	}
	return n, true
}
