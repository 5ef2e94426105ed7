package enrol

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/firmware/netup"
	"github.com/onecloud-edu/onecloud/hw"
)

const (
	mac = "52:54:00:12:34:56"
	id  = "oc-525400123456"
)

func box() *hw.Inventory {
	return &hw.Inventory{Schema: 1, DMI: hw.DMI{Vendor: "Shenzhen Thin", Product: "T5-J4125", Serial: "TC2026110001"}}
}

// step is one scripted answer of the fake bootstrap server.
type step func(w http.ResponseWriter, r *http.Request)

func answer(r enrolapi.Response) step {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r)
	}
}

func status(code int, retryAfter, body string) step {
	return func(w http.ResponseWriter, _ *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		w.Write([]byte(body))
	}
}

// server is a fake bootstrap server that plays its steps in order (the
// last one again and again) and keeps the requests it got.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	steps []step
	reqs  []enrolapi.Request
	bad   []string // what was wrong with requests
}

func newServer(t *testing.T, steps ...step) *server {
	s := &server{steps: steps}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	var req enrolapi.Request
	err := json.NewDecoder(r.Body).Decode(&req)
	s.mu.Lock()
	switch {
	case r.Method != http.MethodPost || r.URL.Path != enrolapi.Path:
		s.bad = append(s.bad, r.Method+" "+r.URL.Path)
	case r.Header.Get("Content-Type") != "application/json":
		s.bad = append(s.bad, "content type "+r.Header.Get("Content-Type"))
	case err != nil:
		s.bad = append(s.bad, "body: "+err.Error())
	}
	s.reqs = append(s.reqs, req)
	next := s.steps[0]
	if len(s.steps) > 1 {
		s.steps = s.steps[1:]
	}
	s.mu.Unlock()
	next(w, r)
}

func (s *server) requests(t *testing.T) []enrolapi.Request {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bad) > 0 {
		t.Errorf("bad requests: %q", s.bad)
	}
	return s.reqs
}

// run runs a Client until Run returns or it has slept maxSleeps times; the
// sleeps are not waited but recorded, with the state published at each.
type result struct {
	sleeps  []time.Duration
	states  []State // at each sleep
	final   State
	console string
	reboots int
}

