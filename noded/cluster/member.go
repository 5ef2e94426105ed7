// Package cluster runs a server node's member of the cluster store: an
// embedded etcd with mutual TLS from the cluster CA, that starts a cluster of
// one, joins an existing cluster as a learner and is promoted when caught up,
// removes members and reports their state; plus a typed record store on top.
//
// Only server nodes are members. Terminals never talk to etcd: etcd trusts
// the cluster CA's etcd intermediate only, which signs member certificates
// alone (see package pki).
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/onecloud-edu/onecloud/noded/pki"
)

// Default ports, etcd's own.
const (
	DefaultPeerPort   = 2380
	DefaultClientPort = 2379
	// DefaultStartTimeout bounds the wait for a member to be ready. Generous:
	// a loaded node replaying a large log is slow, and a timeout here only
	// turns a slow start into a failed one.
	DefaultStartTimeout = 60 * time.Second
)

// TLSFiles names the PEM files a member uses for everything etcd: its
// certificate (pki.Peer, followed by the etcd CA) and key, and the etcd CA
// it trusts.
type TLSFiles struct {
	CA, Cert, Key string
}

// Config describes this node's member.
type Config struct {
	Name       string // member name: the node name
	DataDir    string // etcd's data; owned by etcd, 0700
	PeerAddr   string // host:port the other members reach this one at
	ClientAddr string // host:port etcd clients (noded itself) reach this member at
	TLS        TLSFiles
	// StartTimeout bounds the wait for readiness; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	Log          *slog.Logger

	// Tests shorten raft's timing and skip fsync; production keeps etcd's
	// defaults (100 ms heartbeat, 1 s election) and full durability.
	tickMs, electionMs uint
	unsafeNoFsync      bool
}

// StateConfig is the Config of a node whose state folder is state, reached
// at ip on the default ports: data in state/etcd, certificates in state/pki.
func StateConfig(state, name string, ip net.IP, log *slog.Logger) Config {
	dir := pki.Dir(state)
	host := ip.String()
	return Config{
		Name:       name,
		DataDir:    filepath.Join(state, "etcd"),
		PeerAddr:   net.JoinHostPort(host, strconv.Itoa(DefaultPeerPort)),
		ClientAddr: net.JoinHostPort(host, strconv.Itoa(DefaultClientPort)),
		TLS: TLSFiles{
			CA:   filepath.Join(dir, pki.EtcdCACertFile),
			Cert: filepath.Join(dir, pki.EtcdCertFile),
			Key:  filepath.Join(dir, pki.EtcdKeyFile),
		},
		Log: log,
	}
}

// PeerURL is the URL the other members reach this one at.
func (c Config) PeerURL() string { return "https://" + c.PeerAddr }

// ClientURL is the URL etcd clients reach this member at.
func (c Config) ClientURL() string { return "https://" + c.ClientAddr }

func (c Config) check() error {
	if c.Name == "" {
		return errors.New("cluster member needs a name (the node name)")
	}
	if c.DataDir == "" {
		return errors.New("cluster member needs a data folder")
	}
	for _, a := range []string{c.PeerAddr, c.ClientAddr} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("member address %q is not host:port: %w", a, err)
		}
	}
	for _, f := range []string{c.TLS.CA, c.TLS.Cert, c.TLS.Key} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("etcd TLS file missing (issue this node's etcd certificate first): %w", err)
		}
	}
	return nil
}

func (c Config) logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Member is a running etcd member embedded in this process.
type Member struct {
	cfg    Config
	log    *slog.Logger
	etcd   *embed.Etcd
	client *clientv3.Client
}

// Start starts the member. With an empty data folder it founds a new
// cluster of one; with an existing one it rejoins the cluster recorded there
// (whatever its size). Use Join to enter an existing cluster for the first
// time.
func Start(ctx context.Context, cfg Config) (*Member, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ec, err := cfg.embedConfig()
	if err != nil {
		return nil, err
	}
	if !initialised(cfg.DataDir) {
		ec.ClusterState = embed.ClusterStateFlagNew
		ec.InitialCluster = cfg.Name + "=" + cfg.PeerURL()
		cfg.logger().Info("founding a new cluster of one", "member", cfg.Name, "peer", cfg.PeerURL())
	}
	return start(ctx, cfg, ec)
}

// initialised reports whether etcd has written its log in dir, i.e. this
// node has been a member before.
func initialised(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "member", "wal"))
	return err == nil
}

