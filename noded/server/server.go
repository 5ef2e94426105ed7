// Package server is the cluster API of noded's server mode: HTTPS with
// mutual TLS from the cluster CA, served by every server node, over state
// kept in the cluster store (embedded etcd, noded/cluster).
//
// Every route needs a client certificate the TLS layer verified against the
// cluster CA: an administrator's (O=onecloud:admins) for the admin routes, a
// node's (O=onecloud:nodes) for the node routes. The two attestation routes
// (api.ChallengePath, api.ProofPath) are the exception, since a box calls
// them to get its first certificate; they give nothing before approval: an
// unapproved box learns only that it is refused and why.
//
// What lives where under /onecloud/v1/ (noded/cluster's typed store):
//
//	machines/ID          the enrolment inbox (api.Machine), with the outcome
//	                     of each machine's last attestation
//	serials/sn-HASH      approved machines by serial, for the verifier
//	nodes/NAME           nodes that attested (api.Node)
//	attestations/sn-HASH what the verifier remembers of a serial (EK pin,
//	                     TPM counters), written with compare-and-swap
//	releases/DIGEST      released image digests (api.Release)
//	audit/TIME-RAND      refused attestations (AuditEntry)
//
// Attestation challenge sessions live in this server's memory (the
// verifier's and the certificate requests waiting for them): a box must
// send its proof to the server node that challenged it, or start again.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/cluster"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/verify"
)

// Members is the etcd membership this server node can report and change;
// *cluster.Member implements it.
type Members interface {
	Status(ctx context.Context) (cluster.Status, error)
	Remove(ctx context.Context, name string) error
}

// Config is what a Server needs. Addr, CA, Certificate and KV are
// required.
type Config struct {
	// Addr is where to listen: the node's address and api.DefaultPort.
	Addr string
	// CA is the cluster CA with its keys: it issues node certificates and
	// its root is what client certificates must chain to.
	CA *pki.CA
	// Certificate is this node's serving certificate (pki.NodeCertFile and
	// pki.NodeKeyFile): a node certificate naming the address clients use.
	Certificate tls.Certificate
	// CurrentCertificate, when set, is asked at every TLS handshake for the
	// serving certificate, so that a renewed one (noded/nodecert) is used
	// at once; while it returns nil, Certificate is served.
	CurrentCertificate func() *tls.Certificate
	// KV is the cluster store: the client of this node's etcd member.
	KV clientv3.KV
	// Members is this node's etcd member; nil on a node that is not one,
	// whose cluster status then answers 503.
	Members Members
	// ManufacturerRoots and ManufacturerIntermediates are the TPM vendors'
	// CAs that EK certificates must chain to (see verify.Config).
	ManufacturerRoots         *x509.CertPool
	ManufacturerIntermediates *x509.CertPool
	// EventLog replays event logs; nil means verify.MeasuredLog.
	EventLog verify.EventLog
	// AllowNoImage accepts a box that measured no image (verify.Config).
	AllowNoImage bool
	// Rules approve new machines at first sight in the inbox (Seen), as
	// bootstrapd's file inbox does: the first matching rule wins. A rule
	// decides the role only; the machine still has to attest.
	Rules []machines.Rule
	// NodeCertTTL is the lifetime of node certificates; 0 means
	// pki.DefaultNodeTTL.
	NodeCertTTL time.Duration
	// ChallengeTTL is how long a box has to answer a challenge; 0 means one
	// minute.
	ChallengeTTL time.Duration
	// Now is the clock of everything (certificate checks included); nil
	// means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Server serves the cluster API.
type Server struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	state    *state
	verifier *verify.Verifier
	ln       net.Listener
	srv      *http.Server

	// sessions are the attestations between challenge and proof: what the
	// verifier's session does not keep (the certificate request, the
	// approved machine), by session id.
	mu       sync.Mutex
	sessions map[string]*pending

	refused   sync.Map     // api.Reason -> *atomic.Int64
	malformed atomic.Int64 // bodies that could not be read

	closeOnce sync.Once
}

