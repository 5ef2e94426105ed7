package main

import (
	"bytes"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// listenPowerButton subscribes to ACPI events. Without acpid or systemd the kernel only announces the
// power button: the ACPI button driver (module "button") sends a "button/power" event on the generic
// netlink family "acpi_event", multicast group "acpi_mc_group". It returns the socket, or -1.
func listenPowerButton() int {
	fam, err := netlink.GenlFamilyGet("acpi_event")
	if err != nil {
		say("power button: %v", err)
		return -1
	}
	var group uint32
	for _, g := range fam.Groups {
		if g.Name == "acpi_mc_group" {
			group = g.ID
		}
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	}
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(group))
	}
	if err != nil {
		say("power button: %v", err)
		return -1
	}
	return fd
}

// powerButton waits for the power button on the socket from listenPowerButton and then, if off is set,
// powers off.
func powerButton(fd int, off bool) {
	if fd < 0 {
		return
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			say("power button: %v", err)
			return
		}
		if !bytes.Contains(buf[:n], []byte("button/power")) {
			continue
		}
		say("power button pressed")
		if off {
			powerOff()
		}
	}
}
