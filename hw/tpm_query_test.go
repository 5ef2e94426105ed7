package hw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport/tcp"
)

// TestTPMManufacturerSWTPM asks a real (software) TPM 2.0. swtpm reports
// the vendor ID of its libtpms, "IBM".
func TestTPMManufacturerSWTPM(t *testing.T) {
	tpm := startSWTPM(t)
	id, err := TPMManufacturer(tpm)
	if err != nil {
		t.Fatalf("TPMManufacturer: %v", err)
	}
	if id != "IBM" {
		t.Fatalf("TPMManufacturer = %q, want \"IBM\" (libtpms)", id)
	}

	inv, err := Collect(filepath.Join("testdata", "qemu-guest"))
	if err != nil {
		t.Fatal(err)
	}
	inv.SetTPMManufacturer(id)
	if inv.TPM.Manufacturer != "IBM" || inv.TPM.ManufacturerName != "IBM" {
		t.Errorf("TPM after SetTPMManufacturer = %+v", inv.TPM)
	}
	if s := inv.Summary(); !strings.HasSuffix(s, ", TPM 2.0 IBM") {
		t.Errorf("Summary() = %q, want it to end in \", TPM 2.0 IBM\"", s)
	}
}

// startSWTPM starts swtpm on two free loopback ports (commands on P,
// control on P+1, as go-tpm's TCP transport expects) and connects to it.
// The process is killed by its PID when the test ends, passed or failed.
func startSWTPM(t *testing.T) *tcp.TPM {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		t.Fatalf("this test needs swtpm (%v): apt-get install swtpm", err)
	}
	var lastErr error
	// Another process may take a port between our check and swtpm's bind;
	// then try other ports.
	for range 5 {
		port, err := freePortPair()
		if err != nil {
			t.Fatalf("no free loopback ports: %v", err)
		}
		cmd := exec.Command(bin, "socket", "--tpm2",
			"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
			"--tpmstate", "dir="+t.TempDir(),
			"--flags", "startup-clear")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start swtpm: %v", err)
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		cfg := tcp.Config{
			CommandAddress:  fmt.Sprintf("127.0.0.1:%d", port),
			PlatformAddress: fmt.Sprintf("127.0.0.1:%d", port+1),
		}
		if err := waitListening(cfg.PlatformAddress, exited); err != nil {
			lastErr = fmt.Errorf("%w; swtpm said: %s", err, stderr.String())
			continue
		}
		tpm, err := tcp.Open(cfg)
		if err != nil {
			lastErr = err
			continue
		}
		t.Cleanup(func() { tpm.Close() })
		return tpm
	}
	t.Fatalf("swtpm did not start: %v", lastErr)
	return nil
}

// freePortPair finds a port P such that P and P+1 are both free on
// loopback.
func freePortPair() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port, nil
		}
	}
	return 0, errors.New("no two adjacent free ports")
}

// waitListening waits until addr accepts connections, or the process ends.
// The deadline only bounds a hung start; it asserts nothing about speed.
func waitListening(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("swtpm exited")
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			return c.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s does not accept connections", addr)
}

// fakeTPM answers every command with a fixed response.
type fakeTPM struct {
	rsp []byte
	err error
}

func (f fakeTPM) Send([]byte) ([]byte, error) { return f.rsp, f.err }

// capResponse builds a TPM2_GetCapability response holding TPM properties
// (tag, value pairs).
func capResponse(props ...[2]uint32) []byte {
	body := []byte{0}                             // moreData: no
	body = binary.BigEndian.AppendUint32(body, 6) // TPM_CAP_TPM_PROPERTIES
	body = binary.BigEndian.AppendUint32(body, uint32(len(props)))
	for _, p := range props {
		body = binary.BigEndian.AppendUint32(body, p[0])
		body = binary.BigEndian.AppendUint32(body, p[1])
	}
	return tpmResponse(0, body)
}

// tpmResponse builds a response: header (tag, size, response code), body.
func tpmResponse(rc uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0x8001) // TPM_ST_NO_SESSIONS
	b = binary.BigEndian.AppendUint32(b, uint32(10+len(body)))
	b = binary.BigEndian.AppendUint32(b, rc)
	return append(b, body...)
}

func TestTPMManufacturerAnswers(t *testing.T) {
	const manufacturer = 0x105 // TPM_PT_MANUFACTURER
	tests := []struct {
		name    string
		tpm     fakeTPM
		want    string
		wantErr string
	}{
		{"Nuvoton", fakeTPM{rsp: capResponse([2]uint32{manufacturer, 0x4e544300})}, "NTC", ""},
		{"STMicro pads with a space", fakeTPM{rsp: capResponse([2]uint32{manufacturer, 0x53544d20})}, "STM", ""},
		{"next property instead", fakeTPM{rsp: capResponse([2]uint32{manufacturer + 1, 0x4e544300})}, "", "did not report TPM_PT_MANUFACTURER"},
		{"no properties", fakeTPM{rsp: capResponse()}, "", "did not report TPM_PT_MANUFACTURER"},
		{"TPM error", fakeTPM{rsp: tpmResponse(0x101, nil)}, "", "TPM2_GetCapability"}, // TPM_RC_FAILURE
		{"transport error", fakeTPM{err: errors.New("device gone")}, "", "device gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TPMManufacturer(tt.tpm)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("TPMManufacturer = %q, %v; want an error saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("TPMManufacturer = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
