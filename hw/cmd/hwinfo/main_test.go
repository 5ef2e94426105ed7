package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/hw"
)

func TestRun(t *testing.T) {
	good := filepath.Join("..", "..", "testdata", "server-2nic-tpm")
	damaged := filepath.Join(t.TempDir(), "damaged")
	if err := os.CopyFS(damaged, os.DirFS(good)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(damaged, "proc", "meminfo"), []byte("MemTot"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		root   string
		json   bool
		status int
		stdout string // a piece of what stdout must hold
		stderr string // a piece of what stderr must hold; "" for empty
	}{
		{"table", good, false, 0, "PowerEdge R740", ""},
		{"json", good, true, 0, `"schema": 1`, ""},
		{"damaged file: rest printed, problem on stderr", damaged, false, 0, "PowerEdge R740", "proc/meminfo"},
		{"nothing readable", t.TempDir(), false, 1, "", "nothing could be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(tt.root, tt.json, false, &stdout, &stderr); got != tt.status {
				t.Errorf("status %d, want %d; stderr: %s", got, tt.status, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout.String())
			}
			if (tt.stderr == "") != (stderr.Len() == 0) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.stderr)
			}
			if tt.json {
				var inv hw.Inventory
				if err := json.Unmarshal(stdout.Bytes(), &inv); err != nil || inv.DMI.Serial != "7XKQ2Z2" {
					t.Errorf("JSON does not read back: %v, %+v", err, inv.DMI)
				}
			}
		})
	}
}
