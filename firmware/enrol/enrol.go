// Package enrol tells the bootstrap server what this box is and learns
// whether it may run, and in which role (docs/bootstrap.md).
//
// Once the box is online, the Client POSTs its boot MAC, the id and role it
// was booted with, and its whole hardware inventory to <server>/v1/enrol. A
// pending box asks again when the server says; an approved box whose role
// changed reboots to take it (the bootstrap server hands the new role out on
// the kernel command line); a rejected box shows why. Network errors, a busy
// server (503 + Retry-After) and garbage answers are shown and retried for as
// long as the box runs: like the rest of the firmware, nothing here ends the
// boot, and a box that waits for approval is still a ready box.
//
// Every change of state is one line on the console ("onecloud: enrolment
// pending, id oc-525400123456: waiting for approval"), because the status
// screen redraws only on change and tests read the serial console.
package enrol

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/firmware/cmdline"
	"github.com/onecloud-edu/onecloud/firmware/netup"
	"github.com/onecloud-edu/onecloud/hw"
	"github.com/onecloud-edu/onecloud/internal/pinhash"
	"github.com/onecloud-edu/onecloud/noded/localapi"
)

// Phase is where the box is in enrolment.
type Phase string

// Phases. The zero Phase means enrolment has not started: the box is not
// online yet.
const (
	PhaseNoServer   Phase = "no-server"  // no onecloud.server= and none from DHCP: nobody to ask
	PhaseContacting Phase = "contacting" // first request on its way
	PhasePending    Phase = "pending"    // the server knows the box; a rule or the technician decides
	PhaseApproved   Phase = "approved"   // may run in Role
	PhaseRejected   Phase = "rejected"   // never runs in a role; Message says why
	PhaseError      Phase = "error"      // the last request failed; LastError says how
)

// State is the Client's published state, for the status screen.
type State struct {
	Phase  Phase
	Server string
	// ID is the machine's id in the inbox: the server's answer, else
	// onecloud.id=.
	ID string
	// Role and School are what the box was approved for, else what it was
	// booted with (empty: none yet).
	Role, School string
	// Rebooting is set when an approval in a new role is about to reboot the box.
	Rebooting bool
	// Cluster is where an approved box attests next, when the boot server
	// said (one inside a server node does).
	Cluster *enrolapi.Cluster
	// Console is the node console's settings from the cluster (PIN hash,
	// language), when it set any.
	Console *enrolapi.Console
	// Message is the server's word for the screen: why it waits, or why it
	// was rejected.
	Message string
	// NextTry is when the server is asked again (zero: it is not).
	NextTry time.Time
	// LastError is the last failure, worded for the operator; set in
	// PhaseError.
	LastError string
	// Attempt counts failed requests since the last answer.
	Attempt int
}

// Doer sends an HTTP request; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Config says whom to ask, as what, and how patiently.
type Config struct {
	// Server is the bootstrap server's base URL (cmdline.CheckServer);
	// empty means there is nobody to ask (PhaseNoServer).
	Server string
	// BootMAC is the MAC of the NIC that got the box its address.
	BootMAC string
	// ID, Role and School are what the kernel command line gave (may be empty).
	ID, Role, School string
	// Inventory is the box's hardware; when nil it is read from
	// InventoryFile (default localapi.InventoryPath) before each request
	// until that works.
	Inventory     *hw.Inventory
	InventoryFile string
	// HTTP sends the requests (default: an http.Client that follows no
	// redirects, since a redirected POST would arrive as a GET).
	HTTP Doer
	// RequestTimeout bounds one request and its answer (default 10 s).
	RequestTimeout time.Duration
	// Backoff spaces retries after network errors, 5xx and bad answers; the
	// same jittered backoff as DHCP, so that a thousand boxes that lost the
	// server together do not come back together.
	Backoff netup.Backoff
	// PollMin and PollMax bound the waits the server asks for (Retry-After,
	// the pending answer's retry_after), default 2 s and 5 min; PollDefault
	// is the wait when a pending answer gives none (default 30 s).
	PollMin, PollMax, PollDefault time.Duration
	// Reboot restarts the box; it is called once, RebootDelay (default 5 s,
	// time to read the console) after an approval in another role than the
	// one booted. Nil: the box asks the technician to reboot it.
	Reboot      func()
	RebootDelay time.Duration
	// Console receives one line per change of state.
	Console io.Writer
	Log     *slog.Logger
}

// Client runs enrolment.
type Client struct {
	cfg     Config
	sleep   func(context.Context, time.Duration) bool // replaced in tests
	mu      sync.Mutex
	st      State
	changed chan struct{}

	// What the console was last told; only Run's goroutine touches these.
	said     State
	roleSaid string
}

