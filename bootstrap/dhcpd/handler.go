package dhcpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/onecloud-edu/onecloud/bootstrap/classify"
)

// Ports the server listens on.
const (
	ServerPort = 67   // DHCP
	ClientPort = 68   // where DHCP clients listen
	PXEPort    = 4011 // ProxyDHCP and PXE boot server requests (PXE 2.1 spec)
)

// declineQuarantine is how long an address a client declined (someone else answers ARP for it) stays
// out of the pool.
const declineQuarantine = time.Hour

// DHCP option codes used below that the library names only generically.
const (
	optVendorClass   = 60
	optVendorSpecifc = 43
	optClientUUID    = 97
	// Option 43 sub-options for our firmware (docs/bootstrap.md).
	fwSubURL     = 1
	fwSubCluster = 2
)

// reqLog logs lines about one request, each naming the client's MAC, class,
// message type and port. It formats nothing for a level that is off: a
// logger made with slog.With would format the attributes of every request
// up front, which is most of the logging cost in a boot storm.
type reqLog struct {
	l    *slog.Logger
	ctx  context.Context
	base []any
}

func (r reqLog) log(level slog.Level, msg string, args []any) {
	if !r.l.Enabled(r.ctx, level) {
		return
	}
	r.l.Log(r.ctx, level, msg, append(r.base[:len(r.base):len(r.base)], args...)...)
}

func (r reqLog) Debug(msg string, args ...any) { r.log(slog.LevelDebug, msg, args) }
func (r reqLog) Info(msg string, args ...any)  { r.log(slog.LevelInfo, msg, args) }
func (r reqLog) Warn(msg string, args ...any)  { r.log(slog.LevelWarn, msg, args) }
func (r reqLog) Error(msg string, args ...any) { r.log(slog.LevelError, msg, args) }

// Handler decides the answer to one DHCP request. It touches no socket: Serve feeds it, tests call it.
type Handler struct {
	cfg    Config
	leases *Leases
	log    *slog.Logger
	now    func() time.Time
	stats  *counters

	serverID   net.IP
	reserved   map[string]Reservation // by MAC
	reservedTo map[netip.Addr]string  // address -> MAC
}

