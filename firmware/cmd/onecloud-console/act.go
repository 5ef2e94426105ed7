package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"github.com/onecloud-edu/onecloud/firmware/console/ui"
	"github.com/onecloud-edu/onecloud/firmware/control"
	"github.com/onecloud-edu/onecloud/firmware/netcfg"
)

// actionTimeout bounds one request to the firmware's control API.
const actionTimeout = 10 * time.Second

// act carries out what the model asks, through the firmware's control API,
// and says how it went in the console's log view.
func (c *console) act(ctx context.Context, actions []ui.Action) {
	for _, a := range actions {
		ctx, cancel := context.WithTimeout(ctx, actionTimeout)
		what, err := c.do(ctx, a)
		cancel()
		switch {
		case err != nil:
			c.log.Warn("console action failed", "action", fmt.Sprintf("%T", a), "err", err)
			c.gatherer.say(ui.LevelError, fmt.Sprintf("%s: %v", what, err))
		case what != "":
			c.log.Info("console action", "action", what)
			c.gatherer.say(ui.LevelInfo, what)
		}
	}
	if len(actions) > 0 {
		c.refresh(ctx) // show the outcome at once
	}
}

func (c *console) do(ctx context.Context, a ui.Action) (string, error) {
	switch a := a.(type) {
	case ui.ApplyNetwork:
		ch := netcfg.Change{NIC: a.Config.NIC, Mode: netcfg.ModeDHCP, VLAN: a.Config.VLAN}
		if !a.Config.DHCP {
			ch.Mode, ch.Address, ch.Gateway, ch.DNS = netcfg.ModeStatic, a.Config.Address, a.Config.Gateway, a.Config.DNS
		}
		_, err := c.ctl.ChangeNetwork(ctx, ch)
		return "network change on " + ch.NIC + ": " + ch.String(), err
	case ui.ConfirmNetwork:
		_, err := c.ctl.ConfirmNetwork(ctx)
		return "network change confirmed", err
	case ui.RevertNetwork:
		return "revert the network change now", fmt.Errorf("not available in this firmware yet: it reverts by itself at the deadline")
	case ui.SetServers:
		_, err := c.ctl.SetServers(ctx, serversOf(a))
		return "boot server and cluster address", err
	case ui.Reenrol:
		_, err := c.ctl.Reenrol(ctx)
		return "re-enrol", err
	case ui.RequestRole:
		_, err := c.ctl.RequestRole(ctx, a.Role)
		return "request role " + a.Role, err
	case ui.RunDiagnostics:
		// The status is taken here: the main loop goes on replacing it.
		go c.diagnose(context.WithoutCancel(ctx), c.status)
		return "diagnostics started", nil
	case ui.Rollback:
		_, err := c.ctl.Rollback(ctx)
		return "roll back to slot " + a.Slot, err
	case ui.Reboot:
		_, err := c.ctl.Reboot(ctx)
		return "reboot", err
	case ui.PowerOff:
		_, err := c.ctl.PowerOff(ctx)
		return "power off", err
	case ui.FactoryReset:
		_, err := c.ctl.FactoryReset(ctx, c.status.Serial)
		return "factory reset", err
	case ui.SetLang:
		return "", nil // the model keeps it
	}
	return fmt.Sprintf("%T", a), fmt.Errorf("this console does not know the action")
}

// diagnose runs the diagnostics one after another, each result shown as it
// comes: the gateway and the cluster answer, DNS resolves, the disks are
// healthy (from /sys), the TPM passes its self-test.
func (c *console) diagnose(ctx context.Context, st ui.Status) {
	type check struct {
		name, target string
		run          func(context.Context) (string, error)
	}
	checks := []check{
		{ui.DiagPingGateway, st.Gateway.Address, func(ctx context.Context) (string, error) {
			if st.Gateway.Address == "" {
				return "", fmt.Errorf("no gateway known")
			}
			if r := gatewayReach(ctx, st.Gateway.Address); r.State != ui.ReachOK {
				return "", errors.New(r.Error)
			}
			return "answers", nil
		}},
		{ui.DiagPingCluster, st.Cluster.Address, func(ctx context.Context) (string, error) {
			if st.Cluster.Address == "" {
				return "", fmt.Errorf("no cluster known yet (enrolment names it)")
			}
			if r := probe(ctx, st.Cluster.Address); r.State != ui.ReachOK {
				return "", errors.New(r.Error)
			}
			return "answers", nil
		}},
		{ui.DiagDNS, strings.Join(st.DNS, ","), func(ctx context.Context) (string, error) {
			if len(st.DNS) == 0 {
				return "", fmt.Errorf("no DNS server known")
			}
			r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, net.JoinHostPort(st.DNS[0], "53"))
			}}
			name := "localhost"
			if h, _, err := net.SplitHostPort(st.Cluster.Address); err == nil && net.ParseIP(h) == nil {
				name = h
			}
			addrs, err := r.LookupHost(ctx, name)
			if err != nil {
				return "", err
			}
			return name + " -> " + strings.Join(addrs, ","), nil
		}},
		{ui.DiagDHCP, dhcpNIC(st), func(ctx context.Context) (string, error) { return dhcpProbe(ctx, dhcpNIC(st)) }},
		{ui.DiagDisk, "/sys/block", diskHealth},
		{ui.DiagTPM, "/dev/tpmrm0", tpmSelfTest},
	}
	results := make([]ui.DiagResult, len(checks))
	for i, ch := range checks {
		results[i] = ui.DiagResult{Name: ch.name, Target: ch.target, State: ui.DiagRunning}
	}
	c.gatherer.setDiagnostics(results)
	for i, ch := range checks {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		detail, err := ch.run(cctx)
		cancel()
		results[i].State, results[i].Detail, results[i].At = ui.DiagOK, detail, time.Now()
		if err != nil {
			results[i].State, results[i].Detail = ui.DiagFail, err.Error()
		}
		c.gatherer.setDiagnostics(append([]ui.DiagResult(nil), results...))
	}
}