func run(t *testing.T, cfg Config, maxSleeps int) result {
	t.Helper()
	var console bytes.Buffer
	var reboots atomic.Int32
	if cfg.BootMAC == "" {
		cfg.BootMAC = mac
	}
	if cfg.Inventory == nil && cfg.InventoryFile == "" {
		cfg.Inventory = box()
	}
	cfg.Console = &console
	cfg.Reboot = func() { reboots.Add(1) }
	if cfg.Backoff.Min == 0 {
		cfg.Backoff = netup.Backoff{Min: time.Second, Max: time.Minute}
	}
	cfg.Backoff.Rand = func(int64) int64 { return 0 } // the lowest draw: waits are exact
	c := New(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var r result
	c.sleep = func(ctx context.Context, d time.Duration) bool {
		r.sleeps = append(r.sleeps, d)
		r.states = append(r.states, c.State())
		if len(r.sleeps) >= maxSleeps {
			cancel()
			return false
		}
		return ctx.Err() == nil
	}
	if err := c.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	select {
	case <-c.Changed():
	default:
		t.Error("Changed() never signalled")
	}
	r.final, r.console, r.reboots = c.State(), console.String(), int(reboots.Load())
	return r
}

func lines(console string) []string { return strings.Split(strings.TrimSuffix(console, "\n"), "\n") }

func TestPendingThenApprovedReboots(t *testing.T) {
	pending := enrolapi.Response{ID: id, State: enrolapi.Pending, RetryAfter: enrolapi.Duration(9 * time.Second), Message: "no rule matches"}
	s := newServer(t, answer(pending), answer(pending),
		answer(enrolapi.Response{ID: id, State: enrolapi.Approved, Role: "vdi", School: "s01", Reboot: true}))
	r := run(t, Config{Server: s.URL, ID: id}, 10)

	if r.reboots != 1 {
		t.Errorf("reboot called %d times, want once", r.reboots)
	}
	// Two polls at the server's 9 s, then the pause to read the console.
	if want := []time.Duration{9 * time.Second, 9 * time.Second, 5 * time.Second}; !slices.Equal(r.sleeps, want) {
		t.Errorf("sleeps = %v, want %v", r.sleeps, want)
	}
	if p := r.states[0]; p.Phase != PhasePending || p.ID != id || p.Message != "no rule matches" || p.Role != "" || p.NextTry.IsZero() {
		t.Errorf("state while pending = %+v", p)
	}
	if f := r.final; f.Phase != PhaseApproved || f.Role != "vdi" || f.School != "s01" || !f.Rebooting {
		t.Errorf("final state = %+v", f)
	}
	reqs := s.requests(t)
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for _, q := range reqs {
		if q.BootMAC != mac || q.ID != id || q.Role != "" || q.Inventory == nil || q.Inventory.DMI.Serial != "TC2026110001" {
			t.Errorf("request = %+v", q)
		}
	}
	want := []string{
		"onecloud: enrolment contacting " + s.URL + " (boot MAC " + mac + ", id " + id + ")",
		"onecloud: role none yet",
		"onecloud: enrolment pending, id " + id + ": waiting for approval (no rule matches)",
		"onecloud: enrolment approved, id " + id,
		"onecloud: role vdi, school s01",
		"onecloud: approved as vdi, rebooting into it",
	}
	if got := lines(r.console); !slices.Equal(got, want) {
		t.Errorf("console:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestApprovedInTheBootedRole(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reboot bool // what the server says
	}{
		{"no reboot asked", false},
		// Rebooting would bring the box back as it is: a loop.
		{"reboot asked for the same role", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, answer(enrolapi.Response{ID: id, State: enrolapi.Approved, Role: "vdi", School: "s01", Reboot: tc.reboot}))
			r := run(t, Config{Server: s.URL, ID: id, Role: "vdi", School: "s01"}, 10)
			if r.reboots != 0 || len(r.sleeps) != 0 || r.final.Phase != PhaseApproved || r.final.Rebooting {
				t.Errorf("reboots %d, sleeps %v, final %+v", r.reboots, r.sleeps, r.final)
			}
			if reqs := s.requests(t); len(reqs) != 1 || reqs[0].Role != "vdi" {
				t.Errorf("requests = %+v", reqs)
			}
			if strings.Count(r.console, "onecloud: role vdi, school s01\n") != 1 || strings.Contains(r.console, "rebooting") {
				t.Errorf("console:\n%s", r.console)
			}
		})
	}
}

func TestRejected(t *testing.T) {
	rejected := enrolapi.Response{ID: id, State: enrolapi.Rejected, Message: "not a school machine\x1b[2J"}
	t.Run("for good", func(t *testing.T) {
		s := newServer(t, answer(rejected))
		r := run(t, Config{Server: s.URL, Role: "tci"}, 10)
		if r.reboots != 0 || len(r.sleeps) != 0 || len(s.requests(t)) != 1 {
			t.Errorf("reboots %d, sleeps %v: a rejected box neither reboots nor asks again unless told", r.reboots, r.sleeps)
		}
		if f := r.final; f.Phase != PhaseRejected || f.Message != "not a school machine[2J" || f.Role != "" || !f.NextTry.IsZero() {
			t.Errorf("final state = %+v (the escape character must be gone)", f)
		}
		if !strings.Contains(r.console, "onecloud: enrolment rejected, id "+id+": not a school machine[2J\n") ||
			!strings.HasSuffix(r.console, "onecloud: role none yet\n") {
			t.Errorf("console:\n%s", r.console)
		}
	})
	t.Run("asks again when told", func(t *testing.T) {
		again := rejected
		again.RetryAfter = enrolapi.Duration(time.Minute)
		s := newServer(t, answer(again), answer(rejected))
		r := run(t, Config{Server: s.URL}, 10)
		if !slices.Equal(r.sleeps, []time.Duration{time.Minute}) || len(s.requests(t)) != 2 || r.final.Phase != PhaseRejected {
			t.Errorf("sleeps %v, final %+v", r.sleeps, r.final)
		}
		if n := strings.Count(r.console, "enrolment rejected"); n != 1 {
			t.Errorf("rejection said %d times, want once (it did not change)", n)
		}
	})
}