// NewHandler checks cfg and returns its handler. Full mode needs leases; proxy mode ignores them.
func NewHandler(cfg Config, leases *Leases) (*Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Mode == Full && leases == nil {
		return nil, errors.New("dhcpd: full mode needs a lease store (OpenLeases)")
	}
	h := &Handler{
		cfg: cfg, leases: leases, log: cfg.Log, now: time.Now, stats: newCounters(),
		serverID:   net.IP(cfg.ServerIP.AsSlice()),
		reserved:   map[string]Reservation{},
		reservedTo: map[netip.Addr]string{},
	}
	for _, r := range cfg.Reservations {
		h.reserved[r.MAC] = r
		h.reservedTo[r.Addr] = r.MAC
	}
	return h, nil
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats { return h.stats.snapshot() }

// Handle answers req, which arrived on port (ServerPort or PXEPort). A nil reply means no answer: the
// packet is not for us (counted as ignored). An error means an answer was due but could not be given
// (the lease could not be saved); the client will retry.
func (h *Handler) Handle(ctx context.Context, req *dhcpv4.DHCPv4, port int) (*dhcpv4.DHCPv4, error) {
	if req == nil {
		return nil, errors.New("dhcpd: no request")
	}
	c := classify.Classify(req)
	h.stats.request(c.Class)
	log := reqLog{l: h.log, ctx: ctx, base: []any{"mac", c.MAC, "class", c.Class, "type", req.MessageType(), "port", port}}
	if req.OpCode != dhcpv4.OpcodeBootRequest || len(req.ClientHWAddr) != 6 {
		log.Debug("not an Ethernet client request", "reason", c.Reason)
		h.stats.ignored.Add(1)
		return nil, nil
	}
	var resp *dhcpv4.DHCPv4
	var err error
	switch {
	case port == PXEPort:
		resp, err = h.pxeRequest(req, c, log)
	case h.cfg.Mode == Proxy:
		resp, err = h.proxy(req, c, log)
	default:
		resp, err = h.full(ctx, req, c, log)
	}
	switch {
	case err != nil:
		h.stats.errors.Add(1)
	case resp == nil:
		h.stats.ignored.Add(1)
	default:
		h.stats.reply(resp.MessageType())
	}
	return resp, err
}

// proxy answers on port 67 in proxy mode: a DISCOVER of a network-boot client gets a ProxyDHCP offer,
// boot information without an address. Everything else is the school's DHCP server's business.
func (h *Handler) proxy(req *dhcpv4.DHCPv4, c classify.Client, log reqLog) (*dhcpv4.DHCPv4, error) {
	if req.MessageType() != dhcpv4.MessageTypeDiscover {
		log.Debug("proxy mode: not a DISCOVER, left to the school's DHCP server")
		return nil, nil
	}
	if !c.Class.Boots() {
		log.Debug("proxy mode: not a network-boot client, ignored", "reason", c.Reason)
		return nil, nil
	}
	resp, err := h.reply(req, dhcpv4.MessageTypeOffer)
	if err != nil {
		return nil, err
	}
	h.proxyBoot(req, resp, c)
	log.Info("proxyDHCP offer", "file", resp.BootFileName)
	return resp, nil
}

// pxeRequest answers a request sent to port 4011: iPXE's ProxyDHCPREQUEST after the main server's ACK,
// or a PXE ROM's request to the boot server (OVMF sends one when our offer carries "PXEClient" without a
// boot menu). The answer is an ACK with the boot information and no address, sent back to the sender's
// address and port (iPXE only accepts it from port 4011).
func (h *Handler) pxeRequest(req *dhcpv4.DHCPv4, c classify.Client, log reqLog) (*dhcpv4.DHCPv4, error) {
	switch req.MessageType() {
	case dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeInform:
	default:
		log.Debug("port 4011: not a request")
		return nil, nil
	}
	if !c.Class.Boots() {
		log.Debug("port 4011: not a network-boot client, ignored", "reason", c.Reason)
		return nil, nil
	}
	resp, err := h.reply(req, dhcpv4.MessageTypeAck)
	if err != nil {
		return nil, err
	}
	resp.ClientIPAddr = req.ClientIPAddr
	h.proxyBoot(req, resp, c)
	log.Info("proxyDHCP ack on port 4011", "file", resp.BootFileName)
	return resp, nil
}

// proxyBoot adds what a ProxyDHCP answer needs to be taken, then the boot file. iPXE (src/net/udp/
// dhcp.c) keeps an offer as ProxyDHCP when option 60 starts with "PXEClient" and it names a server
// (option 54, else siaddr); with siaddr and a boot file in it, it uses the file right after the main
// server's ACK without a ProxyDHCPREQUEST. There is no option 43: with a PXE boot menu (43.9) in it, iPXE
// and PXE ROMs would start PXE boot server discovery instead of taking our file. UEFI HTTP boot wants
// its own vendor class echoed instead.
func (h *Handler) proxyBoot(req, resp *dhcpv4.DHCPv4, c classify.Client) {
	if c.Class == classify.UEFIHTTP {
		resp.UpdateOption(dhcpv4.OptClassIdentifier("HTTPClient"))
	} else {
		resp.UpdateOption(dhcpv4.OptClassIdentifier("PXEClient"))
	}
	// PXE 2.1 asks a proxy to echo the client's machine UUID.
	if uuid := req.Options.Get(dhcpv4.GenericOptionCode(optClientUUID)); uuid != nil {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(optClientUUID), uuid))
	}
	h.bootFile(req, resp, c)
}

// bootFile sets siaddr and the boot file for a network-boot client, per class.
func (h *Handler) bootFile(req, resp *dhcpv4.DHCPv4, c classify.Client) {
	tftpFile := func() string {
		if c.UEFI {
			return h.cfg.UEFIFile
		}
		return h.cfg.BIOSFile
	}
	resp.ServerIPAddr = h.serverID
	switch c.Class {
	case classify.BIOSPXE:
		resp.BootFileName = h.cfg.BIOSFile
	case classify.UEFIPXE:
		resp.BootFileName = h.cfg.UEFIFile
	case classify.UEFIHTTP:
		resp.BootFileName = h.cfg.HTTPBase + h.cfg.UEFIHTTPPath
		resp.UpdateOption(dhcpv4.OptClassIdentifier("HTTPClient"))
	case classify.IPXE:
		if c.IPXEFeatures && !c.IPXEHTTP {
			// An iPXE built without HTTP cannot fetch the script: give it ours, which can, by TFTP.
			resp.BootFileName = tftpFile()
		} else {
			resp.BootFileName = h.cfg.HTTPBase + h.cfg.IPXEScriptPath
		}
	}
}

