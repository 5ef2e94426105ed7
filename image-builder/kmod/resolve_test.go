package kmod

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	ix := scanTestKernel(t)
	for _, tc := range []struct {
		name       string
		wanted     []string
		modules    string // names in path order
		builtin    []string
		unresolved []string
		wantErr    []string // substrings; the error must contain each
	}{
		{
			name:    "depends closure",
			wanted:  []string{"virtio_net"},
			modules: "net_failover virtio_net virtio virtio_ring failover",
		},
		{
			name:    "soft dependency by alias",
			wanted:  []string{"ext4"},
			modules: "crc32c_generic ext4 jbd2 mbcache crc16",
		},
		{
			name:    "hyphens in file and depends names",
			wanted:  []string{"dm-verity"},
			modules: "dm_mod dm_verity reed_solomon",
		},
		{
			name:    "built-in module ships nothing",
			wanted:  []string{"tpm_tis", "virtio"},
			modules: "virtio",
			builtin: []string{"tpm_tis"},
		},
		{
			name:       "soft dependency nobody provides is reported, one met by a built-in is not",
			wanted:     []string{"softy"},
			modules:    "softy",
			unresolved: []string{"softy pre: nothing-provides-this"},
		},
		{
			name:    "unknown names with suggestions",
			wanted:  []string{"virtio_nett", "virtio_net", "ext5", "zzzzzzzz"},
			wantErr: []string{`"virtio_nett" (did you mean virtio_net`, `"ext5" (did you mean ext4`, `"zzzzzzzz": fix the name`},
		},
		{
			name:    "module built for another kernel",
			wanted:  []string{"stale"},
			wantErr: []string{`module stale (wanted) was built for kernel "5.10.0-1-amd64", not 6.1.0-99-amd64`},
		},
		{
			name:    "dependency the kernel lacks",
			wanted:  []string{"orphan"},
			wantErr: []string{"module orphan depends on ghost"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ix.Resolve(tc.wanted)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Resolve succeeded with %s, want an error", names(s.Modules))
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got := names(s.Modules); got != tc.modules {
				t.Errorf("modules = %q, want %q", got, tc.modules)
			}
			if !reflect.DeepEqual(s.Builtin, tc.builtin) {
				t.Errorf("builtin = %q, want %q", s.Builtin, tc.builtin)
			}
			if !reflect.DeepEqual(s.Unresolved, tc.unresolved) {
				t.Errorf("unresolved = %q, want %q", s.Unresolved, tc.unresolved)
			}
		})
	}
}

func TestUnknownModulesErrorType(t *testing.T) {
	_, err := scanTestKernel(t).Resolve([]string{"virtio-nett"})
	var unknown *UnknownModulesError
	if !errors.As(err, &unknown) {
		t.Fatalf("error %v is not an UnknownModulesError", err)
	}
	if got := unknown.Unknown["virtio-nett"]; len(got) == 0 || got[0] != "virtio_net" {
		t.Errorf("suggestions = %q, want virtio_net first", got)
	}
}

func TestDeps(t *testing.T) {
	s, err := scanTestKernel(t).Resolve([]string{"virtio_net", "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ module, want string }{
		// Every module precedes the ones it depends on: virtio_ring needs
		// virtio, net_failover needs failover.
		{"virtio_net", "virtio_ring virtio net_failover failover"},
		{"ext4", "mbcache jbd2 crc16"},
		{"failover", ""},
		{"not_in_set", ""},
	} {
		if got := names(s.Deps(tc.module)); got != tc.want {
			t.Errorf("Deps(%s) = %q, want %q", tc.module, got, tc.want)
		}
	}
}

func TestScanErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{
			name: "compressed module",
			setup: func(t *testing.T, dir string) {
				writeModule(t, dir, "kernel/a/x.ko.xz", "name=x")
			},
			want: "compressed module",
		},
		{
			name: "name disagrees with the file",
			setup: func(t *testing.T, dir string) {
				writeModule(t, dir, "kernel/a/x.ko", "name=y")
			},
			want: `kernel/a/x.ko says its name is "y"`,
		},
		{
			name: "no modules.builtin",
			setup: func(t *testing.T, dir string) {
				writeModule(t, dir, "kernel/a/x.ko", "name=x")
			},
			want: "list of built-in modules",
		},
		{name: "empty", setup: func(t *testing.T, dir string) {}, want: "scan kernel modules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			if _, err := Scan(dir, testRelease); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Scan = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
