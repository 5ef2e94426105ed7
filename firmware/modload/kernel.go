package modload

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Kernel inserts modules into the running kernel with finit_module(2).
type Kernel struct{}

// Insert loads one module file.
func (Kernel) Insert(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open module: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), params, 0); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return ErrAlreadyLoaded
		}
		return fmt.Errorf("finit_module %s: %w", path, err)
	}
	return nil
}
