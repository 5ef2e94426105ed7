package harness

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeQMP serves one QMP connection on a unix socket: it greets, then answers each command with reply
// (called with the command and its arguments) and can send events.
func fakeQMP(t *testing.T, reply func(cmd string, args map[string]any) map[string]any) (string, chan<- string) {
	path := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan string, 4)
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		enc := json.NewEncoder(conn)
		_ = enc.Encode(map[string]any{"QMP": map[string]any{"version": map[string]any{}, "capabilities": []string{}}})
		lines := make(chan map[string]any)
		go func() {
			sc := bufio.NewScanner(conn)
			for sc.Scan() {
				var req map[string]any
				if json.Unmarshal(sc.Bytes(), &req) == nil {
					lines <- req
				}
			}
			close(lines)
		}()
		for {
			select {
			case ev := <-events:
				_ = enc.Encode(map[string]any{"event": ev, "data": map[string]any{"guest": true}, "timestamp": map[string]any{"seconds": 1, "microseconds": 2}})
			case req, ok := <-lines:
				if !ok {
					return
				}
				args, _ := req["arguments"].(map[string]any)
				resp := reply(req["execute"].(string), args)
				if resp == nil {
					return // hang up, as QEMU does on quit
				}
				resp["id"] = req["id"]
				_ = enc.Encode(resp)
			}
		}
	}()
	return path, events
}

func TestMonitor(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex // got is written by the fake QEMU's goroutine
	var got []string
	path, events := fakeQMP(t, func(cmd string, args map[string]any) map[string]any {
		mu.Lock()
		got = append(got, cmd)
		mu.Unlock()
		switch cmd {
		case "qmp_capabilities", "cont", "system_powerdown":
			return map[string]any{"return": map[string]any{}}
		case "set_link":
			if args["name"] != "nic1" || args["up"] != false {
				return map[string]any{"error": map[string]any{"class": "GenericError", "desc": "bad arguments"}}
			}
			return map[string]any{"return": map[string]any{}}
		case "query-status":
			return map[string]any{"return": map[string]any{"status": "running", "running": true}}
		case "human-monitor-command":
			return map[string]any{"return": "hmp said " + args["command-line"].(string)}
		case "quit":
			return nil
		}
		return map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": "The command " + cmd + " has not been found"}}
	})
	ctx := t.Context()
	m, err := dialMonitor(ctx, path, make(chan struct{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	if err := m.Cont(ctx); err != nil {
		t.Error(err)
	}
	if err := m.SetLink(ctx, "nic1", false); err != nil {
		t.Error(err)
	}
	if st, err := m.Status(ctx); err != nil || st != "running" {
		t.Errorf("Status = %q, %v", st, err)
	}
	if out, err := m.HumanMonitorCommand(ctx, "info network"); err != nil || out != "hmp said info network" {
		t.Errorf("HumanMonitorCommand = %q, %v", out, err)
	}
	if err := m.Execute(ctx, "no-such-command", nil, nil); err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Errorf("an unknown command: %v", err)
	}

	events <- "POWERDOWN"
	events <- "SHUTDOWN"
	ev, err := m.WaitEvent(ctx, "SHUTDOWN")
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.Data) != `{"guest":true}` || !ev.Time.Equal(time.Unix(1, 2000)) {
		t.Errorf("event %+v", ev)
	}
	if evs := m.Events(); len(evs) != 2 || evs[0].Name != "POWERDOWN" {
		t.Errorf("Events() = %+v", evs)
	}

	if err := m.Quit(ctx); err != nil {
		t.Errorf("Quit, answered by a hang-up: %v", err)
	}
	if err := m.SystemPowerdown(ctx); !errors.Is(err, ErrMonitorClosed) {
		t.Errorf("a command after QEMU went: %v, want ErrMonitorClosed", err)
	}
	if _, err := m.WaitEvent(ctx, "RESET"); !errors.Is(err, ErrMonitorClosed) {
		t.Errorf("WaitEvent after QEMU went: %v, want ErrMonitorClosed", err)
	}
	want := []string{"qmp_capabilities", "cont", "set_link", "query-status", "human-monitor-command", "no-such-command", "quit"}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("commands sent: %q, want %q", got, want)
	}
}

func TestDialMonitorQEMUGone(t *testing.T) {
	t.Parallel()
	exited := make(chan struct{})
	close(exited)
	if _, err := dialMonitor(t.Context(), filepath.Join(t.TempDir(), "none.sock"), exited); err == nil {
		t.Error("dialMonitor succeeded without a QEMU")
	}
}