// firmwareOption is option 43 for our firmware: sub-option 1 the bootstrap URL, 2 the cluster address.
func (h *Handler) firmwareOption() dhcpv4.Option {
	var v []byte
	v = append(v, fwSubURL, byte(len(h.cfg.HTTPBase)))
	v = append(v, h.cfg.HTTPBase...)
	if h.cfg.ClusterAddr != "" {
		v = append(v, fwSubCluster, byte(len(h.cfg.ClusterAddr)))
		v = append(v, h.cfg.ClusterAddr...)
	}
	return dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(optVendorSpecifc), append(v, 255))
}

// reply starts an answer to req of type mt, from us.
func (h *Handler) reply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	resp, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(h.serverID)))
	if err != nil {
		return nil, fmt.Errorf("dhcpd: build a reply: %w", err)
	}
	return resp, nil
}

// pool is the pool a request belongs to: by the relay's address, else by the address a renewing client
// has, else the subnet of our own address (the client is on our link).
func (h *Handler) pool(req *dhcpv4.DHCPv4) *Pool {
	if gi, ok := addr4(req.GatewayIPAddr); ok {
		return h.cfg.poolFor(gi)
	}
	if ci, ok := addr4(req.ClientIPAddr); ok {
		if p := h.cfg.poolFor(ci); p != nil {
			return p
		}
	}
	return h.cfg.poolFor(h.cfg.ServerIP)
}

