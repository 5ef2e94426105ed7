// Command onecloud-console is the node console: a full-screen menu in
// Chinese and English on the box's own screen and on its serial port, one
// process per terminal, supervised by the firmware (onecloud-init), which
// restarts it if it dies; the box boots on without it.
//
//	onecloud-console -tty tty1     on the screen: drawn on the framebuffer
//	                               (/dev/fb0) with the embedded CJK font,
//	                               keys from the keyboard on tty1; without a
//	                               framebuffer, English on the text console
//	onecloud-console -tty ttyS0    on a serial port (a VT100, UTF-8): the port
//	                               shows the boot log until Enter is pressed
//	                               there, then the menu
//
// It shows what the firmware last drew (screen.StatePath) with the box's
// live numbers (/proc) and carries out the technician's actions through
// the firmware's control API (firmware/control), which owns the network
// and the power. The PIN that opens the admin menu and the language come
// from the cluster (the enrolment answer), else the kernel command line
// (onecloud.pin, onecloud.lang).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/onecloud-edu/onecloud/firmware/cmdline"
	"github.com/onecloud-edu/onecloud/firmware/console/cells"
	"github.com/onecloud-edu/onecloud/firmware/console/fb"
	"github.com/onecloud-edu/onecloud/firmware/console/input"
	"github.com/onecloud-edu/onecloud/firmware/console/ui"
	"github.com/onecloud-edu/onecloud/firmware/console/vt"
	"github.com/onecloud-edu/onecloud/firmware/control"
	"github.com/onecloud-edu/onecloud/firmware/screen"
)

// lockPath keeps the PIN lockout, shared by every console of the box.
const lockPath = "/run/onecloud/console-lock.json"

func main() {
	tty := flag.String("tty", "", "the terminal to run on: tty1 (the screen) or a serial port such as ttyS0 (required)")
	fbDev := flag.String("fb", "/dev/fb0", "with a ttyN: the framebuffer to draw on")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("tty", *tty)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *tty, *fbDev, log); err != nil {
		log.Error("node console stopped", "err", err)
		fmt.Fprintln(os.Stderr, "onecloud-console:", err)
		os.Exit(1)
	}
}

// output is where a frame goes: the framebuffer or a terminal.
type output interface {
	Render(f *cells.Frame) error
	Invalidate()
}

type fbOutput struct{ *fb.Framebuffer }

func (o fbOutput) Render(f *cells.Frame) error { o.Draw(f); return nil }

func run(ctx context.Context, tty, fbDev string, log *slog.Logger) error {
	if tty == "" || strings.ContainsAny(tty, "/.") {
		return errors.New("-tty: give a terminal name such as tty1 or ttyS0")
	}
	serial := !isScreen(tty)
	b, _ := os.ReadFile("/proc/cmdline")
	opts, _ := cmdline.Parse(string(b))

	f, err := os.OpenFile("/dev/"+tty, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open the terminal: %w", err)
	}
	defer f.Close()

	cols, rows := vt.DefaultCols, vt.DefaultRows
	var out output
	ascii := false
	if serial {
		if isKernelConsole(tty) {
			// A menu marked open by a console of this port that died is not.
			os.Remove(screen.MenuActivePath)
		}
		restore, err := cbreak(f)
		if err != nil {
			return err
		}
		defer restore()
		if c, r, err := vt.Size(f); err == nil && c >= vt.DefaultCols && r >= vt.DefaultRows {
			cols, rows = c, r
		}
		r := vt.NewRenderer(f)
		defer r.Restore()
		out = r
	} else {
		restore, err := vt.MakeRaw(f)
		if err != nil {
			return err
		}
		defer restore()
		// The graphics driver is among the last to load (after the box is
		// ready): wait for it a while before settling for text.
		waitFor(ctx, fbDev, fbWait)
		fbuf, err := fb.Open(fbDev, "/dev/"+tty)
		if err != nil {
			// The Linux text console cannot draw Chinese: English, ASCII.
			log.Warn("no framebuffer: the console falls back to English on the text console", "fb", fbDev, "err", err)
			ascii = true
			r := vt.NewRenderer(f)
			defer r.Restore()
			out = r
		} else {
			defer fbuf.Close()
			cols, rows = max(vt.DefaultCols, min(fbuf.MaxCols(), 100)), max(vt.DefaultRows, min(fbuf.MaxRows(), 37))
			fbuf.SetGrid(cols, rows)
			out = fbOutput{fbuf}
		}
	}

	c := &console{
		log: log, out: out, serial: serial, onConsole: serial && isKernelConsole(tty), ctl: control.NewClient(control.SocketPath),
		cmdPIN: opts.PINHash, cmdLang: opts.Lang, ascii: ascii, frame: cells.New(cols, rows),
		lock: fileLock{path: lockPath},
	}
	// On a serial port the bytes of an escape sequence can come apart
	// (a slow box, a USB adapter): wait longer before taking Esc alone.
	escDelay := vt.DefaultEscDelay
	if serial {
		escDelay = 400 * time.Millisecond
	}
	keys := vt.NewKeyReader(f, escDelay)
	defer keys.Close()
	return c.loop(ctx, keys)
}

// fbWait is how long the screen's console waits for the framebuffer: the
// firmware loads the graphics driver some 20 s after boot, or once ready.
const fbWait = 60 * time.Second

