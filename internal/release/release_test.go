package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string // "" means no file
		want    Info
		wantErr string
	}{
		{name: "missing file is a dev build", want: Dev()},
		{
			name:    "valid",
			content: `{"product":"onecloud","version":"0.1.0","commit":"abcdef0123456789","kernel":"6.1.0-47-amd64"}`,
			want:    Info{Product: "onecloud", Version: "0.1.0", Commit: "abcdef0123456789", Kernel: "6.1.0-47-amd64"},
		},
		{name: "garbage", content: `{nope`, want: Dev(), wantErr: "is not valid JSON"},
		{name: "no commit", content: `{"version":"0.1.0"}`, want: Dev(), wantErr: "lacks version or commit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.content != "" {
				p := filepath.Join(root, Path)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Read(root)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Read: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Read error = %v, want one containing %q", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("Read = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	got := Info{Product: "onecloud", Version: "0.1.0", Commit: "abcdef0123456789", Kernel: "6.1.0-47-amd64"}.String()
	want := "onecloud 0.1.0 (commit abcdef012345, kernel 6.1.0-47-amd64)"
	if got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
