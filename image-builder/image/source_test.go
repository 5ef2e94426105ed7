package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestReadSourceVersion(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		version *string // nil: no VERSION file
		want    string
		wantErr string
	}{
		{name: "plain", version: ptr("0.1.0\n"), want: "0.1.0"},
		{name: "pre-release", version: ptr("1.2.0-rc.1"), want: "1.2.0-rc.1"},
		{name: "missing", wantErr: "read the version"},
		{name: "empty", version: ptr("\n"), wantErr: `VERSION holds ""`},
		{name: "two words", version: ptr("0.1 beta\n"), wantErr: `VERSION holds "0.1 beta"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.version != nil {
				if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(*tc.version), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, err := ReadSource(ctx, dir, "abc123")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReadSource = %+v, %v; want error containing %q", s, err, tc.wantErr)
				}
				return
			}
			if err != nil || s.Version != tc.want || s.Commit != "abc123" {
				t.Fatalf("ReadSource = %+v, %v; want version %q and the given commit", s, err, tc.want)
			}
			if !strings.HasPrefix(s.Go, "go1.") {
				t.Errorf("Go = %q, want a toolchain version", s.Go)
			}
		})
	}
}

func TestReadSourceCommit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSource(ctx, dir, ""); err == nil || !strings.Contains(err.Error(), "pass -commit or set ONECLOUD_COMMIT") {
		t.Fatalf("ReadSource outside git = %v, want advice to pass -commit", err)
	}

	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.org"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", "VERSION")
	git("commit", "-q", "-m", "first")

	s, err := ReadSource(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(s.Commit) {
		t.Errorf("clean tree: commit = %q, want a bare commit id", s.Commit)
	}
	if err := os.WriteFile(filepath.Join(dir, "new.go"), []byte("package x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s2, err := ReadSource(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if s2.Commit != s.Commit+"-dirty" {
		t.Errorf("with an untracked file: commit = %q, want %q", s2.Commit, s.Commit+"-dirty")
	}
}

func ptr(s string) *string { return &s }
