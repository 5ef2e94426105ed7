package dhcpd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var (
	srvIP  = netip.MustParseAddr("10.77.1.1")
	router = netip.MustParseAddr("10.77.1.254")
)

const httpBase = "http://10.77.1.1:8080"

func testConfig(mode Mode) Config {
	return Config{
		Mode: mode, ServerIP: srvIP, HTTPBase: httpBase + "/", ClusterAddr: "10.77.1.10:7000",
		Pools: []Pool{
			{Subnet: netip.MustParsePrefix("10.77.1.0/24"), First: netip.MustParseAddr("10.77.1.100"),
				Last: netip.MustParseAddr("10.77.1.199"), Router: router, DNS: []netip.Addr{srvIP}},
			{Subnet: netip.MustParsePrefix("10.77.2.0/24"), First: netip.MustParseAddr("10.77.2.10"),
				Last: netip.MustParseAddr("10.77.2.20"), Router: netip.MustParseAddr("10.77.2.1"), LeaseTime: 10 * time.Minute},
		},
		Reservations: []Reservation{{MAC: "52:54:00:00:00:99", Addr: netip.MustParseAddr("10.77.1.50"), Hostname: "teacher"}},
	}
}

func newTestHandler(t testing.TB, mode Mode) *Handler {
	t.Helper()
	var leases *Leases
	if mode == Full {
		var err error
		leases, err = OpenLeases(filepath.Join(t.TempDir(), "leases"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { leases.Close() })
	}
	h, err := NewHandler(testConfig(mode), leases)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// clientKind is how a kind of client identifies itself, as recorded from real ones.
type clientKind struct {
	name string
	opts []dhcpv4.Option
}

func gen(code uint8, b ...byte) dhcpv4.Option {
	return dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(code), b)
}

var (
	kindBIOS = clientKind{"bios-pxe", []dhcpv4.Option{dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001"),
		dhcpv4.OptClientArch(iana.INTEL_X86PC)}}
	kindUEFI = clientKind{"uefi-pxe", []dhcpv4.Option{dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000"),
		dhcpv4.OptClientArch(iana.EFI_BC)}}
	kindHTTP = clientKind{"uefi-http", []dhcpv4.Option{dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003000"),
		dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP)}}
	kindIPXE = clientKind{"ipxe", []dhcpv4.Option{dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003010"),
		dhcpv4.OptClientArch(iana.EFI_BC), gen(77, 'i', 'P', 'X', 'E'), gen(175, 0xb1, 0x05, 0x01, 0x80, 0x86, 0x10, 0x0e, 0x13, 0x01, 0x01)}}
	kindIPXENoHTTP = clientKind{"ipxe-nohttp", []dhcpv4.Option{dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001"),
		dhcpv4.OptClientArch(iana.INTEL_X86PC), gen(77, 'i', 'P', 'X', 'E'), gen(175, 0x15, 0x01, 0x01)}}
	kindFirmware = clientKind{"firmware", []dhcpv4.Option{dhcpv4.OptClassIdentifier("onecloud-firmware")}}
	kindOther    = clientKind{"other", []dhcpv4.Option{dhcpv4.OptClassIdentifier("MSFT 5.0")}}
	kindARM      = clientKind{"uefi-arm64", []dhcpv4.Option{dhcpv4.OptClassIdentifier("PXEClient:Arch:00011:UNDI:003000"),
		dhcpv4.OptClientArch(iana.EFI_ARM64)}}
)

