package image

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestGzipFileIsDeterministic(t *testing.T) {
	// Half random, half repetitive, so that the compressor has real work.
	data := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data[:len(data)/2] {
		data[i] = byte(rng.Uint32())
	}
	src := filepath.Join(t.TempDir(), "in.cpio")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := gzipFile(src, &a); err != nil {
		t.Fatal(err)
	}
	if err := gzipFile(src, &b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("two compressions of the same input differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || zr.Comment != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header carries name %q, comment %q, time %v; want none", zr.Name, zr.Comment, zr.ModTime)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("decompressed output differs from the input (err %v)", err)
	}
	if err := gzipFile(filepath.Join(t.TempDir(), "missing"), io.Discard); err == nil {
		t.Errorf("gzipFile of a missing file succeeded")
	}
}

func TestGzipSize(t *testing.T) {
	g := newGzipSize()
	g.Write(bytes.Repeat([]byte("onecloud "), 10000))
	if n := g.Size(); n <= 0 || n > 1000 {
		t.Errorf("compressed size of 90 KB of repeated text = %d, want a few hundred bytes", n)
	}
}
