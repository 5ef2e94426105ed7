package status

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/onecloud-edu/onecloud/noded/localapi"
)

// Netlink lists the kernel's interfaces with their IPv4 and global IPv6
// addresses, skipping loopback.
func Netlink() ([]localapi.Interface, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []localapi.Interface
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 {
			continue
		}
		i := localapi.Interface{
			Name:    a.Name,
			MAC:     a.HardwareAddr.String(),
			Up:      a.Flags&net.FlagUp != 0,
			Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0,
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("list addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			if ad.IP.To4() == nil && !ad.IP.IsGlobalUnicast() {
				continue
			}
			i.Addrs = append(i.Addrs, ad.IPNet.String())
		}
		out = append(out, i)
	}
	return out, nil
}
