package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

const (
	swtpmExitGrace = 10 * time.Second // swtpm to notice that QEMU has gone
	reapTimeout    = 30 * time.Second // a killed QEMU to be reaped
)

// ErrForcedStop is wrapped by Stop's error when the guest did not power off within Config.StopGrace and
// QEMU had to be killed.
var ErrForcedStop = errors.New("the guest did not power off on the ACPI power button, so QEMU was killed")

// Wait waits until the VM is down by itself, that is the guest powered off (or rebooted, with NoReboot).
// It returns nil if QEMU exited with status 0, or an error with the end of QEMU's stderr.
func (vm *VM) Wait(ctx context.Context) error {
	select {
	case <-vm.down:
		return vm.exitError()
	case <-ctx.Done():
		return fmt.Errorf("waiting for VM %s to power off: %w", vm.name, ctx.Err())
	}
}

func (vm *VM) exitError() error {
	if vm.qemu.err == nil {
		return nil
	}
	return fmt.Errorf("QEMU of VM %s exited: %w; its stderr %s ends with: %s", vm.name, vm.qemu.err, vm.qemuLog, tailFile(vm.qemuLog, 10))
}

// Stop shuts the VM down gracefully: it presses the ACPI power button and waits up to Config.StopGrace
// for the guest to power off. If the guest does not, it kills QEMU and returns an error wrapping
// ErrForcedStop. When ctx ends first, it kills QEMU too. Stopping a VM that is already down returns how
// it ended, like Wait.
func (vm *VM) Stop(ctx context.Context) error {
	select {
	case <-vm.down:
		return vm.exitError()
	default:
	}
	vm.log.Info("stop: pressing the ACPI power button", "grace", vm.cfg.StopGrace)
	if err := vm.Monitor.SystemPowerdown(ctx); err != nil && !errors.Is(err, ErrMonitorClosed) {
		vm.log.Warn("stop: power button", "err", err)
	}
	grace := time.NewTimer(vm.cfg.StopGrace)
	defer grace.Stop()
	select {
	case <-vm.down:
		return vm.exitError()
	case <-grace.C:
		if err := vm.Kill(ctx); err != nil {
			return err
		}
		return fmt.Errorf("VM %s: %w after %s", vm.name, ErrForcedStop, vm.cfg.StopGrace)
	case <-ctx.Done():
		killCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reapTimeout)
		defer cancel()
		kerr := vm.Kill(killCtx)
		return errors.Join(fmt.Errorf("stop VM %s: %w; QEMU was killed", vm.name, ctx.Err()), kerr)
	}
}

// Kill cuts the power: SIGKILL to QEMU, at whatever instant the guest is in. It returns once the VM is
// down, so the same disk and TPM state can boot again at once.
func (vm *VM) Kill(ctx context.Context) error {
	vm.qemu.kill()
	select {
	case <-vm.down:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kill VM %s: waiting for QEMU (pid %d) to go: %w", vm.name, vm.qemu.pid(), ctx.Err())
	}
}

// watch marks the VM down once QEMU has exited and its swtpm is gone too: swtpm leaves by itself when
// QEMU disconnects, and is killed if it has not after a grace period. A VM that is down holds no lock on
// its TPM state or disks, so the next boot can use them at once.
func (vm *VM) watch(stdin, stdout *os.File) {
	<-vm.qemu.done
	stdin.Close()
	if vm.tpm != nil {
		select {
		case <-vm.tpm.done:
		case <-time.After(swtpmExitGrace):
			vm.tpm.kill()
			<-vm.tpm.done
		}
	}
	// The console's reader sees EOF now that QEMU's end of the pipe is closed.
	<-vm.Console.readerDone
	if vm.Serial1 != nil {
		<-vm.Serial1.readerDone // its socket sees EOF once QEMU is gone
	}
	stdout.Close()
	close(vm.down)
}

// teardown kills QEMU if it still runs when the test ends.
func (vm *VM) teardown(t T) func() {
	return func() {
		if vm.Monitor != nil {
			defer vm.Monitor.Close()
		}
		if !vm.qemu.exited() {
			vm.log.Info("test over: killing QEMU", "pid", vm.qemu.pid())
			vm.qemu.kill()
		}
		select {
		case <-vm.down:
		case <-time.After(reapTimeout):
			t.Errorf("harness: QEMU (pid %d) or its swtpm did not go within %s of SIGKILL", vm.qemu.pid(), reapTimeout)
		}
	}
}
