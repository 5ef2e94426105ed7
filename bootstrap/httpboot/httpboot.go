// Package httpboot is the boot server's HTTP side: the iPXE scripts that
// bring a blank box from its NIC's firmware to our kernel, the image and
// iPXE files, and the enrolment endpoint our firmware posts to.
//
// It is an http.Handler only; whoever embeds it listens. Routes:
//
//	GET  /boot.ipxe                     stage 1, the same for every box
//	GET  /ipxe/machine?mac=..&serial=.. the box's own script (kernel, initrd, command line)
//	GET  /images/<version>/<name>       published image files (Range, ETag, admission control)
//	GET  /bin/<name>                    iPXE binaries (for UEFI HTTP boot)
//	POST /v1/enrol                      enrolment (enrolapi)
//
// A box never gives up: every failure in a script leads to a retry label
// that waits a random, growing time and asks for a fresh script, so a
// thousand boxes that failed together come back spread out.
package httpboot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/onecloud-edu/onecloud/bootstrap/admission"
	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/bootstrap/images"
)

// Config is what the handler needs.
type Config struct {
	// BaseURL is how boxes reach this handler ("http://10.77.1.1:8080"); it
	// is written into scripts and onto the kernel command line. It must be
	// the root of the handler: no path, query or fragment.
	BaseURL string
	// Images is the store of published images.
	Images *images.Store
	// BinDir holds iPXE binaries (e.g. /usr/lib/ipxe), served read-only at
	// /bin/<name>; empty serves none. Paths are confined with os.Root, except
	// that a symlink already in BinDir when New runs is followed wherever it
	// points (Debian's /usr/lib/ipxe/ipxe.efi -> /boot/ipxe.efi): the
	// operator chose that folder, a request cannot.
	BinDir string
	// KernelArgs are put on every kernel command line
	// ("console=ttyS0,115200 console=tty0").
	KernelArgs string
	// Machines decides per machine.
	Machines Machines
	// Limiter caps concurrent file transfers; nil means no cap.
	Limiter *admission.Limiter
	// Log receives one line per client request of note; nil discards.
	Log *slog.Logger
}

// Machines is the backend: the machine inbox and its rules.
type Machines interface {
	// Boot is asked when a box's iPXE wants its script.
	Boot(ctx context.Context, r BootRequest) (BootDecision, error)
	// Enrol is asked when our firmware reports in.
	Enrol(ctx context.Context, r enrolapi.Request, from netip.Addr) (enrolapi.Response, error)
}

// BootRequest is what iPXE tells about a box, validated: MAC is lowercase
// colon form, UUID lowercase or empty, the other texts printable and short.
type BootRequest struct {
	MAC, Serial, Manufacturer, Product, UUID, Platform, BuildArch string
	Addr                                                          netip.Addr
}

// BootDecision is the backend's answer. ID, Role and School go onto the
// kernel command line and must be plain tokens (letters, digits, '.', '_',
// '-'); Message is shown on the box's screen.
type BootDecision struct {
	ID      string
	State   enrolapi.State
	Role    string
	School  string
	Message string
}

// Stats are the handler's counters since New.
type Stats struct {
	Scripts     uint64 // iPXE scripts served (stage 1 and per machine)
	Files       uint64 // image and iPXE files served (full or partial)
	Bytes       uint64 // bytes of file bodies sent
	NotModified uint64 // 304 answers
	Busy        uint64 // 503 answers (admission control)
	Enrolments  uint64 // enrolments answered
	BadRequests uint64 // malformed boot or enrolment requests
}

// Handler serves the routes above. Create it with New.
type Handler struct {
	cfg  Config
	base string
	log  *slog.Logger
	mux  *http.ServeMux

	bin      *os.Root          // nil without BinDir
	binLinks map[string]string // BinDir symlinks resolved at New: name -> target

	// jitter returns a random number in [0, n); tests make it fixed.
	jitter func(n int64) int64

	scripts, files, bytes, notModified, busy, enrolments, bad atomic.Uint64

	// macs remembers which MAC asked for a script or enrolled from an
	// address, so that the lines about its downloads name the box too.
	macMu sync.Mutex
	macs  map[netip.Addr]string
}

// maxRemembered bounds macs: a county has about a thousand boxes; past this
// the map starts over rather than grow without end.
const maxRemembered = 1 << 16

