package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// Without a TPM the box boots on and says that it cannot attest; nothing is
// claimed measured.
func TestMeasureBootWithoutTPM(t *testing.T) {
	var console bytes.Buffer
	b := &boot{console: &console, log: slog.New(slog.DiscardHandler)}
	b.measureBoot(context.Background())
	notes := b.currentNotes()
	if len(notes) != 1 || !strings.Contains(notes[0], "cannot attest") {
		t.Errorf("notes %q, want one saying the box cannot attest", notes)
	}
	if strings.Contains(console.String(), "measured") {
		t.Errorf("console claims a measurement: %q", console.String())
	}
}
