package bootstrap

import (
	"encoding/json"
	"fmt"
	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"net/netip"
	"os"
	"time"
)

// Config is bootstrapd's configuration file (JSON), written by the
// technician. Everything that changes while the server runs (leases, the
// inbox, published images) lives in the state folder instead.
//
//	{
//	  "mode": "full",
//	  "iface": "br0",
//	  "address": "10.77.1.1",
//	  "http_port": 8080,
//	  "pools": [{"subnet": "10.77.1.0/24", "first": "10.77.1.100", "last": "10.77.1.199",
//	             "router": "10.77.1.1", "dns": ["10.77.1.1"], "lease": "1h"}],
//	  "reservations": [{"mac": "52:54:00:00:00:01", "addr": "10.77.1.50"}],
//	  "rules": [{"name": "lab-vms", "mac_prefixes": ["52:54:00"], "role": "vdi", "school": "s01"}],
//	  "machines": [{"mac": "52:54:00:00:00:02", "role": "server"}],
//	  "kernel_args": "console=ttyS0,115200 console=tty0",
//	  "admission": {"max_transfers": 64, "max_tftp": 1024, "queue": 4096, "max_wait": "30s"}
//	}
type Config struct {
	// Mode is "full" (we are the network's DHCP server) or "proxy" (the
	// school's DHCP server hands out addresses; we add boot information).
	Mode string `json:"mode"`
	// Iface is the interface the boot network is on; DHCP listens only there.
	Iface string `json:"iface"`
	// Address is our address on Iface: DHCP server id, TFTP and HTTP server.
	Address netip.Addr `json:"address"`
	// HTTPPort defaults to 8080; TFTP is always port 69.
	HTTPPort int `json:"http_port,omitempty"`
	// DHCP is "on" (default) or "off" (another server points boxes at us).
	DHCP string `json:"dhcp,omitempty"`
	// ClusterAddr is handed to our firmware in DHCP option 43 (full mode).
	ClusterAddr string `json:"cluster_addr,omitempty"`
	// IPXEDir holds undionly.kpxe, snponly.efi and ipxe.efi (Debian's ipxe
	// package: /usr/lib/ipxe, the default).
	IPXEDir string `json:"ipxe_dir,omitempty"`
	// KernelArgs are added to every box's kernel command line.
	KernelArgs string `json:"kernel_args,omitempty"`

	Pools        []PoolConfig        `json:"pools,omitempty"`
	Reservations []ReservationConfig `json:"reservations,omitempty"`
	// Rules approve matching machines at first sight; Machines are declared
	// by the technician, approved in their role (docs/bootstrap.md).
	Rules     []machines.Rule     `json:"rules,omitempty"`
	Machines  []machines.Declared `json:"machines,omitempty"`
	Admission AdmissionConfig     `json:"admission,omitempty"`
}

// PoolConfig is one subnet's address pool (full mode).
type PoolConfig struct {
	Subnet netip.Prefix `json:"subnet"`
	First  netip.Addr   `json:"first"`
	Last   netip.Addr   `json:"last"`
	Router netip.Addr   `json:"router,omitzero"`
	DNS    []netip.Addr `json:"dns,omitempty"`
	Lease  JSONDuration `json:"lease,omitempty"`
}

// ReservationConfig gives one MAC a fixed address (full mode).
type ReservationConfig struct {
	MAC      string     `json:"mac"`
	Addr     netip.Addr `json:"addr"`
	Hostname string     `json:"hostname,omitempty"`
}

// AdmissionConfig caps concurrent file transfers (HTTP and TFTP) so that a
// boot storm slows boots down instead of failing them.
//
// TFTP has caps of its own: its files are small (the iPXE binaries, under a
// megabyte), and a PXE ROM whose request waits behind image downloads hears
// nothing and may give up the boot, where iPXE's HTTP waits and retries.
type AdmissionConfig struct {
	MaxTransfers int          `json:"max_transfers,omitempty"` // HTTP downloads at once, default 64
	MaxTFTP      int          `json:"max_tftp,omitempty"`      // TFTP transfers at once, default 1024
	Queue        int          `json:"queue,omitempty"`         // default 4096
	MaxWait      JSONDuration `json:"max_wait,omitempty"`      // default 30s
}

// JSONDuration is a time.Duration written as Go duration text ("1h").
type JSONDuration time.Duration

// UnmarshalText reads Go duration text.
func (d *JSONDuration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = JSONDuration(v)
	return nil
}

// MarshalText writes Go duration text.
func (d JSONDuration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// LoadConfig reads and checks a configuration file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read bootstrap config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("bootstrap config %s: %w (see docs/bootstrap.md for the format)", path, err)
	}
	if err := c.check(); err != nil {
		return Config{}, fmt.Errorf("bootstrap config %s: %w", path, err)
	}
	return c, nil
}

func (c *Config) check() error {
	switch c.Mode {
	case "full", "proxy":
	default:
		return fmt.Errorf("mode %q: want \"full\" or \"proxy\"", c.Mode)
	}
	if c.Iface == "" {
		return fmt.Errorf("iface is missing: name the interface of the boot network")
	}
	if !c.Address.Is4() {
		return fmt.Errorf("address %q: want our IPv4 address on %s", c.Address, c.Iface)
	}
	if c.HTTPPort == 0 {
		c.HTTPPort = 8080
	}
	if c.DHCP == "" {
		c.DHCP = "on"
	}
	if c.DHCP != "on" && c.DHCP != "off" {
		return fmt.Errorf("dhcp %q: want \"on\" or \"off\"", c.DHCP)
	}
	if c.Mode == "full" && c.DHCP == "on" && len(c.Pools) == 0 {
		return fmt.Errorf("full mode needs at least one pool (or mode \"proxy\" to leave addresses to the school's DHCP server)")
	}
	if err := machines.CheckRules(c.Rules, c.Machines); err != nil {
		return err
	}
	if c.IPXEDir == "" {
		c.IPXEDir = "/usr/lib/ipxe"
	}
	if c.Admission.MaxTransfers == 0 {
		c.Admission.MaxTransfers = 64
	}
	if c.Admission.MaxTFTP == 0 {
		c.Admission.MaxTFTP = 1024
	}
	if c.Admission.Queue == 0 {
		c.Admission.Queue = 4096
	}
	if c.Admission.MaxWait == 0 {
		c.Admission.MaxWait = JSONDuration(30 * time.Second)
	}
	return nil
}