// Every failure is shown as an error and retried: by backoff, or when the
// server says (503 + Retry-After), until an answer comes.
func TestFailuresAreRetried(t *testing.T) {
	approved := answer(enrolapi.Response{ID: id, State: enrolapi.Approved, Role: "idv"})
	date := time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name  string
		fail  step
		err   string        // in LastError
		sleep time.Duration // first wait (backoff: 500 ms at the lowest draw)
	}{
		{"503 with Retry-After", status(503, "7", "busy"), "is busy (HTTP 503)", 7 * time.Second},
		{"503 with Retry-After as a date", status(503, date, ""), "is busy (HTTP 503)", 20 * time.Second},
		{"503 with Retry-After below the minimum", status(503, "0", ""), "is busy (HTTP 503)", 2 * time.Second},
		{"503 with Retry-After beyond the maximum", status(503, "86400", ""), "is busy (HTTP 503)", 5 * time.Minute},
		{"503 without Retry-After", status(503, "", ""), "is busy (HTTP 503)", 500 * time.Millisecond},
		{"500", status(500, "", "database\nis locked"), "failed (HTTP 500): database is locked", 500 * time.Millisecond},
		{"404", status(404, "", ""), "refused the request (HTTP 404); is it a onecloud bootstrap server?", 500 * time.Millisecond},
		{"malformed JSON", status(200, "", `{"state": "pend`), "bad answer from", 500 * time.Millisecond},
		{"HTML", status(200, "", `<html>captive portal</html>`), "bad answer from", 500 * time.Millisecond},
		{"unknown state", status(200, "", `{"state": "sleeping"}`), `unknown state "sleeping"`, 500 * time.Millisecond},
		{"approved in no known role", status(200, "", `{"state": "approved", "role": "desktop"}`), `approved in role "desktop"`, 500 * time.Millisecond},
		{"bad retry_after", status(200, "", `{"state": "pending", "retry_after": "soon"}`), "bad answer from", 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.fail, tc.fail, approved)
			r := run(t, Config{Server: s.URL, ID: id}, 10)
			if len(r.sleeps) != 2 || len(s.requests(t)) != 3 || r.final.Phase != PhaseApproved || r.final.Role != "idv" {
				t.Fatalf("sleeps %v, final %+v: want two retries, then the approval", r.sleeps, r.final)
			}
			// A date loses up to a second to rounding and transit.
			if d := r.sleeps[0]; d > tc.sleep || d < tc.sleep-time.Second || (!strings.Contains(tc.name, "date") && d != tc.sleep) {
				t.Errorf("first wait %v, want %v", d, tc.sleep)
			}
			e := r.states[0]
			if e.Phase != PhaseError || !strings.Contains(e.LastError, tc.err) || e.Attempt != 1 || e.NextTry.IsZero() {
				t.Errorf("state after the failure = %+v, want error %q", e, tc.err)
			}
			if !strings.Contains(e.LastError, s.URL) {
				t.Errorf("error %q does not name the server", e.LastError)
			}
			if r.final.LastError != "" || r.final.Attempt != 0 {
				t.Errorf("the answer did not clear the error: %+v", r.final)
			}
			if n := strings.Count(r.console, "onecloud: enrolment error: "); n != 1 {
				t.Errorf("the same error said %d times, want once:\n%s", n, r.console)
			}
		})
	}
}

