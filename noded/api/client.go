package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ClientConfig says how to reach the cluster API.
type ClientConfig struct {
	// Server is the base URL of a server node: "https://10.0.0.1:8443".
	Server string
	// CA is the cluster CA the server's certificate must chain to.
	CA *x509.CertPool
	// Certificate is the client certificate (an admin's or a node's); nil
	// for a box that only attests.
	Certificate *tls.Certificate
	// ServerName overrides the name checked in the server's certificate
	// (default: the host of Server).
	ServerName string
	// Now is the clock certificates are checked at; nil means time.Now.
	Now func() time.Time
	// Timeout bounds one request; 0 means 30 s.
	Timeout time.Duration
}

// Client calls the cluster API. It is safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the server in cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("server %q: want https://ADDRESS:PORT", cfg.Server)
	}
	if cfg.CA == nil {
		return nil, errors.New("no cluster CA to check the server against: give the cluster's ca.crt")
	}
	tc := &tls.Config{
		RootCAs:    cfg.CA,
		ServerName: cfg.ServerName,
		MinVersion: tls.VersionTLS13,
		Time:       cfg.Now,
	}
	if cfg.Certificate != nil {
		tc.Certificates = []tls.Certificate{*cfg.Certificate}
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second}
	return &Client{
		base: "https://" + u.Host,
		hc:   &http.Client{Transport: tr, Timeout: timeout},
	}, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// StatusError is an error answer of the cluster API.
type StatusError struct {
	Status  int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("cluster API: %s (HTTP %d)", e.Message, e.Status)
}

// do sends one request. A non-2xx answer is a *StatusError; a 403 on the
// challenge route carries a Result, which the caller reads from refusal.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, c.base+path, err)
	}
	if resp.StatusCode/100 != 2 {
		if path == ChallengePath && resp.StatusCode == http.StatusForbidden {
			var r Result
			if json.Unmarshal(data, &r) == nil && r.Reason != "" {
				return &Refusal{Reason: r.Reason, Text: r.Text}
			}
		}
		var eb ErrorBody
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		if len(msg) > 512 {
			msg = msg[:512] + "..."
		}
		return &StatusError{Status: resp.StatusCode, Message: msg}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not what this client expects (is the server another version?): %w", method, c.base+path, err)
	}
	return nil
}

// Nodes lists the nodes.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var l NodeList
	err := c.do(ctx, http.MethodGet, Path(NodesRoute), nil, &l)
	return l.Nodes, err
}

// Self returns the calling node's own record (node certificate only).
func (c *Client) Self(ctx context.Context) (Node, error) {
	var n Node
	err := c.do(ctx, http.MethodGet, Path(SelfRoute), nil, &n)
	return n, err
}

// RemoveNode removes a node; a server node leaves the etcd cluster.
func (c *Client) RemoveNode(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, Path(RemoveNodeRoute, name), nil, nil)
}

// Machines lists the enrolment inbox (without inventories).
func (c *Client) Machines(ctx context.Context) ([]Machine, error) {
	var l MachineList
	err := c.do(ctx, http.MethodGet, Path(MachinesRoute), nil, &l)
	return l.Machines, err
}

// Machine returns one machine, by id or boot MAC, with its inventory.
func (c *Client) Machine(ctx context.Context, id string) (Machine, error) {
	var m Machine
	err := c.do(ctx, http.MethodGet, Path(MachineRoute, id), nil, &m)
	return m, err
}

// Approve approves a machine.
func (c *Client) Approve(ctx context.Context, id string, req ApproveRequest) (Machine, error) {
	var m Machine
	err := c.do(ctx, http.MethodPost, Path(ApproveRoute, id), req, &m)
	return m, err
}

// Declare records and approves a machine that has not booted yet.
func (c *Client) Declare(ctx context.Context, req DeclareRequest) (Machine, error) {
	var m Machine
	err := c.do(ctx, http.MethodPost, Path(DeclareRoute), req, &m)
	return m, err
}

// Reject rejects a machine.
func (c *Client) Reject(ctx context.Context, id string, req RejectRequest) (Machine, error) {
	var m Machine
	err := c.do(ctx, http.MethodPost, Path(RejectRoute, id), req, &m)
	return m, err
}

// ClusterStatus returns the etcd cluster's state.
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	var s ClusterStatus
	err := c.do(ctx, http.MethodGet, Path(ClusterStatusRoute), nil, &s)
	return s, err
}

// Releases lists the released image digests.
func (c *Client) Releases(ctx context.Context) ([]Release, error) {
	var l ReleaseList
	err := c.do(ctx, http.MethodGet, Path(ReleasesRoute), nil, &l)
	return l.Releases, err
}

// AddRelease adds a released image digest.
func (c *Client) AddRelease(ctx context.Context, req ReleaseRequest) (Release, error) {
	var r Release
	err := c.do(ctx, http.MethodPost, Path(AddReleaseRoute), req, &r)
	return r, err
}

// RequestRole asks, as a node (with its node certificate), for another
// role; the technician decides.
func (c *Client) RequestRole(ctx context.Context, role Role) (Machine, error) {
	var m Machine
	err := c.do(ctx, http.MethodPost, Path(RoleRequestRoute), RoleRequest{Role: role}, &m)
	return m, err
}

// Console reads the node console's settings.
func (c *Client) Console(ctx context.Context) (ConsoleSettings, error) {
	var cs ConsoleSettings
	err := c.do(ctx, http.MethodGet, Path(ConsoleRoute), nil, &cs)
	return cs, err
}

// SetConsole replaces the node console's settings; empty fields keep theirs.
func (c *Client) SetConsole(ctx context.Context, req ConsoleSettings) (ConsoleSettings, error) {
	var cs ConsoleSettings
	err := c.do(ctx, http.MethodPut, Path(SetConsoleRoute), req, &cs)
	return cs, err
}

// Challenge sends an attestation request; a refusal is an *Refusal. With
// Prove it makes Client a verifier for noded/attest (no certificate
// request: see Attestation).
func (c *Client) Challenge(ctx context.Context, req AttestRequest) (Challenge, error) {
	var ch Challenge
	err := c.do(ctx, http.MethodPost, ChallengePath, req, &ch)
	return ch, err
}

// Prove sends the proof of an attestation and returns the verdict.
func (c *Client) Prove(ctx context.Context, p Proof) (Result, error) {
	var r Result
	err := c.do(ctx, http.MethodPost, ProofPath, p, &r)
	return r, err
}

// Attestation is the verifier noded/attest talks to when the box wants a
// node certificate: the client, and the certificate request (NewCSR in
// noded/pki) it adds to the attestation request. A server node adds
// PeerCSR, the request for its etcd member certificate.
type Attestation struct {
	Client  *Client
	CSR     []byte
	PeerCSR []byte
}

// Challenge sends req with the certificate requests.
func (a Attestation) Challenge(ctx context.Context, req AttestRequest) (Challenge, error) {
	req.CSR, req.PeerCSR = a.CSR, a.PeerCSR
	return a.Client.Challenge(ctx, req)
}

// Prove sends the proof; an accepted Result holds the node certificate.
func (a Attestation) Prove(ctx context.Context, p Proof) (Result, error) {
	return a.Client.Prove(ctx, p)
}
