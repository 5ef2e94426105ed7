// Package bootstrap is the zero-touch boot server: DHCP, TFTP and HTTP for
// boxes that boot from the network, and the enrolment inbox that decides
// what each box becomes. bootstrapd runs it standalone; noded's server mode
// will embed it.
//
// Each protocol is listener -> handler -> backend (docs/bootstrap.md): the
// packages dhcpd, tftp and httpboot hold the listeners and handlers, and the
// per-machine decisions come from a Backend. Server only wires them up.
package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/admission"
	"github.com/onecloud-edu/onecloud/bootstrap/dhcpd"
	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/bootstrap/httpboot"
	"github.com/onecloud-edu/onecloud/bootstrap/images"
	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"github.com/onecloud-edu/onecloud/bootstrap/tftp"
)

// DefaultSocket is where the admin API listens for `bootstrapd machines`.
const DefaultSocket = machines.DefaultSocket

// ReadyLine is logged once every listener is bound: tests and supervisors
// wait for it.
const ReadyLine = "bootstrapd: serving"

// Backend makes the per-machine decisions: it records every box it is told
// about (the enrolment inbox) and says whether and in which role it boots.
// machines.Store is the file backend for standalone use; the cluster backend
// follows with the cluster issue.
type Backend interface {
	Seen(ctx context.Context, s machines.Sighting, now time.Time) (machines.Machine, error)
}

// StatsPath is the admin API's route for the counters (GET, JSON Stats).
const StatsPath = "/v1/stats"

// Stats are the server's counters since it started: what `bootstrapd stats`
// shows. Packets from clients that are not booting ("other"), malformed
// packets and refused requests are all counted here.
type Stats struct {
	DHCP          *dhcpd.Stats    `json:"dhcp,omitempty"` // nil when DHCP is off
	TFTP          tftp.Stats      `json:"tftp"`
	HTTP          httpboot.Stats  `json:"http"`
	Admission     admission.Stats `json:"admission"` // HTTP downloads
	TFTPAdmission admission.Stats `json:"tftp_admission"`
}

// Paths are where the server keeps its state.
type Paths struct {
	// State holds leases, the machine inbox and published images.
	State string
	// Socket is the admin API's unix socket (mode 0600).
	Socket string
}

// ImagesDir is the published images' folder inside a state folder.
func ImagesDir(state string) string { return filepath.Join(state, "images") }

// Server is a configured boot server; Run serves until its context ends.
type Server struct {
	cfg   Config
	paths Paths
	log   *slog.Logger
	// backend is the inbox: store (the file backend), or the cluster's,
	// in which case cluster is what approved boxes are told.
	backend Backend
	store   *machines.Store
	cluster *enrolapi.Cluster
	images  *images.Store
	// limiter caps HTTP downloads, tftpLimiter TFTP transfers (see AdmissionConfig).
	limiter, tftpLimiter *admission.Limiter
}

// New opens the state folder (creating it) and checks that everything the
// server will need is there, so that a mistake shows before any box asks.
// The inbox is the file backend in the state folder (machines.Store).
func New(cfg Config, paths Paths, log *slog.Logger) (*Server, error) {
	s, err := newServer(cfg, paths, log)
	if err != nil {
		return nil, err
	}
	if s.store, err = machines.Open(filepath.Join(paths.State, "machines.json"), cfg.Rules, cfg.Machines, log); err != nil {
		return nil, err
	}
	s.backend = s.store
	return s, nil
}

// OnCluster is the inbox of a bootstrap server that runs inside a server
// node (noded server -bootstrap): the cluster store.
type OnCluster struct {
	// Backend is the cluster's inbox (noded/server.Server).
	Backend Backend
	// Cluster is what an approved box is told to attest to.
	Cluster enrolapi.Cluster
}

// NewOnCluster is New with the inbox in the cluster store: declarations
// are the cluster's (occtl declare), the configuration's rules are the
// backend's to apply (noded/server Config.Rules), and the admin socket
// serves only the counters (`occtl machines` shows the inbox).
func NewOnCluster(cfg Config, paths Paths, c OnCluster, log *slog.Logger) (*Server, error) {
	if len(cfg.Machines) > 0 {
		return nil, errors.New("the bootstrap configuration declares machines, but this server keeps its inbox in the cluster: declare them with `occtl declare MAC -role R` and remove \"machines\" from the file")
	}
	if c.Backend == nil || c.Cluster.API == "" || c.Cluster.CA == "" {
		return nil, errors.New("bootstrap on the cluster: the backend, the cluster API and its CA are required")
	}
	s, err := newServer(cfg, paths, log)
	if err != nil {
		return nil, err
	}
	s.backend, s.cluster = c.Backend, &c.Cluster
	return s, nil
}

