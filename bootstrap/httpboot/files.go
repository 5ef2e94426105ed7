package httpboot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/images"
)

// image serves one file of a published version. The file is opened once for
// the whole request, so a box gets the bytes of the version it asked for
// even if that version is pruned while it downloads.
func (h *Handler) image(w http.ResponseWriter, r *http.Request) {
	v, name := r.PathValue("version"), r.PathValue("name")
	f, fi, err := h.cfg.Images.Open(images.Version(v), name)
	if err != nil {
		h.openFailed(w, r, err)
		return
	}
	defer f.Close()
	// The version in the URL names the bytes for ever: caches may keep them.
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	h.serveFile(w, r, f, name, fi.ModTime, `"sha256:`+fi.SHA256+`"`)
}

// binary serves an iPXE binary from BinDir.
func (h *Handler) binary(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if h.bin == nil || !plainName.MatchString(name) {
		h.openFailed(w, r, fs.ErrNotExist)
		return
	}
	var f *os.File
	var err error
	if target, ok := h.binLinks[name]; ok {
		f, err = os.Open(target)
	} else {
		f, err = h.bin.Open(name)
	}
	if err != nil {
		h.openFailed(w, r, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		h.openFailed(w, r, fs.ErrNotExist)
		return
	}
	// Not versioned: clients revalidate, by size and time of the file.
	w.Header().Set("Cache-Control", "no-cache")
	h.serveFile(w, r, f, name, fi.ModTime(), fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()))
}

// openFailed answers 404 for what does not exist (or may not be named) and
// 500 for anything else, e.g. a symlink planted in a served folder that
// os.Root refuses to follow out of it.
func (h *Handler) openFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		h.log.Debug("file not found", append(h.who(r), "path", r.URL.Path)...)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	h.log.Error("cannot open a served file", append(h.who(r), "path", r.URL.Path, "err", err)...)
	http.Error(w, "the boot server cannot read this file", http.StatusInternalServerError)
}

// serveFile sends f with http.ServeContent (Range, If-Range, If-None-Match,
// If-Modified-Since). A GET that transfers the body holds a Limiter slot for
// its whole duration; HEAD and a conditional GET answered 304 do not need
// one. When no slot is free the answer is 503 with Retry-After.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, f *os.File, name string, mod time.Time, etag string) {
	if h.cfg.Limiter != nil && r.Method == http.MethodGet && !etagMatches(r.Header.Get("If-None-Match"), etag) {
		release, err := h.cfg.Limiter.Acquire(r.Context())
		if err != nil {
			if r.Context().Err() != nil {
				return // the client has gone
			}
			secs := int(math.Ceil(h.cfg.Limiter.RetryAfter().Seconds()))
			h.busy.Add(1)
			h.log.Debug("busy: asked to come back later", append(h.who(r), "path", r.URL.Path, "retry_after_s", secs)...)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			http.Error(w, "the boot server is busy, retry later", http.StatusServiceUnavailable)
			return
		}
		defer release()
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/octet-stream") // never let a client gunzip the initramfs
	cw := &countingWriter{ResponseWriter: w}
	start := time.Now()
	http.ServeContent(cw, r, name, mod, f)
	switch {
	case cw.status == http.StatusNotModified:
		h.notModified.Add(1)
	case cw.status < 300 && r.Method == http.MethodGet:
		h.files.Add(1)
		h.bytes.Add(uint64(cw.n))
		h.log.Info("file served", append(h.who(r), "path", r.URL.Path, "status", cw.status,
			"bytes", cw.n, "took", time.Since(start).Round(time.Millisecond))...)
	}
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// countingWriter records the status and the body bytes. It passes ReadFrom
// through so that the server can still use sendfile for the file.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(src io.Reader) (int64, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, src)
	}
	c.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