// New returns a Client; call Run once the box is online.
func New(cfg Config) *Client {
	if cfg.InventoryFile == "" {
		cfg.InventoryFile = localapi.InventoryPath
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Backoff.Min <= 0 || cfg.Backoff.Max < cfg.Backoff.Min {
		cfg.Backoff.Min, cfg.Backoff.Max = time.Second, time.Minute
	}
	if cfg.Backoff.Rand == nil {
		cfg.Backoff.Rand = rand.Int64N
	}
	if cfg.PollMin <= 0 {
		cfg.PollMin = 2 * time.Second
	}
	if cfg.PollMax < cfg.PollMin {
		cfg.PollMax = max(5*time.Minute, cfg.PollMin)
	}
	if cfg.PollDefault <= 0 {
		cfg.PollDefault = 30 * time.Second
	}
	if cfg.RebootDelay <= 0 {
		cfg.RebootDelay = 5 * time.Second
	}
	if cfg.Console == nil {
		cfg.Console = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Client{
		cfg:     cfg,
		sleep:   sleep,
		st:      State{Server: cfg.Server, ID: cfg.ID, Role: cfg.Role, School: cfg.School},
		changed: make(chan struct{}, 1),
	}
}

// Changed receives a value (coalesced) whenever the state changes.
func (c *Client) Changed() <-chan struct{} { return c.changed }

// State returns the current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Run enrols the box. It returns when ctx ends, when there is no server to
// ask, once the box is approved (after calling Reboot if the role changed),
// or when a rejection comes without a time to ask again. Call it once.
func (c *Client) Run(ctx context.Context) error {
	if c.cfg.Server == "" {
		c.set(func(s *State) { s.Phase = PhaseNoServer })
		return nil
	}
	c.set(func(s *State) { s.Phase = PhaseContacting })
	attempt := 0
	for {
		resp, wait, err := c.ask(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			attempt++
			if wait == 0 {
				wait = c.cfg.Backoff.Delay(attempt)
			}
			c.cfg.Log.Debug("enrolment request failed", "server", c.cfg.Server, "mac", c.cfg.BootMAC, "attempt", attempt, "retry_in", wait, "err", err)
			c.set(func(s *State) {
				s.Phase, s.LastError, s.Attempt, s.NextTry = PhaseError, err.Error(), attempt, time.Now().Add(wait)
			})
			if !c.sleep(ctx, wait) {
				return nil
			}
			continue
		}
		attempt = 0
		c.cfg.Log.Debug("enrolment answer", "server", c.cfg.Server, "mac", c.cfg.BootMAC, "state", resp.State, "id", resp.ID, "role", resp.Role)
		switch resp.State {
		case enrolapi.Pending, enrolapi.Rejected:
			again := time.Duration(0)
			if resp.State == enrolapi.Pending || resp.RetryAfter > 0 {
				// A rejected box asks again only when the server says when,
				// so that a technician's second thought reaches it.
				again = c.poll(time.Duration(resp.RetryAfter), c.cfg.PollDefault)
			}
			c.set(func(s *State) {
				s.Phase, s.Message, s.LastError, s.Attempt = PhasePending, resp.Message, "", 0
				if resp.State == enrolapi.Rejected {
					s.Phase, s.Role, s.School = PhaseRejected, "", ""
				}
				s.NextTry = time.Time{}
				if again > 0 {
					s.NextTry = time.Now().Add(again)
				}
				if resp.ID != "" {
					s.ID = resp.ID
				}
			})
			if again == 0 || !c.sleep(ctx, again) {
				return nil
			}
		case enrolapi.Approved:
			reboot := c.approved(resp)
			if reboot {
				return c.reboot(ctx, resp.Role)
			}
			return nil
		}
	}
}

// approved publishes an approval and says whether to reboot for it.
func (c *Client) approved(resp enrolapi.Response) bool {
	reboot := resp.Reboot && resp.Role != c.cfg.Role
	switch {
	case resp.Reboot && !reboot:
		// Rebooting would bring the box back in the same role, and the
		// server would ask again: a loop. Stay up and say so.
		c.cfg.Log.Warn("the boot server asks for a reboot into the role this box already runs; not rebooting",
			"role", resp.Role, "mac", c.cfg.BootMAC)
	case !resp.Reboot && resp.Role != c.cfg.Role:
		c.cfg.Log.Warn("approved in another role than booted, but the boot server asks for no reboot",
			"booted", c.cfg.Role, "approved", resp.Role, "mac", c.cfg.BootMAC)
	}
	c.set(func(s *State) {
		s.Phase, s.Role, s.School, s.Message, s.LastError, s.Attempt, s.NextTry = PhaseApproved, resp.Role, resp.School, resp.Message, "", 0, time.Time{}
		s.Rebooting = reboot && c.cfg.Reboot != nil
		s.Cluster, s.Console = resp.Cluster, resp.Console
		if resp.ID != "" {
			s.ID = resp.ID
		}
	})
	return reboot
}

// reboot announces the new role, leaves time to read it, and reboots.
func (c *Client) reboot(ctx context.Context, role string) error {
	if c.cfg.Reboot == nil {
		fmt.Fprintf(c.cfg.Console, "onecloud: approved as %s; reboot this box to take the role\n", role)
		return nil
	}
	fmt.Fprintf(c.cfg.Console, "onecloud: approved as %s, rebooting into it\n", role)
	if !c.sleep(ctx, c.cfg.RebootDelay) {
		return nil
	}
	c.cfg.Reboot()
	return nil
}

// ask sends one enrolment request. On failure it returns the error worded
// for the screen and, when the server said how long to wait (503 with
// Retry-After), that wait; zero means back off.
func (c *Client) ask(ctx context.Context) (enrolapi.Response, time.Duration, error) {
	server := c.cfg.Server
	inv, err := c.inventory()
	if err != nil {
		return enrolapi.Response{}, 0, err
	}
	body, err := json.Marshal(enrolapi.Request{BootMAC: c.cfg.BootMAC, ID: c.cfg.ID, Inventory: inv, Role: c.cfg.Role})
	if err != nil {
		return enrolapi.Response{}, 0, fmt.Errorf("cannot encode the enrolment request: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, strings.TrimSuffix(server, "/")+enrolapi.Path, bytes.NewReader(body))
	if err != nil {
		return enrolapi.Response{}, 0, fmt.Errorf("boot server URL %q is unusable (check onecloud.server=): %w", server, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", netup.VendorClass)
	res, err := c.cfg.HTTP.Do(req)
	if err != nil {
		if rctx.Err() != nil && ctx.Err() == nil {
			return enrolapi.Response{}, 0, fmt.Errorf("cannot reach %s: no answer within %s", server, c.cfg.RequestTimeout)
		}
		// The URL and the address are in the message already: keep what
		// went wrong ("connect: connection refused", "no such host").
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
		}
		return enrolapi.Response{}, 0, fmt.Errorf("cannot reach %s: %w", server, err)
	}
	defer res.Body.Close()
	// An answer is a few hundred bytes; a megabyte is garbage.
	data, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return enrolapi.Response{}, 0, fmt.Errorf("cannot reach %s: answer cut off: %w", server, err)
	}
	switch {
	case res.StatusCode == http.StatusServiceUnavailable:
		wait := time.Duration(0)
		if ra, ok := retryAfter(res.Header.Get("Retry-After"), time.Now()); ok {
			wait = c.poll(ra, 0)
		}
		return enrolapi.Response{}, wait, fmt.Errorf("%s is busy (HTTP 503)", server)
	case res.StatusCode >= 500:
		return enrolapi.Response{}, 0, fmt.Errorf("%s failed (HTTP %d)%s", server, res.StatusCode, excerpt(data))
	case res.StatusCode < 200 || res.StatusCode > 299:
		return enrolapi.Response{}, 0, fmt.Errorf("%s refused the request (HTTP %d)%s; is it a onecloud bootstrap server?", server, res.StatusCode, excerpt(data))
	}
	var resp enrolapi.Response
	if err := json.Unmarshal(data, &resp); err != nil {
		return enrolapi.Response{}, 0, fmt.Errorf("bad answer from %s: %w", server, err)
	}
	if err := check(&resp); err != nil {
		return enrolapi.Response{}, 0, fmt.Errorf("bad answer from %s: %w", server, err)
	}
	return resp, 0, nil
}

// check refuses answers the box cannot act on and cleans what it will print:
// the server's words go on a console and must not be able to drive it.
func check(r *enrolapi.Response) error {
	switch r.State {
	case enrolapi.Pending, enrolapi.Rejected:
		r.Role, r.School, r.Cluster, r.Console = "", "", nil, nil
	case enrolapi.Approved:
		if err := cmdline.CheckRole(r.Role); err != nil {
			return fmt.Errorf("approved in role %q: %w", r.Role, err)
		}
		if r.School != "" && cmdline.CheckSchool(r.School) != nil {
			r.School = ""
		}
		if r.Cluster != nil {
			if err := checkCluster(*r.Cluster); err != nil {
				return fmt.Errorf("approved, but the cluster to attest to is unusable: %w", err)
			}
		}
		if c := r.Console; c != nil {
			// Settings the console could not use are dropped, not the approval.
			if _, err := pinhash.Parse(c.PINHash); err != nil {
				c.PINHash = ""
			}
			if c.Lang != "zh" && c.Lang != "en" {
				c.Lang = ""
			}
		}
	default:
		return fmt.Errorf("unknown state %q", r.State)
	}
	if r.RetryAfter < 0 {
		r.RetryAfter = 0
	}
	r.ID = clean(r.ID, 64)
	if strings.ContainsRune(r.ID, ' ') {
		r.ID = ""
	}
	r.Message = clean(r.Message, 200)
	return nil
}

// checkCluster makes sure the cluster an approval names is an https URL
// and a CA certificate, before the box writes or dials either.
func checkCluster(c enrolapi.Cluster) error {
	if err := cmdline.CheckServer(c.API); err != nil || !strings.HasPrefix(c.API, "https://") {
		return fmt.Errorf("cluster API %q: want https://HOST:PORT", clean(c.API, 80))
	}
	block, _ := pem.Decode([]byte(c.CA))
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("the cluster CA is not a PEM certificate")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return fmt.Errorf("the cluster CA certificate: %w", err)
	}
	return nil
}

// inventory returns the configured inventory or the one the firmware saved.
func (c *Client) inventory() (*hw.Inventory, error) {
	if c.cfg.Inventory != nil {
		return c.cfg.Inventory, nil
	}
	data, err := os.ReadFile(c.cfg.InventoryFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read the hardware inventory to send: %w", err)
	}
	var inv hw.Inventory
	if err := json.Unmarshal(data, &inv); err != nil {
		return nil, fmt.Errorf("hardware inventory %s is unreadable: %w", c.cfg.InventoryFile, err)
	}
	c.cfg.Inventory = &inv // Run's goroutine only
	return &inv, nil
}

// poll turns a wait the server asked for (or def when it gave none) into the
// wait taken: within PollMin..PollMax, then up to half again at random, never
// shorter than asked. A thousand boxes told "come back in 30 s" at once thus
// come back over 15 s instead of in one instant.
func (c *Client) poll(d, def time.Duration) time.Duration {
	if d <= 0 {
		d = def
	}
	d = min(max(d, c.cfg.PollMin), c.cfg.PollMax)
	return d + time.Duration(c.cfg.Backoff.Rand(int64(d/2)+1))
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(24*time.Hour/time.Second) {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// set changes the state, tells the console what changed, and notifies.
func (c *Client) set(fn func(*State)) {
	c.mu.Lock()
	fn(&c.st)
	st := c.st
	c.mu.Unlock()
	c.announce(st)
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// announce prints one line when the state changed in a way a person (or a
// test reading the serial console) cares about, and the role line when the
// role changed.
func (c *Client) announce(st State) {
	old := c.said
	c.said = st
	id := ""
	if st.ID != "" {
		id = ", id " + st.ID
	}
	if st.Phase != old.Phase || st.LastError != old.LastError || st.Message != old.Message || st.ID != old.ID {
		switch st.Phase {
		case PhaseNoServer:
			c.say("onecloud: enrolment: no boot server known (no onecloud.server= and none from DHCP); not enrolling")
		case PhaseContacting:
			c.say("onecloud: enrolment contacting %s (boot MAC %s%s)", st.Server, orNone(c.cfg.BootMAC), id)
		case PhasePending:
			c.say("onecloud: enrolment pending%s: waiting for approval%s", id, paren(st.Message))
		case PhaseApproved:
			c.say("onecloud: enrolment approved%s%s", id, paren(st.Message))
		case PhaseRejected:
			c.say("onecloud: enrolment rejected%s: %s", id, orNone(st.Message))
		case PhaseError:
			c.say("onecloud: enrolment error: %s (retrying)", st.LastError)
		}
	}
	role := "onecloud: role none yet"
	if st.Role != "" {
		role = "onecloud: role " + st.Role
		if st.School != "" {
			role += ", school " + st.School
		}
	}
	if role != c.roleSaid {
		c.roleSaid = role
		c.say("%s", role)
	}
}

func (c *Client) say(format string, args ...any) {
	fmt.Fprintf(c.cfg.Console, format+"\n", args...)
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// excerpt is the start of an error body, for the screen.
func excerpt(body []byte) string {
	s := clean(string(body), 80)
	if s == "" {
		return ""
	}
	return ": " + s
}

// clean keeps printable ASCII (control characters would drive the console),
// turns runs of white space into one space and clips to n bytes.
func clean(s string, n int) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			space = b.Len() > 0
			continue
		case r < ' ' || r > '~':
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	out := b.String()
	if len(out) > n {
		out = out[:n-3] + "..."
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
