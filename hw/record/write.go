package record

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"
)

// WriteDir writes the tree below dir, creating dir if needed. It refuses to
// write over an earlier recording (dir/sys or dir/proc exists), so that two
// recordings never mix; other files in dir, such as test goldens, stay.
func (t *Tree) WriteDir(dir string) error {
	for _, top := range []string{"sys", "proc"} {
		if _, err := os.Lstat(filepath.Join(dir, top)); err == nil {
			return fmt.Errorf("%s already holds a recording (%s exists): remove %s/sys and %s/proc first", dir, top, dir, dir)
		}
	}
	for _, p := range t.Paths() {
		e := t.entries[p]
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		var err error
		switch e.kind {
		case kindDir:
			err = os.MkdirAll(full, 0o755)
		case kindFile:
			err = os.WriteFile(full, e.data, 0o644)
		case kindLink:
			err = os.Symlink(e.target, full)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// WriteTar writes the tree as a tar archive. Entries are sorted and carry
// fixed times, owners and modes, so that equal trees give equal archives.
func (t *Tree) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	for _, p := range t.Paths() {
		e := t.entries[p]
		h := &tar.Header{Name: p, ModTime: epoch, Format: tar.FormatPAX}
		switch e.kind {
		case kindDir:
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, p+"/", 0o755
		case kindFile:
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, int64(len(e.data))
		case kindLink:
			h.Typeflag, h.Mode, h.Linkname = tar.TypeSymlink, 0o777, e.target
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if e.kind == kindFile {
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// ReadTar reads a tree written by WriteTar. It refuses entries that would
// land outside the tree and links that point outside it, so that unpacking a
// recording from an untrusted machine cannot write or read elsewhere.
func ReadTar(r io.Reader) (*Tree, error) {
	t := NewTree()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return t, fmt.Errorf("read recording: %w", err)
		}
		name := path.Clean(h.Name)
		if err := checkRel(name); err != nil {
			return t, fmt.Errorf("recording entry %q: %w", h.Name, err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			t.entries[name] = entry{kind: kindDir}
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				return t, fmt.Errorf("recording entry %q: %w", h.Name, err)
			}
			t.entries[name] = entry{kind: kindFile, data: data}
		case tar.TypeSymlink:
			if _, err := resolveLink(name, h.Linkname); err != nil || path.IsAbs(h.Linkname) {
				return t, fmt.Errorf("recording entry %q -> %q: link must stay inside the recording: %w", h.Name, h.Linkname, fs.ErrInvalid)
			}
			t.entries[name] = entry{kind: kindLink, target: h.Linkname}
		default:
			return t, fmt.Errorf("recording entry %q: type %q is not a file, directory or link: %w", h.Name, h.Typeflag, fs.ErrInvalid)
		}
	}
}