// request builds a client message.
func request(t testing.TB, mac string, mt dhcpv4.MessageType, kind clientKind, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	all := []dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(mt)}
	for _, o := range kind.opts {
		all = append(all, dhcpv4.WithOption(o))
	}
	p, err := dhcpv4.New(append(all, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ip(s string) net.IP { return net.ParseIP(s).To4() }

// optionsOf renders a reply's options as "code=hex" sorted, for exact comparison.
func optionsOf(p *dhcpv4.DHCPv4) string {
	var out []string
	for code, v := range p.Options {
		out = append(out, fmt.Sprintf("%d=%x", code, v))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// opts renders expected options the same way.
func opts(o ...dhcpv4.Option) string {
	m := dhcpv4.OptionsFromList(o...)
	p := &dhcpv4.DHCPv4{Options: m}
	return optionsOf(p)
}

func msgType(mt dhcpv4.MessageType) dhcpv4.Option { return dhcpv4.OptMessageType(mt) }
func serverID() dhcpv4.Option                     { return dhcpv4.OptServerIdentifier(srvIP.AsSlice()) }
func vendor(s string) dhcpv4.Option               { return dhcpv4.OptClassIdentifier(s) }

// subnetOpts are the options of an address in the first pool.
func subnetOpts() []dhcpv4.Option {
	return []dhcpv4.Option{
		dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)), dhcpv4.OptRouter(router.AsSlice()), dhcpv4.OptDNS(srvIP.AsSlice()),
		dhcpv4.OptIPAddressLeaseTime(time.Hour), dhcpv4.OptRenewTimeValue(30 * time.Minute),
		dhcpv4.OptRebindingTimeValue(time.Hour * 7 / 8),
	}
}

func firmware43(withCluster bool) dhcpv4.Option {
	v := append([]byte{1, byte(len(httpBase))}, httpBase...)
	if withCluster {
		v = append(v, 2, byte(len("10.77.1.10:7000")))
		v = append(v, "10.77.1.10:7000"...)
	}
	return gen(43, append(v, 255)...)
}

// want is an expected reply; a nil *want means no reply.
type want struct {
	mt     dhcpv4.MessageType
	yiaddr string // "" for 0.0.0.0
	siaddr string // "" for 0.0.0.0
	file   string
	opts   string
}

func check(t *testing.T, resp *dhcpv4.DHCPv4, err error, w *want) {
	t.Helper()
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if w == nil {
		if resp != nil {
			t.Fatalf("want no reply, got\n%s", resp.Summary())
		}
		return
	}
	if resp == nil {
		t.Fatalf("want a %s, got no reply", w.mt)
	}
	ipOrZero := func(s string) string {
		if s == "" {
			return "0.0.0.0"
		}
		return s
	}
	if resp.MessageType() != w.mt || resp.YourIPAddr.String() != ipOrZero(w.yiaddr) ||
		resp.ServerIPAddr.String() != ipOrZero(w.siaddr) || resp.BootFileName != w.file || resp.OpCode != dhcpv4.OpcodeBootReply {
		t.Errorf("reply %s yiaddr %s siaddr %s file %q\nwant  %s yiaddr %s siaddr %s file %q",
			resp.MessageType(), resp.YourIPAddr, resp.ServerIPAddr, resp.BootFileName, w.mt, ipOrZero(w.yiaddr), ipOrZero(w.siaddr), w.file)
	}
	if got := optionsOf(resp); got != w.opts {
		t.Errorf("options\n got %s\nwant %s", got, w.opts)
	}
}

func TestProxyMode(t *testing.T) {
	const mac = "52:54:00:aa:00:01"
	bios := "undionly.kpxe"
	proxyOpts := func(mt dhcpv4.MessageType, vc string) string { return opts(msgType(mt), serverID(), vendor(vc)) }
	tests := []struct {
		kind clientKind
		mt   dhcpv4.MessageType
		port int
		want *want
	}{
		{kindBIOS, dhcpv4.MessageTypeDiscover, 67, &want{dhcpv4.MessageTypeOffer, "", "10.77.1.1", bios, proxyOpts(dhcpv4.MessageTypeOffer, "PXEClient")}},
		{kindUEFI, dhcpv4.MessageTypeDiscover, 67, &want{dhcpv4.MessageTypeOffer, "", "10.77.1.1", "snponly.efi", proxyOpts(dhcpv4.MessageTypeOffer, "PXEClient")}},
		{kindHTTP, dhcpv4.MessageTypeDiscover, 67, &want{dhcpv4.MessageTypeOffer, "", "10.77.1.1", httpBase + "/bin/ipxe.efi", proxyOpts(dhcpv4.MessageTypeOffer, "HTTPClient")}},
		{kindIPXE, dhcpv4.MessageTypeDiscover, 67, &want{dhcpv4.MessageTypeOffer, "", "10.77.1.1", httpBase + "/boot.ipxe", proxyOpts(dhcpv4.MessageTypeOffer, "PXEClient")}},
		{kindIPXENoHTTP, dhcpv4.MessageTypeDiscover, 67, &want{dhcpv4.MessageTypeOffer, "", "10.77.1.1", bios, proxyOpts(dhcpv4.MessageTypeOffer, "PXEClient")}},
		{kindFirmware, dhcpv4.MessageTypeDiscover, 67, nil},
		{kindOther, dhcpv4.MessageTypeDiscover, 67, nil},
		{kindARM, dhcpv4.MessageTypeDiscover, 67, nil},
		// The school's server does the rest of DORA on port 67.
		{kindBIOS, dhcpv4.MessageTypeRequest, 67, nil},
		{kindIPXE, dhcpv4.MessageTypeRequest, 67, nil},
		{kindIPXE, dhcpv4.MessageTypeInform, 67, nil},
		{kindBIOS, dhcpv4.MessageTypeRelease, 67, nil},
		{kindFirmware, dhcpv4.MessageTypeRequest, 67, nil},
		// Port 4011: ProxyDHCPREQUEST and PXE boot server requests.
		{kindBIOS, dhcpv4.MessageTypeRequest, 4011, &want{dhcpv4.MessageTypeAck, "", "10.77.1.1", bios, proxyOpts(dhcpv4.MessageTypeAck, "PXEClient")}},
		{kindUEFI, dhcpv4.MessageTypeRequest, 4011, &want{dhcpv4.MessageTypeAck, "", "10.77.1.1", "snponly.efi", proxyOpts(dhcpv4.MessageTypeAck, "PXEClient")}},
		{kindUEFI, dhcpv4.MessageTypeDiscover, 4011, &want{dhcpv4.MessageTypeAck, "", "10.77.1.1", "snponly.efi", proxyOpts(dhcpv4.MessageTypeAck, "PXEClient")}},
		{kindHTTP, dhcpv4.MessageTypeRequest, 4011, &want{dhcpv4.MessageTypeAck, "", "10.77.1.1", httpBase + "/bin/ipxe.efi", proxyOpts(dhcpv4.MessageTypeAck, "HTTPClient")}},
		{kindIPXE, dhcpv4.MessageTypeRequest, 4011, &want{dhcpv4.MessageTypeAck, "", "10.77.1.1", httpBase + "/boot.ipxe", proxyOpts(dhcpv4.MessageTypeAck, "PXEClient")}},
		{kindFirmware, dhcpv4.MessageTypeRequest, 4011, nil},
		{kindOther, dhcpv4.MessageTypeRequest, 4011, nil},
		{kindIPXE, dhcpv4.MessageTypeRelease, 4011, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%d", tt.kind.name, tt.mt, tt.port), func(t *testing.T) {
			h := newTestHandler(t, Proxy)
			req := request(t, mac, tt.mt, tt.kind)
			resp, err := h.Handle(t.Context(), req, tt.port)
			check(t, resp, err, tt.want)
			if resp != nil && (resp.TransactionID != req.TransactionID || resp.ClientHWAddr.String() != mac) {
				t.Errorf("reply xid %v chaddr %v, want the request's", resp.TransactionID, resp.ClientHWAddr)
			}
		})
	}
}

func TestProxyEchoesUUIDAndCiaddr(t *testing.T) {
	h := newTestHandler(t, Proxy)
	uuid := gen(97, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
	req := request(t, "52:54:00:aa:00:02", dhcpv4.MessageTypeRequest, kindUEFI,
		dhcpv4.WithOption(uuid), dhcpv4.WithClientIP(ip("192.168.5.20")))
	resp, err := h.Handle(t.Context(), req, PXEPort)
	check(t, resp, err, &want{dhcpv4.MessageTypeAck, "", "10.77.1.1", "snponly.efi",
		opts(msgType(dhcpv4.MessageTypeAck), serverID(), vendor("PXEClient"), uuid)})
	if !resp.ClientIPAddr.Equal(ip("192.168.5.20")) {
		t.Errorf("ciaddr = %v, want the request's", resp.ClientIPAddr)
	}
	st := h.Stats()
	if st.Acks != 1 || st.Requests["uefi-pxe"] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// TestFullModeDORA runs DISCOVER then REQUEST for every class and checks both answers exactly.
func TestFullModeDORA(t *testing.T) {
	tests := []struct {
		kind  clientKind
		file  string
		boot  bool // siaddr set
		extra []dhcpv4.Option
	}{
		{kindBIOS, "undionly.kpxe", true, nil},
		{kindUEFI, "snponly.efi", true, nil},
		{kindHTTP, httpBase + "/bin/ipxe.efi", true, []dhcpv4.Option{vendor("HTTPClient")}},
		{kindIPXE, httpBase + "/boot.ipxe", true, nil},
		{kindIPXENoHTTP, "undionly.kpxe", true, nil},
		{kindFirmware, "", false, []dhcpv4.Option{firmware43(true)}},
		{kindOther, "", false, nil},
		{kindARM, "", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.kind.name, func(t *testing.T) {
			h := newTestHandler(t, Full)
			const mac = "52:54:00:bb:00:01"
			siaddr := ""
			if tt.boot {
				siaddr = "10.77.1.1"
			}
			wantOpts := func(mt dhcpv4.MessageType) string {
				return opts(append(append(subnetOpts(), msgType(mt), serverID()), tt.extra...)...)
			}
			offer, err := h.Handle(t.Context(), request(t, mac, dhcpv4.MessageTypeDiscover, tt.kind), 67)
			check(t, offer, err, &want{dhcpv4.MessageTypeOffer, "10.77.1.100", siaddr, tt.file, wantOpts(dhcpv4.MessageTypeOffer)})

			req := request(t, mac, dhcpv4.MessageTypeRequest, tt.kind,
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srvIP.AsSlice())),
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.77.1.100"))))
			ack, err := h.Handle(t.Context(), req, 67)
			check(t, ack, err, &want{dhcpv4.MessageTypeAck, "10.77.1.100", siaddr, tt.file, wantOpts(dhcpv4.MessageTypeAck)})
			if l, ok := h.leases.Get(netip.MustParseAddr("10.77.1.100")); !ok || l.MAC != mac {
				t.Errorf("lease = %+v, %v", l, ok)
			}
		})
	}
}

func TestFullModeMessages(t *testing.T) {
	const mac, other = "52:54:00:cc:00:01", "52:54:00:cc:00:02"
	a100 := "10.77.1.100"
	ackOpts := opts(append(subnetOpts(), msgType(dhcpv4.MessageTypeAck), serverID())...)
	nakOpts := opts(msgType(dhcpv4.MessageTypeNak), serverID())
	sid := func(s string) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip(s))) }
	reqIP := func(s string) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip(s))) }

	// bind gives mac the address a100 first.
	bind := func(t *testing.T, h *Handler) {
		t.Helper()
		if _, err := h.Handle(t.Context(), request(t, mac, dhcpv4.MessageTypeDiscover, kindOther), 67); err != nil {
			t.Fatal(err)
		}
		resp, err := h.Handle(t.Context(), request(t, mac, dhcpv4.MessageTypeRequest, kindOther, sid("10.77.1.1"), reqIP(a100)), 67)
		if err != nil || resp == nil || resp.MessageType() != dhcpv4.MessageTypeAck {
			t.Fatalf("bind: %v %v", resp, err)
		}
	}
	tests := []struct {
		name  string
		bound bool
		req   func(t *testing.T) *dhcpv4.DHCPv4
		want  *want
		after func(t *testing.T, h *Handler)
	}{
		{name: "selecting another server", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeRequest, kindOther, sid("10.77.1.2"), reqIP(a100))
		}},
		{name: "init-reboot, free address in pool", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeRequest, kindOther, reqIP("10.77.1.150"))
		}, want: &want{dhcpv4.MessageTypeAck, "10.77.1.150", "", "", ackOpts}},
		{name: "init-reboot, address of another subnet", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeRequest, kindOther, reqIP("192.168.1.5"))
		}, want: &want{mt: dhcpv4.MessageTypeNak, opts: nakOpts}},
		{name: "init-reboot, the router's address", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeRequest, kindOther, reqIP("10.77.1.254"))
		}, want: &want{mt: dhcpv4.MessageTypeNak, opts: nakOpts}},
		{name: "selecting an address bound to another machine", bound: true, req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, other, dhcpv4.MessageTypeRequest, kindOther, sid("10.77.1.1"), reqIP(a100))
		}, want: &want{mt: dhcpv4.MessageTypeNak, opts: nakOpts}},
		{name: "renewing", bound: true, req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeRequest, kindOther, dhcpv4.WithClientIP(ip(a100)))
		}, want: &want{dhcpv4.MessageTypeAck, a100, "", "", ackOpts}},
		{name: "rebinding (broadcast)", bound: true, req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeRequest, kindOther, dhcpv4.WithClientIP(ip(a100)), dhcpv4.WithBroadcast(true))
		}, want: &want{dhcpv4.MessageTypeAck, a100, "", "", ackOpts}},
		{name: "renewing another machine's address", bound: true, req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, other, dhcpv4.MessageTypeRequest, kindOther, dhcpv4.WithClientIP(ip(a100)))
		}, want: &want{mt: dhcpv4.MessageTypeNak, opts: nakOpts}},
		{name: "request without any address", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeRequest, kindOther)
		}},
		{name: "inform", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeInform, kindOther, dhcpv4.WithClientIP(ip("10.77.1.33")))
		}, want: &want{mt: dhcpv4.MessageTypeAck, opts: opts(msgType(dhcpv4.MessageTypeAck), serverID(),
			dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)), dhcpv4.OptRouter(router.AsSlice()), dhcpv4.OptDNS(srvIP.AsSlice()))}},
		{name: "inform from ipxe gets boot information", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeInform, kindIPXE, dhcpv4.WithClientIP(ip("10.77.1.33")))
		}, want: &want{mt: dhcpv4.MessageTypeAck, siaddr: "10.77.1.1", file: httpBase + "/boot.ipxe", opts: opts(msgType(dhcpv4.MessageTypeAck), serverID(),
			dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)), dhcpv4.OptRouter(router.AsSlice()), dhcpv4.OptDNS(srvIP.AsSlice()))}},
		{name: "release", bound: true, req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeRelease, kindOther, dhcpv4.WithClientIP(ip(a100)), sid("10.77.1.1"))
		}, after: func(t *testing.T, h *Handler) {
			l, _ := h.leases.Get(netip.MustParseAddr(a100))
			if l.Active(time.Now().Add(time.Second)) {
				t.Errorf("lease still active after RELEASE: %+v", l)
			}
		}},
		{name: "release of another machine's lease", bound: true, req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, other, dhcpv4.MessageTypeRelease, kindOther, dhcpv4.WithClientIP(ip(a100)))
		}, after: func(t *testing.T, h *Handler) {
			if l, _ := h.leases.Get(netip.MustParseAddr(a100)); !l.Active(time.Now()) || l.MAC != mac {
				t.Errorf("lease changed by a stranger's RELEASE: %+v", l)
			}
		}},
		{name: "decline", bound: true, req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeDecline, kindOther, reqIP(a100), sid("10.77.1.1"))
		}, after: func(t *testing.T, h *Handler) {
			l, _ := h.leases.Get(netip.MustParseAddr(a100))
			if !l.Declined || !l.Active(time.Now()) {
				t.Errorf("declined address not quarantined: %+v", l)
			}
			// The same client asks again: it gets another address.
			resp, err := h.Handle(t.Context(), request(t, mac, dhcpv4.MessageTypeDiscover, kindOther), 67)
			if err != nil || resp == nil || resp.YourIPAddr.Equal(ip(a100)) {
				t.Errorf("offer after DECLINE: %v %v", resp, err)
			}
		}},
		{name: "relayed discover gets an address of the relay's subnet", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeDiscover, kindBIOS, dhcpv4.WithGatewayIP(ip("10.77.2.1")))
		}, want: &want{dhcpv4.MessageTypeOffer, "10.77.2.10", "10.77.1.1", "undionly.kpxe", opts(msgType(dhcpv4.MessageTypeOffer), serverID(),
			dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)), dhcpv4.OptRouter(ip("10.77.2.1")),
			dhcpv4.OptIPAddressLeaseTime(10*time.Minute), dhcpv4.OptRenewTimeValue(5*time.Minute), dhcpv4.OptRebindingTimeValue(10*time.Minute*7/8))}},
		{name: "relayed from an unknown subnet", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeDiscover, kindBIOS, dhcpv4.WithGatewayIP(ip("10.9.9.1")))
		}},
		{name: "reserved machine gets its address and hostname", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, "52:54:00:00:00:99", dhcpv4.MessageTypeDiscover, kindFirmware)
		}, want: &want{mt: dhcpv4.MessageTypeOffer, yiaddr: "10.77.1.50", opts: opts(append(subnetOpts(), msgType(dhcpv4.MessageTypeOffer), serverID(),
			dhcpv4.OptHostName("teacher"), firmware43(true))...)}},
		{name: "reserved machine asking for another address", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, "52:54:00:00:00:99", dhcpv4.MessageTypeRequest, kindOther, reqIP("10.77.1.120"))
		}, want: &want{mt: dhcpv4.MessageTypeNak, opts: nakOpts}},
		{name: "another machine asking for a reserved address", req: func(t *testing.T) *dhcpv4.DHCPv4 {
			return request(t, mac, dhcpv4.MessageTypeRequest, kindOther, reqIP("10.77.1.50"))
		}, want: &want{mt: dhcpv4.MessageTypeNak, opts: nakOpts}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, Full)
			if tt.bound {
				bind(t, h)
			}
			resp, err := h.Handle(t.Context(), tt.req(t), 67)
			check(t, resp, err, tt.want)
			if tt.after != nil {
				tt.after(t, h)
			}
		})
	}
}

