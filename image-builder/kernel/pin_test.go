package kernel

import (
	"strings"
	"testing"
)

func TestPinnedIsValid(t *testing.T) {
	if err := Pinned().Validate(); err != nil {
		t.Fatalf("the pin in pin.go is malformed: %v", err)
	}
}

func TestPinValidate(t *testing.T) {
	good := Pinned()
	for _, tc := range []struct {
		name   string
		change func(p *Pin)
		want   string // "" means valid
	}{
		{name: "pinned", change: func(*Pin) {}},
		{name: "meta package", change: func(p *Pin) { p.Package = "linux-image-amd64" }, want: "not of the form"},
		{name: "other flavour", change: func(p *Pin) { p.Package = "linux-image-6.1.0-47-cloud-amd64" }, want: "not of the form"},
		{name: "no version", change: func(p *Pin) { p.Version = "" }, want: "not a Debian package version"},
		{name: "version with apt syntax", change: func(p *Pin) { p.Version = "6.1=2" }, want: "not a Debian package version"},
		{name: "short digest", change: func(p *Pin) { p.SHA256 = p.SHA256[:63] }, want: "64 lower-case hex"},
		{name: "upper-case digest", change: func(p *Pin) { p.SHA256 = strings.ToUpper(p.SHA256) }, want: "64 lower-case hex"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := good
			tc.change(&p)
			err := p.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestPinNames(t *testing.T) {
	for _, tc := range []struct {
		pin                       Pin
		release, debFile, treeDir string
	}{
		{
			pin:     Pin{Package: "linux-image-6.1.0-47-amd64", Version: "6.1.170-3"},
			release: "6.1.0-47-amd64", debFile: "linux-image-6.1.0-47-amd64_6.1.170-3_amd64.deb",
			treeDir: "linux-image-6.1.0-47-amd64_6.1.170-3",
		},
		{
			pin:     Pin{Package: "linux-image-6.12.0-1-amd64", Version: "1:6.12.5-1"},
			release: "6.12.0-1-amd64", debFile: "linux-image-6.12.0-1-amd64_1%3a6.12.5-1_amd64.deb",
			treeDir: "linux-image-6.12.0-1-amd64_1%3a6.12.5-1",
		},
	} {
		if got := tc.pin.Release(); got != tc.release {
			t.Errorf("%v Release = %q, want %q", tc.pin, got, tc.release)
		}
		if got := tc.pin.debFile(); got != tc.debFile {
			t.Errorf("%v debFile = %q, want %q", tc.pin, got, tc.debFile)
		}
		if got := tc.pin.treeDir(); got != tc.treeDir {
			t.Errorf("%v treeDir = %q, want %q", tc.pin, got, tc.treeDir)
		}
	}
}
