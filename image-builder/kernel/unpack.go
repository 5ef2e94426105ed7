package kernel

import "context"

// Dpkg unpacks packages with `dpkg-deb -x`, present on every Debian system.
// It extracts the data only: no maintainer scripts run and nothing is
// installed on the build machine.
type Dpkg struct{}

// Unpack implements Unpacker.
func (Dpkg) Unpack(ctx context.Context, deb, dir string) error {
	return run(ctx, "", "dpkg-deb", "-x", deb, dir)
}
