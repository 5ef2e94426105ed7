// Package nodecert keeps a box's node certificate: the short-lived (24 h)
// certificate the cluster CA issues to a machine that attests with its TPM
// (noded/attest). A Keeper attests, writes the certificate and its key into
// a folder, and attests again before the certificate expires, until its
// context ends. A box that stops attesting (stolen, tampered, image no
// longer released) therefore drops out of the cluster within a day.
//
// Every change of state is also written to status.json in the same folder,
// which the firmware's status screen reads (Read).
package nodecert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/onecloud-edu/onecloud/internal/atomicfile"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest"
	"github.com/onecloud-edu/onecloud/noded/pki"
)

// Files in the Keeper's folder. The names are those of a server node's
// pki/ folder, so that one reader serves both.
const (
	CertFile   = pki.NodeCertFile
	KeyFile    = pki.NodeKeyFile
	StatusFile = "status.json"
)

// DefaultDir is where a box keeps its node certificate: /run is the tmpfs
// of this boot, like the measurements the certificate was earned with.
const DefaultDir = "/run/onecloud/node"

// Renewal bounds. A certificate is renewed at 2/3 of its lifetime, so that
// a server that is down for a third of a day costs nothing; never later than
// renewMargin before it expires, and never sooner than minRenewal after it
// was issued, so that a cluster handing out very short certificates does not
// make its boxes attest in a loop.
const (
	renewMargin = 10 * time.Minute
	minRenewal  = 30 * time.Second
	// maxWait bounds one sleep, so that a wall clock that jumps (NTP at
	// boot, a suspended machine) is noticed within a minute.
	maxWait = time.Minute
)

// State is where the Keeper stands; the values are stable (status.json).
type State string

// States.
const (
	// Attesting: an attestation is under way (the first one, or a renewal).
	Attesting State = "attesting"
	// Accepted: the last attestation was accepted; the certificate is in
	// the folder.
	Accepted State = "accepted"
	// Refused: the cluster refused the last attestation (Reason says why);
	// the Keeper tries again, as the technician may approve the machine or
	// release its image meanwhile.
	Refused State = "refused"
	// Error: the last attempt failed before a verdict (server down or
	// without the CA keys, network, TPM, event log); the Keeper tries again.
	Error State = "error"
)

// Reason codes of an Error state. A Refused state carries the cluster's
// api.Reason instead (image-not-released, not-approved, ...).
const (
	ReasonEventLog    = "event-log-unreadable" // the firmware's event log cannot be read
	ReasonUnreachable = "unreachable"          // no answer from the cluster API
	ReasonServer      = "server-error"         // the cluster API answered with an error (5xx, 503 without CA keys)
	ReasonBadCert     = "certificate-invalid"  // what the cluster sent does not check out
	ReasonWrite       = "write-failed"         // the certificate could not be kept in the folder
	ReasonFailed      = "attest-failed"        // anything else: the TPM, a protocol error
)

