package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/netcfg"
)

// fakeNet stands in for netcfg.Tester.
type fakeNet struct {
	mu      sync.Mutex
	applied []netcfg.Change
	err     error
	pending *netcfg.Attempt
}

func (f *fakeNet) State() netcfg.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return netcfg.State{Pending: f.pending}
}
func (f *fakeNet) NICs() []netcfg.NICStatus {
	return []netcfg.NICStatus{{Name: "eth0", MAC: "52:54:00:00:00:01", Phase: "bound",
		Config: netcfg.Change{NIC: "eth0", Mode: netcfg.ModeDHCP}, Iface: "eth0",
		Address: netip.MustParsePrefix("10.77.1.50/24")}}
}
func (f *fakeNet) Apply(_ context.Context, c netcfg.Change) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := c.Validate(); err != nil {
		return err
	}
	if f.err != nil {
		return f.err
	}
	f.applied = append(f.applied, c)
	f.pending = &netcfg.Attempt{Change: c, Outcome: netcfg.Testing}
	return nil
}
func (f *fakeNet) Confirm(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending == nil {
		return netcfg.ErrNothingPending
	}
	f.pending = nil
	return nil
}

// fakeBox records what it was asked.
type fakeBox struct {
	mu     sync.Mutex
	serial string
	calls  []string
}

func (b *fakeBox) record(s string) {
	b.mu.Lock()
	b.calls = append(b.calls, s)
	b.mu.Unlock()
}
func (b *fakeBox) Serial() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.serial
}
func (b *fakeBox) SetServers(_ context.Context, s Servers) error {
	b.record("servers " + s.Boot + " " + s.Cluster)
	return nil
}
func (b *fakeBox) Reenrol(context.Context) error { b.record("reenrol"); return nil }
func (b *fakeBox) RequestRole(_ context.Context, role string) error {
	b.record("role " + role)
	return nil
}
func (b *fakeBox) Reboot(context.Context) error       { b.record("reboot"); return nil }
func (b *fakeBox) PowerOff(context.Context) error     { b.record("poweroff"); return nil }
func (b *fakeBox) FactoryReset(context.Context) error { b.record("factory-reset"); return nil }
func (b *fakeBox) Rollback(context.Context) error {
	return fmt.Errorf("rollback: %w", ErrNotAvailable)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve starts the API on a real unix socket in a temporary folder.
func serve(t *testing.T) (*Client, *fakeNet, *fakeBox, *syncBuffer, string) {
	t.Helper()
	// A short folder: a unix socket's path is limited to 108 bytes.
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "run", "control.sock")
	n, b, logs := &fakeNet{}, &fakeBox{serial: "SN-4711"}, &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, path, Handler(n, b, log), log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind: %v", err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the socket never appeared")
		}
	}
	return NewClient(path), n, b, logs, path
}

func TestSocketMode(t *testing.T) {
	_, _, _, _, path := serve(t)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %v, %v: want a socket of mode 0600", fi.Mode(), err)
	}
	if _, err := os.Stat(path + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary socket left: %v", err)
	}
}

