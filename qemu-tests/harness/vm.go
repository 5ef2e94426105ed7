package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"
)

// VM is a running QEMU guest.
type VM struct {
	// Console is the serial port.
	Console *Console
	// Serial1 is the second serial port (Config.SecondSerial), nil without one.
	Serial1 *Console
	// Monitor is QEMU's QMP monitor.
	Monitor *Monitor

	cfg     Config // resolved: MACs, disk paths and TPM folder filled in
	qemu    *process
	tpm     *process // nil without a TPM
	name    string   // the stem of its log files: Config.Name, or Name-2... for a later boot in the same test
	qemuLog string
	log     *slog.Logger
	down    chan struct{} // closed once QEMU has exited and swtpm is gone
}

// startTimeout bounds the wait for QEMU's QMP socket.
const startTimeout = 60 * time.Second

// Start boots a VM as cfg says and returns once the guest runs; it fails the test if it cannot. The test's
// context (t.Context()) bounds the start. When t ends, QEMU is killed if it still runs, swtpm stops, and
// taps, sockets and scratch files go.
//
// QEMU runs with -accel tcg (or $ONECLOUD_QEMU_ACCEL), inside the lab's namespace if the VM has NICs.
func Start(t T, cfg Config) *VM {
	t.Helper()
	vm, err := start(t, cfg)
	if err != nil {
		t.Fatalf("harness: start VM %q: %v", cfg.Name, err)
	}
	return vm
}

func start(t T, cfg Config) (*VM, error) {
	ctx := t.Context()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	lab := cfg.lab()
	if lab != nil {
		if err := requireRoot(); err != nil {
			return nil, err
		}
	}
	qemuBin, err := lookTool("qemu-system-x86_64")
	if err != nil {
		return nil, err
	}
	accel, err := accelFromEnv()
	if err != nil {
		return nil, err
	}
	logs, err := openTestLogs(t)
	if err != nil {
		return nil, err
	}
	// Claiming the serial log picks the stem all this boot's files share.
	stem, serialLog, err := logs.claim(cfg.Name, ".serial.log")
	if err != nil {
		return nil, err
	}
	vm := &VM{
		name:    stem,
		cfg:     cfg,
		qemuLog: logs.path(stem + ".qemu.log"),
		log:     logs.logger(t).With("vm", stem),
		down:    make(chan struct{}),
	}
	closeSerialLog := true
	defer func() {
		if closeSerialLog {
			serialLog.Close()
		}
	}()
	dir, err := scratchDir(t, stem)
	if err != nil {
		return nil, err
	}
	spec := qemuSpec{Config: vm.cfg, Accel: accel, QMPSocket: filepath.Join(dir, "qmp.sock")}
	if vm.cfg.SecondSerial {
		spec.Serial1Socket = filepath.Join(dir, "serial1.sock")
	}

	for i := range vm.cfg.Disks {
		d := &vm.cfg.Disks[i]
		if d.Path == "" {
			d.Path = filepath.Join(dir, fmt.Sprintf("disk%d.qcow2", i))
			if err := createQcow2(ctx, logs, d.Path, d.SizeMB); err != nil {
				return nil, err
			}
		}
		spec.Disks = append(spec.Disks, d.Path)
	}
	for _, n := range vm.cfg.NICs {
		tap, err := n.Bridge.addTap(t)
		if err != nil {
			return nil, err
		}
		spec.Taps = append(spec.Taps, tap)
	}
	if vm.cfg.Boot == BootUEFIPXE {
		if spec.UEFIVars, err = uefiVars(vm.cfg.UEFIVars, dir); err != nil {
			return nil, err
		}
	}
	if vm.cfg.TPM != nil {
		if vm.cfg.TPM.StateDir == "" {
			vm.cfg.TPM.StateDir = filepath.Join(dir, "tpm")
		}
		if err := os.MkdirAll(vm.cfg.TPM.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("TPM state folder: %w", err)
		}
		vm.tpm, spec.TPMSocket, err = startSwtpm(ctx, logs, stem, dir, vm.cfg.TPM.StateDir)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { vm.tpm.kill(); <-vm.tpm.done })
	}
	spec.Config = vm.cfg

	argv := append([]string{qemuBin}, qemuArgs(spec)...)
	if lab != nil {
		argv = lab.wrap(argv)
	}
	if err := vm.startQEMU(t, logs, argv, serialLog, logs.path(stem+".serial.log")); err != nil {
		return nil, err
	}
	closeSerialLog = false // the console's reader owns it now

	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	vm.Monitor, err = dialMonitor(startCtx, spec.QMPSocket, vm.qemu.done)
	if err != nil {
		return nil, vm.startError(err)
	}
	if spec.Serial1Socket != "" {
		// QEMU listens before it runs the guest (it starts paused), so nothing the guest writes is lost.
		if err := vm.connectSerial1(startCtx, logs, stem, spec.Serial1Socket); err != nil {
			return nil, vm.startError(err)
		}
	}
	for i, n := range vm.cfg.NICs {
		if n.LinkDown {
			if err := vm.SetLink(startCtx, i, false); err != nil {
				return nil, vm.startError(err)
			}
		}
	}
	if err := vm.Monitor.Cont(startCtx); err != nil {
		return nil, vm.startError(err)
	}
	vm.log.Info("VM running", "pid", vm.qemu.pid(), "boot", vm.cfg.Boot, "serial", vm.Console.LogPath(), "netns", labName(lab))
	return vm, nil
}