// Status is what the Keeper tells the status screen, as status.json:
//
//	{"state":"refused","reason":"image-not-released","text":"...",
//	 "last_accepted":"2026-03-02T08:30:00Z","expires":"2026-03-03T08:30:00Z",
//	 "next_attempt":"2026-03-02T08:35:00Z"}
//
// Times are RFC 3339; a field that does not apply is left out.
type Status struct {
	State State `json:"state"`
	// Reason and Text are those of the last refusal or error; empty once
	// an attestation is accepted.
	Reason string `json:"reason,omitempty"`
	Text   string `json:"text,omitempty"`
	// LastAccepted is when the cluster last accepted this machine;
	// Expires when the certificate in the folder expires.
	LastAccepted time.Time `json:"last_accepted,omitzero"`
	Expires      time.Time `json:"expires,omitzero"`
	// NextAttempt is when the Keeper attests next.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

// Read returns the status a Keeper last wrote in dir.
func Read(dir string) (Status, error) {
	var s Status
	b, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if err != nil {
		return s, fmt.Errorf("node certificate status: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("node certificate status %s: %w", filepath.Join(dir, StatusFile), err)
	}
	return s, nil
}

// Clock is the time a Keeper lives by. Tests move a fake one.
type Clock interface {
	Now() time.Time
	// After is time.After.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Backoff spaces failed attempts: Min after the first failure, doubling up
// to Max. Each delay is jittered (between half and all of it) so that a
// school of boxes that lost the server at once does not come back at once.
type Backoff struct {
	Min, Max time.Duration
}

// DefaultBackoff is the Backoff of a zero Config.
var DefaultBackoff = Backoff{Min: 5 * time.Second, Max: 5 * time.Minute}

// Delay is the wait after the n-th consecutive failure (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return jitter(min(d, b.Max))
}

func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Config is what a Keeper attests with.
type Config struct {
	// Server is a server node's cluster API ("https://10.0.0.11:9443").
	Server string
	// Root is the cluster CA certificate: the server and the certificate
	// it issues must chain to it.
	Root *x509.Certificate
	// Name is the machine id the cluster approved (oc-<MAC hex>); Serial
	// the board's serial number.
	Name, Serial string
	// EventLog is the path of the firmware's event log (measure.LogPath),
	// read again at every attempt.
	EventLog string
	TPM      transport.TPM
	// Dir keeps node.crt, node.key and status.json (DefaultDir).
	Dir string
	// Timeout bounds each API request; 0 means the client's default.
	Timeout time.Duration
	Logger  *slog.Logger
	// Clock is the system's when nil; Backoff DefaultBackoff when zero.
	Clock   Clock
	Backoff Backoff
	// OnChange, when set, is called with every new status, from the
	// Keeper's goroutine: it must not block.
	OnChange func(Status)

	// Local, on the server node that holds the cluster CA's keys, issues
	// the certificate instead of an attestation: that node is where trust
	// starts, and has nobody to attest to. Server, TPM, EventLog and Serial
	// are then not used; IPs are the addresses the certificate names.
	Local *pki.CA
	IPs   []net.IP
}

// Keeper keeps a node certificate fresh. Its methods are safe for
// concurrent use.
type Keeper struct {
	cfg  Config
	pool *x509.CertPool
	log  *slog.Logger

	mu     sync.Mutex
	status Status
	cert   *tls.Certificate
}

// New checks cfg and returns a Keeper; Run starts it.
func New(cfg Config) (*Keeper, error) {
	if cfg.Local != nil {
		if !cfg.Local.CanIssue() || cfg.Name == "" || cfg.Dir == "" {
			return nil, errors.New("nodecert: issuing locally needs the CA's keys, Name and Dir")
		}
		cfg.Root = cfg.Local.Root
	} else if cfg.Server == "" || cfg.Root == nil || cfg.Name == "" || cfg.EventLog == "" || cfg.TPM == nil || cfg.Dir == "" {
		return nil, errors.New("nodecert: Server, Root, Name, EventLog, TPM and Dir are required")
	}
	if cfg.Serial == "" && cfg.Local == nil {
		return nil, errors.New("nodecert: the board's serial number is empty: give the serial the machine was approved with")
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Backoff.Min <= 0 || cfg.Backoff.Max < cfg.Backoff.Min {
		return nil, fmt.Errorf("nodecert: backoff %v..%v: want 0 < Min <= Max", cfg.Backoff.Min, cfg.Backoff.Max)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cfg.Root)
	return &Keeper{cfg: cfg, pool: pool, log: log.With("name", cfg.Name)}, nil
}

// Status returns the Keeper's current status.
func (k *Keeper) Status() Status {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.status
}

// Certificate returns the node certificate and its key, for a TLS client
// of the cluster API; nil until the Keeper holds one.
func (k *Keeper) Certificate() *tls.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cert
}

// Run attests and re-attests until ctx ends, then returns nil. It returns
// an error only when the cluster API's address is unusable.
func (k *Keeper) Run(ctx context.Context) error {
	var client *api.Client
	if k.cfg.Local == nil {
		var err error
		client, err = api.NewClient(api.ClientConfig{Server: k.cfg.Server, CA: k.pool, Now: k.cfg.Clock.Now, Timeout: k.cfg.Timeout})
		if err != nil {
			return fmt.Errorf("nodecert: %w", err)
		}
		defer client.Close()
	}

	next := k.now()
	if cert, key, ok := k.load(); ok {
		st := Status{State: Accepted, Expires: cert.NotAfter, NextAttempt: renewal(cert, spreadOf(k.cfg.Name))}
		// status.json of an earlier run in this boot knows when the
		// certificate was earned.
		if old, err := Read(k.cfg.Dir); err == nil && old.Expires.Equal(cert.NotAfter) {
			st.LastAccepted = old.LastAccepted
		}
		k.set(st, &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert})
		k.log.Info("node certificate: using the one kept", "dir", k.cfg.Dir, "expires", cert.NotAfter, "renew_at", st.NextAttempt)
		next = st.NextAttempt
	}
	failures := 0
	for {
		if err := k.waitUntil(ctx, next); err != nil {
			return nil
		}
		st := k.Status()
		st.State, st.NextAttempt = Attesting, time.Time{}
		k.set(st, nil)

		cert, key, err := k.attest(ctx, client)
		if ctx.Err() != nil {
			return nil
		}
		now := k.now()
		st = k.Status()
		var refusal *api.Refusal
		switch {
		case err == nil:
			failures = 0
			next = renewal(cert, spreadOf(k.cfg.Name))
			if earliest := now.Add(minRenewal); next.Before(earliest) {
				next = earliest
			}
			st = Status{State: Accepted, LastAccepted: now, Expires: cert.NotAfter, NextAttempt: next}
			k.set(st, &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert})
			k.log.Info("node certificate: attestation accepted", "expires", cert.NotAfter, "renew_at", next)
			continue
		case errors.As(err, &refusal):
			// Only the technician can change a refusal: no hurry.
			next = now.Add(jitter(k.cfg.Backoff.Max))
			st.State, st.Reason, st.Text = Refused, string(refusal.Reason), refusal.Text
			k.log.Warn("node certificate: attestation refused", "reason", refusal.Reason, "text", refusal.Text, "retry_at", next)
		default:
			failures++
			next = now.Add(k.cfg.Backoff.Delay(failures))
			st.State, st.Reason, st.Text = Error, reason(err), err.Error()
			k.log.Warn("node certificate: attestation failed", "reason", st.Reason, "err", err, "retry_at", next)
		}
		st.NextAttempt = next
		k.set(st, nil)
	}
}