// dhcpNIC is the NIC to probe for a DHCP server: the first with a link.
func dhcpNIC(st ui.Status) string {
	for _, n := range st.NICs {
		if n.Up {
			return n.Name
		}
	}
	return ""
}

// dhcpProbe asks, on iface, whether a DHCP server answers: a DISCOVER and
// its OFFER, never a REQUEST, so that nothing is taken from the pool and
// the box's own address stays as it is.
func dhcpProbe(ctx context.Context, iface string) (string, error) {
	if iface == "" {
		return "", fmt.Errorf("no NIC with a link")
	}
	c, err := nclient4.New(iface, nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(1))
	if err != nil {
		return "", fmt.Errorf("open a DHCP socket on %s: %w", iface, err)
	}
	defer c.Close()
	offer, err := c.DiscoverOffer(ctx)
	if err != nil {
		return "", fmt.Errorf("no DHCP server answered on %s: %w", iface, err)
	}
	return fmt.Sprintf("%s offers %s", offer.ServerIdentifier(), offer.YourIPAddr), nil
}

// diskHealth reads each disk's state from /sys: a SCSI/SATA disk that the
// kernel took offline says so in device/state.
func diskHealth(context.Context) (string, error) {
	entries, err := os.ReadDir("/sys/block")
	if err != nil {
		return "", err
	}
	var ok, bad []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		state, err := os.ReadFile(filepath.Join("/sys/block", name, "device", "state"))
		if err == nil && strings.TrimSpace(string(state)) != "running" && strings.TrimSpace(string(state)) != "live" {
			bad = append(bad, name+" "+strings.TrimSpace(string(state)))
			continue
		}
		ok = append(ok, name)
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("%s", strings.Join(bad, ", "))
	}
	if len(ok) == 0 {
		return "no disk (diskless)", nil
	}
	return strings.Join(ok, ", ") + " running", nil
}

// tpmSelfTest runs the TPM's full self-test (TPM2_SelfTest, fullTest YES).
// go-tpm has no command type for it, so it is the raw command: a header
// without sessions and one byte.
func tpmSelfTest(context.Context) (string, error) {
	t, err := linuxtpm.Open("/dev/tpmrm0")
	if err != nil {
		return "", fmt.Errorf("no TPM: %w", err)
	}
	defer t.Close()
	cmd := []byte{0x80, 0x01, 0, 0, 0, 11, 0, 0, 0x01, 0x43, 1} // TPM_ST_NO_SESSIONS, size 11, TPM_CC_SelfTest, YES
	rsp, err := t.Send(cmd)
	if err != nil {
		return "", fmt.Errorf("self-test: %w", err)
	}
	if len(rsp) < 10 {
		return "", fmt.Errorf("self-test: a %d-byte answer", len(rsp))
	}
	if rc := binary.BigEndian.Uint32(rsp[6:10]); rc != 0 {
		return "", fmt.Errorf("the TPM failed its self-test: response code 0x%x", rc)
	}
	return "self-test passed", nil
}

// serversOf is the control API's form of the servers the technician set:
// the screen takes HOST[:PORT], the API URLs (the boot server speaks HTTP,
// the cluster API HTTPS).
func serversOf(a ui.SetServers) control.Servers {
	withScheme := func(s, scheme string) string {
		if s == "" || strings.Contains(s, "://") {
			return s
		}
		return scheme + s
	}
	return control.Servers{Boot: withScheme(a.Boot, "http://"), Cluster: withScheme(a.Cluster, "https://")}
}