func TestServerDownBacksOff(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	url := s.URL
	s.Close() // nothing listens there now
	r := run(t, Config{Server: url, Backoff: netup.Backoff{Min: time.Second, Max: 3 * time.Second}}, 4)
	if want := []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 1500 * time.Millisecond}; !slices.Equal(r.sleeps, want) {
		t.Errorf("sleeps = %v, want the backoff %v", r.sleeps, want)
	}
	for i, st := range r.states {
		if st.Phase != PhaseError || st.Attempt != i+1 || !strings.HasPrefix(st.LastError, "cannot reach "+url+": ") ||
			!strings.Contains(st.LastError, "connection refused") {
			t.Errorf("state %d = %+v", i, st)
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	s := newServer(t, hang, answer(enrolapi.Response{State: enrolapi.Pending, RetryAfter: enrolapi.Duration(3 * time.Second)}))
	r := run(t, Config{Server: s.URL, RequestTimeout: 50 * time.Millisecond}, 2)
	if len(r.states) != 2 || r.states[0].LastError != "cannot reach "+s.URL+": no answer within 50ms" || r.states[1].Phase != PhasePending {
		t.Errorf("states = %+v", r.states)
	}
	if r.sleeps[1] != 3*time.Second {
		t.Errorf("poll wait %v, want the server's 3s", r.sleeps[1])
	}
}

func TestNoServer(t *testing.T) {
	r := run(t, Config{Role: "vdi", School: "s01"}, 1)
	if r.final.Phase != PhaseNoServer || r.final.Role != "vdi" || len(r.sleeps) != 0 {
		t.Errorf("final %+v, sleeps %v", r.final, r.sleeps)
	}
	want := []string{
		"onecloud: enrolment: no boot server known (no onecloud.server= and none from DHCP); not enrolling",
		"onecloud: role vdi, school s01",
	}
	if got := lines(r.console); !slices.Equal(got, want) {
		t.Errorf("console = %q, want %q", got, want)
	}
}

func TestInventoryFromFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "inventory.json")
	s := newServer(t, answer(enrolapi.Response{State: enrolapi.Approved, Role: "server"}))
	// Not written yet: the firmware writes it before the network is up, but
	// a failure must show and be retried, not crash or send nothing.
	c := Config{Server: s.URL, InventoryFile: file, Role: "server"}
	r := run(t, c, 1)
	if len(r.states) != 1 || !strings.Contains(r.states[0].LastError, "cannot read the hardware inventory") || len(s.requests(t)) != 0 {
		t.Fatalf("states %+v", r.states)
	}
	data, _ := json.Marshal(box())
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, c, 1)
	reqs := s.requests(t)
	if r.final.Phase != PhaseApproved || len(reqs) != 1 || reqs[0].Inventory == nil || reqs[0].Inventory.DMI.Serial != "TC2026110001" {
		t.Errorf("final %+v, requests %+v", r.final, reqs)
	}
}

func TestCancelDuringRebootPause(t *testing.T) {
	s := newServer(t, answer(enrolapi.Response{State: enrolapi.Approved, Role: "vdi", Reboot: true}))
	r := run(t, Config{Server: s.URL}, 1) // the pause is the one sleep, and it is cut short
	if r.reboots != 0 || !slices.Equal(r.sleeps, []time.Duration{5 * time.Second}) {
		t.Errorf("reboots %d, sleeps %v: a box shutting down must not reboot", r.reboots, r.sleeps)
	}
}

