package machines

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
)

// serveAdmin serves s on a socket in a temporary folder until the test ends.
func serveAdmin(t *testing.T, s *Store) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "bootstrapd.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: AdminHandler(s)}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return sock
}

func TestAdminAPI(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t, filepath.Join(t.TempDir(), "machines.json"), nil, nil)
	seen(t, s, ipxe("52:54:00:00:00:01", "S1", "10.0.0.1"), t0)
	seen(t, s, ipxe("52:54:00:00:00:02", "S2", "10.0.0.2"), t0.Add(1))
	c := NewClient(serveAdmin(t, s))
	defer c.Close()

	if ms, err := c.List(ctx, ""); err != nil || len(ms) != 2 || ms[0].ID != "oc-525400000001" {
		t.Fatalf("List: %+v, %v", ms, err)
	}
	m, err := c.Approve(ctx, "oc-525400000001", "vdi", "s01")
	if err != nil || m.State != enrolapi.Approved || m.Role != "vdi" {
		t.Fatalf("Approve: %+v, %v", m, err)
	}
	if ms, err := c.List(ctx, enrolapi.Pending); err != nil || len(ms) != 1 || ms[0].ID != "oc-525400000002" {
		t.Fatalf("List pending: %+v, %v", ms, err)
	}
	if m, err = c.Assign(ctx, "oc-525400000001", "tci", ""); err != nil || m.Role != "tci" || m.School != "s01" {
		t.Fatalf("Assign: %+v, %v", m, err)
	}
	if m, err = c.Reject(ctx, "52:54:00:00:00:02", "broken"); err != nil || m.State != enrolapi.Rejected || m.Reason != "broken" {
		t.Fatalf("Reject by MAC: %+v, %v", m, err)
	}
	if m, err = c.Get(ctx, "oc-525400000002"); err != nil || m.Serial != "S2" {
		t.Fatalf("Get: %+v, %v", m, err)
	}
	if err := c.Forget(ctx, "oc-525400000002"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("oc-525400000002"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("forgotten machine still there: %v", err)
	}

	errTests := []struct {
		name string
		do   func() error
		kind error
		msg  string
	}{
		{"get unknown", func() error { _, err := c.Get(ctx, "oc-525400000002"); return err }, ErrNotFound, "no machine oc-525400000002: see `bootstrapd machines list`"},
		{"forget unknown", func() error { return c.Forget(ctx, "oc-x/../y") }, ErrNotFound, "no machine oc-x/../y"},
		{"bad role", func() error { _, err := c.Approve(ctx, "oc-525400000001", "", ""); return err }, ErrInvalid, `role ""`},
		{"bad state", func() error { _, err := c.List(ctx, "all"); return err }, ErrInvalid, `state "all"`},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %v, want %v saying %q", err, tt.kind, tt.msg)
			}
		})
	}
}

// TestAdminRaw checks the answers a client other than ours sees.
func TestAdminRaw(t *testing.T) {
	s, _ := openStore(t, filepath.Join(t.TempDir(), "machines.json"), nil, nil)
	seen(t, s, ipxe("52:54:00:00:00:01", "", ""), t0)
	sock := serveAdmin(t, s)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	defer hc.CloseIdleConnections()
	tests := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/v1/machines/oc-525400000001/approve", `{"role":"vdi","colour":"red"}`, 400, `"error": "request body: json: unknown field \"colour\""`},
		{"POST", "/v1/machines/oc-525400000001/approve", `not json`, 400, `"error": "request body:`},
		{"POST", "/v1/machines/oc-525400000009/reject", `{}`, 404, `"error": "no machine oc-525400000009`},
		{"PUT", "/v1/machines/oc-525400000001", ``, 404, `"error": "no such request: PUT /v1/machines/oc-525400000001"`},
		{"GET", "/v2/", ``, 404, `"error": "no such request`},
		{"DELETE", "/v1/machines/oc-525400000001", ``, 204, ``},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, "http://bootstrapd"+tt.path, strings.NewReader(tt.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
			t.Errorf("%s %s: %d %s; want %d with %q", tt.method, tt.path, resp.StatusCode, body, tt.status, tt.want)
		}
		if tt.status != 204 && resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: content type %q", tt.method, tt.path, resp.Header.Get("Content-Type"))
		}
	}
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "bootstrapd.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v (%v), want a socket with mode 0600", fi.Mode(), err)
	}
	if left, _ := os.ReadDir(filepath.Dir(sock)); len(left) != 1 {
		t.Errorf("the folder holds %d entries, want the socket only", len(left))
	}
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "already serves") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}

	// A socket left by a bootstrapd that died is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	l, err = Listen(sock)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l.Close()

	// Something else at the path is left alone.
	if err := os.WriteFile(sock, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
}

func TestClientNotRunning(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "bootstrapd.sock")
	c := NewClient(sock)
	_, err := c.List(context.Background(), "")
	want := "bootstrapd is not running (no socket at " + sock + "): start it with `bootstrapd serve`"
	if err == nil || err.Error() != want {
		t.Errorf("no socket: %v\nwant %s", err, want)
	}
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := c.List(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "nobody listens on "+sock) {
		t.Errorf("stale socket: %v", err)
	}
}
