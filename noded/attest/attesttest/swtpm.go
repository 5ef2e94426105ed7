// Package attesttest runs software TPMs (swtpm) for the attestation tests:
// a TPM per test as a TCP server on loopback, and TPMs "manufactured" with
// an EK certificate from a test CA, the way a TPM vendor ships them.
//
// swtpm's --server channel speaks raw TPM 2.0 commands (no TCG simulator
// framing), so the transport here writes a command and reads one response
// by its header; go-tpm's tcp transport speaks the Microsoft simulator
// protocol and is not used.
package attesttest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/onecloud-edu/onecloud/noded/attest/tcptpm"
)

// Package names what to install when a tool is missing.
const Package = "swtpm swtpm-tools"

// Swtpm is one running software TPM.
type Swtpm struct {
	// Conn talks to the TPM; it is a transport.TPMCloser.
	Conn *Conn
	// Dir is the TPM's state directory.
	Dir string

	cmd    *exec.Cmd
	exited chan struct{} // closed when swtpm has exited and been waited for
	once   sync.Once
}

// Start runs swtpm on the state in dir (created when empty) and connects to
// it. The process is killed by its PID when the test ends. A missing swtpm
// fails the test with the package to install.
func Start(t T, dir string) *Swtpm {
	t.Helper()
	s, err := start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// Stop kills the swtpm process (by its PID) and waits for it; a second
// call does nothing.
func (s *Swtpm) Stop() {
	s.once.Do(func() {
		s.Conn.Close()
		s.cmd.Process.Kill()
		<-s.exited
	})
}

func start(dir string) (*Swtpm, error) {
	if strings.Contains(dir, ",") {
		// swtpm's option syntax has no escape for a comma.
		return nil, fmt.Errorf("swtpm cannot use the state directory %q: it contains a comma", dir)
	}
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		return nil, fmt.Errorf("swtpm not found: install the Debian packages %q (apt-get install %s)", Package, Package)
	}
	// The TCP connection is made here and swtpm gets its end as an open
	// descriptor (--server fd= takes a connected socket), the control
	// channel a listening one: loopback TCP on free ports, with no window
	// in which another process could take a port.
	conn, served, err := connectedPair()
	if err != nil {
		return nil, err
	}
	defer served.Close()
	ctrl, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("listen on loopback for swtpm: %w", err)
	}
	defer ctrl.Close()
	ctrlFile, err := ctrl.File()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("listen on loopback for swtpm: %w", err)
	}
	defer ctrlFile.Close()

	var stderr lockedBuffer
	cmd := exec.Command(bin, "socket", "--tpm2",
		"--server", "type=tcp,fd=3",
		"--ctrl", "type=tcp,fd=4",
		"--tpmstate", "dir="+dir,
		"--flags", "not-need-init,startup-clear")
	cmd.ExtraFiles = []*os.File{served, ctrlFile}
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	// The TPM dies with the test binary even when the test is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	s := &Swtpm{Conn: conn, Dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		// A TPM that died makes the next read fail now, not at a deadline.
		conn.Close()
		close(s.exited)
	}()
	// The first command proves the TPM answers (startup-clear has run).
	if _, err := conn.Send(getRandom); err != nil {
		s.Stop()
		return nil, fmt.Errorf("swtpm on %s does not answer: %w (swtpm said: %s)", dir, err, stderr.String())
	}
	return s, nil
}

// lockedBuffer collects swtpm's output while the test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// getRandom is TPM2_GetRandom(8): a harmless first command.
var getRandom = []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8}

// connectedPair makes a loopback TCP connection and returns our end and
// the other end as a file for swtpm.
func connectedPair() (*Conn, *os.File, error) {
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, fmt.Errorf("listen on loopback for swtpm: %w", err)
	}
	defer l.Close()
	c, err := net.DialTCP("tcp", nil, l.Addr().(*net.TCPAddr))
	if err != nil {
		return nil, nil, fmt.Errorf("connect on loopback for swtpm: %w", err)
	}
	a, err := l.AcceptTCP()
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("accept on loopback for swtpm: %w", err)
	}
	defer a.Close()
	f, err := a.File()
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("accept on loopback for swtpm: %w", err)
	}
	return tcptpm.New(c), f, nil
}

// T is what these helpers need of a test. *testing.T and *testing.B satisfy
// it, and so does a program such as a bench that supplies the same methods
// (Fatal must not return).
type T interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Context() context.Context
	Output() io.Writer
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// Conn is a raw TPM 2.0 command stream over TCP (swtpm's --server): the
// transport noded uses for -tpm tcp:HOST:PORT.
type Conn = tcptpm.Conn

// Factory makes software TPMs. A manufactured TPM's state is made once per
// chip by swtpm_setup (about a second, the test CA once more) and copied
// for each TPM started; hold one Factory per test binary (in TestMain) to
// pay that once.
type Factory struct {
	dir string

	mu    sync.Mutex
	ca    *CA
	chips map[int]string // manufactured state per chip, to copy
}

// CA is the test CA that issued the EK certificates of manufactured TPMs:
// a root and the intermediate that signs, as a TPM vendor publishes both.
type CA struct {
	Roots         *x509.CertPool
	Intermediates *x509.CertPool
	// PEM is the root and the intermediate, as a verifier's bundle of
	// manufacturer CAs (noded server -ek-ca) holds them.
	PEM []byte
}

// NewFactory keeps its state under dir, which the caller removes.
func NewFactory(dir string) *Factory { return &Factory{dir: dir, chips: map[int]string{}} }

