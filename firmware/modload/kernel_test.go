package modload

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestUnpack(t *testing.T) {
	dir := t.TempDir()
	module := bytes.Repeat([]byte("\x7fELF module bytes "), 1000)
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "e1000.ko.zst")
	os.WriteFile(good, w.EncodeAll(module, nil), 0o644)
	bad := filepath.Join(dir, "broken.ko.zst")
	os.WriteFile(bad, []byte("not zstd at all"), 0o644)

	got, err := unpack(good)
	if err != nil || !bytes.Equal(got, module) {
		t.Fatalf("unpack = %d bytes, %v; want the module back", len(got), err)
	}
	if _, err := unpack(bad); err == nil || !strings.Contains(err.Error(), "rebuild it") {
		t.Errorf("unpack of a damaged module: %v", err)
	}
	if got := Name("kernel/drivers/md/dm-verity.ko.zst"); got != "dm_verity" {
		t.Errorf("Name = %q", got)
	}
}
