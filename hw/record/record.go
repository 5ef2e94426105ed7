// Package record copies the few files of /sys and /proc that package hw
// reads from a live machine into a small tree, so that the inventory code can
// be tested against real machines without them.
//
// A recorded tree keeps the shape of sysfs: regular files are copied, and
// symbolic links stay links with their original (relative) targets, together
// with the directories they lead to. /sys/block/vda, for example, stays a link
// to ../devices/pci0000:00/0000:00:04.0/virtio1/block/vda, and
// sys/block/vda/size is found through it exactly as on the real machine. Link
// targets that nothing reads (a driver's directory under sys/bus) are not
// copied: such links dangle, which is fine because hw only reads their names.
//
// A Tree is held in memory (a recording is a few hundred small files) and
// written out as a directory or as a tar archive with fixed times and sorted
// entries, so that recording the same machine twice gives the same bytes.
package record

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// maxLinks bounds how many links one path may pass through, as the kernel's
// own limit does, so that a link loop in a broken tree ends with an error.
const maxLinks = 40

// kind says what a Tree entry is.
type kind int

const (
	kindDir kind = iota
	kindFile
	kindLink
)

// entry is one file, directory or link of a Tree.
type entry struct {
	kind   kind
	data   []byte // file content
	target string // link target, relative to the link's directory
}

// Tree is a recorded set of files, directories and links, keyed by their
// slash-separated path relative to the recorded root.
type Tree struct {
	entries map[string]entry
}

// NewTree returns an empty tree.
func NewTree() *Tree {
	return &Tree{entries: make(map[string]entry)}
}

// Paths returns the recorded paths in the order they are written: sorted, so
// that every directory comes before what it holds.
func (t *Tree) Paths() []string {
	paths := make([]string, 0, len(t.entries))
	for p := range t.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// Read records from root every path that matches one of patterns ("*"
// matches one path element, as in path.Match). It returns the tree of
// everything it could read; the error joins one error per path it had to
// leave out. On a live machine some are expected: reading the carrier of an
// interface that is down fails with "invalid argument", and the DMI serial
// number needs root. Leaving such a file out is what package hw sees as
// "unknown".
func Read(ctx context.Context, root string, patterns []string) (*Tree, error) {
	t := NewTree()
	var problems []error
	for _, pattern := range patterns {
		if err := ctx.Err(); err != nil {
			return t, err
		}
		if err := checkRel(pattern); err != nil {
			return t, fmt.Errorf("pattern %q: %w", pattern, err)
		}
		matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(pattern)))
		if err != nil {
			return t, fmt.Errorf("pattern %q: %w", pattern, err)
		}
		for _, m := range matches {
			rel, err := filepath.Rel(root, m)
			if err != nil {
				return t, fmt.Errorf("pattern %q matched %s outside the root: %w", pattern, m, err)
			}
			if err := t.add(root, filepath.ToSlash(rel), 0); err != nil {
				problems = append(problems, err)
			}
		}
	}
	return t, errors.Join(problems...)
}

// add records rel (relative to root) with every directory and link on the
// way to it. A link in the middle of the path is recorded and then followed;
// a link at the end is recorded and not followed.
func (t *Tree) add(root, rel string, links int) error {
	parts := strings.Split(rel, "/")
	cur := ""
	for i, part := range parts {
		cur = path.Join(cur, part)
		full := filepath.Join(root, filepath.FromSlash(cur))
		fi, err := os.Lstat(full)
		if err != nil {
			return err
		}
		last := i == len(parts)-1
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return err
			}
			resolved, err := resolveLink(cur, target)
			if err != nil {
				return fmt.Errorf("link %s -> %s: %w", full, target, err)
			}
			// Store the target relative to the link, so the recorded tree
			// works wherever it is unpacked.
			relTarget, err := filepath.Rel(path.Dir(cur), resolved)
			if err != nil {
				return fmt.Errorf("link %s -> %s: %w", full, target, err)
			}
			t.entries[cur] = entry{kind: kindLink, target: filepath.ToSlash(relTarget)}
			if last {
				return nil
			}
			if links >= maxLinks {
				return fmt.Errorf("%s: more than %d links: %w", full, maxLinks, fs.ErrInvalid)
			}
			return t.add(root, path.Join(resolved, strings.Join(parts[i+1:], "/")), links+1)
		case fi.IsDir():
			t.entries[cur] = entry{kind: kindDir}
		case fi.Mode().IsRegular() && last:
			data, err := os.ReadFile(full)
			if err != nil {
				return err
			}
			t.entries[cur] = entry{kind: kindFile, data: data}
		default:
			return &fs.PathError{Op: "record", Path: full, Err: errors.New("neither a regular file, a directory nor a link")}
		}
	}
	return nil
}

// resolveLink returns the root-relative path that a link at linkPath with
// the given target points to. Absolute targets are taken relative to the
// root (the recorded machine's "/"). Targets that climb out of the root are
// refused: they would make the recorded tree read the recording machine.
func resolveLink(linkPath, target string) (string, error) {
	var p string
	if path.IsAbs(target) {
		p = path.Clean(strings.TrimPrefix(target, "/"))
	} else {
		p = path.Join(path.Dir(linkPath), target)
	}
	if p == ".." || strings.HasPrefix(p, "../") || p == "." {
		return "", errors.New("target is outside the recorded root")
	}
	return p, nil
}

// checkRel refuses paths that are absolute or climb out of the root.
func checkRel(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("want a clean path relative to the root, like sys/block/*/size: %w", fs.ErrInvalid)
	}
	return nil
}
