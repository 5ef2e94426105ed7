package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/server/servertest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var tpms *attesttest.Factory

func TestMain(m *testing.M) { attesttest.Main(m, &tpms) }

var (
	releasedKernel = []byte("onecloud kernel 1.0, released")
	patchedKernel  = []byte("onecloud kernel 1.0, patched by someone")
)

// occtl runs one command against e with the admin bundle and returns its
// exit status, output and errors.
func occtl(t *testing.T, e *servertest.Env, args ...string) (int, string, string) {
	t.Helper()
	return occtlIn(t, e, nil, args...)
}

// occtlIn is occtl with stdin.
func occtlIn(t *testing.T, e *servertest.Env, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := env{getenv: func(k string) string {
		switch k {
		case "OCCTL_SERVER":
			return e.URL
		case "OCCTL_DIR":
			return e.AdminDir
		}
		return ""
	}, now: e.Clock.Now, stdin: stdin}
	code := run(context.Background(), args, &out, &errOut, env)
	return code, out.String(), errOut.String()
}

func mustOcctl(t *testing.T, e *servertest.Env, args ...string) string {
	t.Helper()
	code, out, errOut := occtl(t, e, args...)
	if code != 0 {
		t.Fatalf("occtl %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// The technician's day: machines enrol, one is approved and attests, one
// waits unapproved, one runs a patched kernel.
func TestJourney(t *testing.T) {
	e := servertest.Start(t)
	ctx := context.Background()

	if out := mustOcctl(t, e, "release", "add", sum(releasedKernel), "-name", "onecloud 1.0"); out != "sha256:"+sum(releasedKernel)+" released as \"onecloud 1.0\"\n" {
		t.Errorf("release add: %q", out)
	}
	good := servertest.NewBox(t, tpms, "52:54:00:00:00:01", "SN-GOOD", releasedKernel)
	waiting := servertest.NewBox(t, tpms, "52:54:00:00:00:02", "SN-WAITING", releasedKernel)
	patched := servertest.NewBox(t, tpms, "52:54:00:00:00:03", "SN-PATCHED", patchedKernel)
	for _, b := range []*servertest.Box{good, waiting, patched} {
		b.Enrol(t, e)
	}
	golden(t, "machines-inbox", mustOcctl(t, e, "machines"))

	if out := mustOcctl(t, e, "approve", good.ID, "-role", "vdi", "-school", "s01", "-ek-hash", good.EKHash(t)); out != good.ID+" approved as vdi at school s01\n" {
		t.Errorf("approve: %q", out)
	}
	// Flags before the command, and a MAC for the id.
	patchedEK := patched.EKHash(t)
	if out := mustOcctl(t, e, "-json", "approve", "-role", "tci", "-ek-hash", patchedEK, "52:54:00:00:00:03"); !strings.Contains(out, `"role": "tci"`) {
		t.Errorf("approve -json: %q", out)
	}

	e.Clock.Advance(time.Minute)
	anon := e.Client(t, nil)
	if _, err := good.Attest(ctx, anon); err != nil {
		t.Fatalf("approved box: %v", err)
	}
	if _, err := waiting.Attest(ctx, anon); err == nil {
		t.Error("unapproved box accepted")
	}
	if _, err := patched.Attest(ctx, anon); err == nil {
		t.Error("patched box accepted")
	}
	golden(t, "nodes", mustOcctl(t, e, "nodes"))
	golden(t, "machines", mustOcctl(t, e, "machines"))
	// A fresh TPM has a fresh EK each run.
	golden(t, "machine-show", strings.Replace(mustOcctl(t, e, "machines", "show", patched.ID), patchedEK, "<EK hash of the test TPM>", 1))

	var nodes api.NodeList
	if err := json.Unmarshal([]byte(mustOcctl(t, e, "nodes", "-json")), &nodes); err != nil || len(nodes.Nodes) != 1 || nodes.Nodes[0].State != api.NodeReady {
		t.Errorf("nodes -json: %+v, %v", nodes, err)
	}
	if out := mustOcctl(t, e, "cluster", "status"); !strings.HasPrefix(out, "leader: server-1, 1 member(s), healthy\n") || !strings.Contains(out, "voter") {
		t.Errorf("cluster status:\n%s", out)
	}
	if out := mustOcctl(t, e, "release", "list"); !strings.Contains(out, sum(releasedKernel)+"  onecloud 1.0  2026-03-02 08:30  li") {
		t.Errorf("release list:\n%s", out)
	}
	if out := mustOcctl(t, e, "reject", waiting.ID, "-reason", "not ours"); out != waiting.ID+" rejected: not ours\n" {
		t.Errorf("reject: %q", out)
	}
	if out := mustOcctl(t, e, "remove", good.ID); out != good.ID+" removed\n" {
		t.Errorf("remove: %q", out)
	}
	if out := mustOcctl(t, e, "nodes"); !strings.Contains(out, "(no node has attested yet)") {
		t.Errorf("nodes after remove:\n%s", out)
	}
}

// Mistakes get a clear message that says what to do, and the exit status
// tells a usage error (2) from a failure (1).
func TestErrors(t *testing.T) {
	e := servertest.Start(t)
	other, err := pki.NewCA(servertest.T0)
	if err != nil {
		t.Fatal(err)
	}
	other.Now = e.Clock.Now
	// A whole bundle of another cluster.
	foreignDir := t.TempDir()
	servertest.WritePair(t, foreignDir, adminCertFile, adminKeyFile, servertest.Pair(t, other, pki.Identity{Kind: pki.Admin, Name: "li"}))
	if err := pki.WriteCert(foreignDir, pki.CACertFile, false, other.Root); err != nil {
		t.Fatal(err)
	}
	// This cluster's CA with another cluster's admin certificate.
	mixedDir := t.TempDir()
	servertest.WritePair(t, mixedDir, adminCertFile, adminKeyFile, servertest.Pair(t, other, pki.Identity{Kind: pki.Admin, Name: "li"}))
	if err := pki.WriteCert(mixedDir, pki.CACertFile, false, e.CA.Root); err != nil {
		t.Fatal(err)
	}
	// A node certificate where an admin's belongs.
	nodeDir := t.TempDir()
	servertest.WritePair(t, nodeDir, adminCertFile, adminKeyFile, servertest.Pair(t, e.CA, pki.Identity{Kind: pki.Node, Name: "oc-525400000001"}))
	if err := pki.WriteCert(nodeDir, pki.CACertFile, false, e.CA.Root); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "https://" + l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no bundle", []string{"-dir", t.TempDir(), "nodes"}, 1, "no admin certificate"},
		{"bundle of another cluster", []string{"-dir", foreignDir, "nodes"}, 1, "not from the cluster CA in -ca/-dir"},
		{"certificate of another cluster", []string{"-dir", mixedDir, "nodes"}, 1, "they belong to different clusters"},
		{"node certificate", []string{"-dir", nodeDir, "nodes"}, 1, "use an admin certificate"},
		{"server down", []string{"-server", down, "nodes"}, 1, "connection refused): is noded running in server mode there"},
		{"wrong address in the server's certificate", []string{"-server", strings.Replace(e.URL, "127.0.0.1", "localhost", 1), "nodes"}, 1, "not for the address in -server"},
		{"unknown machine", []string{"approve", "oc-525400009999", "-role", "vdi"}, 1, "no machine"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"approve without role", []string{"approve", "oc-525400000001"}, 2, "approve needs -role"},
		{"declare without role", []string{"declare", "52:54:00:00:00:42"}, 2, "declare needs -role"},
		{"declare a bad MAC", []string{"declare", "not-a-mac", "-role", "server"}, 1, "MAC"},
		{"approve without id", []string{"approve", "-role", "vdi"}, 2, "takes one machine id"},
		{"bad flag", []string{"nodes", "-colour"}, 2, "flag provided but not defined"},
		{"no command", nil, 2, "usage: occtl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := occtl(t, e, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tc.code, tc.want)
			}
		})
	}
}

func TestDeclare(t *testing.T) {
	e := servertest.Start(t)
	out := mustOcctl(t, e, "declare", "52:54:00:00:00:42", "-role", "server", "-serial", "SN-LABEL", "-school", "hq")
	if out != "oc-525400000042 declared and approved as server at school hq\n" {
		t.Errorf("declare: %q", out)
	}
	if out := mustOcctl(t, e, "-json", "machines", "show", "oc-525400000042"); !strings.Contains(out, `"serial": "SN-LABEL"`) || !strings.Contains(out, `"state": "approved"`) {
		t.Errorf("machines show after declare: %s", out)
	}
}