// attestError marks a failure of the Keeper's own steps with its code.
type attestError struct {
	code string
	err  error
}

func (e *attestError) Error() string { return e.err.Error() }
func (e *attestError) Unwrap() error { return e.err }

// reason is the code of a failed attempt for the status screen.
func reason(err error) string {
	var ae *attestError
	var se *api.StatusError
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		return ae.code
	case errors.As(err, &se):
		return ReasonServer
	case errors.As(err, &ne):
		return ReasonUnreachable
	default:
		return ReasonFailed
	}
}

// attest runs one attestation with a new key and keeps what it earns.
func (k *Keeper) attest(ctx context.Context, client *api.Client) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := pki.NewKey()
	if err != nil {
		return nil, nil, err
	}
	csr, err := pki.NewCSR(key, k.cfg.Name)
	if err != nil {
		return nil, nil, err
	}
	var cert *x509.Certificate
	if k.cfg.Local != nil {
		cert, err = k.cfg.Local.IssueCSR(csr, pki.Identity{Kind: pki.Node, Name: k.cfg.Name, IPs: k.cfg.IPs})
		if err != nil {
			return nil, nil, &attestError{ReasonBadCert, fmt.Errorf("issue this node's certificate from the cluster CA: %w", err)}
		}
	} else {
		eventLog, err := os.ReadFile(k.cfg.EventLog)
		if err != nil {
			return nil, nil, &attestError{ReasonEventLog, fmt.Errorf("read the firmware's event log: %w", err)}
		}
		k.log.Debug("node certificate: attesting", "via", k.cfg.Server, "serial", k.cfg.Serial)
		res, err := attest.New(k.cfg.TPM, attest.Options{Logger: k.log}).Attest(ctx,
			api.Attestation{Client: client, CSR: csr}, k.cfg.Name, k.cfg.Serial, eventLog)
		if err != nil {
			return nil, nil, fmt.Errorf("attest at %s: %w", k.cfg.Server, err)
		}
		if cert, err = x509.ParseCertificate(res.NodeCertificate); err != nil {
			return nil, nil, &attestError{ReasonBadCert, fmt.Errorf("the cluster accepted this machine but sent no usable node certificate: %w", err)}
		}
	}
	if err := k.check(cert, key); err != nil {
		return nil, nil, &attestError{ReasonBadCert, err}
	}
	if err := k.write(cert, key); err != nil {
		return nil, nil, &attestError{ReasonWrite, err}
	}
	return cert, key, nil
}

