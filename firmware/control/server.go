package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/cmdline"
	"github.com/onecloud-edu/onecloud/firmware/netcfg"
)

// maxBody bounds a request body: the largest is a network change, well
// under 1 KiB.
const maxBody = 64 << 10

// Handler serves the API over net and box, logging every request.
func Handler(network Network, box Box, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{net: network, box: box}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/state", s.state)
	mux.HandleFunc("POST /v1/network", s.network)
	mux.HandleFunc("POST /v1/network/confirm", s.confirm)
	mux.HandleFunc("POST /v1/servers", s.servers)
	mux.HandleFunc("POST /v1/reenrol", s.act("re-enrolment started", box.Reenrol))
	mux.HandleFunc("POST /v1/role-request", s.roleRequest)
	mux.HandleFunc("POST /v1/reboot", s.act("rebooting", box.Reboot))
	mux.HandleFunc("POST /v1/poweroff", s.act("powering off", box.PowerOff))
	mux.HandleFunc("POST /v1/factory-reset", s.factoryReset)
	mux.HandleFunc("POST /v1/rollback", s.act("rolling back to the previous image", box.Rollback))
	return logged(mux, log)
}

type server struct {
	net Network
	box Box
}

func (s *server) currentState() State {
	return State{Network: s.net.State(), NICs: s.net.NICs()}
}

func (s *server) state(w http.ResponseWriter, r *http.Request) {
	reply(w, r, http.StatusOK, s.currentState())
}

func (s *server) network(w http.ResponseWriter, r *http.Request) {
	var c netcfg.Change
	if !decode(w, r, &c) {
		return
	}
	if err := s.net.Apply(r.Context(), c); err != nil {
		fail(w, r, err)
		return
	}
	reply(w, r, http.StatusAccepted, s.currentState())
}

func (s *server) confirm(w http.ResponseWriter, r *http.Request) {
	if err := s.net.Confirm(r.Context()); err != nil {
		fail(w, r, err)
		return
	}
	reply(w, r, http.StatusOK, s.currentState())
}

func (s *server) servers(w http.ResponseWriter, r *http.Request) {
	var in Servers
	if !decode(w, r, &in) {
		return
	}
	in.Boot, in.Cluster = strings.TrimSpace(in.Boot), strings.TrimSpace(in.Cluster)
	switch {
	case in.Boot == "" && in.Cluster == "":
		fail(w, r, badInput("give the boot server (boot), the cluster (cluster), or both"))
		return
	case in.Boot != "":
		if err := cmdline.CheckServer(in.Boot); err != nil {
			fail(w, r, badInput("boot server %q: %v", in.Boot, err))
			return
		}
	}
	if in.Cluster != "" {
		if err := cmdline.CheckServer(in.Cluster); err != nil || !strings.HasPrefix(in.Cluster, "https://") {
			fail(w, r, badInput("cluster %q: want the cluster API as https://HOST:PORT", in.Cluster))
			return
		}
	}
	if err := s.box.SetServers(r.Context(), in); err != nil {
		fail(w, r, err)
		return
	}
	reply(w, r, http.StatusOK, Reply{Message: "kept for the next enrolment"})
}

func (s *server) roleRequest(w http.ResponseWriter, r *http.Request) {
	var in RoleRequest
	if !decode(w, r, &in) {
		return
	}
	if err := cmdline.CheckRole(in.Role); err != nil {
		fail(w, r, badInput("role %q: %v", in.Role, err))
		return
	}
	if err := s.box.RequestRole(r.Context(), in.Role); err != nil {
		fail(w, r, err)
		return
	}
	reply(w, r, http.StatusAccepted, Reply{Message: "role " + in.Role + " requested; the boot server decides"})
}

func (s *server) factoryReset(w http.ResponseWriter, r *http.Request) {
	var in FactoryReset
	if !decode(w, r, &in) {
		return
	}
	typed, serial := strings.TrimSpace(in.Serial), s.box.Serial()
	switch {
	case serial == "":
		fail(w, r, fmt.Errorf("%w: this box reports no serial number, so a factory reset cannot be confirmed from the console", ErrNotAvailable))
		return
	case typed == "":
		fail(w, r, badInput("type the box's serial number (on its label) to confirm the factory reset"))
		return
	case typed != serial:
		fail(w, r, badInput("%q is not this box's serial number: check the label of the box in front of you", typed))
		return
	}
	if err := s.box.FactoryReset(r.Context()); err != nil {
		fail(w, r, err)
		return
	}
	reply(w, r, http.StatusAccepted, Reply{Message: "factory reset started"})
}

