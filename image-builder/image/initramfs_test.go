package image

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/internal/release"
	"github.com/u-root/mkuimage/cpio"
)

func TestSkeletonWithoutModules(t *testing.T) {
	rel := release.Info{Product: "onecloud", Version: "0.1.0", Commit: "abc-dirty", Kernel: "6.1.0-47-amd64"}
	a, err := skeleton(rel, nil, "/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	r, ok := a.Get(release.Path)
	if !ok {
		t.Fatalf("no %s in the skeleton", release.Path)
	}
	if r.Mode != cpio.S_IFREG|0o644 || r.MTime != 0 || r.UID != 0 {
		t.Errorf("release file mode %o, time %d, owner %d; want 100644, 0, 0", r.Mode, r.MTime, r.UID)
	}
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	var got release.Info
	if err := json.Unmarshal(b, &got); err != nil || got != rel {
		t.Errorf("release file = %s (%v), want %+v", b, err, rel)
	}
	// u-root's skeleton: its init needs these before it mounts anything.
	for _, p := range []string{"dev/console", "dev/null", "tmp", "etc/resolv.conf"} {
		if _, ok := a.Get(p); !ok {
			t.Errorf("skeleton lacks %s", p)
		}
	}
	for name := range a.Files {
		if strings.HasPrefix(name, "lib/modules") {
			t.Errorf("skeleton without modules holds %s", name)
		}
	}
}
