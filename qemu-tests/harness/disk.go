package harness

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Disk is a block device of a VM.
type Disk struct {
	// Path is an existing image to attach; it is left in place. "" means a new empty qcow2 image of SizeMB
	// in the VM's scratch folder, gone when the test ends. To reboot with the same disk, make it once with
	// CreateDisk and give its path to each boot.
	Path string
	// SizeMB is the size of a new image.
	SizeMB int
	// Format is the image format: "qcow2" (default) or "raw".
	Format string
	// Model is the QEMU device: "virtio-blk-pci" (default; /dev/vda in the guest), "ide-hd", "nvme".
	Model string
}

// CreateDisk makes an empty qcow2 image of sizeMB in t's temporary folder, for VMs of the test that should
// share it (a reboot, a power cut) and returns its path.
func CreateDisk(t T, sizeMB int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.qcow2")
	if err := createQcow2(t.Context(), nil, path, sizeMB); err != nil {
		t.Fatalf("harness: %v", err)
	}
	return path
}

// createQcow2 runs qemu-img create; logs, if not nil, records the command.
func createQcow2(ctx context.Context, logs *testLogs, path string, sizeMB int) error {
	if sizeMB <= 0 {
		return fmt.Errorf("disk %s: SizeMB must be positive", path)
	}
	qemuImg, err := lookTool("qemu-img")
	if err != nil {
		return err
	}
	argv := []string{qemuImg, "create", "-q", "-f", "qcow2", path, fmt.Sprintf("%dM", sizeMB)}
	if logs != nil {
		logs.command("qemu-img", 0, argv)
	}
	if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", shellQuote(argv), err, strings.TrimSpace(string(out)))
	}
	return nil
}
