package kernel

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestNotFound(t *testing.T) {
	for _, tc := range []struct {
		output string
		want   bool
	}{
		{"E: Version '6.1.170-9' for 'linux-image-6.1.0-47-amd64' was not found", true},
		{"E: Unable to locate package linux-image-6.1.0-99-amd64", true},
		{"E: Couldn't find any package by glob 'linux-image-6.1.0-99-amd64'", true},
		{"E: Package 'linux-image-6.1.0-47-amd64' has no installation candidate", true},
		{"E: Failed to fetch http://deb.debian.org/debian/pool/main/l/x.deb  Could not resolve 'deb.debian.org'", false},
		{"E: Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)", false},
	} {
		if got := notFound(tc.output); got != tc.want {
			t.Errorf("notFound(%q) = %v, want %v", tc.output, got, tc.want)
		}
	}
}

func TestErrorLines(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{
			in:   "W: some warning\nE: Unable to locate package x\nE: Couldn't find any package by glob 'x'\n",
			want: "E: Unable to locate package x; E: Couldn't find any package by glob 'x'",
		},
		{in: "dpkg-deb: error: 'x.deb' is not a Debian format archive\n", want: "dpkg-deb: error: 'x.deb' is not a Debian format archive"},
	} {
		if got := errorLines(tc.in); got != tc.want {
			t.Errorf("errorLines(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestAptPinGone asks the real apt-get for a version no mirror has and
// checks that the build would tell the operator how to move the pin. It
// downloads nothing.
func TestAptPinGone(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("apt-get not installed (the image-builder needs a Debian machine)")
	}
	gone := Pinned()
	gone.Version = "0.0.0-0"
	c := Cache{Dir: t.TempDir(), Downloader: Apt{Log: quietLog()}, Unpacker: Dpkg{}, Log: quietLog()}
	_, err := c.Fetch(context.Background(), gone)
	var pg *PinGoneError
	if !errors.As(err, &pg) {
		t.Fatalf("Fetch of a version no mirror has = %v, want a PinGoneError", err)
	}
	for _, want := range []string{"Version '0.0.0-0' for '" + gone.Package + "' was not found", "kernel-pin", "pin.go"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