func TestPoll(t *testing.T) {
	for _, tc := range []struct {
		asked, def time.Duration
		low, high  time.Duration
	}{
		{9 * time.Second, 0, 9 * time.Second, 13500 * time.Millisecond},
		{0, 30 * time.Second, 30 * time.Second, 45 * time.Second},
		{time.Millisecond, 0, 2 * time.Second, 3 * time.Second},         // PollMin
		{time.Hour, 0, 5 * time.Minute, 7*time.Minute + 30*time.Second}, // PollMax
	} {
		c := New(Config{})
		c.cfg.Backoff.Rand = func(int64) int64 { return 0 }
		if got := c.poll(tc.asked, tc.def); got != tc.low {
			t.Errorf("poll(%v, %v), lowest draw = %v, want %v", tc.asked, tc.def, got, tc.low)
		}
		c.cfg.Backoff.Rand = func(n int64) int64 { return n - 1 }
		if got := c.poll(tc.asked, tc.def); got != tc.high {
			t.Errorf("poll(%v, %v), highest draw = %v, want %v", tc.asked, tc.def, got, tc.high)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"-1", 0, false},
		{"99999999999", 0, false},
		{"Sat, 28 Nov 2026 08:00:30 GMT", 30 * time.Second, true},
		{"Sat, 28 Nov 2026 07:00:00 GMT", 0, true}, // in the past: now
		{"soon", 0, false},
	} {
		got, ok := retryAfter(tc.v, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"":                                  "",
		"  waiting\tfor\n\nthe technician ": "waiting for the technician",
		"\x1b[2Jcleared\x07":                "[2Jcleared",
		strings.Repeat("x", 300):            strings.Repeat("x", 197) + "...",
	} {
		if got := clean(in, 200); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// testCA is a PEM CA certificate, as an approval carries it.
func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "onecloud test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// The console settings from the cluster are kept; unusable ones are dropped
// without losing the approval.
func TestApprovedWithConsole(t *testing.T) {
	const hash = "pbkdf2-sha256$100000$c2FsdHNhbHRzYWx0$" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, tc := range []struct {
		name     string
		console  enrolapi.Console
		wantHash string
		wantLang string
	}{
		{"both", enrolapi.Console{PINHash: hash, Lang: "en"}, hash, "en"},
		{"a PIN instead of a hash", enrolapi.Console{PINHash: "1234", Lang: "zh"}, "", "zh"},
		{"unknown language", enrolapi.Console{PINHash: hash, Lang: "fr"}, hash, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.console
			s := newServer(t, answer(enrolapi.Response{ID: id, State: enrolapi.Approved, Role: "vdi", Console: &c}))
			r := run(t, Config{Server: s.URL, ID: id, Role: "vdi"}, 1)
			if r.final.Phase != PhaseApproved || r.final.Console == nil || r.final.Console.PINHash != tc.wantHash || r.final.Console.Lang != tc.wantLang {
				t.Fatalf("final %+v (console %+v), want approved with hash %q, lang %q", r.final, r.final.Console, tc.wantHash, tc.wantLang)
			}
		})
	}
}

func TestApprovedWithCluster(t *testing.T) {
	ca := testCA(t)
	for _, tc := range []struct {
		name    string
		cluster enrolapi.Cluster
		wantErr string // "" : accepted and kept
	}{
		{"https API and a CA", enrolapi.Cluster{API: "https://10.77.1.1:9443", CA: ca}, ""},
		{"plain http API", enrolapi.Cluster{API: "http://10.77.1.1:9443", CA: ca}, "want https://HOST:PORT"},
		{"API with a path", enrolapi.Cluster{API: "https://10.77.1.1:9443/evil", CA: ca}, "want https://HOST:PORT"},
		{"no CA", enrolapi.Cluster{API: "https://10.77.1.1:9443"}, "not a PEM certificate"},
		{"garbage CA", enrolapi.Cluster{API: "https://10.77.1.1:9443", CA: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "cluster CA certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cluster
			s := newServer(t, answer(enrolapi.Response{ID: id, State: enrolapi.Approved, Role: "vdi", Cluster: &c}))
			r := run(t, Config{Server: s.URL, ID: id, Role: "vdi"}, 1)
			if tc.wantErr == "" {
				if r.final.Phase != PhaseApproved || r.final.Cluster == nil || *r.final.Cluster != c {
					t.Fatalf("final %+v, want approved with cluster %+v", r.final, c)
				}
				return
			}
			// An unusable answer is a failed request: asked again later,
			// nothing kept.
			if len(r.states) != 1 || r.states[0].Phase != PhaseError || !strings.Contains(r.states[0].LastError, tc.wantErr) || r.states[0].Cluster != nil {
				t.Fatalf("states %+v, want one error containing %q", r.states, tc.wantErr)
			}
		})
	}
}