// check is what a node certificate must be to be used: this cluster's,
// valid now, naming this machine, for key.
func (k *Keeper) check(cert *x509.Certificate, key crypto.Signer) error {
	if err := pki.Verify(k.pool, []*x509.Certificate{cert}, pki.Node, k.now()); err != nil {
		return err
	}
	if cn := cert.Subject.CommonName; cn != k.cfg.Name {
		return fmt.Errorf("the node certificate names %q, not this machine (%s): is this machine approved under another id?", cn, k.cfg.Name)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("the node certificate is not for this machine's key")
	}
	return nil
}

// write keeps the pair, key first: node.crt, written last, is the one a
// reader takes as the sign that the pair is complete.
func (k *Keeper) write(cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	pemKey, err := pki.EncodeKey(key)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(k.cfg.Dir, KeyFile), pemKey, 0o600); err != nil {
		return fmt.Errorf("keep the node key: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(k.cfg.Dir, CertFile), pki.EncodeCerts(cert), 0o644); err != nil {
		return fmt.Errorf("keep the node certificate: %w", err)
	}
	return nil
}

// load returns the pair kept in the folder when it is still good for this
// machine and this cluster.
func (k *Keeper) load() (*x509.Certificate, *ecdsa.PrivateKey, bool) {
	certs, err := pki.ReadCerts(filepath.Join(k.cfg.Dir, CertFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, false
	}
	if err == nil {
		var signer crypto.Signer
		if signer, err = pki.ReadKey(filepath.Join(k.cfg.Dir, KeyFile)); err == nil {
			if err = k.check(certs[0], signer); err == nil {
				if key, ok := signer.(*ecdsa.PrivateKey); ok {
					return certs[0], key, true
				}
				err = errors.New("the node key is not an ECDSA key")
			}
		}
	}
	k.log.Warn("node certificate: not using the one kept; attesting for a new one", "dir", k.cfg.Dir, "err", err)
	return nil, nil, false
}

// renewal is when to renew cert: at 2/3 of its lifetime, less up to a
// twelfth of it by spread (0 to 1), at the latest renewMargin before it
// expires.
func renewal(cert *x509.Certificate, spread float64) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	at := cert.NotBefore.Add(life*2/3 - time.Duration(spread*float64(life/12)))
	if latest := cert.NotAfter.Add(-renewMargin); at.After(latest) {
		return latest
	}
	return at
}

// set records a new status (and certificate, when not nil), writes
// status.json and tells OnChange.
// spreadOf places a machine in the renewal window, the same for a machine
// every time and spread evenly over a fleet: a thousand terminals that
// booted together at 7:50 would otherwise all attest again together 16 h
// later, and only one server node holds the CA key (about two hours apart
// over a 24 h certificate).
func spreadOf(name string) float64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return float64(h.Sum64()%1000) / 1000
}

func (k *Keeper) set(st Status, cert *tls.Certificate) {
	k.mu.Lock()
	k.status = st
	if cert != nil {
		k.cert = cert
	}
	k.mu.Unlock()
	if b, err := json.Marshal(st); err != nil {
		k.log.Warn("node certificate: encode status", "err", err)
	} else if err := atomicfile.WriteFile(filepath.Join(k.cfg.Dir, StatusFile), append(b, '\n'), 0o644); err != nil {
		k.log.Warn("node certificate: the status screen will not see this status", "err", err)
	}
	if k.cfg.OnChange != nil {
		k.cfg.OnChange(st)
	}
}

func (k *Keeper) now() time.Time { return k.cfg.Clock.Now() }

// waitUntil returns when the clock reaches t, or ctx's error when it ends
// first.
func (k *Keeper) waitUntil(ctx context.Context, t time.Time) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := t.Sub(k.now())
		if d <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-k.cfg.Clock.After(min(d, maxWait)):
		}
	}
}
