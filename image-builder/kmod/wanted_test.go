package kmod

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		wantErr  string
	}{
		{
			name: "comments and blanks",
			in:   "# virtual hardware\nvirtio_net\n\n  dm-verity   # hyphens are fine\n",
			want: []string{"virtio_net", "dm-verity"},
		},
		{name: "two names on a line", in: "virtio_net e1000\n", wantErr: `modules.txt:1: "virtio_net e1000" is not a module name`},
		{name: "listed twice, once with a hyphen", in: "dm_verity\n#\ndm-verity\n", wantErr: "modules.txt:3: module dm-verity is already listed on line 1"},
		{name: "path instead of a name", in: "kernel/fs/ext4.ko\n", wantErr: "is not a module name"},
		{name: "empty", in: "# nothing\n", wantErr: "modules.txt lists no modules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseList([]byte(tc.in), "modules.txt")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseList = %q, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseList = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	candidates := []string{"virtio_net", "virtio_blk", "virtio_pci", "virtio_scsi", "kvm", "kvm_intel", "kvm_amd", "e1000", "e1000e", "ext4"}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"virtio_nett", []string{"virtio_net"}},                        // a typo: one edit away
		{"kvm_intl", []string{"kvm_intel", "kvm"}},                     // a typo, then a name it contains
		{"e100", []string{"e1000", "e1000e"}},                          // nearest first
		{"virtio", []string{"virtio_blk", "virtio_net", "virtio_pci"}}, // a prefix: family members, capped at n
		{"bochs_drm", nil},
	} {
		if got := closest(tc.name, candidates, 3); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
