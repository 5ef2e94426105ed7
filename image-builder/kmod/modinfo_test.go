package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadModinfo(t *testing.T) {
	dir := t.TempDir()
	writeModule(t, dir, "dm-verity.ko",
		"alias=devname:x", "depends=reed_solomon,dm-mod", "", "", // padding NULs between entries
		"softdep=pre: a", "softdep=post: b", "name=dm_verity", "vermagic=6.1.0-47-amd64 SMP ", "alias=second")
	got, err := ReadModinfo(filepath.Join(dir, "dm-verity.ko"))
	if err != nil {
		t.Fatalf("ReadModinfo: %v", err)
	}
	want := Modinfo{
		Name:     "dm_verity",
		Vermagic: "6.1.0-47-amd64 SMP ",
		Depends:  []string{"reed_solomon", "dm_mod"},
		Aliases:  []string{"devname:x", "second"},
		SoftDeps: []string{"pre: a", "post: b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadModinfo = %+v\nwant %+v", got, want)
	}
}

func TestReadModinfoErrors(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "text.ko")
	must(t, os.WriteFile(notELF, []byte("hello"), 0o644))
	if _, err := ReadModinfo(notELF); err == nil || !strings.Contains(err.Error(), "text.ko is not a readable ELF") {
		t.Errorf("ReadModinfo(text) = %v", err)
	}
	if _, err := ReadModinfo(filepath.Join(dir, "missing.ko")); err == nil {
		t.Errorf("ReadModinfo(missing) succeeded")
	}
}

func TestSoftDep(t *testing.T) {
	for _, tc := range []struct {
		values    []string
		pre, post []string
	}{
		{values: []string{"pre: crypto-crc32c"}, pre: []string{"crypto-crc32c"}},
		{values: []string{"pre: a b post: c", "post: d"}, pre: []string{"a", "b"}, post: []string{"c", "d"}},
		{values: []string{"gcm"}},                          // cifs writes this; modprobe ignores it
		{values: []string{"x pre: y"}, pre: []string{"y"}}, // names before a marker are ignored
		{},
	} {
		pre, post := SoftDep(tc.values)
		if !reflect.DeepEqual(pre, tc.pre) || !reflect.DeepEqual(post, tc.post) {
			t.Errorf("SoftDep(%q) = %q, %q; want %q, %q", tc.values, pre, post, tc.pre, tc.post)
		}
	}
}
