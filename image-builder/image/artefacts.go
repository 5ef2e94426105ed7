package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// staging writes artefacts as hidden temporary files in the output directory
// and moves them into place all at once, manifest last, so that a failed or
// interrupted build never leaves a half-written file, nor new artefacts
// next to an old manifest.
type staging struct {
	dir   string
	files map[string]string // artefact name -> temporary path
	order []string
}

func newStaging(dir string) (*staging, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	return &staging{dir: dir, files: map[string]string{}}, nil
}

// add writes one artefact through write and returns its size and digest.
func (s *staging) add(name string, write func(w io.Writer) error) (Artefact, error) {
	f, err := os.CreateTemp(s.dir, "."+name+".tmp-*")
	if err != nil {
		return Artefact{}, fmt.Errorf("write %s: %w", name, err)
	}
	s.files[name] = f.Name()
	s.order = append(s.order, name)
	h := sha256.New()
	var n countingWriter
	err = write(io.MultiWriter(f, h, &n))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// CreateTemp makes files 0600; artefacts are served to others.
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		return Artefact{}, fmt.Errorf("write %s: %w", name, err)
	}
	return Artefact{Name: name, Size: int64(n), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// addFile stages a copy of the file at src.
func (s *staging) addFile(name, src string) (Artefact, error) {
	return s.add(name, func(w io.Writer) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
}

// publish removes the old manifest, renames every staged artefact into
// place, and writes the manifest last.
func (s *staging) publish(manifest []byte) error {
	if err := os.Remove(filepath.Join(s.dir, ManifestName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the previous manifest: %w", err)
	}
	for _, name := range s.order {
		if err := os.Rename(s.files[name], filepath.Join(s.dir, name)); err != nil {
			return fmt.Errorf("publish %s: %w", name, err)
		}
		delete(s.files, name)
	}
	if _, err := s.add(ManifestName, func(w io.Writer) error { _, err := w.Write(manifest); return err }); err != nil {
		return err
	}
	if err := os.Rename(s.files[ManifestName], filepath.Join(s.dir, ManifestName)); err != nil {
		return fmt.Errorf("publish %s: %w", ManifestName, err)
	}
	delete(s.files, ManifestName)
	return nil
}

// cleanup removes whatever is still staged (after a failure).
func (s *staging) cleanup() {
	for _, tmp := range s.files {
		os.Remove(tmp)
	}
}
