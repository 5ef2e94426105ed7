package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/onecloud-edu/onecloud/image-builder/kernel"
)

// ManifestName is the manifest's file name in the output directory. It is
// written last: a directory without it holds no complete image.
const ManifestName = "manifest.json"

// Manifest describes one built image: what it was built from, what it holds,
// and the digest of every artefact. It holds no build time or host name, so
// two builds of the same source give the same manifest.
type Manifest struct {
	Product string `json:"product"`
	Profile string `json:"profile"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"` // the toolchain, part of what makes the bytes

	Kernel KernelInfo `json:"kernel"`

	Init      string    `json:"init"`
	Uinit     string    `json:"uinit"`
	UinitArgs []string  `json:"uinit_args,omitempty"`
	Shell     string    `json:"shell"`
	Commands  []Command `json:"commands"`

	// Modules lists the kernel modules in the image with their
	// dependencies in modules.dep order; ModulesBuiltin the wanted
	// modules the kernel has built in; ModulesUnresolved the soft
	// dependencies nothing provides.
	Modules           []ModuleInfo `json:"modules"`
	ModulesBuiltin    []string     `json:"modules_builtin"`
	ModulesUnresolved []string     `json:"modules_unresolved,omitempty"`

	Sizes     []Component `json:"initramfs_components"`
	Artefacts []Artefact  `json:"artefacts"`
}

// KernelInfo is the pinned package and the release it installs.
type KernelInfo struct {
	kernel.Pin
	Release string `json:"release"`
}

// Command is one program in the Go busybox.
type Command struct {
	Name    string `json:"name"`
	Package string `json:"package"`
	Origin  string `json:"origin"` // "onecloud" or "u-root"
}

// ModuleInfo is one kernel module in the image.
type ModuleInfo struct {
	Name    string   `json:"name"`
	Path    string   `json:"path"` // below lib/modules/<release>
	Size    int64    `json:"size"`
	Wanted  bool     `json:"wanted"` // listed in modules.txt, not only needed by one that is
	Depends []string `json:"depends"`
}

// Artefact is one output file.
type Artefact struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ReadManifest reads the manifest of a built image in dir.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("no complete image in %s (build it with image-builder): %w", dir, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s is not a valid manifest: %w", filepath.Join(dir, ManifestName), err)
	}
	return &m, nil
}

func (m *Manifest) encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
