package harness

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DHCPConfig configures dnsmasq as a lab network's DHCP server: the stand-in for a school's existing DHCP,
// and for now also the PXE server (TFTP) until our bootstrap server exists.
type DHCPConfig struct {
	// First and Last bound the address pool; zero means .100 to .199 of the bridge's subnet.
	First, Last netip.Addr
	// Lease is the lease time; zero means one hour. dnsmasq raises anything under two minutes to two minutes.
	Lease time.Duration
	// Hosts are fixed addresses by MAC.
	Hosts []DHCPHost
	// TFTPRoot, if set, is served by TFTP on the bridge address.
	TFTPRoot string
	// BootFile is the boot file name offered to PXE clients (an iPXE script, say), relative to TFTPRoot.
	BootFile string
	// ExtraArgs are more dnsmasq options, passed as they are (e.g. "--dhcp-option=option:router,10.77.1.1").
	ExtraArgs []string
}

// DHCPHost is a fixed address for one MAC.
type DHCPHost struct {
	MAC  string // "52:54:00:12:34:56"
	Addr netip.Addr
	Name string // optional host name
}

// DHCPServer is a dnsmasq running in the lab namespace and answering on one bridge only.
type DHCPServer struct {
	proc      *process
	leaseFile string
	logPath   string
}

const (
	dnsmasqReadyTimeout = 15 * time.Second
	dnsmasqStopGrace    = 5 * time.Second
	minLease            = 2 * time.Minute
)

// DHCP starts dnsmasq on the bridge, which must have an address, and waits until it has written its PID
// file (it binds its sockets first). It runs with --no-ping, so offers come at once; with its own lease file
// and PID file; and without reading /etc/dnsmasq.conf or serving DNS. Its log goes to
// <bridge>.dnsmasq.log in the test's log folder. It is stopped when t ends.
func (b *Bridge) DHCP(t T, cfg DHCPConfig) *DHCPServer {
	t.Helper()
	s, err := b.dhcp(t, cfg)
	if err != nil {
		t.Fatalf("harness: DHCP server on bridge %s: %v", b.name, err)
	}
	return s
}

func (b *Bridge) dhcp(t T, cfg DHCPConfig) (*DHCPServer, error) {
	dnsmasq, err := lookTool("dnsmasq")
	if err != nil {
		return nil, err
	}
	dir, err := scratchDir(t, "dnsmasq-"+b.name)
	if err != nil {
		return nil, err
	}
	stem, logFile, err := b.lab.logs.claim(b.name, ".dnsmasq.log")
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s := &DHCPServer{
		leaseFile: filepath.Join(dir, "leases"),
		logPath:   b.lab.logs.path(stem + ".dnsmasq.log"),
	}
	pidFile := filepath.Join(dir, "pid")
	args, err := dnsmasqArgs(b, cfg, s.leaseFile, pidFile, s.logPath)
	if err != nil {
		return nil, err
	}
	// stdout and stderr (start-up errors) go to the same log as dnsmasq's own --log-facility lines.
	s.proc, err = startProcess(b.lab.logs, "dnsmasq", b.lab.wrap(append([]string{dnsmasq}, args...)),
		procIO{stdout: logFile, stderr: logFile})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { s.proc.stop(dnsmasqStopGrace) })
	if err := s.waitReady(t.Context(), pidFile); err != nil {
		return nil, err
	}
	b.lab.log.Info("dnsmasq ready", "bridge", b.name, "pid", s.PID(), "log", s.logPath)
	return s, nil
}

