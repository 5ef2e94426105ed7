package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

const (
	// readyLine is what the onecloud firmware prints once the box has an address and noded answers
	// (ReadyLine in firmware/cmd/onecloud-init, a main package, which cannot be imported).
	readyLine = "onecloud: ready"
	// initLine is what the kernel prints when it hands over to the initramfs's /init. Both images print
	// it, with the kernel's own timestamp: it splits a boot into the kernel's part and userspace's.
	initLine = "Run /init as init process"
	// cmdline is the kernel command line of both images: the serial console and nothing else, so that
	// the firmware runs with its defaults, as on a real box.
	cmdline = "console=ttyS0,115200"
	// bridgeCIDR is the lab network's address; the lab is a namespace of its own, so it collides with
	// nothing.
	bridgeCIDR = "10.77.200.1/24"
	// memoryMB and vCPUs are both images' VM, as the QEMU tests run the image.
	memoryMB = 512
	vCPUs    = 1
	// killTimeout bounds waiting for a killed QEMU to be gone.
	killTimeout = 30 * time.Second
)

// Run is one boot, timed on the host from QEMU's start.
type Run struct {
	Image string `json:"image"`
	N     int    `json:"n"`     // the image's nth boot
	Order int    `json:"order"` // position among all boots of the run
	// Total is QEMU's start to the marker line, in seconds of host time.
	Total float64 `json:"total_seconds"`
	// Started is QEMU's start until the guest CPU runs (the harness starts QEMU paused, then continues it).
	Started float64 `json:"qemu_started_seconds"`
	// Init is QEMU's start to the kernel's "Run /init" line, host time; KernelClock is the kernel's own
	// timestamp on that line, the time from the kernel's start to /init. Both are -1 if the line did not
	// show.
	Init        float64 `json:"init_seconds"`
	KernelClock float64 `json:"kernel_clock_seconds"`
	Log         string  `json:"serial_log"`
}

// phases splits the boot in three: QEMU, BIOS and loading and unpacking the kernel up to its first
// timestamp; the kernel up to /init; /init up to the marker. ok is false if the /init line was not seen.
func (r Run) phases() (beforeKernel, kernel, userspace float64, ok bool) {
	if r.Init < 0 || r.KernelClock < 0 {
		return 0, 0, 0, false
	}
	return r.Init - r.KernelClock, r.KernelClock, r.Total - r.Init, true
}

// bootAll boots the images n times each, alternating (first image, second, first, second, ...) so that
// both see the same load on the machine, one VM at a time, each on the same lab network with a DHCP
// server. Every VM has the same QEMU settings: the harness's defaults (TCG, 512 MiB, one vCPU) and one
// e1000 NIC, which only the onecloud image has a driver for, but which both get for the same machine.
func bootAll(ctx context.Context, sess *harness.Session, imgs []imageSpec, n int, timeout time.Duration, logDir string, log *slog.Logger) ([]Run, error) {
	lab := harness.NewLab(sess)
	lan := lab.Bridge(sess, "lan", bridgeCIDR)
	lan.DHCP(sess, harness.DHCPConfig{})
	var runs []Run
	for i := 1; i <= n; i++ {
		for _, img := range imgs {
			r, err := bootOnce(ctx, sess, lan, img, i, timeout, logDir)
			if err != nil {
				return nil, err
			}
			r.Order = len(runs) + 1
			runs = append(runs, r)
			log.Info("booted", "image", img.Name, "boot", fmt.Sprintf("%d/%d", i, n),
				"to_marker", fmt.Sprintf("%.2fs", r.Total), "to_init", fmt.Sprintf("%.2fs", r.Init), "serial", r.Log)
		}
	}
	return runs, nil
}

// bootOnce boots img, waits for its marker line, and cuts the power.
func bootOnce(ctx context.Context, sess *harness.Session, lan *harness.Bridge, img imageSpec, n int, timeout time.Duration, logDir string) (Run, error) {
	r := Run{Image: img.Name, N: n, Log: filepath.Join(logDir, fmt.Sprintf("%s-%d.serial.log", img.Name, n))}
	logFile, err := os.Create(r.Log)
	if err != nil {
		return r, err
	}
	defer logFile.Close()
	markerRE := "^" + regexp.QuoteMeta(img.Marker)
	clock := newSerialClock(logFile, time.Now, initLine, img.Marker)

	vm := harness.Start(sess, harness.Config{
		Name:      img.Name,
		Kernel:    filepath.Join(img.Dir, "vmlinuz"),
		Initrd:    filepath.Join(img.Dir, "initramfs.cpio.gz"),
		Append:    cmdline,
		MemoryMB:  memoryMB,
		CPUs:      vCPUs,
		NICs:      []harness.NIC{{Bridge: lan, MAC: img.MAC}},
		SerialOut: clock,
	})
	r.Started = time.Since(clock.start).Seconds()
	_, waitErr := vm.Console.Expect(ctx, "(?m)"+markerRE, timeout)

	// The marker is all a boot is measured to; pulling the plug is quickest, and nothing on the VM
	// needs to be kept.
	killCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
	defer cancel()
	killErr := vm.Kill(killCtx)
	logErr := clock.flush()
	if waitErr != nil {
		return r, fmt.Errorf("boot %d of the %s image: %w", n, img.Name, waitErr)
	}
	if killErr != nil {
		return r, killErr
	}
	if logErr != nil {
		return r, fmt.Errorf("write the serial log %s: %w", r.Log, logErr)
	}

	marker, _, _ := clock.seen(img.Marker)
	r.Total = marker.Seconds()
	r.Init, r.KernelClock = -1, -1
	if at, line, ok := clock.seen(initLine); ok {
		r.Init = at.Seconds()
		if ts, ok := kernelTimestamp(line); ok {
			r.KernelClock = ts
		}
	}
	return r, nil
}