// remember notes that mac spoke from addr.
func (h *Handler) remember(addr netip.Addr, mac string) {
	h.macMu.Lock()
	defer h.macMu.Unlock()
	if len(h.macs) >= maxRemembered {
		clear(h.macs)
	}
	h.macs[addr] = mac
}

// who is the log attributes naming the client of r: its MAC when known, and its address.
func (h *Handler) who(r *http.Request) []any {
	addr := remoteAddr(r)
	h.macMu.Lock()
	mac, ok := h.macs[addr]
	h.macMu.Unlock()
	if !ok {
		mac = "unknown"
	}
	return []any{"mac", mac, "addr", addr}
}

var (
	// safeURL is what BaseURL may contain: nothing iPXE or the kernel
	// command line would interpret.
	safeURL = regexp.MustCompile(`^https?://[A-Za-z0-9.:\[\]-]+$`)
	// kernelArg is one word of KernelArgs.
	kernelArg = regexp.MustCompile(`^[A-Za-z0-9._,:=/+@-]+$`)
	// plainName is a file name served from BinDir.
	plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// New checks cfg and returns the handler.
func New(cfg Config) (*Handler, error) {
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	u, err := url.Parse(base)
	if err != nil || !safeURL.MatchString(base) || u.Host == "" {
		return nil, fmt.Errorf("httpboot: BaseURL %q must be a plain http://HOST:PORT, the address boxes reach this server at", cfg.BaseURL)
	}
	for _, a := range strings.Fields(cfg.KernelArgs) {
		if !kernelArg.MatchString(a) {
			return nil, fmt.Errorf("httpboot: kernel argument %q has characters iPXE would interpret (allowed: letters, digits, . _ , : = / + @ -)", a)
		}
	}
	if cfg.Images == nil || cfg.Machines == nil {
		return nil, errors.New("httpboot: Config needs Images and Machines")
	}
	h := &Handler{cfg: cfg, base: base, log: cfg.Log, jitter: rand.Int64N, macs: map[netip.Addr]string{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.cfg.KernelArgs = strings.Join(strings.Fields(cfg.KernelArgs), " ")
	if cfg.BinDir != "" {
		if h.bin, h.binLinks, err = openBin(cfg.BinDir); err != nil {
			return nil, err
		}
		for name, target := range h.binLinks {
			h.log.Info("serving an iPXE binary through a symlink that leaves BinDir", "name", name, "target", target)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boot.ipxe", h.stage1)
	mux.HandleFunc("GET /ipxe/machine", h.machine)
	mux.HandleFunc("GET /images/{version}/{name}", h.image)
	mux.HandleFunc("GET /bin/{name}", h.binary)
	mux.HandleFunc("POST "+enrolapi.Path, h.enrol)
	h.mux = mux
	return h, nil
}

// openBin opens BinDir and resolves the symlinks in it that os.Root would
// refuse because they leave the folder.
func openBin(dir string) (*os.Root, map[string]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("httpboot: open BinDir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		root.Close()
		return nil, nil, fmt.Errorf("httpboot: list BinDir: %w", err)
	}
	links := map[string]string{}
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink == 0 || !plainName.MatchString(e.Name()) {
			continue
		}
		if fi, err := root.Stat(e.Name()); err == nil && fi.Mode().IsRegular() {
			continue // stays inside: os.Root serves it
		}
		target, err := filepath.EvalSymlinks(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if fi, err := os.Stat(target); err == nil && fi.Mode().IsRegular() {
			links[e.Name()] = target
		}
	}
	return root, links, nil
}

// Close releases BinDir. The image store belongs to the caller.
func (h *Handler) Close() error {
	if h.bin != nil {
		return h.bin.Close()
	}
	return nil
}

// ServeHTTP routes a request. Unknown paths get 404, known paths with
// another method 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Stats returns the counters.
func (h *Handler) Stats() Stats {
	return Stats{
		Scripts:     h.scripts.Load(),
		Files:       h.files.Load(),
		Bytes:       h.bytes.Load(),
		NotModified: h.notModified.Load(),
		Busy:        h.busy.Load(),
		Enrolments:  h.enrolments.Load(),
		BadRequests: h.bad.Load(),
	}
}

// remoteAddr is the client's address, or the zero Addr when the server
// gave none (a handler called directly).
func remoteAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
