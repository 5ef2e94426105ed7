package vt

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY is a new pseudo-terminal: its master, the test's side, and its
// slave, the tty under test.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here (is /dev/pts mounted?): %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var n int
	err = control(m, func(fd int) (err error) {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return err
		}
		n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		return err
	})
	if err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func termios(t *testing.T, f *os.File) *unix.Termios {
	t.Helper()
	var tio *unix.Termios
	if err := control(f, func(fd int) (err error) {
		tio, err = unix.IoctlGetTermios(fd, unix.TCGETS)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return tio
}

func TestMakeRaw(t *testing.T) {
	master, tty := openPTY(t)
	before := termios(t, tty)
	if before.Lflag&unix.ICANON == 0 || before.Iflag&unix.ICRNL == 0 {
		t.Fatalf("a new pty is not in cooked mode: %+v", before)
	}
	restore, err := MakeRaw(tty)
	if err != nil {
		t.Fatal(err)
	}
	raw := termios(t, tty)
	if raw.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 || raw.Iflag&(unix.ICRNL|unix.IXON) != 0 || raw.Oflag&unix.OPOST != 0 || raw.Cc[unix.VMIN] != 1 {
		t.Errorf("not raw: %+v", raw)
	}
	// A CR and a Ctrl-C arrive as they are, at once, without a newline.
	if _, err := master.Write([]byte("\r\x03")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	n, err := tty.Read(b)
	if err != nil || string(b[:n]) != "\r\x03" {
		t.Errorf("read %q, %v; want CR, Ctrl-C", b[:n], err)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if after := termios(t, tty); *after != *before {
		t.Errorf("restore: %+v, want %+v", after, before)
	}

	if _, err := MakeRaw(regularFile(t)); err == nil {
		t.Error("MakeRaw on a regular file: no error")
	}
}

func regularFile(t *testing.T) *os.File {
	f, err := os.Create(filepath.Join(t.TempDir(), "not-a-tty"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestSize(t *testing.T) {
	master, tty := openPTY(t)
	for _, tc := range []struct {
		set        unix.Winsize
		cols, rows int
	}{
		{unix.Winsize{}, 80, 25}, // a serial port
		{unix.Winsize{Col: 132, Row: 43}, 132, 43},
		{unix.Winsize{Col: 100}, 80, 25},
	} {
		if err := control(master, func(fd int) error { return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &tc.set) }); err != nil {
			t.Fatal(err)
		}
		cols, rows, err := Size(tty)
		if err != nil || cols != tc.cols || rows != tc.rows {
			t.Errorf("size %dx%d: got %dx%d, %v; want %dx%d", tc.set.Col, tc.set.Row, cols, rows, err, tc.cols, tc.rows)
		}
	}
	if _, _, err := Size(regularFile(t)); err == nil {
		t.Error("Size of a regular file: no error")
	}
}