// kernelTimeRE is the kernel's timestamp at the start of a console line: "[    5.123456] ".
var kernelTimeRE = regexp.MustCompile(`^\[\s*(\d+\.\d+)\] `)

// kernelTimestamp reads the kernel's timestamp off a console line.
func kernelTimestamp(line string) (float64, bool) {
	m := kernelTimeRE.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	ts, err := strconv.ParseFloat(m[1], 64)
	return ts, err == nil
}

// serialClock is a boot's serial console as the bench sees it (Config.SerialOut): it notes when each
// watched line first shows, in host time since start, and writes every line to the boot's log prefixed
// with that time, so that the log shows where a boot spends its time.
//
// A watched line is one that starts with the watched text, or with a kernel timestamp and then the text:
// "onecloud: ready", "[    5.12] Run /init as init process". It counts as seen as soon as the text is
// complete, even before its line ends, as the harness's Expect sees it. Carriage returns are dropped, as
// the harness does.
type serialClock struct {
	start time.Time
	now   func() time.Time

	mu      sync.Mutex
	log     io.Writer
	logErr  error
	line    []byte
	watches []watch
}

type watch struct {
	text string
	re   *regexp.Regexp
	at   time.Duration // when it was seen; -1 until then
	line string        // the whole line it was seen on, once that line ended
}

func newSerialClock(log io.Writer, now func() time.Time, texts ...string) *serialClock {
	c := &serialClock{start: now(), now: now, log: log}
	for _, t := range texts {
		c.watches = append(c.watches, watch{
			text: t,
			re:   regexp.MustCompile(`^(?:\[\s*\d+\.\d+\] )?` + regexp.QuoteMeta(t)),
			at:   -1,
		})
	}
	return c
}

// Write implements io.Writer. It never fails: the console must take everything the guest writes; a log
// that cannot be written is reported by flush.
func (c *serialClock) Write(p []byte) (int, error) {
	at := c.now().Sub(c.start)
	c.mu.Lock()
	defer c.mu.Unlock()
	rest := p
	for len(rest) > 0 {
		chunk := rest
		i := bytes.IndexByte(rest, '\n')
		if i >= 0 {
			chunk = rest[:i]
		}
		c.line = append(c.line, bytes.ReplaceAll(chunk, []byte("\r"), nil)...)
		for k := range c.watches {
			if w := &c.watches[k]; w.at < 0 && w.re.Match(c.line) {
				w.at = at
			}
		}
		if i < 0 {
			break
		}
		c.endLine(at)
		rest = rest[i+1:]
	}
	return len(p), nil
}

// endLine logs the current line and keeps it for the watches seen on it.
func (c *serialClock) endLine(at time.Duration) {
	for k := range c.watches {
		if w := &c.watches[k]; w.at >= 0 && w.line == "" && w.re.Match(c.line) {
			w.line = string(c.line)
		}
	}
	if _, err := fmt.Fprintf(c.log, "%8.3f  %s\n", at.Seconds(), c.line); err != nil && c.logErr == nil {
		c.logErr = err
	}
	c.line = c.line[:0]
}

// flush logs a last line that has no newline, and returns the first error writing the log. Call it once
// the VM is down.
func (c *serialClock) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.line) > 0 {
		c.endLine(c.now().Sub(c.start))
	}
	return c.logErr
}

// seen returns when text was first seen and the line it was on. ok is false if it was not.
func (c *serialClock) seen(text string) (at time.Duration, line string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.watches {
		if w.text == text && w.at >= 0 {
			return w.at, w.line, true
		}
	}
	return 0, "", false
}

// removeRunScratch removes the harness's scratch folder of this process, <tmp>/ocq-<pid>-<start>.
// The session's cleanups empty it (each VM, bridge and dnsmasq removes its own folder in it) but leave
// the folder itself, which harness.Main removes for test binaries and a program must remove itself.
// os.Remove removes only an empty folder, so nothing that still belongs to a live VM goes.
func removeRunScratch() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("ocq-%d-*", os.Getpid())))
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}
