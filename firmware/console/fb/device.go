package fb

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctls of linux/fb.h and linux/kd.h; golang.org/x/sys/unix lacks them.
const (
	fbiogetVScreenInfo = 0x4600
	fbiogetFScreenInfo = 0x4602
	kdSetMode          = 0x4b3a
	kdGetMode          = 0x4b3b
	kdGraphics         = 1
)

// fixScreenInfo is struct fb_fix_screeninfo; unsigned long is uintptr on
// Linux, and Go lays the fields out as C does.
type fixScreenInfo struct {
	ID           [16]byte
	SmemStart    uintptr
	SmemLen      uint32
	Type         uint32
	TypeAux      uint32
	Visual       uint32
	XPanStep     uint16
	YPanStep     uint16
	YWrapStep    uint16
	LineLength   uint32
	MMIOStart    uintptr
	MMIOLen      uint32
	Accel        uint32
	Capabilities uint16
	Reserved     [2]uint16
}

// Framebuffer is a Screen on a Linux framebuffer device.
type Framebuffer struct {
	*Screen
	dev     *os.File
	mem     []byte
	tty     *os.File // nil when none was put in graphics mode
	ttyMode int      // its mode before, restored by Close
}

// Open maps the framebuffer device (/dev/fb0) and, unless tty is "", puts
// that virtual terminal (/dev/tty1, the one the screen shows) in graphics
// mode, so the kernel's text console stops drawing on it until Close. It
// needs root (or the video and tty groups). Any error means the console
// has no screen to draw Chinese on and falls back to the text console.
func Open(device, tty string) (*Framebuffer, error) {
	dev, err := os.OpenFile(device, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the framebuffer (is the bochs/DRM module loaded?): %w", err)
	}
	fb := &Framebuffer{dev: dev}
	if err := fb.open(tty); err != nil {
		fb.Close()
		return nil, err
	}
	return fb, nil
}

func (fb *Framebuffer) open(tty string) error {
	var v VarScreenInfo
	var fix fixScreenInfo
	fd := int(fb.dev.Fd())
	if err := ioctl(fd, fbiogetVScreenInfo, unsafe.Pointer(&v)); err != nil {
		return fmt.Errorf("%s is not a framebuffer (FBIOGET_VSCREENINFO): %w", fb.dev.Name(), err)
	}
	if err := ioctl(fd, fbiogetFScreenInfo, unsafe.Pointer(&fix)); err != nil {
		return fmt.Errorf("%s is not a framebuffer (FBIOGET_FSCREENINFO): %w", fb.dev.Name(), err)
	}
	size := int(fix.SmemLen)
	if size == 0 {
		size = int(fix.LineLength) * int(v.YResVirtual)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mapping %d bytes of %s: %w", size, fb.dev.Name(), err)
	}
	fb.mem = mem
	if fb.Screen, err = NewScreen(mem, v, int(fix.LineLength)); err != nil {
		return fmt.Errorf("%s: %w", fb.dev.Name(), err)
	}
	if tty == "" {
		return nil
	}
	// O_NOCTTY: the console may run as PID 1, which must not gain a
	// controlling terminal by opening one.
	t, err := os.OpenFile(tty, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("opening %s to keep the text console off the screen: %w", tty, err)
	}
	mode, err := unix.IoctlGetInt(int(t.Fd()), kdGetMode)
	if err == nil {
		err = unix.IoctlSetInt(int(t.Fd()), kdSetMode, kdGraphics)
	}
	if err != nil {
		t.Close()
		return fmt.Errorf("putting %s in graphics mode (KDSETMODE; is it a virtual terminal?): %w", tty, err)
	}
	fb.tty, fb.ttyMode = t, mode
	return nil
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// Close gives the screen back to the text console and unmaps the
// framebuffer. If the process dies without it, the virtual terminal stays
// in graphics mode: blank until someone runs KDSETMODE KD_TEXT on it.
func (fb *Framebuffer) Close() error {
	var errs []error
	fb.Screen = nil // its memory is about to go: a Draw now fails loudly
	if fb.tty != nil {
		if err := unix.IoctlSetInt(int(fb.tty.Fd()), kdSetMode, fb.ttyMode); err != nil {
			errs = append(errs, fmt.Errorf("giving %s back to the text console: %w", fb.tty.Name(), err))
		}
		errs = append(errs, fb.tty.Close())
		fb.tty = nil
	}
	if fb.mem != nil {
		errs = append(errs, unix.Munmap(fb.mem))
		fb.mem = nil
	}
	if fb.dev != nil {
		errs = append(errs, fb.dev.Close())
		fb.dev = nil
	}
	return errors.Join(errs...)
}