func newServer(cfg Config, paths Paths, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(paths.State, 0o700); err != nil {
		return nil, fmt.Errorf("state folder: %w", err)
	}
	for _, f := range []string{"undionly.kpxe", "snponly.efi", "ipxe.efi"} {
		if _, err := os.Stat(filepath.Join(cfg.IPXEDir, f)); err != nil {
			return nil, fmt.Errorf("iPXE binary %s missing in %s: install Debian's ipxe package or set ipxe_dir (%w)", f, cfg.IPXEDir, err)
		}
	}
	imgs, err := images.Open(ImagesDir(paths.State))
	if err != nil {
		return nil, err
	}
	a := cfg.Admission
	return &Server{
		cfg: cfg, paths: paths, log: log, images: imgs,
		limiter:     admission.New(a.MaxTransfers, a.Queue, time.Duration(a.MaxWait)),
		tftpLimiter: admission.New(a.MaxTFTP, a.Queue, time.Duration(a.MaxWait)),
	}, nil
}

// Machines is the server's file backend (for the admin API and tests); nil
// on the cluster.
func (s *Server) Machines() *machines.Store { return s.store }

// Run binds every listener, logs ReadyLine, and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.images.Close()
	base := fmt.Sprintf("http://%s", netip.AddrPortFrom(s.cfg.Address, uint16(s.cfg.HTTPPort)))

	// Bind everything first: a port in use is an error at start, not later.
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	var leases *dhcpd.Leases
	var dhcp *dhcpd.Server
	var dhcpL *dhcpd.Listener
	if s.cfg.DHCP == "on" {
		var err error
		if s.cfg.Mode == "full" {
			leases, err = dhcpd.OpenLeases(filepath.Join(s.paths.State, "leases.journal"), s.log)
			if err != nil {
				return err
			}
			closers = append(closers, func() { leases.Close() })
		}
		dhcp, err = dhcpd.NewServer(s.dhcpConfig(base), leases)
		if err != nil {
			return err
		}
		if dhcpL, err = dhcp.Listen(ctx); err != nil {
			return fmt.Errorf("DHCP on %s: %w (is another DHCP server running on this machine?)", s.cfg.Iface, err)
		}
	}
	tftpConn, err := net.ListenPacket("udp4", netip.AddrPortFrom(s.cfg.Address, 69).String())
	if err != nil {
		return fmt.Errorf("TFTP on %s:69: %w", s.cfg.Address, err)
	}
	closers = append(closers, func() { tftpConn.Close() })
	tftpSrv, err := tftp.New(tftp.Config{
		Root: s.cfg.IPXEDir, Limiter: s.tftpLimiter, MACOf: macOf(leases), Log: s.log.With("service", "tftp"),
	})
	if err != nil {
		return err
	}
	httpLn, err := net.Listen("tcp4", netip.AddrPortFrom(s.cfg.Address, uint16(s.cfg.HTTPPort)).String())
	if err != nil {
		return fmt.Errorf("HTTP on %s:%d: %w", s.cfg.Address, s.cfg.HTTPPort, err)
	}
	boot, err := httpboot.New(httpboot.Config{
		BaseURL: base, Images: s.images, BinDir: s.cfg.IPXEDir, KernelArgs: s.cfg.KernelArgs,
		Machines: backendAdapter{s.backend, s.cluster}, Limiter: s.limiter, Log: s.log.With("service", "http"),
	})
	if err != nil {
		httpLn.Close()
		return err
	}
	defer boot.Close()
	adminLn, err := machines.Listen(s.paths.Socket)
	if err != nil {
		httpLn.Close()
		return fmt.Errorf("admin socket: %w", err)
	}

	web := &http.Server{Handler: boot, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	adminMux := http.NewServeMux()
	if s.store != nil {
		inbox := machines.AdminHandler(s.store)
		adminMux.Handle("/v1/machines", inbox)
		adminMux.Handle("/v1/machines/", inbox)
	} else {
		adminMux.HandleFunc("/v1/machines", inCluster)
		adminMux.HandleFunc("/v1/machines/", inCluster)
	}
	adminMux.HandleFunc("GET "+StatsPath, func(w http.ResponseWriter, _ *http.Request) {
		st := Stats{TFTP: tftpSrv.Stats(), HTTP: boot.Stats(), Admission: s.limiter.Stats(), TFTPAdmission: s.tftpLimiter.Stats()}
		if dhcp != nil {
			d := dhcp.Stats()
			st.DHCP = &d
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	admin := &http.Server{Handler: adminMux, ReadHeaderTimeout: 10 * time.Second}

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	serve := func(name string, fn func() error) {
		wg.Go(func() {
			if err := fn(); err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	if dhcp != nil {
		serve("DHCP", func() error { return dhcp.ServeOn(ctx, dhcpL) })
	}
	serve("TFTP", func() error { return tftpSrv.Serve(ctx, tftpConn) })
	serve("HTTP", func() error { return web.Serve(httpLn) })
	serve("admin", func() error { return admin.Serve(adminLn) })

	cur, ok := s.images.Current()
	if !ok {
		s.log.Warn("no image published yet: boxes wait until one is (bootstrapd publish)")
	}
	s.log.Info(ReadyLine, "mode", s.cfg.Mode, "dhcp", s.cfg.DHCP, "iface", s.cfg.Iface, "http", base,
		"tftp", s.cfg.Address.String()+":69", "image", cur, "admin", s.paths.Socket)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	shut, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	web.Shutdown(shut)
	admin.Shutdown(shut)
	wg.Wait()
	if s.store != nil {
		if err := s.store.Flush(shut); err != nil && runErr == nil {
			runErr = err
		}
	}
	s.log.Info("bootstrapd: stopped")
	return runErr
}

// macOf tells the MAC that holds an address, from our own leases (full
// mode), so that log lines about TFTP clients name the box.
func macOf(leases *dhcpd.Leases) func(netip.Addr) (string, bool) {
	if leases == nil {
		return nil
	}
	return func(a netip.Addr) (string, bool) {
		l, ok := leases.Get(a)
		if !ok || l.MAC == "" {
			return "", false
		}
		return l.MAC, true
	}
}

// dhcpConfig turns the file's settings into the DHCP server's.
func (s *Server) dhcpConfig(base string) dhcpd.Config {
	c := dhcpd.Config{
		Mode: dhcpd.Mode(s.cfg.Mode), Iface: s.cfg.Iface, ServerIP: s.cfg.Address,
		HTTPBase: base, ClusterAddr: s.cfg.ClusterAddr, Log: s.log.With("service", "dhcp"),
	}
	for _, p := range s.cfg.Pools {
		c.Pools = append(c.Pools, dhcpd.Pool{
			Subnet: p.Subnet, First: p.First, Last: p.Last, Router: p.Router, DNS: p.DNS,
			LeaseTime: time.Duration(p.Lease),
		})
	}
	for _, r := range s.cfg.Reservations {
		c.Reservations = append(c.Reservations, dhcpd.Reservation{MAC: r.MAC, Addr: r.Addr, Hostname: r.Hostname})
	}
	return c
}

// consoleSettings is a backend that also keeps the node console's
// settings (the cluster's does), for approved boxes.
type consoleSettings interface {
	Console(ctx context.Context) (*enrolapi.Console, error)
}

// inCluster answers `bootstrapd machines` when the inbox is the cluster's.
func inCluster(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "this bootstrap server keeps its inbox in the cluster: use `occtl machines`", http.StatusNotFound)
}

// backendAdapter answers httpboot's questions from a Backend; cluster,
// when set, is added to the answers of approved boxes.
type backendAdapter struct {
	b       Backend
	cluster *enrolapi.Cluster
}

func (a backendAdapter) Boot(ctx context.Context, r httpboot.BootRequest) (httpboot.BootDecision, error) {
	m, err := a.b.Seen(ctx, machines.Sighting{
		MAC: r.MAC, Serial: r.Serial, Vendor: r.Manufacturer, Product: r.Product, UUID: r.UUID,
		Addr: r.Addr, Source: machines.SourceIPXE,
	}, time.Now())
	if err != nil {
		return httpboot.BootDecision{}, err
	}
	return httpboot.BootDecision{ID: m.ID, State: m.State, Role: m.Role, School: m.School, Message: m.Reason}, nil
}

func (a backendAdapter) Enrol(ctx context.Context, r enrolapi.Request, from netip.Addr) (enrolapi.Response, error) {
	m, err := a.b.Seen(ctx, machines.Sighting{
		MAC: r.BootMAC, Addr: from, Source: machines.SourceFirmware, Inventory: r.Inventory,
	}, time.Now())
	if err != nil {
		return enrolapi.Response{}, err
	}
	resp := machines.Respond(m, r.Role)
	if a.cluster != nil {
		switch resp.State {
		case enrolapi.Approved:
			c := *a.cluster
			resp.Cluster = &c
			if cs, ok := a.b.(consoleSettings); ok {
				if resp.Console, err = cs.Console(ctx); err != nil {
					return enrolapi.Response{}, err
				}
			}
		case enrolapi.Pending:
			resp.Message = fmt.Sprintf("This box (%s) waits for approval. Call your IT technician: they approve it with `occtl approve %s -role ROLE`.", m.ID, m.ID)
		}
	}
	return resp, nil
}