// New checks cfg, prepares the verifier and binds cfg.Addr, so that a port
// in use shows now. Run serves; Close releases the port of a server that
// never ran.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Addr == "":
		return nil, errors.New("cluster API: no address to listen on")
	case cfg.CA == nil || cfg.CA.Root == nil:
		return nil, errors.New("cluster API: no cluster CA: run `noded init` on the first server node")
	case len(cfg.Certificate.Certificate) == 0:
		return nil, fmt.Errorf("cluster API: no serving certificate (%s, %s)", pki.NodeCertFile, pki.NodeKeyFile)
	case cfg.KV == nil:
		return nil, errors.New("cluster API: no cluster store")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if cfg.NodeCertTTL == 0 {
		cfg.NodeCertTTL = pki.DefaultNodeTTL
	}
	st, err := newState(cfg.KV)
	if err != nil {
		return nil, err
	}
	v, err := verify.New(verify.Config{
		ManufacturerRoots:         cfg.ManufacturerRoots,
		ManufacturerIntermediates: cfg.ManufacturerIntermediates,
		Machines:                  st,
		Store:                     attestationStore{st: st.attestations, revs: &revisions{m: map[string]int64{}}},
		Released:                  releasedStore{st: st.releases},
		Log:                       cfg.EventLog,
		AllowNoImage:              cfg.AllowNoImage,
		ChallengeTTL:              cfg.ChallengeTTL,
		Now:                       now,
		Logger:                    log,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("cluster API: listen on %s (is another noded running?): %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, log: log, now: now, state: st, verifier: v, ln: ln, sessions: map[string]*pending{}}
	s.srv = &http.Server{
		Handler: s.Handler(),
		TLSConfig: &tls.Config{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				if cfg.CurrentCertificate != nil {
					if c := cfg.CurrentCertificate(); c != nil {
						return c, nil
					}
				}
				return &cfg.Certificate, nil
			},
			// A certificate is optional at the TLS layer because the
			// attestation routes take boxes without one; one that is
			// given must chain to the cluster CA, and each route then
			// demands the kind it needs.
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  cfg.CA.Roots(pki.Node),
			MinVersion: tls.VersionTLS13,
			Time:       now,
		},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		// Handshake failures (no or foreign certificate) name the
		// client's address.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close releases the port of a server whose Run was never called.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.ln.Close() })
	return err
}

// Run serves until ctx ends, then lets requests in flight finish (five
// seconds at most).
func (s *Server) Run(ctx context.Context) error {
	s.closeOnce.Do(func() {}) // from now on the http.Server owns the listener
	errc := make(chan error, 1)
	go func() { errc <- s.srv.ServeTLS(s.ln, "", "") }()
	s.log.Info("cluster API serving", "addr", s.ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("cluster API on %s stopped: %w", s.ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	<-errc
	s.log.Info("cluster API stopped", "addr", s.ln.Addr().String())
	if err != nil {
		return fmt.Errorf("cluster API: stop: %w", err)
	}
	return nil
}

// Stats counts refused attestations by reason, and request bodies that
// could not be read.
type Stats struct {
	Refused   map[api.Reason]int64 `json:"refused"`
	Malformed int64                `json:"malformed"`
}

// Stats returns the counters since New.
func (s *Server) Stats() Stats {
	st := Stats{Refused: map[api.Reason]int64{}, Malformed: s.malformed.Load()}
	s.refused.Range(func(k, v any) bool {
		st.Refused[k.(api.Reason)] = v.(*atomic.Int64).Load()
		return true
	})
	return st
}

func (s *Server) countRefusal(r api.Reason) {
	c, _ := s.refused.LoadOrStore(r, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

// Handler is the cluster API's routes; a test may serve it itself.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(api.NodesRoute, s.admin(s.listNodes))
	mux.HandleFunc(api.RemoveNodeRoute, s.admin(s.removeNode))
	mux.HandleFunc(api.SelfRoute, s.node(s.self))
	mux.HandleFunc(api.RoleRequestRoute, s.node(s.requestRole))
	mux.HandleFunc(api.MachinesRoute, s.admin(s.listMachines))
	mux.HandleFunc(api.MachineRoute, s.admin(s.showMachine))
	mux.HandleFunc(api.ApproveRoute, s.admin(s.approve))
	mux.HandleFunc(api.DeclareRoute, s.admin(s.declare))
	mux.HandleFunc(api.RejectRoute, s.admin(s.reject))
	mux.HandleFunc(api.ClusterStatusRoute, s.admin(s.clusterStatus))
	mux.HandleFunc(api.ReleasesRoute, s.admin(s.listReleases))
	mux.HandleFunc(api.AddReleaseRoute, s.admin(s.addRelease))
	mux.HandleFunc(api.ConsoleRoute, s.admin(s.showConsole))
	mux.HandleFunc(api.SetConsoleRoute, s.admin(s.setConsole))
	mux.HandleFunc(api.ChallengeRoute, s.challenge)
	mux.HandleFunc(api.ProofRoute, s.proof)
	// Anything else still needs a certificate, so that probing for routes
	// without one learns nothing.
	mux.HandleFunc("/", s.admin(func(w http.ResponseWriter, r *http.Request, _ string) {
		writeError(w, &httpError{http.StatusNotFound, fmt.Sprintf("no such request: %s %s", r.Method, r.URL.Path)})
	}))
	return mux
}

// caller is who presented the request's certificate: its common name.
type authedHandler func(w http.ResponseWriter, r *http.Request, caller string)

// admin admits requests with an administrator's certificate.
func (s *Server) admin(h authedHandler) http.HandlerFunc {
	return s.authorize(pki.Admin, h)
}

// node admits requests with a node's certificate.
func (s *Server) node(h authedHandler) http.HandlerFunc {
	return s.authorize(pki.Node, h)
}

func (s *Server) authorize(kind pki.Kind, h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			s.log.Info("cluster API: request without a client certificate refused", "addr", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			writeError(w, &httpError{http.StatusUnauthorized, fmt.Sprintf("%s %s needs a %s certificate from the cluster CA; none was presented", r.Method, r.URL.Path, kind)})
			return
		}
		// The TLS layer checked the chain; this checks the kind
		// (organisation, usages) and the expiry at our clock.
		if err := pki.Verify(s.cfg.CA.Roots(kind), r.TLS.PeerCertificates, kind, s.now()); err != nil {
			s.log.Warn("cluster API: certificate refused", "addr", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "err", err)
			writeError(w, &httpError{http.StatusForbidden, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err)})
			return
		}
		h(w, r, r.TLS.PeerCertificates[0].Subject.CommonName)
	}
}

// httpError is an error with the status it answers with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, a...)}
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	writeJSON(w, status, api.ErrorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// reply writes v, or err with its status.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			s.log.Error("cluster API: request failed", "addr", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// readJSON decodes a request body of at most max bytes into v.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.malformed.Add(1)
		return badRequest("request body of %s %s: %v", r.Method, r.URL.Path, err)
	}
	return nil
}
