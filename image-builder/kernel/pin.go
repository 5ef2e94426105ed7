// Package kernel fetches the one Debian kernel package the onecloud image is
// built from: pinned to an exact version and SHA-256, downloaded with
// `apt-get download`, verified, cached and unpacked.
//
// Why a pinned distribution kernel: Debian's signed 6.1 kernel has every
// driver a school's hardware needs as a module, it boots under QEMU and on
// real machines alike, and pinning its exact bytes makes two image builds of
// the same commit identical. Why a cache: the package is 70 MB and a
// developer builds the image many times a day; a second build must not touch
// the network.
package kernel

import (
	"fmt"
	"regexp"
	"strings"
)

// The pinned kernel package. This is the only place the pin lives.
//
// How to move the pin (when Debian removes this version from the mirror, or
// to take a newer kernel on purpose):
//
//  1. Run `go run ./image-builder/cmd/image-builder kernel-pin` as root. It
//     refreshes the apt lists, finds the newest linux-image-6.1.0-N-amd64,
//     downloads it to check its SHA-256, and prints the three lines below
//     with their new values. When the newest is only in bookworm-security
//     (which keeps only the latest upload), it also prints the newest one
//     in bookworm/main, which stays until the next point release.
//  2. Paste one block here, run `make test` (it builds the image and boots
//     it in QEMU), and commit. Builds on other machines then fetch the new
//     package once and cache it next to the old one.
const (
	PinnedPackage = "linux-image-6.1.0-47-amd64"
	PinnedVersion = "6.1.170-3"
	PinnedSHA256  = "e0061f95dbe31f5646e5a29ba9a62293f6b625a70e81fc2b04344d8ab7589c34"
)

// Pin names one exact build of a Debian kernel image package.
type Pin struct {
	Package string `json:"package"` // linux-image-6.1.0-47-amd64
	Version string `json:"version"` // 6.1.170-3, the Debian package version
	SHA256  string `json:"sha256"`  // of the .deb file
}

// Pinned returns the pin the image is built from.
func Pinned() Pin {
	return Pin{Package: PinnedPackage, Version: PinnedVersion, SHA256: PinnedSHA256}
}

// packageRE matches the Debian kernel image packages this builder knows how
// to unpack: one kernel release, amd64 flavour, unsigned-or-signed alike.
var packageRE = regexp.MustCompile(`^linux-image-([0-9]+\.[0-9]+\.[0-9]+-[0-9]+-amd64)$`)

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate reports a pin that cannot be right, before anything is fetched.
func (p Pin) Validate() error {
	if !packageRE.MatchString(p.Package) {
		return fmt.Errorf("kernel pin: package %q is not of the form linux-image-X.Y.Z-N-amd64", p.Package)
	}
	if p.Version == "" || strings.ContainsAny(p.Version, " /=") {
		return fmt.Errorf("kernel pin: version %q is not a Debian package version", p.Version)
	}
	if !sha256RE.MatchString(p.SHA256) {
		return fmt.Errorf("kernel pin: sha256 %q is not 64 lower-case hex digits", p.SHA256)
	}
	return nil
}

// Release is the kernel release the package installs (`uname -r` on the
// booted box, and the directory name under lib/modules), for example
// "6.1.0-47-amd64".
func (p Pin) Release() string {
	m := packageRE.FindStringSubmatch(p.Package)
	if m == nil {
		return ""
	}
	return m[1]
}

// String is the pin as an operator would type it to apt-get.
func (p Pin) String() string {
	return p.Package + "=" + p.Version
}

// debFile is the name under which the verified package is cached. The colon
// of an epoch ("1:2.3") is not welcome in file names, so it is replaced the
// way apt itself does ("%3a").
func (p Pin) debFile() string {
	return p.Package + "_" + strings.ReplaceAll(p.Version, ":", "%3a") + "_amd64.deb"
}

// treeDir is the name of the cached unpacked package. It carries the version
// so that moving the pin never reuses a tree of another build.
func (p Pin) treeDir() string {
	return p.Package + "_" + strings.ReplaceAll(p.Version, ":", "%3a")
}
