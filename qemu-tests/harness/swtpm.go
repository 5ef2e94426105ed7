package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// TPM gives a VM a software TPM 2.0 (swtpm) on a TIS interface: the guest sees /dev/tpm0 and /dev/tpmrm0.
// swtpm exits when QEMU disconnects, so every boot starts its own; the TPM's identity (its seeds, and so
// its endorsement key) lives in the state folder, which outlives both.
type TPM struct {
	// StateDir keeps the TPM's state. "" means a fresh folder for this boot; give the same folder to
	// several boots (created if missing) to reboot a box with the same TPM. A folder prepared with
	// swtpm_setup (an endorsement certificate, say) is used as it is.
	StateDir string
}

const swtpmReadyTimeout = 15 * time.Second

// startSwtpm starts swtpm for one VM boot and waits for its control socket. stateDir must exist.
func startSwtpm(ctx context.Context, logs *testLogs, stem, sockDir, stateDir string) (*process, string, error) {
	swtpm, err := lookTool("swtpm")
	if err != nil {
		return nil, "", err
	}
	logPath := logs.path(stem + ".swtpm.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, "", err
	}
	defer logFile.Close()
	sock := filepath.Join(sockDir, "swtpm.sock")
	argv := []string{swtpm, "socket", "--tpm2",
		"--tpmstate", "dir=" + stateDir + ",mode=0600",
		"--ctrl", "type=unixio,path=" + sock,
		"--log", "file=" + logPath + ",level=1",
		"--terminate", // exit when QEMU goes, even if it was killed
	}
	p, err := startProcess(logs, "swtpm", argv, procIO{stdout: logFile, stderr: logFile})
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, swtpmReadyTimeout)
	defer cancel()
	if err := waitForSocket(ctx, sock, p); err != nil {
		p.kill()
		return nil, "", fmt.Errorf("swtpm: %w; its log %s ends with: %s", err, logPath, tailFile(logPath, 10))
	}
	return p, sock, nil
}

// waitForSocket waits until a program has created its listening unix socket, or has exited.
func waitForSocket(ctx context.Context, path string, p *process) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v) before creating %s", p.name, p.err, path)
		case <-ctx.Done():
			return fmt.Errorf("%s did not create %s: %w", p.name, path, ctx.Err())
		case <-tick.C:
		}
	}
}
