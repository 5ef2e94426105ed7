package vt

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DefaultCols and DefaultRows are the size assumed for a terminal that does
// not say: a serial port reports 0x0, and the Linux console is 80x25.
const (
	DefaultCols = 80
	DefaultRows = 25
)

// MakeRaw puts the tty f in raw mode, as cfmakeraw(3) does: bytes arrive
// one by one, unechoed, with no line editing, no CR-to-LF mapping, no
// signals (Ctrl-C is a key) and no XON/XOFF; output is not post-processed
// (the Renderer addresses the cursor and never sends a line feed).
// restore puts back the modes f had.
func MakeRaw(f *os.File) (restore func() error, err error) {
	var old *unix.Termios
	err = control(f, func(fd int) (err error) {
		old, err = unix.IoctlGetTermios(fd, unix.TCGETS)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the modes of %s (is it a tty?): %w", f.Name(), err)
	}
	t := *old
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := control(f, func(fd int) error { return unix.IoctlSetTermios(fd, unix.TCSETS, &t) }); err != nil {
		return nil, fmt.Errorf("putting %s in raw mode: %w", f.Name(), err)
	}
	return func() error {
		if err := control(f, func(fd int) error { return unix.IoctlSetTermios(fd, unix.TCSETS, old) }); err != nil {
			return fmt.Errorf("restoring the modes of %s: %w", f.Name(), err)
		}
		return nil
	}, nil
}

// Size is the tty's size in cells. A tty that reports 0x0 (a serial port
// nobody set the size of) gets DefaultCols x DefaultRows.
func Size(f *os.File) (cols, rows int, err error) {
	var ws *unix.Winsize
	err = control(f, func(fd int) (err error) {
		ws, err = unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("reading the size of %s (is it a tty?): %w", f.Name(), err)
	}
	cols, rows = int(ws.Col), int(ws.Row)
	if cols == 0 || rows == 0 {
		return DefaultCols, DefaultRows, nil
	}
	return cols, rows, nil
}

// control runs fn on f's descriptor. Unlike f.Fd it leaves f non-blocking,
// so closing f still ends a Read in progress (the KeyReader's).
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
