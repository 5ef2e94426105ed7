package modload

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Uevents reports the devices the kernel adds, as udev hears them: every
// device registration sends a message on the NETLINK_KOBJECT_UEVENT socket,
// with the device's MODALIAS. Listening to it after one scan of sysfs
// replaces rescanning sysfs after every batch of loaded drivers.
type Uevents struct {
	fd int
}

// OpenUevents subscribes to the kernel's device events. Open it before the
// first scan, so that no device added in between is missed.
func OpenUevents() (*Uevents, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("open the kernel's uevent socket: %w", err)
	}
	// A generous buffer: loading a bus driver can announce dozens of devices
	// at once, and an overflow would lose some (ENOBUFS, handled in Added).
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen to the kernel's uevents: %w", err)
	}
	return &Uevents{fd: fd}, nil
}

// ErrMissedEvents means the socket overflowed: the caller must rescan.
var ErrMissedEvents = errors.New("uevent socket overflowed; some device events were lost")

// Added returns the modaliases of the devices added since the last call,
// without waiting. The kernel sends the event while the driver registers
// the device, so after finit_module returns its devices are already queued.
func (u *Uevents) Added() ([]string, error) {
	var out []string
	buf := make([]byte, 64*1024)
	for {
		n, _, err := unix.Recvfrom(u.fd, buf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return out, nil
		case errors.Is(err, unix.ENOBUFS):
			return out, ErrMissedEvents
		case err != nil:
			return out, fmt.Errorf("read uevents: %w", err)
		}
		if a, ok := addedModalias(buf[:n]); ok {
			out = append(out, a)
		}
	}
}

// Close stops listening.
func (u *Uevents) Close() error { return unix.Close(u.fd) }

// addedModalias reads one kernel uevent ("add@/devices/...\0ACTION=add\0
// ...\0MODALIAS=pci:v...\0") and returns its MODALIAS if a device was added.
func addedModalias(msg []byte) (string, bool) {
	fields := bytes.Split(msg, []byte{0})
	if len(fields) == 0 || !bytes.HasPrefix(fields[0], []byte("add@")) {
		return "", false
	}
	for _, f := range fields[1:] {
		if a, ok := bytes.CutPrefix(f, []byte("MODALIAS=")); ok && len(a) > 0 {
			return string(a), true
		}
	}
	return "", false
}
