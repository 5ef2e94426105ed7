package power

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Off flushes the file systems and powers the box off. It returns only when
// the kernel refused (no CAP_SYS_BOOT: not running as the box's firmware).
// Stop the services first: the kernel does not ask them.
func Off() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		return fmt.Errorf("power off: %w", err)
	}
	return nil
}

// Reboot flushes the file systems and restarts the box, which then boots
// from the network again (and so takes the role it was just approved for).
// It returns only when the kernel refused. Stop the services first.
func Reboot() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return nil
}
