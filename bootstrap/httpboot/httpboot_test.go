package httpboot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/admission"
	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/bootstrap/images"
	"github.com/onecloud-edu/onecloud/hw"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const base = "http://10.77.1.1:8080"

// fakeMachines answers from functions and remembers what it was asked.
type fakeMachines struct {
	mu        sync.Mutex
	boot      func(BootRequest) (BootDecision, error)
	enrol     func(enrolapi.Request) (enrolapi.Response, error)
	lastBoot  BootRequest
	lastEnrol enrolapi.Request
	lastFrom  netip.Addr
}

func (f *fakeMachines) Boot(_ context.Context, r BootRequest) (BootDecision, error) {
	f.mu.Lock()
	f.lastBoot = r
	f.mu.Unlock()
	return f.boot(r)
}

func (f *fakeMachines) Enrol(_ context.Context, r enrolapi.Request, from netip.Addr) (enrolapi.Response, error) {
	f.mu.Lock()
	f.lastEnrol, f.lastFrom = r, from
	f.mu.Unlock()
	return f.enrol(r)
}

func approved(BootRequest) (BootDecision, error) {
	return BootDecision{ID: "m-0001", State: enrolapi.Approved, Role: "lab-terminal", School: "ecole-nord"}, nil
}

// imageSource writes an image-builder output folder with a manifest.json
// that lists the given kernel and initramfs.
func imageSource(t testing.TB, version string, kernel, initramfs []byte) string {
	t.Helper()
	dir := t.TempDir()
	type art struct {
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	var arts []art
	for _, f := range []struct {
		name string
		b    []byte
	}{{images.Kernel, kernel}, {images.Initramfs, initramfs}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.b, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(f.b)
		arts = append(arts, art{f.name, int64(len(f.b)), hex.EncodeToString(sum[:])})
	}
	m, _ := json.Marshal(map[string]any{"product": "onecloud", "version": version, "artefacts": arts})
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), m, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

type setup struct {
	h        *Handler
	store    *images.Store
	machines *fakeMachines
	binDir   string
	version  images.Version // published at setup, "" with noImage
}

type options struct {
	noImage bool
	limiter *admission.Limiter
	kernel  []byte
}

func newSetup(t testing.TB, o options) *setup {
	t.Helper()
	store, err := images.Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s := &setup{store: store, machines: &fakeMachines{boot: approved}}
	if !o.noImage {
		kernel := o.kernel
		if kernel == nil {
			kernel = []byte("0123456789abcdefghijklmnopqrstuvwxyz")
		}
		s.version, err = store.Publish(context.Background(), imageSource(t, "0.1.0", kernel, []byte("INITRAMFS")), nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	s.binDir = filepath.Join(t.TempDir(), "ipxe")
	os.Mkdir(s.binDir, 0o755)
	if err := os.WriteFile(filepath.Join(s.binDir, "snponly.efi"), []byte("SNPONLY-EFI"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.h, err = New(Config{
		BaseURL: base, Images: store, BinDir: s.binDir, KernelArgs: "console=ttyS0,115200 console=tty0",
		Machines: s.machines, Limiter: o.limiter,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.h.Close() })
	s.h.jitter = func(n int64) int64 { return n / 2 } // fixed "random" waits for the golden files
	return s
}

// get runs one request through the handler.
func (s *setup) get(t testing.TB, method, target, userAgent string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if userAgent != "" {
		r.Header.Set("User-Agent", userAgent)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	return w
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

const ipxeUA = "iPXE/1.0.0+git-20190125.36a4c85"

const biosQuery = "/ipxe/machine?mac=52:54:00:12:34:56&serial=SN%20123&manufacturer=QEMU&product=Standard%20PC" +
	"&uuid=5B0B9B6E-1F55-4A52-9B5C-3A3B1E0F7A10&platform=pcbios&buildarch=i386"

func TestStage1(t *testing.T) {
	s := newSetup(t, options{})
	w := s.get(t, "GET", "/boot.ipxe", ipxeUA)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("status %d, type %q", w.Code, w.Header().Get("Content-Type"))
	}
	golden(t, "stage1.ipxe", w.Body.String())
	for _, want := range []string{"#!ipxe\n", "mac=${netX/mac}", "serial=${serial:uristring}", "platform=${platform}", base + "/ipxe/machine?"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("stage 1 lacks %q", want)
		}
	}
}

func TestMachineScripts(t *testing.T) {
	pending := func(BootRequest) (BootDecision, error) {
		return BootDecision{ID: "m-0002", State: enrolapi.Pending, Message: "Waiting in the inbox; ask the technician ${reboot}"}, nil
	}
	rejected := func(BootRequest) (BootDecision, error) {
		return BootDecision{ID: "m-0003", State: enrolapi.Rejected, Message: "not a school terminal || shell"}, nil
	}
	failing := func(BootRequest) (BootDecision, error) { return BootDecision{}, errors.New("inbox file unreadable") }
	unsafe := func(BootRequest) (BootDecision, error) {
		return BootDecision{ID: "m-0004", State: enrolapi.Approved, Role: "lab shell"}, nil
	}
	tests := []struct {
		golden  string
		boot    func(BootRequest) (BootDecision, error)
		noImage bool
		query   string
		ua      string
		status  int
	}{
		{"approved-bios.ipxe", approved, false, biosQuery, ipxeUA, 200},
		{"approved-efi.ipxe", approved, false, strings.NewReplacer("pcbios", "efi", "i386", "x86_64").Replace(biosQuery) + "&attempt=3", ipxeUA, 200},
		{"pending.ipxe", pending, false, biosQuery, ipxeUA, 200},
		{"rejected.ipxe", rejected, false, biosQuery, ipxeUA, 200},
		{"no-image.ipxe", approved, true, biosQuery + "&attempt=2", ipxeUA, 200},
		{"backend-error.ipxe", failing, false, biosQuery, ipxeUA, 200},
		{"unsafe-decision.ipxe", unsafe, false, biosQuery, ipxeUA, 200},
		{"bad-mac.ipxe", approved, false, "/ipxe/machine?mac=${netX/mac}&platform=pcbios", ipxeUA, 200},
		{"bad-mac.txt", approved, false, "/ipxe/machine?mac=zz:zz&platform=pcbios", "curl/8.0", 400},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			s := newSetup(t, options{noImage: tt.noImage})
			s.machines.boot = tt.boot
			w := s.get(t, "GET", tt.query, tt.ua)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			body := w.Body.String()
			if s.version != "" {
				// The golden files hold the version's digest: replace it.
				body = strings.ReplaceAll(body, string(s.version), "VERSION")
			}
			golden(t, tt.golden, body)
			if strings.Contains(body, "${reboot}") || strings.Contains(body, "|| shell") || strings.Contains(body, "lab shell") {
				t.Error("text from the backend reached the script unescaped")
			}
		})
	}
}

func TestBootRequestGoesToBackend(t *testing.T) {
	s := newSetup(t, options{})
	w := s.get(t, "GET", biosQuery+"&serial=%01bad%0Aserial%20%20", ipxeUA)
	if w.Code != 200 {
		t.Fatal(w.Code)
	}
	got := s.machines.lastBoot
	want := BootRequest{MAC: "52:54:00:12:34:56", Serial: "SN 123", Manufacturer: "QEMU", Product: "Standard PC",
		UUID: "5b0b9b6e-1f55-4a52-9b5c-3a3b1e0f7a10", Platform: "pcbios", BuildArch: "i386", Addr: netip.MustParseAddr("192.0.2.1")}
	if got != want {
		t.Errorf("backend got %+v\nwant %+v", got, want)
	}
	// The retry URL in the script asks again with the same values: '+'
	// stays a plus (iPXE's :uristring does not encode it), spaces stay spaces.
	s.get(t, "GET", "/ipxe/machine?mac=52:54:00:12:34:56&product=Standard%20PC%20(i440FX%20+%20PIIX,%201996)&serial=a%24b%7C%7Cc", ipxeUA)
	first := s.machines.lastBoot
	if first.Product != "Standard PC (i440FX + PIIX, 1996)" || first.Serial != "a$b||c" {
		t.Errorf("product %q, serial %q", first.Product, first.Serial)
	}
	script := s.get(t, "GET", "/ipxe/machine?mac=52:54:00:12:34:56&product=Standard%20PC%20(i440FX%20+%20PIIX,%201996)&serial=a%24b%7C%7Cc", ipxeUA).Body.String()
	_, retry, _ := strings.Cut(script, "chain --replace --autofree "+base)
	retry, _, _ = strings.Cut(retry, " ")
	if strings.ContainsAny(retry, "$| ") {
		t.Errorf("retry URL %q carries characters iPXE interprets", retry)
	}
	s.get(t, "GET", retry, ipxeUA)
	if again := s.machines.lastBoot; again != first {
		t.Errorf("the retry URL %s gave %+v, the first request %+v", retry, again, first)
	}

	// Uppercase and dashes are normalised.
	s.get(t, "GET", "/ipxe/machine?mac=52-54-00-AB-CD-EF", ipxeUA)
	if mac := s.machines.lastBoot.MAC; mac != "52:54:00:ab:cd:ef" {
		t.Errorf("MAC = %q, want it normalised", mac)
	}
}

func TestBadBootRequests(t *testing.T) {
	tests := []string{
		"/ipxe/machine",
		"/ipxe/machine?mac=",
		"/ipxe/machine?mac=52:54:00:12:34",
		"/ipxe/machine?mac=00:00:00:00:fe:80:00:00:00:00:00:00:00:00:00:00:00:00:00:01", // InfiniBand: not Ethernet
		"/ipxe/machine?mac=52:54:00:12:34:56&uuid=not-a-uuid",
		"/ipxe/machine?mac=52:54:00:12:34:56&platform=efi%20||%20shell",
		"/ipxe/machine?mac=52:54:00:12:34:56&attempt=-1",
		"/ipxe/machine?mac=52:54:00:12:34:56&attempt=x",
	}
	s := newSetup(t, options{})
	called := false
	s.machines.boot = func(BootRequest) (BootDecision, error) { called = true; return approved(BootRequest{}) }
	for _, q := range tests {
		w := s.get(t, "GET", q, "Go-http-client/1.1")
		if w.Code != 400 || !strings.Contains(w.Body.String(), "bad boot request") {
			t.Errorf("%s: %d %q, want 400 with a reason", q, w.Code, w.Body)
		}
		w = s.get(t, "GET", q, ipxeUA)
		if w.Code != 200 || !strings.Contains(w.Body.String(), "refused this request") {
			t.Errorf("%s from iPXE: %d %q, want a script that explains", q, w.Code, w.Body)
		}
	}
	if called {
		t.Error("the backend was asked about a bad request")
	}
	if got := s.h.Stats().BadRequests; got != uint64(2*len(tests)) {
		t.Errorf("BadRequests = %d, want %d", got, 2*len(tests))
	}
}

func TestRetryWaitGrows(t *testing.T) {
	s := newSetup(t, options{})
	s.h.jitter = func(n int64) int64 { return n - 1 } // the longest wait
	prev := 0
	for attempt := range 12 {
		got := s.h.retrySeconds(attempt)
		if got < prev || got > int(retryCap/time.Second) {
			t.Errorf("attempt %d waits %d s (previous %d, cap %v)", attempt, got, prev, retryCap)
		}
		prev = got
	}
	if prev != int(retryCap/time.Second) {
		t.Errorf("the wait never reached the cap: %d", prev)
	}
	// With real randomness, boxes that failed together wait different times.
	h, _ := New(Config{BaseURL: base, Images: s.store, Machines: s.machines})
	seen := map[int]bool{}
	for range 200 {
		seen[h.retrySeconds(5)] = true
	}
	if len(seen) < 10 {
		t.Errorf("200 boxes at attempt 5 got only %d distinct waits", len(seen))
	}
}

func TestImageFiles(t *testing.T) {
	s := newSetup(t, options{})
	kernel := "0123456789abcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(kernel))
	etag := `"sha256:` + hex.EncodeToString(sum[:]) + `"`
	path := "/images/" + string(s.version) + "/vmlinuz"
	tests := []struct {
		name    string
		method  string
		hdr     []string
		status  int
		body    string
		headers map[string]string
	}{
		{"whole", "GET", nil, 200, kernel, map[string]string{"ETag": etag, "Content-Length": "36", "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}},
		{"head", "HEAD", nil, 200, "", map[string]string{"ETag": etag, "Content-Length": "36"}},
		{"range", "GET", []string{"Range", "bytes=10-15"}, 206, "abcdef", map[string]string{"Content-Range": "bytes 10-15/36", "Content-Length": "6"}},
		{"suffix", "GET", []string{"Range", "bytes=-4"}, 206, "wxyz", map[string]string{"Content-Range": "bytes 32-35/36"}},
		{"open end", "GET", []string{"Range", "bytes=30-"}, 206, "uvwxyz", nil},
		{"unsatisfiable", "GET", []string{"Range", "bytes=100-200"}, 416, "", map[string]string{"Content-Range": "bytes */36"}},
		{"if-none-match", "GET", []string{"If-None-Match", etag}, 304, "", map[string]string{"ETag": etag}},
		{"if-none-match other", "GET", []string{"If-None-Match", `"sha256:00"`}, 200, kernel, nil},
		{"if-range matching", "GET", []string{"Range", "bytes=0-3", "If-Range", etag}, 206, "0123", nil},
		{"if-range stale", "GET", []string{"Range", "bytes=0-3", "If-Range", `"sha256:00"`}, 200, kernel, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := s.get(t, tt.method, path, "", tt.hdr...)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if tt.status != 416 && w.Body.String() != tt.body {
				t.Errorf("body %q, want %q", w.Body, tt.body)
			}
			for k, v := range tt.headers {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if tt.status < 300 && w.Header().Get("Last-Modified") == "" {
				t.Error("no Last-Modified")
			}
		})
	}
	st := s.h.Stats()
	if st.NotModified != 1 || st.Files != 7 || st.Bytes != uint64(3*len(kernel)+6+4+6+4) {
		t.Errorf("stats %+v", st)
	}
	for _, p := range []string{"/images/" + string(s.version) + "/nope", "/images/0.1.0-000000000000/vmlinuz", "/images/x/manifest.json", "/images/" + string(s.version) + "/manifest.json"} {
		if w := s.get(t, "GET", p, ""); w.Code != 404 {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
	// iPXE binaries.
	w := s.get(t, "GET", "/bin/snponly.efi", "", "Range", "bytes=0-6")
	if w.Code != 206 || w.Body.String() != "SNPONLY" || w.Header().Get("ETag") == "" {
		t.Errorf("/bin/snponly.efi: %d %q etag %q", w.Code, w.Body, w.Header().Get("ETag"))
	}
	if w := s.get(t, "GET", "/bin/snponly.efi", "", "If-None-Match", w.Header().Get("ETag")); w.Code != 304 {
		t.Errorf("/bin revalidation: %d, want 304", w.Code)
	}
	if w := s.get(t, "GET", "/bin/missing.efi", ""); w.Code != 404 {
		t.Errorf("/bin/missing.efi: %d, want 404", w.Code)
	}
}

func TestBusy(t *testing.T) {
	lim := admission.New(1, 0, 0)
	s := newSetup(t, options{limiter: lim})
	path := "/images/" + string(s.version) + "/vmlinuz"
	hold, err := lim.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, "/bin/snponly.efi"} {
		w := s.get(t, "GET", p, "")
		if w.Code != 503 {
			t.Fatalf("%s with the only slot held: %d, want 503", p, w.Code)
		}
		secs, err := strconv.Atoi(w.Header().Get("Retry-After"))
		if err != nil || secs < 1 || secs > 300 {
			t.Errorf("Retry-After = %q, want whole seconds in [1, 300]", w.Header().Get("Retry-After"))
		}
	}
	// What costs nothing is still answered: HEAD and revalidation.
	if w := s.get(t, "HEAD", path, ""); w.Code != 200 {
		t.Errorf("HEAD while busy: %d", w.Code)
	}
	etag := s.get(t, "HEAD", path, "").Header().Get("ETag")
	if w := s.get(t, "GET", path, "", "If-None-Match", etag); w.Code != 304 {
		t.Errorf("revalidation while busy: %d, want 304", w.Code)
	}
	hold()
	if w := s.get(t, "GET", path, ""); w.Code != 200 {
		t.Errorf("after release: %d, want 200", w.Code)
	}
	if st := lim.Stats(); st.Active != 0 {
		t.Errorf("the download kept its slot: %+v", st)
	}
	if st := s.h.Stats(); st.Busy != 2 || st.Files != 1 {
		t.Errorf("stats %+v, want 2 busy and 1 file", st)
	}
}

func TestPathTraversal(t *testing.T) {
	s := newSetup(t, options{})
	secret := filepath.Join(filepath.Dir(s.binDir), "secret.txt")
	if err := os.WriteFile(secret, []byte("SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A symlink out of BinDir that appears after New is not followed.
	if err := os.Symlink(secret, filepath.Join(s.binDir, "late.efi")); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.h)
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{
		"/images/../../etc/passwd",
		"/images/%2e%2e/%2e%2e/etc/passwd",
		"/images/" + string(s.version) + "/..%2f..%2fsecret.txt",
		"/images/" + string(s.version) + "/%2e%2e%2fcurrent",
		"/images/%2e%2e/current",
		"/bin/../../etc/passwd",
		"/bin/..%2f..%2fetc%2fpasswd",
		"/bin/..%2fsecret.txt",
		"/bin/%2e%2e",
		"/bin/late.efi",
		"/bin/.",
	} {
		req, _ := http.NewRequest("GET", srv.URL+p, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || bytes.Contains(body, []byte("SECRET")) || bytes.Contains(body, []byte("root:")) {
			t.Errorf("%s: %d %q, want it refused", p, resp.StatusCode, body)
		}
	}
}

func TestBinSymlinkAtStart(t *testing.T) {
	// Debian: /usr/lib/ipxe/ipxe.efi -> /boot/ipxe.efi, outside the folder.
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "boot"), 0o755)
	os.Mkdir(filepath.Join(dir, "ipxe"), 0o755)
	os.WriteFile(filepath.Join(dir, "boot", "ipxe.efi"), []byte("IPXE-EFI"), 0o644)
	if err := os.Symlink("../boot/ipxe.efi", filepath.Join(dir, "ipxe", "ipxe.efi")); err != nil {
		t.Fatal(err)
	}
	s := newSetup(t, options{})
	h, err := New(Config{BaseURL: base, Images: s.store, Machines: s.machines, BinDir: filepath.Join(dir, "ipxe")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/bin/ipxe.efi", nil))
	if w.Code != 200 || w.Body.String() != "IPXE-EFI" {
		t.Errorf("/bin/ipxe.efi: %d %q, want the symlink's target", w.Code, w.Body)
	}
}

// TestDownloadDuringPublish starts a download, publishes a new image and
// prunes the old one, then finishes the download: it must be the old bytes.
func TestDownloadDuringPublish(t *testing.T) {
	oldKernel := bytes.Repeat([]byte("old-kernel "), 400_000) // 4.4 MB: more than socket buffers hold
	s := newSetup(t, options{kernel: oldKernel})
	srv := httptest.NewServer(s.h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/images/" + string(s.version) + "/vmlinuz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	newV, err := s.store.Publish(t.Context(), imageSource(t, "0.2.0", bytes.Repeat([]byte("NEW-KERNEL "), 400_000), []byte("NEW")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := s.store.Prune(1); err != nil || len(removed) != 1 || removed[0] != s.version {
		t.Fatalf("Prune = %v, %v; want the old version removed", removed, err)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(first, rest...); !bytes.Equal(got, oldKernel) {
		t.Errorf("the download started before the publication got %d bytes that are not the old kernel", len(got))
	}
	if w := s.get(t, "GET", "/images/"+string(s.version)+"/vmlinuz", ""); w.Code != 404 {
		t.Errorf("the pruned version is still served: %d", w.Code)
	}
	if w := s.get(t, "GET", biosQuery, ipxeUA); !strings.Contains(w.Body.String(), "/images/"+string(newV)+"/vmlinuz") {
		t.Errorf("a new script does not name the new version %s:\n%s", newV, w.Body)
	}
}

func TestEnrol(t *testing.T) {
	s := newSetup(t, options{})
	s.machines.enrol = func(r enrolapi.Request) (enrolapi.Response, error) {
		if r.BootMAC == "52:54:00:00:00:99" {
			return enrolapi.Response{}, errors.New("inbox is read-only")
		}
		return enrolapi.Response{ID: "m-0001", State: enrolapi.Pending, RetryAfter: enrolapi.Duration(30 * time.Second), Message: "waiting"}, nil
	}
	srv := httptest.NewServer(s.h)
	defer srv.Close()

	req := enrolapi.Request{BootMAC: "52:54:00:AB:CD:EF", ID: "m-0001", Inventory: &hw.Inventory{}}
	body, _ := json.Marshal(req)
	body = append(body[:len(body)-1], []byte(`,"from_the_future":true}`)...) // unknown fields are fine
	resp, err := http.Post(srv.URL+enrolapi.Path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var got enrolapi.Response
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q, decode %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	if got.ID != "m-0001" || got.State != enrolapi.Pending || time.Duration(got.RetryAfter) != 30*time.Second {
		t.Errorf("response %+v", got)
	}
	if s.machines.lastEnrol.BootMAC != "52:54:00:ab:cd:ef" || s.machines.lastEnrol.Inventory == nil {
		t.Errorf("backend got %+v, want the normalised MAC and the inventory", s.machines.lastEnrol)
	}
	if s.machines.lastFrom != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("backend got address %v, want 127.0.0.1", s.machines.lastFrom)
	}

	tests := []struct {
		name, method, body string
		status             int
		want               string
	}{
		{"malformed", "POST", `{"boot_mac": `, 400, "malformed enrolment request"},
		{"wrong type", "POST", `{"boot_mac": 12}`, 400, "malformed enrolment request"},
		{"bad mac", "POST", `{"boot_mac": "nope"}`, 400, "not an Ethernet MAC"},
		{"too large", "POST", `{"boot_mac": "52:54:00:12:34:56", "id": "` + strings.Repeat("x", 2<<20) + `"}`, 413, "larger than 1 MiB"},
		{"backend error", "POST", `{"boot_mac": "52:54:00:00:00:99"}`, 500, "ask again later"},
		{"wrong method", "GET", "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+enrolapi.Path, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, b, tt.status, tt.want)
			}
		})
	}
	if st := s.h.Stats(); st.Enrolments != 1 || st.BadRequests != 4 {
		t.Errorf("stats %+v, want 1 enrolment and 4 bad requests", st)
	}
}

func TestRoutes(t *testing.T) {
	s := newSetup(t, options{})
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 404},
		{"GET", "/nothing", 404},
		{"GET", "/images/", 404},
		{"POST", "/boot.ipxe", 405},
		{"DELETE", "/images/x/vmlinuz", 405},
		{"PUT", "/bin/snponly.efi", 405},
		{"HEAD", "/boot.ipxe", 200},
	}
	for _, tt := range tests {
		if w := s.get(t, tt.method, tt.path, ""); w.Code != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, w.Code, tt.status)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	s := newSetup(t, options{})
	good := Config{BaseURL: base, Images: s.store, Machines: s.machines}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no scheme", func(c *Config) { c.BaseURL = "10.77.1.1:8080" }, "BaseURL"},
		{"with path", func(c *Config) { c.BaseURL = base + "/boot" }, "BaseURL"},
		{"with query", func(c *Config) { c.BaseURL = base + "?x=${y}" }, "BaseURL"},
		{"unsafe kernel arg", func(c *Config) { c.KernelArgs = "quiet ${evil}" }, "kernel argument"},
		{"kernel arg operator", func(c *Config) { c.KernelArgs = "quiet || shell" }, "kernel argument"},
		{"no images", func(c *Config) { c.Images = nil }, "Images"},
		{"no machines", func(c *Config) { c.Machines = nil }, "Machines"},
		{"missing bin dir", func(c *Config) { c.BinDir = "/nonexistent/ipxe" }, "BinDir"},
	}
	for _, tt := range tests {
		c := good
		tt.edit(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one about %s", tt.name, err, tt.want)
		}
	}
	h, err := New(Config{BaseURL: base + "/", Images: s.store, Machines: s.machines})
	if err != nil || h.base != base {
		t.Errorf("a trailing slash: %v, base %q", err, h.base)
	}
}

// BenchmarkStorm has 1,000 clients fetch a 10 MiB file at once over
// loopback, through a limiter of 100 slots and a queue of 1,000.
func BenchmarkStorm(b *testing.B) {
	const clients, size = 1000, 10 << 20
	s := newSetup(b, options{kernel: bytes.Repeat([]byte{0x5a}, size), limiter: admission.New(100, clients, time.Minute)})
	srv := httptest.NewServer(s.h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}}
	defer client.CloseIdleConnections()
	url := srv.URL + "/images/" + string(s.version) + "/vmlinuz"
	var all []time.Duration
	var total int64
	var elapsed time.Duration
	for b.Loop() {
		lat := make([]time.Duration, clients)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		start := time.Now()
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					return
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				mu.Lock()
				if resp.StatusCode != 200 || n != size {
					failures = append(failures, fmt.Sprintf("status %d, %d bytes", resp.StatusCode, n))
				}
				total += n
				mu.Unlock()
			}()
		}
		wg.Wait()
		elapsed += time.Since(start)
		if len(failures) > 0 {
			b.Fatalf("%d of %d downloads failed, e.g. %s", len(failures), clients, failures[0])
		}
		all = append(all, lat...)
	}
	slices.Sort(all)
	b.ReportMetric(float64(total)/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(all[len(all)*99/100].Milliseconds()), "p99-ms")
	b.ReportMetric(float64(all[len(all)/2].Milliseconds()), "p50-ms")
}
