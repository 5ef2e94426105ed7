package measure

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport/tcp"
)

// startSWTPM starts a fresh software TPM 2.0 on two loopback ports and
// returns a connection to it; both end with the test.
func startSWTPM(t *testing.T) *tcp.TPM {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		t.Fatalf("swtpm is not installed: apt-get install swtpm (%v)", err)
	}
	// swtpm binds its ports itself: pick two free ones, and try again
	// should another process take one in between.
	var lastErr error
	for range 5 {
		port, err := freePortPair()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "socket", "--tpm2",
			"--server", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(port),
			"--ctrl", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(port+1),
			"--tpmstate", "dir="+t.TempDir(),
			"--flags", "not-need-init,startup-clear")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start swtpm: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}
		tpm, err := dialSWTPM(port, exited)
		if err != nil {
			stop()
			lastErr = fmt.Errorf("%v; swtpm said: %s", err, out.String())
			continue
		}
		t.Cleanup(func() {
			tpm.Close()
			stop()
		})
		return tpm
	}
	t.Fatalf("swtpm did not come up: %v", lastErr)
	return nil
}

// freePortPair finds a port p such that p and p+1 are free on loopback.
func freePortPair() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no two consecutive free ports on 127.0.0.1")
}

func dialSWTPM(port int, exited <-chan struct{}) (*tcp.TPM, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		tpm, err := tcp.Open(tcp.Config{
			CommandAddress:  "127.0.0.1:" + strconv.Itoa(port),
			PlatformAddress: "127.0.0.1:" + strconv.Itoa(port+1),
		})
		if err == nil {
			return tpm, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("swtpm exited: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, err
		}
	}
}

// TestMeasurerSWTPM measures into a real (software) TPM and checks that the
// log replays to the TPM's PCR 13 in every bank, SHA-1 and SHA-256 at least.
func TestMeasurerSWTPM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dev := Device{TPM: startSWTPM(t)}
	dir := t.TempDir()
	path := filepath.Join(dir, "measurements.log")
	m, err := NewMeasurer(ctx, dev, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	banks := m.Banks()
	if !slices.Contains(banks, crypto.SHA1) || !slices.Contains(banks, crypto.SHA256) {
		t.Fatalf("banks %v, want SHA-1 and SHA-256 among them", banks)
	}
	compare := func(events []Event) {
		t.Helper()
		for _, h := range banks {
			got, err := dev.Read(ctx, PCR, h)
			if err != nil {
				t.Fatal(err)
			}
			if want := Replay(events, h)[PCR]; !bytes.Equal(got, want) {
				t.Errorf("%v: TPM PCR %d = %x, replay of the log = %x", h, PCR, got, want)
			}
		}
	}
	compare(measureBoth(t, ctx, m, dir))
	if err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}

	// Another stage continues the log on the same boot.
	m2, err := NewMeasurer(ctx, dev, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := measureBoth(t, ctx, m2, dir)
	if len(events) != 5 {
		t.Fatalf("%d events, want 5", len(events))
	}
	compare(events)

	// A stage that starts a new log while the PCR holds measurements (a
	// log not handed over) is caught by Check.
	m3, err := NewMeasurer(ctx, dev, filepath.Join(dir, "other.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m3.Check(ctx); err == nil {
		t.Fatal("Check accepted a new log for a PCR that holds measurements")
	}
}