// dnsmasqArgs builds dnsmasq's command line.
func dnsmasqArgs(b *Bridge, cfg DHCPConfig, leaseFile, pidFile, logPath string) ([]string, error) {
	if !b.addr.IsValid() || !b.addr.Addr().Is4() {
		return nil, fmt.Errorf("the bridge needs an IPv4 address for dnsmasq to serve a pool (Lab.Bridge's cidr)")
	}
	subnet := b.addr.Masked()
	first, last := cfg.First, cfg.Last
	if !first.IsValid() {
		first = addToAddr(subnet.Addr(), 100)
	}
	if !last.IsValid() {
		last = addToAddr(subnet.Addr(), 199)
	}
	if !subnet.Contains(first) || !subnet.Contains(last) || last.Less(first) {
		return nil, fmt.Errorf("pool %s-%s does not fit in %s: set DHCPConfig.First and Last", first, last, subnet)
	}
	lease := cfg.Lease
	if lease == 0 {
		lease = time.Hour
	}
	lease = max(lease, minLease)
	args := []string{
		"--keep-in-foreground",
		"--conf-file=/dev/null", // never the host's /etc/dnsmasq.conf
		"--port=0",              // no DNS
		"--no-resolv", "--no-hosts",
		"--interface=" + b.name, "--bind-interfaces",
		"--user=root", "--group=root", // to keep writing its lease and log files in root's folders
		"--pid-file=" + pidFile,
		"--dhcp-leasefile=" + leaseFile,
		"--log-facility=" + logPath, "--log-dhcp",
		"--dhcp-authoritative",
		"--no-ping", // otherwise it pings each address for 3 s before offering it
		fmt.Sprintf("--dhcp-range=%s,%s,%s,%d", first, last, net.IP(net.CIDRMask(subnet.Bits(), 32)), int(lease.Seconds())),
	}
	for _, h := range cfg.Hosts {
		if _, err := net.ParseMAC(h.MAC); err != nil || !h.Addr.IsValid() {
			return nil, fmt.Errorf("DHCP host %+v: needs a MAC and an address", h)
		}
		host := h.MAC + "," + h.Addr.String()
		if h.Name != "" {
			host += "," + h.Name
		}
		args = append(args, "--dhcp-host="+host)
	}
	if cfg.TFTPRoot != "" {
		args = append(args, "--enable-tftp", "--tftp-root="+cfg.TFTPRoot)
	}
	if cfg.BootFile != "" {
		args = append(args, "--dhcp-boot="+cfg.BootFile)
	}
	return append(args, cfg.ExtraArgs...), nil
}

// addToAddr returns a+n for an IPv4 address.
func addToAddr(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+n)
	return netip.AddrFrom4(b)
}

// waitReady waits for dnsmasq's PID file, or fails with its log if it exits first.
func (s *DHCPServer) waitReady(ctx context.Context, pidFile string) error {
	ctx, cancel := context.WithTimeout(ctx, dnsmasqReadyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(pidFile); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(s.PID()) {
			return nil
		}
		select {
		case <-s.proc.done:
			return fmt.Errorf("dnsmasq exited at start (%v): %s", s.proc.err, tailFile(s.logPath, 10))
		case <-ctx.Done():
			return fmt.Errorf("dnsmasq did not start within %s: %w; its log %s ends with: %s",
				dnsmasqReadyTimeout, ctx.Err(), s.logPath, tailFile(s.logPath, 10))
		case <-tick.C:
		}
	}
}

// PID is dnsmasq's process id.
func (s *DHCPServer) PID() int { return s.proc.pid() }

// LogPath is the file dnsmasq logs to.
func (s *DHCPServer) LogPath() string { return s.logPath }

// Stop stops dnsmasq now (the school's DHCP goes away); it is also stopped when the test ends.
func (s *DHCPServer) Stop(ctx context.Context) error {
	s.proc.terminate()
	if err := s.proc.wait(ctx); err != nil && !s.proc.exited() {
		s.proc.kill()
		return err
	}
	return nil
}

// Lease is one line of dnsmasq's lease file.
type Lease struct {
	Expires  time.Time
	MAC      string
	Addr     netip.Addr
	Hostname string // "" if the client sent none
}

// Leases reads the leases dnsmasq has handed out.
func (s *DHCPServer) Leases() ([]Lease, error) {
	f, err := os.Open(s.leaseFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var leases []Lease
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// expiry(unix seconds) MAC IP hostname|* client-id|*
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		secs, err1 := strconv.ParseInt(fields[0], 10, 64)
		addr, err2 := netip.ParseAddr(fields[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("malformed line %q in %s", sc.Text(), s.leaseFile)
		}
		l := Lease{Expires: time.Unix(secs, 0), MAC: fields[1], Addr: addr}
		if fields[3] != "*" {
			l.Hostname = fields[3]
		}
		leases = append(leases, l)
	}
	return leases, sc.Err()
}

// tailFile returns the last n lines of a file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return lastLines(string(b), n)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "(nothing)"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