func (c Config) embedConfig() (*embed.Config, error) {
	peer, err := url.Parse(c.PeerURL())
	if err != nil {
		return nil, fmt.Errorf("peer address %q: %w", c.PeerAddr, err)
	}
	client, err := url.Parse(c.ClientURL())
	if err != nil {
		return nil, fmt.Errorf("client address %q: %w", c.ClientAddr, err)
	}
	ec := embed.NewConfig()
	ec.Name = c.Name
	ec.Dir = c.DataDir
	ec.ListenPeerUrls = []url.URL{*peer}
	ec.AdvertisePeerUrls = []url.URL{*peer}
	ec.ListenClientUrls = []url.URL{*client}
	ec.AdvertiseClientUrls = []url.URL{*client}
	// Both ports demand a certificate from the etcd CA. etcd rereads the
	// files at every handshake, so renewed certificates apply without a
	// restart.
	tlsInfo := transport.TLSInfo{
		CertFile:       c.TLS.Cert,
		KeyFile:        c.TLS.Key,
		TrustedCAFile:  c.TLS.CA,
		ClientCertAuth: true,
	}
	ec.PeerTLSInfo = tlsInfo
	ec.ClientTLSInfo = tlsInfo
	ec.TlsMinVersion = "TLS1.3"
	ec.InitialClusterToken = "onecloud"
	ec.EnableGRPCGateway = false // nothing here speaks etcd's JSON gateway
	// History is kept an hour for watches and CAS, then compacted so that the
	// store does not grow forever.
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = "1h"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapToSlog(c.logger().With("component", "etcd", "member", c.Name)))
	if c.tickMs != 0 {
		ec.TickMs, ec.ElectionMs = c.tickMs, c.electionMs
	}
	ec.UnsafeNoFsync = c.unsafeNoFsync
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create etcd data folder: %w", err)
	}
	return ec, nil
}

func start(ctx context.Context, cfg Config, ec *embed.Config) (*Member, error) {
	log := cfg.logger()
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start etcd member %s (peer %s, client %s): %w", cfg.Name, cfg.PeerAddr, cfg.ClientAddr, err)
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		abort(e)
		return nil, fmt.Errorf("etcd member %s failed while starting: %w", cfg.Name, err)
	case <-timer.C:
		abort(e)
		return nil, fmt.Errorf("etcd member %s was not ready within %v: a member is ready only when a majority of the cluster is reachable; check that the other server nodes run and reach %s, or raise the start timeout on a loaded node", cfg.Name, timeout, cfg.PeerAddr)
	case <-ctx.Done():
		abort(e)
		return nil, fmt.Errorf("etcd member %s: start abandoned: %w", cfg.Name, ctx.Err())
	}
	client, err := Dial([]string{cfg.ClientURL()}, cfg.TLS, log)
	if err != nil {
		e.Close()
		return nil, err
	}
	log.Info("cluster member ready", "member", cfg.Name, "id", fmt.Sprintf("%x", uint64(e.Server.MemberID())), "peer", cfg.PeerURL(), "client", cfg.ClientURL())
	return &Member{cfg: cfg, log: log, etcd: e, client: client}, nil
}

// abort stops a member that never became ready. The server must be stopped
// first: embed's Close waits for the client servers, which start only once
// the member is ready or stopping, so Close alone would hang.
func abort(e *embed.Etcd) {
	e.Server.HardStop()
	e.Close()
}

// Dial opens an etcd client to endpoints (https URLs) with a member's
// certificate. The files are reread at every handshake, like etcd does.
func Dial(endpoints []string, files TLSFiles, log *slog.Logger) (*clientv3.Client, error) {
	caPEM, err := os.ReadFile(files.CA)
	if err != nil {
		return nil, fmt.Errorf("read etcd CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate", files.CA)
	}
	if _, err := tls.LoadX509KeyPair(files.Cert, files.Key); err != nil {
		return nil, fmt.Errorf("load etcd client certificate: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		TLS: &tls.Config{
			RootCAs:    pool,
			MinVersion: tls.VersionTLS13,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				c, err := tls.LoadX509KeyPair(files.Cert, files.Key)
				return &c, err
			},
		},
		Logger: zapToSlog(log.With("component", "etcd-client")),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	return c, nil
}

// Client is an etcd client connected to this member; etcd forwards writes
// to the leader.
func (m *Member) Client() *clientv3.Client { return m.client }

// ID is this member's etcd ID.
func (m *Member) ID() uint64 { return uint64(m.etcd.Server.MemberID()) }

// Name is this member's name.
func (m *Member) Name() string { return m.cfg.Name }

// Done is closed when the member stops, on Close or on a fatal etcd error
// (for example when it was removed from the cluster).
func (m *Member) Done() <-chan struct{} { return m.etcd.Server.StopNotify() }

// Close stops the member and its client.
func (m *Member) Close() {
	_ = m.client.Close()
	m.etcd.Close()
	m.log.Info("cluster member stopped", "member", m.cfg.Name)
}

// isEtcdErr compares an error from the etcd client with an rpctypes
// error, whether it arrives typed or as a gRPC status.
func isEtcdErr(err, target error) bool {
	return err != nil && (errors.Is(err, target) || rpctypes.ErrorDesc(err) == rpctypes.ErrorDesc(target))
}
