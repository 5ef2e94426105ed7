package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/control"
	"github.com/onecloud-edu/onecloud/firmware/netcfg"
	"github.com/onecloud-edu/onecloud/firmware/netup"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/nodecert"
	"github.com/onecloud-edu/onecloud/noded/pki"
)

// serveControl serves the control API (firmware/control) that the node
// console uses, until ctx ends: network changes are tested and reverted
// by netcfg, reboot and power-off take the power button's way out, and the
// rest says it is not available yet. It starts after the inventory, whose
// serial number confirms a factory reset.
func (b *boot) serveControl(ctx context.Context, stop func(), nets *netup.Manager) {
	tester := netcfg.New(netcfg.Config{
		Network: nets,
		Prober:  netcfg.TCPProber{Timeout: 2 * time.Second},
		Cluster: func() string {
			if api := b.clusterAPI.Load(); api != nil {
				return hostPort(*api)
			}
			return probeTarget(b.opts.Server, nets.NICs())
		},
		Log: b.log,
	})
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { tester.Run(ctx) })
	h := control.Handler(tester, &controlBox{b: b, stop: stop}, b.log)
	if err := control.Serve(ctx, control.SocketPath, h, b.log); err != nil {
		b.note("the node console cannot change this box: %v", err)
	}
}

// probeTarget is the HOST:PORT a network change must still reach: the
// cluster named by our bootstrap server's DHCP answer (option 43), else the
// boot server (onecloud.server=, else option 43's URL), which the box needs
// as much. "" when none is known: the gateway decides then. Once enrolment
// names the cluster API (boot.clusterAPI), that is the target instead.
func probeTarget(server string, nics []netup.NIC) string {
	var boot string
	for _, n := range nics {
		if n.Lease == nil {
			continue
		}
		if a := hostPort(n.Lease.Cluster); a != "" {
			return a
		}
		if boot == "" {
			boot = hostPort(n.Lease.BootServer)
		}
	}
	if a := hostPort(server); a != "" {
		return a
	}
	return boot
}

// hostPort reads "http(s)://HOST[:PORT]" or "HOST:PORT".
func hostPort(s string) string {
	if s == "" {
		return ""
	}
	if !strings.Contains(s, "://") {
		if h, p, err := net.SplitHostPort(s); err == nil && h != "" && p != "" {
			return s
		}
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	switch {
	case port != "":
	case u.Scheme == "https":
		port = "443"
	case u.Scheme == "http":
		port = "80"
	default:
		return ""
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// controlBox is what the console may ask of the boot flow.
type controlBox struct {
	b    *boot
	stop func() // ends the boot flow; main then reboots or powers off
}

func (c *controlBox) Serial() string { return c.b.inv.DMI.Serial }

// Reboot and PowerOff go the power button's way: flag, stop, and main
// takes the box down once the services stopped.
func (c *controlBox) Reboot(context.Context) error {
	c.b.step("the console asked for a reboot: stopping services and rebooting")
	c.b.reboot.Store(true)
	c.stop()
	return nil
}

func (c *controlBox) PowerOff(context.Context) error {
	c.b.step("the console asked for a power off: stopping services and powering off")
	c.b.powerOff.Store(true)
	c.stop()
	return nil
}

func notYet(what string) error {
	return fmt.Errorf("%s: %w", what, control.ErrNotAvailable)
}

// SetServers keeps the boot server and the cluster address for the next
// enrolment (Reenrol starts one); an empty one is learnt again from the
// command line and DHCP. They last until the box reboots.
func (c *controlBox) SetServers(_ context.Context, s control.Servers) error {
	c.b.servers.Store(&s)
	if s.Cluster != "" {
		c.b.clusterAPI.Store(&s.Cluster)
	}
	c.b.step("the console set the boot server to %q and the cluster to %q, used from the next enrolment", s.Boot, s.Cluster)
	return nil
}

// Reenrol asks the boot server again, as at the first time online.
func (c *controlBox) Reenrol(context.Context) error {
	select {
	case c.b.reenrol <- struct{}{}:
		c.b.step("the console asked to enrol again")
	default: // one is on its way already
	}
	return nil
}

// RequestRole asks the cluster, with this box's node certificate, for
// another role; the technician grants it (occtl approve), and the box then
// reboots into it at its next enrolment.
func (c *controlBox) RequestRole(ctx context.Context, role string) error {
	server := c.b.clusterAPI.Load()
	if server == nil {
		return fmt.Errorf("asking for another role: this box knows no cluster yet (it learns it once approved): %w", control.ErrNotRunning)
	}
	certDir := nodeCertDir
	if c.b.opts.Role == "server" {
		certDir = pki.Dir(serverState)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, nodecert.CertFile), filepath.Join(certDir, nodecert.KeyFile))
	if err != nil {
		return fmt.Errorf("asking for another role needs this box's node certificate, which it has once attested: %w", err)
	}
	caPEM, err := os.ReadFile(clusterCAPath)
	if err != nil {
		return fmt.Errorf("the cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("the cluster CA in %s is not a PEM certificate", clusterCAPath)
	}
	client, err := api.NewClient(api.ClientConfig{Server: *server, CA: pool, Certificate: &cert, Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer client.Close()
	if _, err := client.RequestRole(ctx, api.Role(role)); err != nil {
		return fmt.Errorf("asking the cluster for role %s: %w", role, err)
	}
	c.b.step("the console asked the cluster for role %s; the technician decides (occtl approve)", role)
	return nil
}
func (c *controlBox) FactoryReset(context.Context) error { return notYet("factory reset") }
func (c *controlBox) Rollback(context.Context) error     { return notYet("rollback to the previous image") }
