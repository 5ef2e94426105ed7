package machines

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
)

// DefaultSocket is where bootstrapd serves the admin API.
const DefaultSocket = "/run/onecloud/bootstrapd.sock"

// AssignRequest is the body of approve and assign.
type AssignRequest struct {
	Role   string `json:"role"`
	School string `json:"school,omitempty"`
}

// RejectRequest is the body of reject.
type RejectRequest struct {
	Reason string `json:"reason,omitempty"`
}

// ListResponse is the answer of GET /v1/machines.
type ListResponse struct {
	Machines []Machine `json:"machines"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// AdminHandler serves the technician's API over s:
//
//	GET    /v1/machines[?state=pending|approved|rejected]  -> ListResponse
//	GET    /v1/machines/{id}                               -> Machine
//	POST   /v1/machines/{id}/approve  AssignRequest        -> Machine
//	POST   /v1/machines/{id}/reject   RejectRequest        -> Machine
//	POST   /v1/machines/{id}/assign   AssignRequest        -> Machine
//	DELETE /v1/machines/{id}                               -> 204
//
// {id} is a machine id or any of its MACs. Errors are ErrorResponse with
// 400 (bad request), 404 (no such machine) or 500 (state not saved). It has
// no authentication of its own: serve it on a socket made by Listen, whose
// mode (0600) lets only root in.
func AdminHandler(s *Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/machines", func(w http.ResponseWriter, r *http.Request) {
		ms, err := s.List(enrolapi.State(r.URL.Query().Get("state")))
		reply(w, ListResponse{Machines: ms}, err)
	})
	mux.HandleFunc("GET /v1/machines/{id}", func(w http.ResponseWriter, r *http.Request) {
		m, err := s.Get(r.PathValue("id"))
		reply(w, m, err)
	})
	mux.HandleFunc("POST /v1/machines/{id}/approve", func(w http.ResponseWriter, r *http.Request) {
		var req AssignRequest
		if !readBody(w, r, &req) {
			return
		}
		m, err := s.Approve(r.Context(), r.PathValue("id"), req.Role, req.School)
		reply(w, m, err)
	})
	mux.HandleFunc("POST /v1/machines/{id}/reject", func(w http.ResponseWriter, r *http.Request) {
		var req RejectRequest
		if !readBody(w, r, &req) {
			return
		}
		m, err := s.Reject(r.Context(), r.PathValue("id"), req.Reason)
		reply(w, m, err)
	})
	mux.HandleFunc("POST /v1/machines/{id}/assign", func(w http.ResponseWriter, r *http.Request) {
		var req AssignRequest
		if !readBody(w, r, &req) {
			return
		}
		m, err := s.Assign(r.Context(), r.PathValue("id"), req.Role, req.School)
		reply(w, m, err)
	})
	mux.HandleFunc("DELETE /v1/machines/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Forget(r.Context(), r.PathValue("id")); err != nil {
			reply(w, nil, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("no such request: %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: fmt.Sprintf("request body: %v", err)})
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: err.Error()})
	case errors.Is(err, ErrInvalid):
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: err.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Listen makes the admin socket at path with mode 0600 and listens on it.
// The socket is made in a private folder, given its mode, then moved into
// place, so that there is no moment at which others could connect. A socket
// left by a bootstrapd that died is replaced; a live one is an error. Close
// removes the socket.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("admin socket: %s exists and is not a socket: move it away or choose another path", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("admin socket: another bootstrapd already serves %s: stop it first", path)
		}
	}
	tmpDir, err := os.MkdirTemp(dir, ".bootstrapd-sock-")
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	l.SetUnlinkOnClose(false) // it would unlink tmp; Close removes path
	if err := os.Chmod(tmp, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return &socketListener{UnixListener: l, path: path, fi: fi}, nil
}

type socketListener struct {
	*net.UnixListener
	path string
	fi   fs.FileInfo
	once sync.Once
}

func (l *socketListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// Close stops listening and removes the socket, unless it has been
// replaced by another one in the meantime.
func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, e := os.Lstat(l.path); e == nil && os.SameFile(fi, l.fi) {
			os.Remove(l.path)
		}
	})
	return err
}

// Client calls the admin API of a running bootstrapd over its socket.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client of the bootstrapd serving socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// List returns the machines in state ("" for all).
func (c *Client) List(ctx context.Context, state enrolapi.State) ([]Machine, error) {
	path := "/v1/machines"
	if state != "" {
		path += "?state=" + url.QueryEscape(string(state))
	}
	var out ListResponse
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out.Machines, err
}

// Get returns one machine, by id or MAC.
func (c *Client) Get(ctx context.Context, id string) (Machine, error) {
	var m Machine
	err := c.do(ctx, http.MethodGet, machinePath(id, ""), nil, &m)
	return m, err
}

// Approve approves a machine in role at school.
func (c *Client) Approve(ctx context.Context, id, role, school string) (Machine, error) {
	var m Machine
	err := c.do(ctx, http.MethodPost, machinePath(id, "approve"), AssignRequest{Role: role, School: school}, &m)
	return m, err
}

// Reject rejects a machine.
func (c *Client) Reject(ctx context.Context, id, reason string) (Machine, error) {
	var m Machine
	err := c.do(ctx, http.MethodPost, machinePath(id, "reject"), RejectRequest{Reason: reason}, &m)
	return m, err
}

// Assign changes the role (and school, unless empty) of an approved machine.
func (c *Client) Assign(ctx context.Context, id, role, school string) (Machine, error) {
	var m Machine
	err := c.do(ctx, http.MethodPost, machinePath(id, "assign"), AssignRequest{Role: role, School: school}, &m)
	return m, err
}

// Forget removes a machine.
func (c *Client) Forget(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, machinePath(id, ""), nil, nil)
}

func machinePath(id, action string) string {
	p := "/v1/machines/" + url.PathEscape(id)
	if action != "" {
		p += "/" + action
	}
	return p
}

// APIError is an error answer of the admin API.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Is lets errors.Is(err, ErrNotFound) and ErrInvalid work on the client side too.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound ||
		target == ErrInvalid && e.Status == http.StatusBadRequest
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://bootstrapd"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read bootstrapd's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("bootstrapd answered %s", resp.Status)
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("bootstrapd's answer: %w", err)
	}
	return nil
}

// dialError says what to do when the socket cannot be reached.
func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("bootstrapd is not running (no socket at %s): start it with `bootstrapd serve`", c.socket)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("bootstrapd is not running (nobody listens on %s): start it with `bootstrapd serve`", c.socket)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("no permission to use %s: run this as root (the socket is mode 0600)", c.socket)
	}
	return fmt.Errorf("ask bootstrapd at %s: %w", c.socket, err)
}

// Close closes the connections the client keeps open.
func (c *Client) Close() { c.hc.CloseIdleConnections() }
