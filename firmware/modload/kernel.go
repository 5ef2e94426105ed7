package modload

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Kernel inserts modules into the running kernel: finit_module(2) for a
// plain .ko, init_module(2) with the unpacked bytes for a .ko.zst (Debian's
// 6.1 kernel cannot unpack modules itself).
type Kernel struct{}

// Insert loads one module file.
func (Kernel) Insert(path, params string) error {
	var err error
	if strings.HasSuffix(path, ".zst") {
		var image []byte
		if image, err = unpack(path); err != nil {
			return err
		}
		err = unix.InitModule(image, params)
	} else {
		err = finit(path, params)
	}
	if errors.Is(err, unix.EEXIST) {
		return ErrAlreadyLoaded
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	return nil
}

func finit(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open module: %w", err)
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), params, 0)
}

// unpack reads a zstd-compressed module.
func unpack(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	out, err := d.DecodeAll(b, nil)
	if err != nil {
		return nil, fmt.Errorf("unpack module %s (the image may be damaged; rebuild it): %w", path, err)
	}
	return out, nil
}
