package pki

import (
	"testing"
	"time"
)

func TestCanIssue(t *testing.T) {
	dir := t.TempDir()
	ca, err := CreateCA(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certsOnly, err := LoadCACerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	withKeys, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ca   *CA
		want bool
	}{{"created", ca, true}, {"certificates only", certsOnly, false}, {"loaded with keys", withKeys, true}} {
		if got := tt.ca.CanIssue(); got != tt.want {
			t.Errorf("%s: CanIssue = %v, want %v", tt.name, got, tt.want)
		}
	}
}
