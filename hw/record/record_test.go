package record

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/hw"
)

// TestRoundTrip records each testdata tree again, through a directory and
// through an armored tar, and checks that the inventory of the copy equals
// the original's. This also proves that hw.Sources lists every file that
// hw.Collect reads in these trees.
func TestRoundTrip(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "testdata", "*", "proc"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no recorded trees in ../testdata (%v)", err)
	}
	for _, procDir := range dirs {
		src := filepath.Dir(procDir)
		t.Run(filepath.Base(src), func(t *testing.T) {
			want, err := hw.Collect(src)
			if err != nil {
				t.Fatal(err)
			}
			tree, err := Read(context.Background(), src, hw.Sources())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}

			dir := filepath.Join(t.TempDir(), "dir")
			if err := tree.WriteDir(dir); err != nil {
				t.Fatalf("WriteDir: %v", err)
			}
			checkSame(t, dir, want)

			var tarball, again, armored bytes.Buffer
			if err := tree.WriteTar(&tarball); err != nil {
				t.Fatal(err)
			}
			if err := tree.WriteTar(&again); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tarball.Bytes(), again.Bytes()) {
				t.Error("two tars of the same tree differ")
			}
			if err := Armor(&armored, tarball.Bytes()); err != nil {
				t.Fatal(err)
			}
			// A serial console adds carriage returns and prints other
			// things around the recording.
			log := "[    4.2] e1000: eth0 NIC Link is Up\r\n" +
				strings.ReplaceAll(armored.String(), "\n", "\r\n") + "[    5.5] reboot: Power down\r\n"
			if !IsArmored([]byte(log)) {
				t.Fatal("IsArmored = false for an armored log")
			}
			data, err := Unarmor([]byte(log))
			if err != nil {
				t.Fatalf("Unarmor: %v", err)
			}
			back, err := ReadTar(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("ReadTar: %v", err)
			}
			if !reflect.DeepEqual(back.entries, tree.entries) {
				t.Error("tree read back from the tar differs from the tree written")
			}
			dir2 := filepath.Join(t.TempDir(), "tar")
			if err := back.WriteDir(dir2); err != nil {
				t.Fatal(err)
			}
			checkSame(t, dir2, want)
		})
	}
}

func checkSame(t *testing.T, dir string, want hw.Inventory) {
	t.Helper()
	got, err := hw.Collect(dir)
	if err != nil {
		t.Fatalf("Collect of the copy: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("copy's inventory differs:\n got %+v\nwant %+v", got, want)
	}
}

// TestReadLeavesOutAndGoesOn checks that Read keeps what it can when a
// path cannot be recorded, and refuses links out of the root.
func TestReadLeavesOutAndGoesOn(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "proc/meminfo"), "MemTotal: 1 kB\n")
	if err := os.MkdirAll(filepath.Join(root, "sys/block"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A link that climbs out of the root: recording it would read the
	// recording machine's own files.
	if err := os.Symlink("../../../../../../etc", filepath.Join(root, "sys/block/evil")); err != nil {
		t.Fatal(err)
	}
	tree, err := Read(context.Background(), root, []string{"proc/meminfo", "sys/block/*/size", "sys/block/*"})
	if err == nil || !strings.Contains(err.Error(), "outside the recorded root") {
		t.Fatalf("Read error = %v, want one about a link outside the root", err)
	}
	if got := tree.Paths(); !reflect.DeepEqual(got, []string{"proc", "proc/meminfo", "sys", "sys/block"}) {
		t.Errorf("recorded %q", got)
	}
}

func TestReadTarRefuses(t *testing.T) {
	tests := []struct {
		name string
		hdr  tar.Header
	}{
		{"climbs out", tar.Header{Name: "../etc/passwd", Typeflag: tar.TypeReg}},
		{"absolute", tar.Header{Name: "/etc/passwd", Typeflag: tar.TypeReg}},
		{"link out", tar.Header{Name: "sys/block/sda", Typeflag: tar.TypeSymlink, Linkname: "../../../etc"}},
		{"absolute link", tar.Header{Name: "sys/block/sda", Typeflag: tar.TypeSymlink, Linkname: "/etc"}},
		{"device node", tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			if err := tw.WriteHeader(&tt.hdr); err != nil {
				t.Fatal(err)
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadTar(&b); err == nil {
				t.Errorf("ReadTar accepted %+v", tt.hdr)
			}
		})
	}
}

func TestWriteDirRefusesOldRecording(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "sys/old"), "x")
	tree := NewTree()
	tree.entries["proc/meminfo"] = entry{kind: kindFile, data: []byte("new")}
	if err := tree.WriteDir(dir); err == nil || !strings.Contains(err.Error(), "remove") {
		t.Errorf("WriteDir over an old recording: %v, want a refusal that says what to remove", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "proc")); err == nil {
		t.Error("WriteDir wrote despite refusing")
	}
}

func TestUnarmorDamaged(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"no recording", "just a console log\n", "no -----BEGIN HWRECORD----- line"},
		{"cut short", "-----BEGIN HWRECORD-----\nAAAA\n", "cut short"},
		{"noise inside", "-----BEGIN HWRECORD-----\nAA[ 1.0] hi\n-----END HWRECORD-----\n", "damaged"},
	}
	for _, tt := range tests {
		if _, err := Unarmor([]byte(tt.text)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Unarmor error = %v, want one saying %q", tt.name, err, tt.want)
		}
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
