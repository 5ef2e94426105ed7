package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/mkuimage/cpio"
)

// writeCpio writes records as a newc archive, the format u-root's builder
// writes, and returns its path.
func writeCpio(t *testing.T, records ...cpio.Record) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "initramfs.cpio")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := cpio.Newc.Writer(f)
	for _, r := range records {
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMeasure(t *testing.T) {
	const mods = "lib/modules/6.1.0-99-amd64/"
	records := []cpio.Record{
		cpio.StaticFile("bbin/bb", strings.Repeat("b", 1000), 0o755),
		cpio.Symlink("bbin/ls", "bb"),
		cpio.Symlink("init", "bbin/init"),
		cpio.StaticFile(mods+"kernel/fs/ext4/ext4.ko", strings.Repeat("e", 300), 0o644),
		cpio.StaticFile(mods+"modules.dep", "kernel/fs/ext4/ext4.ko:\n", 0o644),
		cpio.StaticFile("etc/onecloud/release.json", "{}\n", 0o644),
	}
	p := writeCpio(t, records...)
	r, err := measure(p, []string{"bbin/bb", "bbin/ls", "init", mods + "modules.dep"}, mods)
	if err != nil {
		t.Fatalf("measure: %v", err)
	}
	for _, tc := range []struct {
		c           Component
		files       int
		size, gzMax int64
	}{
		{r.Busybox, 1, 1000, 100},
		{r.Modules, 2, 300 + 24, 100},
		{r.Other, 1, 3, 40},
	} {
		if tc.c.Files != tc.files || tc.c.Size != tc.size || tc.c.Gzip <= 0 || tc.c.Gzip > tc.gzMax {
			t.Errorf("%s = %+v; want %d files, %d bytes, 0 < gzip <= %d", tc.c.Name, tc.c, tc.files, tc.size, tc.gzMax)
		}
	}
	info, _ := os.Stat(p)
	if r.Cpio != info.Size() || r.Overhead != r.Cpio-1000-324-3 {
		t.Errorf("cpio = %d, overhead = %d; want %d and the rest after file data", r.Cpio, r.Overhead, info.Size())
	}
}

func TestMeasureRefuses(t *testing.T) {
	dated := cpio.StaticFile("etc/hostname", "box\n", 0o644)
	dated.MTime = 1700000000
	owned := cpio.StaticFile("etc/passwd", "", 0o644)
	owned.UID = 1000
	for _, tc := range []struct {
		name    string
		records []cpio.Record
		want    []string
		err     string
	}{
		{name: "missing paths", records: []cpio.Record{cpio.StaticFile("bbin/bb", "x", 0o755)}, want: []string{"bbin/bb", "init", "bin/uinit"}, err: "the initramfs lacks init, bin/uinit"},
		{name: "file with a time", records: []cpio.Record{dated}, err: "etc/hostname in the initramfs has time 1700000000"},
		{name: "file with an owner", records: []cpio.Record{owned}, err: "owner 1000:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := measure(writeCpio(t, tc.records...), tc.want, "")
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("measure = %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

func TestSizeReportText(t *testing.T) {
	r := SizeReport{
		Busybox:  Component{Name: "Go busybox (bbin/bb)", Files: 1, Size: 6897790, Gzip: 2618781},
		Modules:  Component{Name: "kernel modules (lib/modules)", Files: 2, Size: 2000, Gzip: 900},
		Other:    Component{Name: "other files", Files: 3, Size: 288, Gzip: 196},
		Commands: map[string][]string{"u-root": {"init", "gosh"}, "onecloud": {"onecloud-init"}},
		Overhead: 1000, Cpio: 6901078, Gzip: 2620000, Kernel: 8234944,
	}
	text := r.Text("Size report: test")
	for _, want := range []string{
		"Size report: test\n",
		"Go busybox (bbin/bb)                  1      6.6 MiB (6,897,790)      2.5 MiB (2,618,781)\n",
		"  1 onecloud commands: onecloud-init\n  2 u-root commands: init gosh\n",
		"initramfs (cpio, cpio.gz)                    6.6 MiB (6,901,078)      2.5 MiB (2,620,000)\n",
		"to boot (vmlinuz + cpio.gz)                10.4 MiB (10,854,944)\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("size report lacks %q:\n%s", want, text)
		}
	}
}

func TestWrap(t *testing.T) {
	words := strings.Fields(strings.Repeat("command ", 30))
	got := wrap("  30 commands:", words, "    ")
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "    command") {
		t.Fatalf("wrap gave %d lines:\n%s", len(lines), got)
	}
	for _, l := range lines {
		if len(l) > 100 {
			t.Errorf("line of %d columns: %q", len(l), l)
		}
	}
}