// waitFor waits until path exists, ctx ends or d passes.
func waitFor(ctx context.Context, path string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// isKernelConsole says whether tty is one of the kernel's consoles
// (console= on the command line), which /dev/console writes reach.
func isKernelConsole(tty string) bool {
	b, err := os.ReadFile("/sys/class/tty/console/active")
	return err == nil && slices.Contains(strings.Fields(string(b)), tty)
}

// isScreen tells a virtual terminal of the screen (tty1) from a serial port.
func isScreen(tty string) bool {
	return strings.HasPrefix(tty, "tty") && len(tty) > 3 && tty[3] >= '0' && tty[3] <= '9'
}

// cbreak puts a serial port in the mode the console needs, keys one at a
// time without echo, but keeps output processing, so that the boot log the
// firmware writes on the same port while the menu is closed still has its
// carriage returns.
func cbreak(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read the terminal's settings: %w", err)
	}
	t := *old
	t.Lflag &^= unix.ICANON | unix.ECHO | unix.ECHONL | unix.ISIG | unix.IEXTEN
	t.Iflag &^= unix.ICRNL | unix.INLCR | unix.IGNCR | unix.IXON
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, fmt.Errorf("set the terminal's settings: %w", err)
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// console is one running console.
type console struct {
	log    *slog.Logger
	out    output
	serial bool
	// onConsole: the port is also the kernel's console, where the firmware
	// prints its boot log and status screen.
	onConsole bool
	ctl       *control.Client
	lock      fileLock
	frame     *cells.Frame
	ascii     bool

	cmdPIN, cmdLang string
	model           *ui.Model
	pinHash, lang   string // the settings the model was made with
	active          bool   // a serial console's menu is open
	lastKey         time.Time
	status          ui.Status
	gatherer        gatherer
}

// serialIdle closes a serial console's menu that nobody uses: the port
// shows the boot log again.
const serialIdle = 10 * time.Minute

func (c *console) loop(ctx context.Context, keys *vt.KeyReader) error {
	keyc := make(chan input.Key)
	errc := make(chan error, 1)
	go func() {
		for {
			k, err := keys.ReadKey(ctx)
			if err != nil {
				errc <- err
				return
			}
			select {
			case keyc <- k:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer c.setActive(false)
	c.active = !c.serial
	c.refresh(ctx)
	c.draw()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read keys: %w", err)
		case k := <-keyc:
			c.lastKey = time.Now()
			if c.serial && !c.active {
				if k.Code == input.Enter {
					c.setActive(true)
					c.out.Invalidate()
					c.draw()
				}
				continue
			}
			if k.Code == input.CtrlL {
				c.out.Invalidate()
			}
			c.act(ctx, c.model.Update(ui.KeyPress{Key: k}))
			c.draw()
		case now := <-tick.C:
			if n++; n%2 == 0 {
				c.refresh(ctx)
			}
			if c.serial && c.active && time.Since(c.lastKey) > serialIdle {
				c.setActive(false)
				continue
			}
			c.act(ctx, c.model.Update(ui.Tick{Now: now}))
			c.draw()
		}
	}
}

// refresh gathers the status and hands it to the model, making the model
// anew when the PIN or the language from the cluster changed.
func (c *console) refresh(ctx context.Context) {
	st, fw := c.gatherer.gather(ctx, c.ctl)
	// A new PIN or language from the cluster makes a new model; the
	// technician's own switch of language (F2) stays until then.
	pinHash, lang := consoleSettings(fw, c.cmdPIN, c.cmdLang)
	if c.model == nil || pinHash != c.pinHash || lang != c.lang {
		c.newModel(pinHash, lang)
	}
	c.status = st
	c.model.Update(ui.StatusUpdate{Status: st})
}

func (c *console) newModel(pinHash, lang string) {
	var pin ui.PINChecker
	if pinHash != "" {
		checker, err := ui.NewPBKDF2Checker(pinHash)
		if err != nil {
			c.log.Warn("the console PIN from the cluster or the command line is unusable: the admin menu stays closed", "err", err)
		} else {
			pin = checker
		}
	}
	c.pinHash, c.lang = pinHash, lang
	c.model = ui.New(ui.Options{Lang: ui.Lang(lang), Cols: c.frame.Cols, Rows: c.frame.Rows, PIN: pin, Lock: c.lock, ASCIIOnly: c.ascii})
}

func (c *console) draw() {
	if !c.active {
		return
	}
	c.model.Draw(c.frame)
	if err := c.out.Render(c.frame); err != nil {
		c.log.Debug("draw", "err", err)
	}
}

// setActive opens or closes a serial console's menu, and tells the
// firmware to leave the console to it meanwhile.
func (c *console) setActive(on bool) {
	if !c.serial || c.active == on {
		c.active = on
		return
	}
	c.active = on
	if on {
		if c.onConsole {
			if err := os.WriteFile(screen.MenuActivePath, nil, 0o644); err != nil {
				c.log.Debug("mark the menu open", "err", err)
			}
		}
		return
	}
	if r, ok := c.out.(*vt.Renderer); ok {
		r.Restore()
	}
	if c.onConsole {
		os.Remove(screen.MenuActivePath)
	}
}