func TestNetworkRoutes(t *testing.T) {
	c, n, _, logs, _ := serve(t)
	ctx := context.Background()
	st, err := c.State(ctx)
	if err != nil || st.Network.Pending != nil || len(st.NICs) != 1 || st.NICs[0].Config.Mode != netcfg.ModeDHCP {
		t.Fatalf("State = %+v, %v", st, err)
	}
	ch := netcfg.Change{NIC: "eth0", Mode: netcfg.ModeStatic, VLAN: 42,
		Address: netip.MustParsePrefix("10.1.2.3/24"), Gateway: netip.MustParseAddr("10.1.2.1")}
	st, err = c.ChangeNetwork(ctx, ch)
	if err != nil || st.Network.Pending == nil || !st.Network.Pending.Change.Equal(ch) {
		t.Fatalf("ChangeNetwork = %+v, %v", st, err)
	}
	if _, err := c.ConfirmNetwork(ctx); err != nil {
		t.Errorf("ConfirmNetwork: %v", err)
	}
	_, err = c.ConfirmNetwork(ctx)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Message != netcfg.ErrNothingPending.Error() {
		t.Errorf("second confirm = %#v", err)
	}
	n.err = fmt.Errorf("%w (eth0 DHCP)", netcfg.ErrBusy)
	if _, err := c.ChangeNetwork(ctx, ch); !errors.As(err, &e) || e.Status != http.StatusConflict {
		t.Errorf("busy change = %#v", err)
	}
	n.err = nil
	bad := ch
	bad.Gateway = netip.MustParseAddr("10.9.9.9")
	if _, err := c.ChangeNetwork(ctx, bad); !errors.As(err, &e) || e.Status != http.StatusBadRequest ||
		!strings.Contains(e.Message, "gateway 10.9.9.9 is outside the subnet 10.1.2.0/24") {
		t.Errorf("bad change = %#v", err)
	}
	if len(n.applied) != 1 {
		t.Errorf("applied %+v, want only the good change", n.applied)
	}
	out := logs.String()
	for _, want := range []string{
		`msg="control request" method=GET path=/v1/state status=200`,
		`path=/v1/network status=202`,
		`level=WARN msg="control request" method=POST path=/v1/network/confirm status=409`,
		`peer="pid ` + fmt.Sprint(os.Getpid()),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// Raw requests: what a console with a bug, or a technician with curl, may send.
func TestRoutes(t *testing.T) {
	c, _, box, _, path := serve(t)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string // in the body
		call               string // what the box was asked, "" for nothing
	}{
		{"POST", "/v1/network", `{"nic":"eth0","mode":"static","adress":"10.1.2.3/24"}`, 400, `unknown field \"adress\"`, ""},
		{"POST", "/v1/network", `{"nic":"eth0","mode":"static","address":"10.1.2.300/24"}`, 400, "cannot read the request", ""},
		{"POST", "/v1/network", `{"nic":"eth0","mode":"dhcp","vlan":5000}`, 400, "VLAN 5000 is out of range", ""},
		{"POST", "/v1/network", ``, 400, "the request has no JSON body", ""},
		{"POST", "/v1/network", `{"nic":"eth0","mode":"dhcp"} {}`, 400, "more than one JSON value", ""},
		{"POST", "/v1/network", `{"nic":"eth0","mode":"dhcp","x":"` + strings.Repeat("a", maxBody) + `"}`, 400, "larger than", ""},
		{"GET", "/v1/network", ``, 405, "", ""},
		{"POST", "/v1/state", ``, 405, "", ""},
		{"GET", "/v2/state", ``, 404, "", ""},
		{"POST", "/v1/servers", `{"boot":"http://10.77.1.1:8080","cluster":"https://10.77.1.10:6443"}`, 200, "kept for the next enrolment", "servers http://10.77.1.1:8080 https://10.77.1.10:6443"},
		{"POST", "/v1/servers", `{"boot":"ftp://x"}`, 400, `boot server \"ftp://x\": want an http:// or https:// URL`, ""},
		{"POST", "/v1/servers", `{"cluster":"http://10.77.1.10:6443"}`, 400, "want the cluster API as https://HOST:PORT", ""},
		{"POST", "/v1/servers", `{}`, 400, "give the boot server", ""},
		{"POST", "/v1/reenrol", ``, 202, "re-enrolment started", "reenrol"},
		{"POST", "/v1/role-request", `{"role":"vdi"}`, 202, "role vdi requested", "role vdi"},
		{"POST", "/v1/role-request", `{"role":"king"}`, 400, `role \"king\": want one of server, vdi, idv, tci`, ""},
		{"POST", "/v1/reboot", ``, 202, "rebooting", "reboot"},
		{"POST", "/v1/poweroff", `{}`, 202, "powering off", "poweroff"},
		{"POST", "/v1/factory-reset", `{"serial":"SN-0000"}`, 400, `\"SN-0000\" is not this box's serial number`, ""},
		{"POST", "/v1/factory-reset", `{"serial":""}`, 400, "type the box's serial number", ""},
		{"POST", "/v1/factory-reset", `{"serial":" SN-4711 "}`, 202, "factory reset started", "factory-reset"},
		{"POST", "/v1/rollback", ``, 501, "rollback: not available in this firmware yet", ""},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.body[:min(len(tc.body), 40)], func(t *testing.T) {
			box.mu.Lock()
			box.calls = nil
			box.mu.Unlock()
			req, _ := http.NewRequest(tc.method, "http://onecloud"+tc.path, strings.NewReader(tc.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(b.String(), tc.want) {
				t.Errorf("%d %s, want %d with %q", resp.StatusCode, b.String(), tc.status, tc.want)
			}
			box.mu.Lock()
			calls := slices.Clone(box.calls)
			box.mu.Unlock()
			if (tc.call == "" && len(calls) > 0) || (tc.call != "" && !slices.Equal(calls, []string{tc.call})) {
				t.Errorf("box asked %q, want %q", calls, tc.call)
			}
		})
	}
	// The client's typed calls reach the same routes.
	if msg, err := c.RequestRole(context.Background(), "tci"); err != nil || !strings.Contains(msg, "role tci") {
		t.Errorf("RequestRole = %q, %v", msg, err)
	}
	var e *Error
	if _, err := c.Rollback(context.Background()); !errors.As(err, &e) || e.Status != http.StatusNotImplemented {
		t.Errorf("Rollback = %#v", err)
	}
}

func TestFactoryResetWithoutSerial(t *testing.T) {
	c, _, box, _, _ := serve(t)
	box.mu.Lock()
	box.serial = ""
	box.mu.Unlock()
	_, err := c.FactoryReset(context.Background(), "anything")
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusNotImplemented || !strings.Contains(e.Message, "reports no serial number") {
		t.Errorf("FactoryReset without serial = %#v", err)
	}
	box.mu.Lock()
	defer box.mu.Unlock()
	if len(box.calls) != 0 {
		t.Errorf("box asked %q", box.calls)
	}
}

func TestClientWithoutServer(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	if _, err := c.State(context.Background()); err == nil || !strings.Contains(err.Error(), "is onecloud-init running?") {
		t.Errorf("State without a server = %v", err)
	}
}