// addr4 converts a packet's address field, false for a missing or zero one.
func addr4(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

// rangeOf is p's dynamic range, never handing out the server's or router's address, the subnet's
// network and broadcast addresses, or addresses reserved for other machines.
func (h *Handler) rangeOf(p *Pool) addrRange {
	bcast := lastAddr(p.Subnet)
	return addrRange{first: p.First, last: p.Last, skip: func(a netip.Addr, mac string) bool {
		if a == h.cfg.ServerIP || a == p.Router || a == p.Subnet.Addr() || a == bcast {
			return true
		}
		owner, ok := h.reservedTo[a]
		return ok && owner != mac
	}}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// full answers in full mode.
func (h *Handler) full(ctx context.Context, req *dhcpv4.DHCPv4, c classify.Client, log reqLog) (*dhcpv4.DHCPv4, error) {
	p := h.pool(req)
	if p == nil {
		log.Warn("no address pool for this client's subnet: add a pool for it", "giaddr", req.GatewayIPAddr, "ciaddr", req.ClientIPAddr)
		return nil, nil
	}
	now := h.now()
	fixed := netip.Addr{}
	hostname := req.HostName()
	if r, ok := h.reserved[c.MAC]; ok && p.Subnet.Contains(r.Addr) {
		fixed = r.Addr
		if r.Hostname != "" {
			hostname = r.Hostname
		}
	}
	requested, _ := addr4(req.RequestedIPAddress())
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		a := h.leases.Offer(c.MAC, h.rangeOf(p), fixed, requested, now)
		if !a.IsValid() {
			log.Warn("no free address to offer: the pool is exhausted or the reserved address is in use", "pool", p.Subnet, "reserved", fixed)
			return nil, nil
		}
		resp, err := h.reply(req, dhcpv4.MessageTypeOffer)
		if err != nil {
			return nil, err
		}
		h.fill(req, resp, c, p, a, fixed.IsValid())
		// Debug, not Info: the ACK that follows is the line that matters, and
		// in a storm every line costs (see BenchmarkDORA).
		log.Debug("offer", "addr", a, "file", resp.BootFileName)
		return resp, nil

	case dhcpv4.MessageTypeRequest:
		var a netip.Addr
		if sid := req.ServerIdentifier(); sid != nil {
			// SELECTING: the client answers one server's offer, by its server identifier.
			if !sid.Equal(h.serverID) {
				h.leases.forgetHold(c.MAC)
				log.Debug("the client chose another DHCP server", "server", sid)
				return nil, nil
			}
			a = requested
		} else if requested.IsValid() {
			a = requested // INIT-REBOOT: a client that remembers its address
		} else if ci, ok := addr4(req.ClientIPAddr); ok {
			a = ci // RENEWING (unicast) or REBINDING (broadcast)
		}
		if !a.IsValid() {
			log.Debug("REQUEST names no address")
			return nil, nil
		}
		ours := a == fixed || (h.rangeOf(p).contains(a) && !h.rangeOf(p).skip(a, c.MAC))
		if !ours || (fixed.IsValid() && a != fixed) {
			log.Info("nak: address not for this client here", "addr", a, "pool", p.Subnet, "reserved", fixed)
			return h.nak(req)
		}
		lease, err := h.leases.Bind(ctx, c.MAC, a, hostname, now, p.LeaseTime)
		if errors.Is(err, ErrAddrTaken) {
			log.Info("nak: address in use by another machine", "addr", a)
			return h.nak(req)
		}
		if err != nil {
			log.Error("no ack: the lease could not be saved", "addr", a, "err", err)
			return nil, err
		}
		resp, err := h.reply(req, dhcpv4.MessageTypeAck)
		if err != nil {
			return nil, err
		}
		resp.ClientIPAddr = req.ClientIPAddr
		h.fill(req, resp, c, p, lease.Addr, fixed.IsValid())
		log.Info("ack", "addr", lease.Addr, "until", lease.Expiry.Format(time.RFC3339), "file", resp.BootFileName)
		return resp, nil

	case dhcpv4.MessageTypeRelease:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(h.serverID) {
			return nil, nil
		}
		ci, _ := addr4(req.ClientIPAddr)
		if err := h.leases.Release(ctx, c.MAC, ci, now); err != nil {
			return nil, err
		}
		log.Info("released", "addr", ci)
		return nil, nil

	case dhcpv4.MessageTypeDecline:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(h.serverID) {
			return nil, nil
		}
		if err := h.leases.Decline(ctx, c.MAC, requested, now, declineQuarantine); err != nil {
			return nil, err
		}
		log.Warn("client declined its address: something else uses it; quarantined", "addr", requested, "for", declineQuarantine)
		return nil, nil

	case dhcpv4.MessageTypeInform:
		ci, ok := addr4(req.ClientIPAddr)
		if !ok {
			log.Debug("INFORM without ciaddr")
			return nil, nil
		}
		resp, err := h.reply(req, dhcpv4.MessageTypeAck)
		if err != nil {
			return nil, err
		}
		resp.ClientIPAddr = req.ClientIPAddr
		h.fill(req, resp, c, p, netip.Addr{}, false)
		resp.Options.Del(dhcpv4.OptionIPAddressLeaseTime)
		resp.Options.Del(dhcpv4.OptionRenewTimeValue)
		resp.Options.Del(dhcpv4.OptionRebindingTimeValue)
		log.Info("inform", "addr", ci)
		return resp, nil
	}
	log.Debug("message type not handled")
	return nil, nil
}

// fill adds the address (yiaddr, unless zero), the subnet's options and the boot information for c.
func (h *Handler) fill(req, resp *dhcpv4.DHCPv4, c classify.Client, p *Pool, a netip.Addr, reserved bool) {
	if a.IsValid() {
		resp.YourIPAddr = net.IP(a.AsSlice())
	}
	resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(p.Subnet.Bits(), 32)))
	if p.Router.IsValid() {
		resp.UpdateOption(dhcpv4.OptRouter(net.IP(p.Router.AsSlice())))
	}
	if len(p.DNS) > 0 {
		var dns []net.IP
		for _, d := range p.DNS {
			dns = append(dns, net.IP(d.AsSlice()))
		}
		resp.UpdateOption(dhcpv4.OptDNS(dns...))
	}
	resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(p.LeaseTime))
	resp.UpdateOption(dhcpv4.OptRenewTimeValue(p.LeaseTime / 2))
	resp.UpdateOption(dhcpv4.OptRebindingTimeValue(p.LeaseTime * 7 / 8))
	if r, ok := h.reserved[c.MAC]; ok && reserved && r.Hostname != "" {
		resp.UpdateOption(dhcpv4.OptHostName(r.Hostname))
	}
	switch {
	case c.Class == classify.Firmware:
		resp.UpdateOption(h.firmwareOption())
	case c.Class.Boots():
		// No option 60 "PXEClient" here: with it and no boot menu, OVMF takes our offer for a BINL one
		// and asks port 4011 for the file, which full mode does not serve; without it, the offer is
		// plain DHCP with a boot file, which every PXE ROM and iPXE boots from.
		h.bootFile(req, resp, c)
	}
}

// nak refuses a REQUEST. RFC 2131 4.3.2: a relayed NAK has the broadcast bit set so that the relay
// broadcasts it.
func (h *Handler) nak(req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, error) {
	resp, err := h.reply(req, dhcpv4.MessageTypeNak)
	if err != nil {
		return nil, err
	}
	if _, ok := addr4(req.GatewayIPAddr); ok {
		resp.SetBroadcast()
	}
	return resp, nil
}
