package kernel

import (
	"reflect"
	"strings"
	"testing"
)

// Outputs recorded from apt-cache on a bookworm machine.
const (
	searchOutput = `linux-image-6.1.0-42-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-47-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-9-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-48-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-46-amd64 - Linux 6.1 for 64-bit PCs (signed)
`
	showOutput = `Package: linux-image-6.1.0-48-amd64
Source: linux-signed-amd64 (6.1.172+1)
Version: 6.1.172-1
Installed-Size: 399855
Filename: pool/updates/main/l/linux-signed-amd64/linux-image-6.1.0-48-amd64_6.1.172-1_amd64.deb
Size: 70225828
SHA256: 22007ac243a5de6d53cbc5b43040b1389fa10860c4952a43d2786e09798cf1f8

`
	madisonOutput = `linux-image-6.1.0-47-amd64 |  6.1.170-3 | http://deb.debian.org/debian bookworm/main amd64 Packages
linux-image-6.1.0-47-amd64 |  6.1.170-3 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-image-6.1.0-47-amd64 |  6.1.170-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
`
)

func TestByABI(t *testing.T) {
	for _, tc := range []struct {
		name, output, series, want, wantErr string
	}{
		{name: "numeric, not lexical, order", output: searchOutput, series: "6.1.0",
			want: "linux-image-6.1.0-48-amd64 linux-image-6.1.0-47-amd64 linux-image-6.1.0-46-amd64 linux-image-6.1.0-42-amd64 linux-image-6.1.0-9-amd64"},
		{name: "other series ignored", output: "linux-image-6.12.0-1-amd64 - Linux 6.12\nlinux-image-6.1.0-5-amd64 - x\n", series: "6.1.0", want: "linux-image-6.1.0-5-amd64"},
		{name: "nothing", output: "", series: "6.1.0", wantErr: "have no linux-image-6.1.0-N-amd64"},
		{name: "only odd names", output: "linux-image-6.1.0-x-amd64 - odd\nlinux-image-6.1.0-5-rt-amd64 - rt\n", series: "6.1.0", wantErr: "run apt-get update"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := byABI([]byte(tc.output), tc.series)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("byABI = %q, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, " ") != tc.want {
				t.Fatalf("byABI = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestCandidateInMain(t *testing.T) {
	for _, tc := range []struct {
		suites []string
		want   bool
	}{
		{[]string{"bookworm/main", "bookworm-security/main"}, true},
		{[]string{"bookworm-security/main"}, false},
		{nil, false},
	} {
		if got := (Candidate{Suites: tc.suites}).InMain(); got != tc.want {
			t.Errorf("InMain(%q) = %v, want %v", tc.suites, got, tc.want)
		}
	}
}

func TestParseShow(t *testing.T) {
	v, sum, err := parseShow([]byte(showOutput + strings.ReplaceAll(showOutput, "6.1.172-1", "6.1.999-1")))
	if err != nil || v != "6.1.172-1" || sum != "22007ac243a5de6d53cbc5b43040b1389fa10860c4952a43d2786e09798cf1f8" {
		t.Errorf("parseShow = %q, %q, %v", v, sum, err)
	}
	if _, _, err := parseShow([]byte("Package: x\n")); err == nil {
		t.Errorf("parseShow of a stanza without Version succeeded")
	}
}

func TestParseMadison(t *testing.T) {
	got := parseMadison([]byte(madisonOutput), "6.1.170-3")
	want := []string{"bookworm/main", "bookworm-security/main"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseMadison = %q, want %q", got, want)
	}
}

func TestSeries(t *testing.T) {
	got, err := series(Pinned())
	if err != nil || got != "6.1.0" {
		t.Errorf("series(Pinned()) = %q, %v; want 6.1.0", got, err)
	}
}
