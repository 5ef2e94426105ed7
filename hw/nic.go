package hw

import (
	"path"
	"regexp"
	"strconv"
	"strings"
)

// netDir lists one entry per network interface, each a link into
// sys/devices (sys/devices/virtual for interfaces made by software).
const netDir = "sys/class/net"

// Carrier states of a NIC.
const (
	CarrierUp      = "up"      // a link partner answers: a cable is in and the switch port is on
	CarrierDown    = "down"    // the interface is up and sees no link
	CarrierUnknown = "unknown" // the interface is down, so the kernel cannot tell
)

// NIC is a network interface backed by hardware: it has a device link.
// Interfaces made by software (lo, bridges, bonds, VLANs, tun/tap, veth) have
// none and are left out: they are configuration, not inventory.
type NIC struct {
	Name   string `json:"name"`   // kernel name: "eth0", "enp3s0"
	MAC    string `json:"mac"`    // address: the permanent-looking MAC, lower case
	Driver string `json:"driver"` // kernel driver: "e1000", "igb", "ixgbe", "r8169"; "" when none is bound
	// PCI is the PCI address ("0000:03:00.0") of the NIC, or of the PCI
	// function a virtio NIC sits on; "" for NICs not on PCI (USB).
	PCI string `json:"pci"`
	// Carrier is CarrierUp, CarrierDown or CarrierUnknown.
	Carrier string `json:"carrier"`
	// SpeedMbps is the negotiated link speed in Mbit/s, or -1 when unknown
	// (no link, interface down, or a driver that does not say).
	SpeedMbps int  `json:"speed_mbps"`
	Wireless  bool `json:"wireless"` // a Wi-Fi interface (has a phy80211 link)
}

// pciAddress matches a PCI function address "domain:bus:device.function".
var pciAddress = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

func readNICs(s *source) []NIC {
	nics := []NIC{}
	for _, name := range s.names(netDir) {
		dir := netDir + "/" + name
		if !s.exists(dir + "/device") {
			continue
		}
		n := NIC{
			Name:      name,
			MAC:       strings.ToLower(s.optional(dir + "/address")),
			Driver:    path.Base(s.link(dir + "/device/driver")),
			PCI:       nicPCI(s.link(dir)),
			Carrier:   CarrierUnknown,
			SpeedMbps: -1,
			Wireless:  s.exists(dir + "/phy80211"),
		}
		if n.Driver == "." {
			n.Driver = ""
		}
		// carrier and speed fail with EINVAL while the interface is down:
		// volatile turns that into "unknown".
		if v, ok := s.volatile(dir + "/carrier"); ok {
			switch v {
			case "1":
				n.Carrier = CarrierUp
			case "0":
				n.Carrier = CarrierDown
			default:
				s.fail(dir+"/carrier", "want 0 or 1, got %q", v)
			}
		}
		if v, ok := s.volatile(dir + "/speed"); ok {
			speed, err := strconv.Atoi(v)
			switch {
			case err != nil:
				s.fail(dir+"/speed", "want a speed in Mbit/s or -1, got %q", v)
			case speed > 0:
				n.SpeedMbps = speed
			}
		}
		nics = append(nics, n)
	}
	return nics
}

// nicPCI finds the PCI address in the path the sys/class/net link points
// to: the device directory is the element before "net", as in
//
//	../../devices/pci0000:00/0000:00:1c.0/0000:03:00.0/net/enp3s0
//	../../devices/pci0000:00/0000:00:03.0/virtio0/net/eth0
func nicPCI(link string) string {
	parts := strings.Split(link, "/")
	for i := len(parts) - 1; i > 0; i-- {
		if parts[i] != "net" {
			continue
		}
		dev := parts[i-1]
		if pciAddress.MatchString(dev) {
			return dev
		}
		if strings.HasPrefix(dev, "virtio") && i >= 2 && pciAddress.MatchString(parts[i-2]) {
			return parts[i-2]
		}
		return ""
	}
	return ""
}