// act serves a route that takes no input.
func (s *server) act(done string, fn func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(r.Context()); err != nil {
			fail(w, r, err)
			return
		}
		reply(w, r, http.StatusAccepted, Reply{Message: done})
	}
}

// errBadInput marks an error whose message tells the technician what to
// correct.
var errBadInput = errors.New("bad input")

type inputError struct{ msg string }

func (e inputError) Error() string        { return e.msg }
func (e inputError) Is(target error) bool { return target == errBadInput }

func badInput(format string, args ...any) error {
	return inputError{fmt.Sprintf(format, args...)}
}

// decode reads exactly one JSON object into v, refusing unknown fields so
// that a misspelt one ("adress") is an error and not silently ignored.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		fail(w, r, badInput("the request body is larger than %d bytes", maxBody))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if errors.Is(err, io.EOF) {
			msg = "the request has no JSON body"
		}
		fail(w, r, badInput("cannot read the request: %s", msg))
		return false
	}
	if dec.More() {
		fail(w, r, badInput("cannot read the request: more than one JSON value"))
		return false
	}
	return true
}

// status chooses the answer's status for err.
func status(err error) int {
	switch {
	case errors.Is(err, errBadInput), errors.Is(err, netcfg.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, netcfg.ErrBusy), errors.Is(err, netcfg.ErrNothingPending):
		return http.StatusConflict
	case errors.Is(err, ErrNotAvailable):
		return http.StatusNotImplemented
	case errors.Is(err, ErrNotRunning), errors.Is(err, netcfg.ErrNotRunning):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func fail(w http.ResponseWriter, r *http.Request, err error) {
	noteError(r, err)
	reply(w, r, status(err), errorReply{Error: err.Error()})
}

func reply(w http.ResponseWriter, _ *http.Request, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) // the client hung up if this fails; nothing to tell it
}

// logging

type ctxKey int

const (
	peerKey ctxKey = iota
	errKey
)

// errNote carries a failed request's error to the log line.
type errNote struct{ err error }

func noteError(r *http.Request, err error) {
	if n, ok := r.Context().Value(errKey).(*errNote); ok {
		n.err = err
	}
}

type recorder struct {
	http.ResponseWriter
	code int
}

func (rw *recorder) WriteHeader(code int) {
	rw.code = code
	rw.ResponseWriter.WriteHeader(code)
}

// logged logs every request once: route, status, time taken, the calling
// process (pid and uid from the socket's peer credentials, since a unix
// socket has no address), and the error of a failed one. Bodies are not
// logged.
func logged(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		note := &errNote{}
		rw := &recorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), errKey, note)))
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rw.code,
			"took", time.Since(start).Round(time.Microsecond), "peer", peer(r.Context())}
		lvl := slog.LevelInfo
		if note.err != nil {
			attrs = append(attrs, "err", note.err.Error())
			lvl = slog.LevelWarn
		}
		log.Log(r.Context(), lvl, "control request", attrs...)
	})
}

func peer(ctx context.Context) string {
	if p, ok := ctx.Value(peerKey).(string); ok {
		return p
	}
	return "unknown"
}

// peerCred names the process at the other end of a unix socket.
func peerCred(c net.Conn) string {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return c.RemoteAddr().String()
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return "unknown"
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return "unknown"
	}
	return fmt.Sprintf("pid %d uid %d", cred.Pid, cred.Uid)
}

// Serve serves h on the unix socket path (mode 0600) until ctx ends. The
// socket is made under a temporary name and renamed into place once its
// mode is set, so that no client ever finds it open to everyone.
func Serve(ctx context.Context, path string, h http.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create the folder of the control socket: %w", err)
	}
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", tmp, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", tmp)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", tmp, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // renamed: removed by name below
	defer os.Remove(path)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return fmt.Errorf("restrict %s to root: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return fmt.Errorf("put the control socket in place at %s: %w", path, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey, peerCred(c))
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		// Let answers in flight (a reboot's) reach the console.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("control API serving", "socket", path)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve the control API: %w", err)
	}
	<-done
	return nil
}
