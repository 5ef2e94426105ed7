package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/noded/server/servertest"
)

// A built image is released by its folder: the digest is the one of the
// release.json beside it, which is the file its firmware measures.
func TestReleaseImage(t *testing.T) {
	e := servertest.Start(t)
	relFile := []byte(`{"product": "onecloud", "version": "1.2.0"}` + "\n")
	dir := t.TempDir()
	manifest := `{"product": "onecloud", "version": "1.2.0", "commit": "0123456789abcdef0123",
	  "artefacts": [{"name": "vmlinuz", "size": 1, "sha256": "` + strings.Repeat("a", 64) + `"},
	                {"name": "release.json", "size": 44, "sha256": "` + sum(relFile) + `"}]}`
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustOcctl(t, e, "release", "add", "-image", dir)
	if want := "sha256:" + sum(relFile) + " released as \"onecloud 1.2.0 0123456789ab\"\n"; out != want {
		t.Errorf("release add -image: %q, want %q", out, want)
	}
	if list := mustOcctl(t, e, "release", "list"); !strings.Contains(list, sum(relFile)) {
		t.Errorf("release list after release add -image:\n%s", list)
	}

	old := t.TempDir()
	if err := os.WriteFile(filepath.Join(old, "manifest.json"), []byte(`{"version": "0.1.0", "artefacts": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"release", "add", "-image", old}, "lists no release.json"},
		{[]string{"release", "add", "-image", t.TempDir()}, "manifest.json"},
		{[]string{"release", "add", "-image", dir, sum(relFile)}, "not both or neither"},
		{[]string{"release", "add"}, "not both or neither"},
		{[]string{"release", "add", "a", "b"}, "one digest, or -image DIR"},
	} {
		code, _, errOut := occtl(t, e, tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("occtl %s: exit %d, %q; want a failure saying %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}
