// Package images keeps the published boot images on disk and serves their
// files by version.
//
// Layout of the store's folder:
//
//	dir/<version>/vmlinuz, initramfs.cpio.gz, ..., manifest.json
//	dir/current              the name of the current version and a newline
//	dir/.publish-*           a publication in progress (never served)
//
// A version is the image's own version plus a short digest of its manifest
// ("0.1.0-1a2b3c4d5e6f"), so two builds of one version never collide, and a
// version folder never changes once it is in place. Publishing copies into a
// temporary folder, checks every byte against the manifest, fsyncs, renames
// the folder into place and only then replaces "current" by a rename: a
// reader sees the old image or the new, never half of one. Old versions stay
// until Prune, and a file already open keeps its bytes even after Prune
// removed it, so a box in the middle of a download finishes it with the
// version its boot script named.
package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/onecloud-edu/onecloud/internal/atomicfile"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Names of the artefacts every published image must have.
const (
	Kernel    = "vmlinuz"
	Initramfs = "initramfs.cpio.gz"
)

const (
	manifestName = "manifest.json" // as image-builder writes it
	currentName  = "current"
	publishTmp   = ".publish-"
	// staleTmp is how old a leftover publication folder must be before
	// Open removes it: younger ones may belong to a publish running in
	// another process (bootstrapd publish while bootstrapd serves).
	staleTmp = time.Hour
)

// Version names one published image: its manifest version and a digest.
type Version string

// FileInfo describes one served file.
type FileInfo struct {
	Size    int64
	ModTime time.Time
	SHA256  string // hex, from the manifest (checked when it was published)
}

// Store is a folder of published images. It is safe for concurrent use.
type Store struct {
	dir  string
	root *os.Root

	pubMu sync.Mutex // one Publish or Prune at a time in this process

	mu        sync.Mutex
	manifests map[Version]*manifest // versions never change, so this never goes stale
}

// manifest is the part of image-builder's manifest.json the store needs
// (image-builder/image.Manifest); the rest is kept as published, byte for byte.
type manifest struct {
	Version   string     `json:"version"`
	Artefacts []artefact `json:"artefacts"`
}

type artefact struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

var (
	versionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	sha256Re  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Open opens (creating it if needed) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the image store %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open the image store %s: %w", dir, err)
	}
	s := &Store{dir: dir, root: root, manifests: map[Version]*manifest{}}
	s.removeStale()
	return s, nil
}

// Close releases the store's folder handle. Files opened from it stay usable.
func (s *Store) Close() error { return s.root.Close() }

// removeStale removes what an interrupted publication left behind.
func (s *Store) removeStale() {
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), publishTmp) && !strings.HasPrefix(e.Name(), "."+currentName) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTmp {
			s.root.RemoveAll(e.Name())
		}
	}
}