// Main is a test binary's TestMain: it sets *f to a Factory whose chips live
// in a temporary folder for the whole run (so each manufactured chip is
// prepared once), runs the tests, removes the folder and exits.
//
//	var tpms *attesttest.Factory
//	func TestMain(m *testing.M) { attesttest.Main(m, &tpms) }
func Main(m *testing.M, f **Factory) {
	dir, err := os.MkdirTemp("", "attesttest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "attesttest: a folder for the software TPMs:", err)
		os.Exit(2)
	}
	*f = NewFactory(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Plain starts a TPM with no EK certificate, a new chip each time (a fresh
// state in a test directory).
func (f *Factory) Plain(t T) *Swtpm {
	t.Helper()
	return Start(t, stateDir(t))
}

// stateDir is a new empty directory for a TPM's state, removed when the test
// ends. Not t.TempDir: subtest names put commas into its paths.
func stateDir(t T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "swtpm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Manufactured starts a TPM whose NV holds an RSA EK certificate
// (0x01C00002) from the factory's test CA. chip names the TPM: the same
// chip is the same EK every time (a copy of its state), different chips
// have different EKs.
func (f *Factory) Manufactured(t T, chip int) *Swtpm {
	t.Helper()
	state, err := f.chip(chip)
	if err != nil {
		t.Fatal(err)
	}
	dir := stateDir(t)
	if err := os.CopyFS(dir, os.DirFS(state)); err != nil {
		t.Fatalf("copy manufactured TPM state: %v", err)
	}
	return Start(t, dir)
}

// ManufacturedState copies chip's manufactured state (see Manufactured)
// into dir, for a swtpm that something else starts: a QEMU VM's.
func (f *Factory) ManufacturedState(t T, chip int, dir string) {
	t.Helper()
	state, err := f.chip(chip)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, os.DirFS(state)); err != nil {
		t.Fatalf("copy manufactured TPM state: %v", err)
	}
}

// CA returns the factory's test CA (made on first use).
func (f *Factory) CA(t T) *CA {
	t.Helper()
	if _, err := f.chip(0); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ca
}

func (f *Factory) chip(n int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.chips[n]; ok {
		return s, nil
	}
	state := filepath.Join(f.dir, fmt.Sprintf("chip%d", n))
	ca, err := manufacture(f.dir, state)
	if err != nil {
		return "", err
	}
	f.ca = ca
	f.chips[n] = state
	return state, nil
}

// manufacture runs swtpm_setup into state with a local CA configured in
// dir (never the system's /etc/swtpm-localca.conf) and returns the CA.
func manufacture(dir, state string) (*CA, error) {
	setup, err := exec.LookPath("swtpm_setup")
	if err != nil {
		return nil, fmt.Errorf("swtpm_setup not found: install the Debian packages %q (apt-get install %s)", Package, Package)
	}
	localca, err := exec.LookPath("swtpm_localca")
	if err != nil {
		return nil, fmt.Errorf("swtpm_localca not found: install the Debian packages %q (apt-get install %s)", Package, Package)
	}
	caDir := filepath.Join(dir, "ca")
	for _, d := range []string{caDir, state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		// swtpm_localca creates the root CA and an intermediate signing
		// key here on first use, because signkey.pem does not exist yet.
		"swtpm-localca.conf":    fmt.Sprintf("statedir = %[1]s\nsigningkey = %[1]s/signkey.pem\nissuercert = %[1]s/issuercert.pem\ncertserial = %[1]s/certserial\n", caDir),
		"swtpm-localca.options": "--platform-manufacturer onecloud-test\n--platform-version 1.0\n--platform-model swtpm\n",
		"swtpm_setup.conf": fmt.Sprintf("create_certs_tool = %[1]s\ncreate_certs_tool_config = %[2]s/swtpm-localca.conf\ncreate_certs_tool_options = %[2]s/swtpm-localca.options\nactive_pcr_banks = sha256\n",
			localca, dir),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	log := filepath.Join(dir, "swtpm_setup.log")
	out, err := exec.Command(setup, "--tpm2", "--tpmstate", state, "--create-ek-cert",
		"--config", filepath.Join(dir, "swtpm_setup.conf"), "--logfile", log).CombinedOutput()
	if err != nil {
		text, _ := os.ReadFile(log)
		return nil, fmt.Errorf("swtpm_setup: %w: %s%s", err, out, text)
	}
	root, err := os.ReadFile(filepath.Join(caDir, "swtpm-localca-rootca-cert.pem"))
	if err != nil {
		return nil, fmt.Errorf("swtpm_localca left no root CA: %w", err)
	}
	// The intermediate that signs EK certificates is not in the TPM's NV;
	// a vendor publishes it beside its root.
	inter, err := os.ReadFile(filepath.Join(caDir, "issuercert.pem"))
	if err != nil {
		return nil, fmt.Errorf("swtpm_localca left no issuer certificate: %w", err)
	}
	ca := &CA{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool(), PEM: slices.Concat(root, inter)}
	for i, p := range [][]byte{root, inter} {
		b, _ := pem.Decode(p)
		if b == nil {
			return nil, errors.New("swtpm_localca wrote a certificate that is not PEM")
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("swtpm_localca certificate: %w", err)
		}
		if i == 0 {
			ca.Roots.AddCert(c)
		} else {
			ca.Intermediates.AddCert(c)
		}
	}
	return ca, nil
}
