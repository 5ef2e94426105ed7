package join

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The whole attestation path is tested through `noded server -join`
// (noded/cmd/noded TestServerJoin) and the three-node cluster test
// (qemu-tests TestCluster); these are the parts that need no TPM.

func TestReadEndpoints(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadEndpoints(dir); ok || err != nil {
		t.Fatalf("no file: ok %v, err %v; want a node that never joined", ok, err)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, EndpointsFile), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("https://10.0.0.11:2379\n\n  https://10.0.0.12:2379  \n")
	got, ok, err := ReadEndpoints(dir)
	if err != nil || !ok || !slices.Equal(got, []string{"https://10.0.0.11:2379", "https://10.0.0.12:2379"}) {
		t.Errorf("ReadEndpoints = %q, %v, %v", got, ok, err)
	}
	write("\n \n")
	if _, _, err := ReadEndpoints(dir); err == nil || !strings.Contains(err.Error(), "join again") {
		t.Errorf("empty file: %v, want advice to join again", err)
	}
}

func TestAttestRefusesIncompleteRequests(t *testing.T) {
	for _, r := range []Request{
		{},
		{Name: "oc-525400000001"},
	} {
		if _, err := Attest(context.Background(), r); err == nil || !strings.Contains(err.Error(), "required") {
			t.Errorf("Attest(%+v) = %v, want a missing-field error", r, err)
		}
	}
}

func TestWriteRefusesAnIncompleteKit(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	k := Kit{Endpoints: []string{"https://10.0.0.11:2379"}}
	if err := k.Write(state); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("Write of a kit without certificates: %v", err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state folder after a refused write: %v (want nothing written)", err)
	}
}