// Publish copies the image-builder output in srcDir into the store and makes
// it current. progress, if not nil, is called as bytes are copied. A
// publication that fails (a file that does not match its manifest, a full
// disk, ctx cancelled) leaves the store as it was. Publishing a build that is
// already in the store only makes it current again.
func (s *Store) Publish(ctx context.Context, srcDir string, progress func(done, total int64)) (Version, error) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()

	src, err := os.OpenRoot(srcDir)
	if err != nil {
		return "", fmt.Errorf("open the image folder: %w", err)
	}
	defer src.Close()
	raw, err := src.ReadFile(manifestName)
	if err != nil {
		return "", fmt.Errorf("no %s in %s (is it an image-builder output folder?): %w", manifestName, srcDir, err)
	}
	m, err := parseManifest(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(srcDir, manifestName), err)
	}
	sum := sha256.Sum256(raw)
	v := Version(m.Version + "-" + hex.EncodeToString(sum[:6]))

	if _, err := s.root.Stat(string(v) + "/" + manifestName); err == nil {
		if err := s.setCurrent(v); err != nil {
			return "", err
		}
		return v, nil
	}

	tmp, err := os.MkdirTemp(s.dir, publishTmp+string(v)+"-")
	if err != nil {
		return "", fmt.Errorf("publish %s: create a staging folder: %w", v, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()

	var total, copied int64
	for _, a := range m.Artefacts {
		total += a.Size
	}
	report := func(n int64) {
		copied += n
		if progress != nil {
			progress(copied, total)
		}
	}
	if progress != nil {
		progress(0, total)
	}
	for _, a := range m.Artefacts {
		if err := copyVerified(ctx, src, a, filepath.Join(tmp, a.Name), report); err != nil {
			return "", fmt.Errorf("refusing to publish %s: %w", srcDir, err)
		}
	}
	if err := atomicfile.WriteFileDurable(filepath.Join(tmp, manifestName), raw, 0o644); err != nil {
		return "", fmt.Errorf("publish %s: %w", v, err)
	}
	// The manifest's time orders the versions for Versions and Prune; set
	// it exactly, since file systems stamp files with a coarse clock.
	now := time.Now()
	if err := os.Chtimes(filepath.Join(tmp, manifestName), now, now); err != nil {
		return "", fmt.Errorf("publish %s: %w", v, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		return "", fmt.Errorf("publish %s: %w", v, err)
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return "", fmt.Errorf("publish %s: %w", v, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, string(v))); err != nil {
		if _, serr := s.root.Stat(string(v) + "/" + manifestName); serr != nil {
			return "", fmt.Errorf("publish %s: move it into place: %w", v, err)
		}
		// Another process published the same build meanwhile: the same bytes.
	} else {
		done = true
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return "", fmt.Errorf("publish %s: %w", v, err)
	}
	if err := s.setCurrent(v); err != nil {
		return "", err
	}
	return v, nil
}

// parseManifest reads and checks the fields the store relies on.
func parseManifest(raw []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not a valid image manifest: %w", err)
	}
	if !versionRe.MatchString(m.Version) {
		return nil, fmt.Errorf("image version %q is not usable in a URL or on a kernel command line (want letters, digits, '.', '_', '-')", m.Version)
	}
	seen := map[string]bool{}
	for _, a := range m.Artefacts {
		switch {
		case !validName(a.Name) || a.Name == manifestName:
			return nil, fmt.Errorf("artefact name %q is not a plain file name", a.Name)
		case seen[a.Name]:
			return nil, fmt.Errorf("artefact %q is listed twice", a.Name)
		case !sha256Re.MatchString(a.SHA256):
			return nil, fmt.Errorf("artefact %s has no valid sha256 (%q)", a.Name, a.SHA256)
		case a.Size < 0:
			return nil, fmt.Errorf("artefact %s has a negative size", a.Name)
		}
		seen[a.Name] = true
	}
	for _, need := range []string{Kernel, Initramfs} {
		if !seen[need] {
			return nil, fmt.Errorf("the manifest lists no %s: not a bootable image", need)
		}
	}
	return &m, nil
}

// validName says whether name is a plain, visible file or version name.
func validName(name string) bool { return nameRe.MatchString(name) }

// copyVerified copies one artefact from src to dst, hashing as it goes, and
// fails unless size and digest match the manifest.
func copyVerified(ctx context.Context, src *os.Root, a artefact, dst string, report func(int64)) error {
	in, err := src.Open(a.Name)
	if err != nil {
		return fmt.Errorf("the manifest lists %s but it cannot be read: %w", a.Name, err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", a.Name)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("copy %s: %w", a.Name, err)
		}
		k, rerr := in.Read(buf)
		if k > 0 {
			if _, err := out.Write(buf[:k]); err != nil {
				return fmt.Errorf("copy %s: %w", a.Name, err)
			}
			h.Write(buf[:k])
			n += int64(k)
			report(int64(k))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read %s: %w", a.Name, rerr)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != a.Size || got != a.SHA256 {
		return fmt.Errorf("%s does not match its manifest (%d bytes, sha256 %s; the manifest says %d bytes, sha256 %s): "+
			"the image folder is damaged or was changed after the build; build the image again", a.Name, n, got, a.Size, a.SHA256)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", a.Name, err)
	}
	return out.Close()
}

// SetCurrent makes an already published version current, e.g. to roll back.
func (s *Store) SetCurrent(v Version) error {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if _, err := s.manifest(v); err != nil {
		return err
	}
	return s.setCurrent(v)
}

// setCurrent replaces the "current" file by a rename, on disk before it
// returns.
func (s *Store) setCurrent(v Version) error {
	if err := atomicfile.WriteFileDurable(filepath.Join(s.dir, currentName), []byte(string(v)+"\n"), 0o644); err != nil {
		return fmt.Errorf("make %s current: %w", v, err)
	}
	return nil
}

// Current returns the version new boots get, and false when nothing is
// published (or "current" names a version that is gone). It reads the
// store's folder each time, so a publication by another process is seen at
// once.
func (s *Store) Current() (Version, bool) {
	// "current" may switch, and Prune remove what it named, between reading
	// it and checking the version: read it again when that happened.
	var prev Version
	for range 3 {
		b, err := s.root.ReadFile(currentName)
		if err != nil {
			return "", false
		}
		v := Version(strings.TrimSpace(string(b)))
		if _, err := s.manifest(v); err == nil {
			return v, true
		}
		if v == prev {
			break
		}
		prev = v
	}
	return "", false
}

// Versions lists the published versions, oldest first.
func (s *Store) Versions() ([]Version, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list the image store: %w", err)
	}
	type dated struct {
		v Version
		t time.Time
	}
	var vs []dated
	for _, e := range entries {
		if !e.IsDir() || !validName(e.Name()) {
			continue
		}
		fi, err := s.root.Stat(e.Name() + "/" + manifestName)
		if err != nil {
			continue // not a complete version
		}
		vs = append(vs, dated{Version(e.Name()), fi.ModTime()})
	}
	slices.SortFunc(vs, func(a, b dated) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		return strings.Compare(string(a.v), string(b.v))
	})
	out := make([]Version, len(vs))
	for i, d := range vs {
		out[i] = d.v
	}
	return out, nil
}

