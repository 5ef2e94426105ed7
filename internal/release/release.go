// Package release describes the onecloud image a box is running.
//
// The image-builder writes the description into every initramfs at Path, so
// that the firmware banner, noded's status and the build manifest all name
// the same version and commit without stamping them into binaries (which would
// make the Go busybox differ between two builds of the same commit).
package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Path is where the image-builder puts the release file inside the initramfs.
const Path = "etc/onecloud/release.json"

// Info names one build of the onecloud image.
type Info struct {
	Product string `json:"product"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Kernel  string `json:"kernel"`
}

// Dev is what a binary reports when it runs outside a built image (on a
// developer's machine, in unit tests).
func Dev() Info {
	return Info{Product: "onecloud", Version: "dev", Commit: "unknown", Kernel: "host"}
}

// Read reads the release file below root ("/" on a box). A missing file means
// the binary runs outside an image and yields Dev() with a nil error; a file
// that exists but cannot be parsed is an error that names it.
func Read(root string) (Info, error) {
	p := filepath.Join(root, Path)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Dev(), nil
	}
	if err != nil {
		return Dev(), fmt.Errorf("read release file: %w", err)
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return Dev(), fmt.Errorf("release file %s is not valid JSON: %w", p, err)
	}
	if info.Version == "" || info.Commit == "" {
		return Dev(), fmt.Errorf("release file %s lacks version or commit; rebuild the image with image-builder", p)
	}
	return info, nil
}

// String is the one-line form used in banners and logs.
func (i Info) String() string {
	return fmt.Sprintf("%s %s (commit %s, kernel %s)", i.Product, i.Version, short(i.Commit), i.Kernel)
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
