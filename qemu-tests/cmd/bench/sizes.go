package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/onecloud-edu/onecloud/image-builder/image"
)

// Sizes is what one built image weighs, from its manifest.
type Sizes struct {
	Image  string `json:"image"`
	Commit string `json:"commit"`
	Go     string `json:"go"`
	Kernel string `json:"kernel"` // the kernel release

	Commands int `json:"commands"` // in the Go busybox
	// Components are the initramfs's parts as the builder measured them: the Go busybox, the kernel
	// modules, the other files; each uncompressed and gzipped alone.
	Components []image.Component `json:"components"`
	Cpio       int64             `json:"cpio"`    // the whole initramfs, uncompressed (cpio headers included)
	CpioGzip   int64             `json:"cpio_gz"` // initramfs.cpio.gz
	Vmlinuz    int64             `json:"vmlinuz"`
}

// readSizes reads the sizes of the image in img.Dir. The manifest has each component's size and the
// compressed initramfs's; the uncompressed total, cpio headers and padding included, is counted by
// decompressing it.
func readSizes(img imageSpec) (Sizes, error) {
	m, err := image.ReadManifest(img.Dir)
	if err != nil {
		return Sizes{}, fmt.Errorf("%s image: %w (or drop -skip-build)", img.Name, err)
	}
	s := Sizes{
		Image: img.Name, Commit: m.Commit, Go: m.Go, Kernel: m.Kernel.Release,
		Commands: len(m.Commands), Components: m.Sizes,
	}
	for _, a := range m.Artefacts {
		switch a.Name {
		case "initramfs.cpio.gz":
			s.CpioGzip = a.Size
		case "vmlinuz":
			s.Vmlinuz = a.Size
		}
	}
	if s.Cpio, err = gunzippedSize(filepath.Join(img.Dir, "initramfs.cpio.gz")); err != nil {
		return s, fmt.Errorf("%s image: %w", img.Name, err)
	}
	return s, nil
}

// gunzippedSize is the size of a gzip file's content.
func gunzippedSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	n, err := io.Copy(io.Discard, zr)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return n, nil
}

// component returns the component whose name starts with prefix ("Go busybox", "kernel modules",
// "other"), or a zero one: the bare image has no modules.
func (s Sizes) component(prefix string) image.Component {
	for _, c := range s.Components {
		if strings.HasPrefix(c.Name, prefix) {
			return c
		}
	}
	return image.Component{}
}