// Prune removes all but the newest keep versions (at least 1), never the
// current one, and returns what it removed. Boxes downloading a removed
// version finish their download; a box whose script named it gets 404 on its
// next request and retries with a new script.
func (s *Store) Prune(keep int) ([]Version, error) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	keep = max(keep, 1)
	vs, err := s.Versions()
	if err != nil {
		return nil, err
	}
	cur, _ := s.Current()
	var removed []Version
	for i, v := range vs {
		if len(vs)-i <= keep {
			break
		}
		if v == cur {
			continue
		}
		if err := s.root.RemoveAll(string(v)); err != nil {
			return removed, fmt.Errorf("remove version %s: %w", v, err)
		}
		s.mu.Lock()
		delete(s.manifests, v)
		s.mu.Unlock()
		removed = append(removed, v)
	}
	return removed, nil
}

// manifest returns a published version's manifest, checking that it is the
// one the version's name was made from.
func (s *Store) manifest(v Version) (*manifest, error) {
	if !validName(string(v)) {
		return nil, fmt.Errorf("%q is not a version name: %w", v, fs.ErrNotExist)
	}
	s.mu.Lock()
	m := s.manifests[v]
	s.mu.Unlock()
	if m != nil {
		return m, nil
	}
	raw, err := s.root.ReadFile(string(v) + "/" + manifestName)
	if err != nil {
		// Whatever the reason (absent, not a folder, a link out of the
		// store), for the caller the version does not exist.
		return nil, fmt.Errorf("no version %s in the store (%v): %w", v, err, fs.ErrNotExist)
	}
	sum := sha256.Sum256(raw)
	if !bytes.HasSuffix([]byte(v), []byte("-"+hex.EncodeToString(sum[:6]))) {
		return nil, fmt.Errorf("version %s: its manifest was changed after publication; publish the image again", v)
	}
	if m, err = parseManifest(raw); err != nil {
		return nil, fmt.Errorf("version %s: %w", v, err)
	}
	s.mu.Lock()
	s.manifests[v] = m
	s.mu.Unlock()
	return m, nil
}

// Open opens one artefact of a version for reading. Only the artefacts the
// manifest lists are served; any other name, and any name that tries to
// leave the store, gives an error that wraps fs.ErrNotExist. The caller
// closes the file.
func (s *Store) Open(v Version, name string) (*os.File, FileInfo, error) {
	m, err := s.manifest(v)
	if err != nil {
		return nil, FileInfo{}, err
	}
	i := slices.IndexFunc(m.Artefacts, func(a artefact) bool { return a.Name == name })
	if i < 0 {
		return nil, FileInfo{}, fmt.Errorf("version %s has no file %q: %w", v, name, fs.ErrNotExist)
	}
	a := m.Artefacts[i]
	f, err := s.root.Open(string(v) + "/" + a.Name)
	if err != nil {
		return nil, FileInfo{}, fmt.Errorf("version %s: %w", v, err)
	}
	fi, err := f.Stat()
	if err == nil && (!fi.Mode().IsRegular() || fi.Size() != a.Size) {
		err = fmt.Errorf("%s/%s is %d bytes, its manifest says %d: the store is damaged, publish the image again", v, a.Name, fi.Size(), a.Size)
	}
	if err != nil {
		f.Close()
		return nil, FileInfo{}, err
	}
	return f, FileInfo{Size: fi.Size(), ModTime: fi.ModTime(), SHA256: a.SHA256}, nil
}
