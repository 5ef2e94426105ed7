package dhcpd

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Mode says whether the server hands out addresses.
type Mode string

const (
	// Proxy answers network-boot clients with boot information only, next to the school's own DHCP
	// server, which hands out the addresses.
	Proxy Mode = "proxy"
	// Full is a complete DHCP server: pools, reservations, leases, and boot information.
	Full Mode = "full"
)

// Config is the DHCP server's configuration. Zero values get the defaults named on each field.
type Config struct {
	Mode Mode
	// Iface is the one network interface the server listens and answers on (SO_BINDTODEVICE); it must
	// be set for Serve.
	Iface string
	// ServerIP is our address on Iface: siaddr (next server), option 54, the TFTP server.
	ServerIP netip.Addr
	// HTTPBase is the bootstrap HTTP server, such as "http://10.77.1.1:8080", without a trailing slash.
	HTTPBase string
	// ClusterAddr goes to our firmware as option 43 sub-option 2 (omitted when empty).
	ClusterAddr string
	// BIOSFile is the TFTP file for BIOS PXE ROMs (default "undionly.kpxe").
	BIOSFile string
	// UEFIFile is the TFTP file for UEFI PXE on x86-64 (default "snponly.efi").
	UEFIFile string
	// UEFIHTTPPath is the path under HTTPBase for UEFI HTTP boot (default "/bin/ipxe.efi").
	UEFIHTTPPath string
	// IPXEScriptPath is the path under HTTPBase of the stage-1 iPXE script (default "/boot.ipxe").
	IPXEScriptPath string
	// Pools are the address pools of full mode, one per subnet.
	Pools []Pool
	// Reservations give machines fixed addresses in full mode.
	Reservations []Reservation
	// LeaseTime is the default lease time (default 1h).
	LeaseTime time.Duration
	// Workers is how many requests are handled at once (default 64): a request waiting for its lease
	// to reach the disk must not hold up the others.
	Workers int
	// QueueLen bounds the requests waiting for a worker (default 4096); beyond it packets are dropped
	// and counted, as a burst of DISCOVERs is retried by the clients anyway.
	QueueLen int
	// Log gets the server's log lines (default: discarded).
	Log *slog.Logger
}

// Pool is the dynamic range of one subnet.
type Pool struct {
	Subnet      netip.Prefix
	First, Last netip.Addr
	Router      netip.Addr   // option 3; zero for none
	DNS         []netip.Addr // option 6
	LeaseTime   time.Duration
}

// Reservation gives the machine with MAC the address Addr (and option 12 Hostname if set).
type Reservation struct {
	MAC      string
	Addr     netip.Addr
	Hostname string
}

const (
	defaultBIOSFile       = "undionly.kpxe"
	defaultUEFIFile       = "snponly.efi"
	defaultUEFIHTTPPath   = "/bin/ipxe.efi"
	defaultIPXEScriptPath = "/boot.ipxe"
	defaultLeaseTime      = time.Hour
	defaultWorkers        = 64
	defaultQueueLen       = 4096
)

// withDefaults checks c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	switch c.Mode {
	case Proxy, Full:
	default:
		return c, fmt.Errorf("dhcpd: mode %q: use %q or %q", c.Mode, Proxy, Full)
	}
	if !c.ServerIP.Is4() {
		return c, fmt.Errorf("dhcpd: the server address %v is not an IPv4 address: set ServerIP to our address on the boot network", c.ServerIP)
	}
	u, err := url.Parse(c.HTTPBase)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("dhcpd: HTTPBase %q: give the bootstrap server's URL, such as http://%s:8080", c.HTTPBase, c.ServerIP)
	}
	c.HTTPBase = strings.TrimRight(c.HTTPBase, "/")
	setDefault(&c.BIOSFile, defaultBIOSFile)
	setDefault(&c.UEFIFile, defaultUEFIFile)
	setDefault(&c.UEFIHTTPPath, defaultUEFIHTTPPath)
	setDefault(&c.IPXEScriptPath, defaultIPXEScriptPath)
	for _, p := range []*string{&c.UEFIHTTPPath, &c.IPXEScriptPath} {
		if !strings.HasPrefix(*p, "/") {
			*p = "/" + *p
		}
	}
	if c.LeaseTime <= 0 {
		c.LeaseTime = defaultLeaseTime
	}
	if c.Workers <= 0 {
		c.Workers = defaultWorkers
	}
	if c.QueueLen <= 0 {
		c.QueueLen = defaultQueueLen
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Mode == Proxy {
		return c, nil
	}
	if len(c.Pools) == 0 {
		return c, fmt.Errorf("dhcpd: full mode needs at least one address pool")
	}
	c.Pools = append([]Pool(nil), c.Pools...)
	for i := range c.Pools {
		p := &c.Pools[i]
		if !p.Subnet.IsValid() || !p.Subnet.Addr().Is4() || p.Subnet.Bits() > 30 {
			return c, fmt.Errorf("dhcpd: pool %d: subnet %v is not an IPv4 subnet of at least 4 addresses", i, p.Subnet)
		}
		p.Subnet = p.Subnet.Masked()
		if !p.Subnet.Contains(p.First) || !p.Subnet.Contains(p.Last) || p.Last.Less(p.First) {
			return c, fmt.Errorf("dhcpd: pool %v: range %v-%v must lie inside the subnet, first before last", p.Subnet, p.First, p.Last)
		}
		if p.Router.IsValid() && !p.Subnet.Contains(p.Router) {
			return c, fmt.Errorf("dhcpd: pool %v: router %v is outside the subnet", p.Subnet, p.Router)
		}
		if p.LeaseTime <= 0 {
			p.LeaseTime = c.LeaseTime
		}
		for j := range i {
			if c.Pools[j].Subnet.Overlaps(p.Subnet) {
				return c, fmt.Errorf("dhcpd: pools %v and %v overlap: give each subnet one pool", c.Pools[j].Subnet, p.Subnet)
			}
		}
	}
	c.Reservations = append([]Reservation(nil), c.Reservations...)
	macs := map[string]bool{}
	addrs := map[netip.Addr]bool{}
	for i := range c.Reservations {
		r := &c.Reservations[i]
		hw, err := net.ParseMAC(r.MAC)
		if err != nil || len(hw) != 6 {
			return c, fmt.Errorf("dhcpd: reservation %d: MAC %q is not an Ethernet address like aa:bb:cc:dd:ee:ff", i, r.MAC)
		}
		r.MAC = hw.String()
		if c.poolFor(r.Addr) == nil {
			return c, fmt.Errorf("dhcpd: reservation %s: address %v is in no pool's subnet", r.MAC, r.Addr)
		}
		if r.Addr == c.ServerIP {
			return c, fmt.Errorf("dhcpd: reservation %s: %v is the server's own address", r.MAC, r.Addr)
		}
		if macs[r.MAC] || addrs[r.Addr] {
			return c, fmt.Errorf("dhcpd: reservation %s %v: the MAC or the address is reserved twice", r.MAC, r.Addr)
		}
		macs[r.MAC], addrs[r.Addr] = true, true
	}
	return c, nil
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// poolFor is the pool whose subnet holds a, or nil.
func (c *Config) poolFor(a netip.Addr) *Pool {
	for i := range c.Pools {
		if c.Pools[i].Subnet.Contains(a) {
			return &c.Pools[i]
		}
	}
	return nil
}
