package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/onecloud-edu/onecloud/noded/api"
)

// imageRelease is the release record of a built image: the SHA-256 of its
// release file, which image-builder lists in the manifest (release.json,
// a copy of the one inside the initramfs) and which the firmware measures
// at every boot (docs/measured-boot.md).
func imageRelease(dir, name string) (api.ReleaseRequest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return api.ReleaseRequest{}, fmt.Errorf("-image: %w (give the folder image-builder wrote, with its manifest.json)", err)
	}
	var m struct {
		Product   string `json:"product"`
		Version   string `json:"version"`
		Commit    string `json:"commit"`
		Artefacts []struct {
			Name   string `json:"name"`
			SHA256 string `json:"sha256"`
		} `json:"artefacts"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return api.ReleaseRequest{}, fmt.Errorf("-image %s: manifest.json: %w", dir, err)
	}
	for _, a := range m.Artefacts {
		if a.Name != "release.json" {
			continue
		}
		if name == "" {
			name = strings.TrimSpace(fmt.Sprintf("%s %s %s", m.Product, m.Version, short(m.Commit)))
		}
		return api.ReleaseRequest{SHA256: a.SHA256, Name: name}, nil
	}
	return api.ReleaseRequest{}, fmt.Errorf("-image %s: the manifest lists no release.json: build the image again with this version of image-builder", dir)
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