// startQEMU starts QEMU with its serial port on pipes, and registers its teardown.
func (vm *VM) startQEMU(t T, logs *testLogs, argv []string, serialLog io.WriteCloser, serialPath string) error {
	qemuLog, err := os.Create(vm.qemuLog)
	if err != nil {
		return err
	}
	defer qemuLog.Close()
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return err
	}
	vm.qemu, err = startProcess(logs, "qemu", argv, procIO{stdin: inR, stdout: outW, stderr: qemuLog})
	// QEMU has its own copies now; ours of its ends would keep the pipes open after it exits.
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return err
	}
	var tee io.Writer = serialLog
	if vm.cfg.SerialOut != nil {
		tee = io.MultiWriter(serialLog, vm.cfg.SerialOut)
	}
	vm.Console = newConsole(outR, inW, tee, serialLog, serialPath)
	go vm.watch(inW, outR)
	t.Cleanup(vm.teardown(t))
	return nil
}

// connectSerial1 attaches Serial1 to the second serial port's socket.
func (vm *VM) connectSerial1(ctx context.Context, logs *testLogs, stem, sock string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("the second serial port's socket: %w", err)
	}
	path := logs.path(stem + ".serial1.log")
	log, err := os.Create(path)
	if err != nil {
		conn.Close()
		return err
	}
	vm.Serial1 = newConsole(conn, conn.(*net.UnixConn), log, multiCloser{log, conn}, path)
	return nil
}

// multiCloser closes each in turn.
type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var errs []error
	for _, c := range m {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// startError adds QEMU's stderr to an error during start, and stops QEMU.
func (vm *VM) startError(err error) error {
	vm.qemu.kill()
	<-vm.qemu.done
	return fmt.Errorf("%w; QEMU's stderr %s ends with: %s", err, vm.qemuLog, tailFile(vm.qemuLog, 10))
}

// uefiVars returns a writable OVMF variable store: the given one, or a fresh copy of the default.
func uefiVars(given, dir string) (string, error) {
	if given != "" {
		if _, err := os.Stat(given); err == nil {
			return given, nil
		}
	} else {
		given = filepath.Join(dir, "OVMF_VARS.fd")
	}
	if err := requireFile(ovmfVars); err != nil {
		return "", err
	}
	b, err := os.ReadFile(ovmfVars)
	if err != nil {
		return "", err
	}
	return given, os.WriteFile(given, b, 0o600)
}

func labName(l *Lab) string {
	if l == nil {
		return "(host)"
	}
	return l.name
}

// Config returns the VM's configuration with the defaults filled in: NIC MACs, disk image paths and the
// TPM state folder.
func (vm *VM) Config() Config { return vm.cfg }

// PID is QEMU's process id.
func (vm *VM) PID() int { return vm.qemu.pid() }

// TPMPID is swtpm's process id, 0 without a TPM.
func (vm *VM) TPMPID() int {
	if vm.tpm == nil {
		return 0
	}
	return vm.tpm.pid()
}

// Done is closed once the VM is down: QEMU has exited and its swtpm is gone.
func (vm *VM) Done() <-chan struct{} { return vm.down }

// SetLink plugs (up) or unplugs the cable of Config.NICs[nic].
func (vm *VM) SetLink(ctx context.Context, nic int, up bool) error {
	if nic < 0 || nic >= len(vm.cfg.NICs) {
		return fmt.Errorf("SetLink: the VM has no NIC %d", nic)
	}
	return vm.Monitor.SetLink(ctx, nicID(nic), up)
}