func TestFirmwareWithoutCluster(t *testing.T) {
	cfg := testConfig(Full)
	cfg.ClusterAddr = ""
	leases, err := OpenLeases(filepath.Join(t.TempDir(), "leases"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer leases.Close()
	h, err := NewHandler(cfg, leases)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(t.Context(), request(t, "52:54:00:dd:00:01", dhcpv4.MessageTypeDiscover, kindFirmware), 67)
	if err != nil || resp == nil {
		t.Fatalf("%v %v", resp, err)
	}
	if got, want := resp.Options.Get(dhcpv4.GenericOptionCode(43)), firmware43(false).Value.ToBytes(); !bytes.Equal(got, want) {
		t.Errorf("option 43 = %q, want %q", got, want)
	}
}

// TestOffersNeverCollide: concurrent DISCOVERs from different machines get different addresses, and a
// machine asking again gets the same one.
func TestOffersNeverCollide(t *testing.T) {
	h := newTestHandler(t, Full)
	const n = 100 // the pool has exactly 100 addresses
	got := make(chan string, n+1)
	done := make(chan struct{})
	for i := range n + 1 {
		go func() {
			defer func() { done <- struct{}{} }()
			resp, err := h.Handle(context.Background(), request(t, fmt.Sprintf("52:54:00:ee:%02x:%02x", i/256, i%256), dhcpv4.MessageTypeDiscover, kindOther), 67)
			if err != nil {
				t.Error(err)
				return
			}
			if resp != nil {
				got <- resp.YourIPAddr.String()
			}
		}()
	}
	for range n + 1 {
		<-done
	}
	close(got)
	seen := map[string]bool{}
	for a := range got {
		if seen[a] {
			t.Errorf("address %s offered twice", a)
		}
		seen[a] = true
	}
	if len(seen) != n {
		t.Errorf("%d offers, want %d (the pool's size; one client finds it exhausted)", len(seen), n)
	}
	again, _ := h.Handle(t.Context(), request(t, "52:54:00:ee:00:05", dhcpv4.MessageTypeDiscover, kindOther), 67)
	if again == nil || !seen[again.YourIPAddr.String()] {
		t.Errorf("a repeated DISCOVER got %v", again)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"bad mode", func(c *Config) { c.Mode = "both" }, "mode"},
		{"no server ip", func(c *Config) { c.ServerIP = netip.Addr{} }, "ServerIP"},
		{"no http base", func(c *Config) { c.HTTPBase = "" }, "HTTPBase"},
		{"no pools", func(c *Config) { c.Pools = nil }, "pool"},
		{"range outside subnet", func(c *Config) { c.Pools[0].Last = netip.MustParseAddr("10.77.3.1") }, "inside the subnet"},
		{"overlapping pools", func(c *Config) { c.Pools[1].Subnet = netip.MustParsePrefix("10.77.0.0/16") }, "overlap"},
		{"bad reservation mac", func(c *Config) { c.Reservations[0].MAC = "nope" }, "MAC"},
		{"reservation outside pools", func(c *Config) { c.Reservations[0].Addr = netip.MustParseAddr("192.168.0.1") }, "no pool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(Full)
			cfg.Pools = append([]Pool(nil), cfg.Pools...)
			cfg.Reservations = append([]Reservation(nil), cfg.Reservations...)
			tt.edit(&cfg)
			_, err := NewHandler(cfg, &Leases{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one about %q", err, tt.want)
			}
		})
	}
	if _, err := NewHandler(testConfig(Full), nil); err == nil {
		t.Error("full mode without leases accepted")
	}
	if _, err := NewServer(testConfig(Proxy), nil); err == nil || !strings.Contains(err.Error(), "Iface") {
		t.Errorf("server without Iface: %v", err)
	}
}

func TestDestination(t *testing.T) {
	from := &net.UDPAddr{IP: ip("10.77.1.100"), Port: 4011}
	mk := func(mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		p, err := dhcpv4.New(mods...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ack := mk(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
	nak := mk(dhcpv4.WithMessageType(dhcpv4.MessageTypeNak))
	tests := []struct {
		name string
		req  *dhcpv4.DHCPv4
		resp *dhcpv4.DHCPv4
		port int
		want string
	}{
		{"no address", mk(), ack, 67, "255.255.255.255:68"},
		{"asks for broadcast", mk(dhcpv4.WithBroadcast(true)), ack, 67, "255.255.255.255:68"},
		{"renewing", mk(dhcpv4.WithClientIP(ip("10.77.1.5"))), ack, 67, "10.77.1.5:68"},
		{"nak to a renewing client", mk(dhcpv4.WithClientIP(ip("10.77.1.5"))), nak, 67, "255.255.255.255:68"},
		{"relayed", mk(dhcpv4.WithGatewayIP(ip("10.77.2.1")), dhcpv4.WithClientIP(ip("10.77.2.5"))), ack, 67, "10.77.2.1:67"},
		{"port 4011", mk(dhcpv4.WithClientIP(ip("10.77.1.5"))), ack, 4011, "10.77.1.100:4011"},
	}
	for _, tt := range tests {
		if got := destination(tt.req, tt.resp, from, tt.port).String(); got != tt.want {
			t.Errorf("%s: destination = %s, want %s", tt.name, got, tt.want)
		}
	}
}
