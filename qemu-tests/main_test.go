// Package qemutests holds onecloud's end-to-end tests: each boots the real
// image (out/image, or $ONECLOUD_IMAGE) in QEMU on lab networks that the
// harness makes in network namespaces, and watches the serial console as a
// technician would. Build the image first (`make image`); `make test` does.
package qemutests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// image is a built onecloud image.
type image struct {
	Kernel, Initrd string
}

// builtImage finds the image to boot: $ONECLOUD_IMAGE, else out/image at the
// repository root. A missing image fails the test with what to run.
func builtImage(t testing.TB, profile string) image {
	t.Helper()
	dir := os.Getenv("ONECLOUD_IMAGE")
	if profile == "bare" {
		dir = os.Getenv("ONECLOUD_BARE_IMAGE")
	}
	if dir == "" {
		dir = filepath.Join("..", "out", profile)
	}
	img := image{Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initramfs.cpio.gz")}
	for _, f := range []string{img.Kernel, img.Initrd} {
		if _, err := os.Stat(f); err != nil {
			cmd := "make image"
			if profile == "bare" {
				cmd = "go run ./image-builder/cmd/image-builder bare"
			}
			t.Fatalf("no built %s image: %v (run `%s` at the repository root)", profile, err, cmd)
		}
	}
	return img
}
