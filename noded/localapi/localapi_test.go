package localapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeAndGet(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "noded.sock")
	// A stale socket file from a crashed noded must not stop a new one.
	os.MkdirAll(filepath.Dir(sock), 0o755)
	os.WriteFile(sock, nil, 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, sock, func(context.Context) Status {
			return Status{Hostname: "oc-1", UptimeSec: 3.5, Services: []Service{{Name: "noded", State: StateRunning}}}
		}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	var s Status
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s, err = Get(ctx, sock); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if s.Hostname != "oc-1" || s.UptimeSec != 3.5 || len(s.Services) != 1 || s.Services[0].State != StateRunning {
		t.Errorf("Get = %+v", s)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}

func TestGetWithoutNoded(t *testing.T) {
	_, err := Get(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "is it running?") {
		t.Errorf("Get error = %v, want a hint that noded is not running", err)
	}
}

func TestOnlyGet(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "noded.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, sock, func(context.Context) Status { return Status{} }, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() { cancel(); <-done })
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err = c.Post("http://noded/v1/status", "text/plain", nil); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST answered %s, want 405", resp.Status)
	}
}
