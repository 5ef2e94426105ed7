package ui

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/onecloud-edu/onecloud/firmware/console/input"
)

// field is one line of a form: a text field, or a choice among values
// when choices is set.
type field struct {
	label   msg
	hint    msg // shown under the form while the field is selected
	value   string
	choices []string
	names   []string // what to show for each choice; nil shows the choice
	labels  []msg    // or translated names
	max     int      // longest text, in runes
	// off greys the field out and skips it (static fields under DHCP).
	off func(f *form) bool
}

type form struct {
	fields []field
	cur    int
	errAt  int // the field the last error is about, -1 for none
}

// Network form fields.
const (
	fNIC = iota
	fMode
	fAddr
	fPrefix
	fGateway
	fDNS
	fVLAN
)

const (
	modeDHCP   = "dhcp"
	modeStatic = "static"
	maxDNS     = 3
)

func dhcpOn(f *form) bool { return f.fields[fMode].value == modeDHCP }

func (m *Model) networkForm() *form {
	var nics, names []string
	nic := m.st.NICs[0]
	for _, n := range m.st.NICs {
		nics = append(nics, n.Name)
		names = append(names, n.Name+"  "+n.MAC)
	}
	for _, n := range m.st.NICs {
		if len(n.Addrs) > 0 {
			nic = n
			break
		}
	}
	mode, addr, bits, gw := modeDHCP, "", "", ""
	if !nic.DHCP && len(nic.Addrs) > 0 {
		mode = modeStatic
	}
	if len(nic.Addrs) > 0 {
		if p, err := netip.ParsePrefix(nic.Addrs[0]); err == nil {
			addr, bits = p.Addr().String(), strconv.Itoa(p.Bits())
		}
	}
	if a, err := netip.ParseAddr(m.st.Gateway.Address); err == nil {
		gw = a.String()
	}
	vlan := ""
	if nic.VLAN > 0 {
		vlan = strconv.Itoa(nic.VLAN)
	}
	return &form{errAt: -1, fields: []field{
		fNIC:     {label: mFieldNIC, hint: mHintNIC, value: nic.Name, choices: nics, names: names},
		fMode:    {label: mFieldMode, hint: mHintMode, value: mode, choices: []string{modeDHCP, modeStatic}, labels: []msg{mChoiceDHCP, mChoiceStatic}},
		fAddr:    {label: mFieldAddr, hint: mHintAddr, value: addr, max: 39, off: dhcpOn},
		fPrefix:  {label: mFieldPrefix, hint: mHintPrefix, value: bits, max: 15, off: dhcpOn},
		fGateway: {label: mFieldGateway, hint: mHintGateway, value: gw, max: 39, off: dhcpOn},
		fDNS:     {label: mFieldDNS, hint: mHintDNS, value: strings.Join(m.st.DNS, " "), max: 60, off: dhcpOn},
		fVLAN:    {label: mFieldVLAN, hint: mHintVLAN, value: vlan, max: 4},
	}}
}

func (m *Model) serversForm() *form {
	return &form{errAt: -1, fields: []field{
		{label: mFieldBoot, hint: mHintBoot, value: m.st.BootServer, max: 60},
		{label: mFieldCluster, hint: mHintCluster, value: m.st.Cluster.Address, max: 60},
	}}
}

func (m *Model) roleForm() *form {
	f := field{label: mFieldRole, hint: mHintRole, max: 63}
	if len(m.st.Roles) > 0 {
		f.choices = m.st.Roles
		f.value = m.st.Roles[0]
		for _, r := range m.st.Roles {
			if r != m.st.Role {
				f.value = r // offer a change, not the role the box has
				break
			}
		}
	}
	return &form{errAt: -1, fields: []field{f}}
}

// move goes to the next (or previous) field that is not off.
func (f *form) move(step int) {
	n := len(f.fields)
	for i := 1; i <= n; i++ {
		c := (f.cur + step*i + n*n) % n
		if fl := f.fields[c]; fl.off == nil || !fl.off(f) {
			f.cur = c
			return
		}
	}
}

func (f *form) choose(step int) {
	fl := &f.fields[f.cur]
	if len(fl.choices) == 0 {
		return
	}
	i := 0
	for j, c := range fl.choices {
		if c == fl.value {
			i = j
		}
	}
	fl.value = fl.choices[(i+step+len(fl.choices))%len(fl.choices)]
}

func (m *Model) formKey(k input.Key) []Action {
	f := m.form
	fl := &f.fields[f.cur]
	switch k.Code {
	case input.Esc:
		m.scr, m.form = scrMenu, nil
	case input.Tab, input.Down:
		f.move(1)
	case input.BackTab, input.Up:
		f.move(-1)
	case input.Left:
		f.choose(-1)
	case input.Right:
		f.choose(1)
	case input.Backspace, input.Delete:
		if r := []rune(fl.value); len(fl.choices) == 0 && len(r) > 0 {
			fl.value = string(r[:len(r)-1])
		}
	case input.Rune:
		switch {
		case len(fl.choices) > 0 && k.R == ' ':
			f.choose(1)
		case len(fl.choices) == 0 && len([]rune(fl.value)) < fl.max && k.R >= ' ' && k.R != 0x7f:
			fl.value += string(k.R)
		}
	case input.Enter:
		m.submit()
	}
	return nil
}

// problem is a validation error: which field, and the message.
type problem struct {
	field int
	note  note
}

func bad(fieldIdx int, key msg, args ...any) *problem {
	return &problem{field: fieldIdx, note: note{key: key, args: args, bad: true}}
}

// submit validates the form and asks to confirm what it would do.
func (m *Model) submit() {
	f := m.form
	f.errAt = -1
	switch m.scr {
	case scrNetwork:
		c, p := networkConfig(f)
		if p != nil {
			m.refuse(p)
			return
		}
		body := []note{{key: mNetSummary, args: []any{c.NIC, m.netText(c)}}, {key: mApplyBody, args: []any{int(RevertAfter.Seconds())}}}
		m.ask(mApplyTitle, body, ApplyNetwork{Config: c, RevertAfter: RevertAfter}, scrPending, note{key: mApplyDone})
	case scrServers:
		boot, cluster := strings.TrimSpace(f.fields[0].value), strings.TrimSpace(f.fields[1].value)
		for i, v := range []string{boot, cluster} {
			if v != "" && !validHostPort(v) {
				m.refuse(bad(i, mErrHost, f.fields[i].label, v))
				return
			}
		}
		body := []note{{key: mServersBody, args: []any{orAuto(boot, m), orAuto(cluster, m)}}}
		m.ask(mServersTitle, body, SetServers{Boot: boot, Cluster: cluster}, scrMenu, note{key: mServersDone})
	case scrRole:
		r := strings.TrimSpace(f.fields[0].value)
		switch {
		case r == "":
			m.refuse(bad(0, mErrRoleEmpty))
			return
		case !validName(r):
			m.refuse(bad(0, mErrRoleName, r))
			return
		case r == m.st.Role:
			m.refuse(bad(0, mErrRoleSame, r))
			return
		}
		m.ask(mRoleTitle, []note{{key: mRoleBody, args: []any{orDash(m.st.Role), r}}}, RequestRole{Role: r}, scrMenu, note{key: mRoleDone, args: []any{r}})
	}
}

func (m *Model) refuse(p *problem) {
	m.form.errAt, m.form.cur = p.field, p.field
	m.note = &p.note
}

func orAuto(s string, m *Model) string {
	if s == "" {
		return m.t(mAuto)
	}
	return s
}

// networkConfig validates the network form.
func networkConfig(f *form) (NetConfig, *problem) {
	v := func(i int) string { return strings.TrimSpace(f.fields[i].value) }
	c := NetConfig{NIC: v(fNIC), DHCP: dhcpOn(f)}
	if c.NIC == "" {
		return c, bad(fNIC, mErrNoNIC)
	}
	if s := v(fVLAN); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 4094 {
			return c, bad(fVLAN, mErrVLAN, s)
		}
		c.VLAN = n
	}
	if c.DHCP {
		return c, nil
	}
	if v(fAddr) == "" {
		return c, bad(fAddr, mErrAddrNeeded)
	}
	addr, err := netip.ParseAddr(v(fAddr))
	if err != nil || addr.Zone() != "" {
		return c, bad(fAddr, mErrAddr, v(fAddr))
	}
	bits, ok := prefixBits(v(fPrefix), addr)
	if !ok {
		return c, bad(fPrefix, mErrPrefix, v(fPrefix), addr.BitLen())
	}
	c.Address = netip.PrefixFrom(addr, bits)
	if addr.IsUnspecified() || addr.IsMulticast() || addr.IsLoopback() || (addr.Is4() && bits < 31 && (addr == c.Address.Masked().Addr() || addr == broadcast(c.Address))) {
		return c, bad(fAddr, mErrAddrUse, c.Address.String())
	}
	if s := v(fGateway); s != "" {
		gw, err := netip.ParseAddr(s)
		if err != nil || gw.Zone() != "" {
			return c, bad(fGateway, mErrGateway, s)
		}
		if gw.Is4() != addr.Is4() {
			return c, bad(fGateway, mErrGatewayKind, gw.String(), addr.String())
		}
		if !c.Address.Masked().Contains(gw) || gw == addr {
			return c, bad(fGateway, mErrGatewayOut, gw.String(), c.Address.Masked().String())
		}
		c.Gateway = gw
	}
	for _, s := range strings.FieldsFunc(v(fDNS), func(r rune) bool { return r == ' ' || r == ',' || r == ';' }) {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return c, bad(fDNS, mErrDNS, s)
		}
		c.DNS = append(c.DNS, a)
	}
	if len(c.DNS) > maxDNS {
		return c, bad(fDNS, mErrDNSMany, maxDNS)
	}
	return c, nil
}

// prefixBits reads a prefix length ("24") or, for IPv4, a mask
// ("255.255.255.0"), which technicians often have written down instead.
func prefixBits(s string, addr netip.Addr) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 1 && n <= addr.BitLen()
	}
	mask, err := netip.ParseAddr(s)
	if err != nil || !mask.Is4() || !addr.Is4() {
		return 0, false
	}
	b := mask.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for m&(1<<31) != 0 {
		ones++
		m <<= 1
	}
	return ones, m == 0 && ones > 0 // the ones must be contiguous
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom4(b)
}

// validHostPort accepts an address, a host name, either with a port, and
// an http(s) URL for the boot server.
func validHostPort(s string) bool {
	if rest, ok := strings.CutPrefix(s, "https://"); ok {
		s = strings.TrimSuffix(rest, "/")
	} else if rest, ok := strings.CutPrefix(s, "http://"); ok {
		s = strings.TrimSuffix(rest, "/")
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return false
		}
		host = h
		if _, err := netip.ParseAddr(h); err == nil {
			return true
		}
	}
	if len(host) == 0 || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// validName is a role name: lower-case letters, digits and '-'.
func validName(s string) bool {
	if len(s) > 63 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// netText is a NetConfig in one line.
func (m *Model) netText(c NetConfig) string {
	var parts []string
	if c.DHCP {
		parts = append(parts, m.t(mModeDHCP))
	} else {
		parts = append(parts, c.Address.String())
		if c.Gateway.IsValid() {
			parts = append(parts, m.tf(mGwShort, c.Gateway))
		}
		if len(c.DNS) > 0 {
			var d []string
			for _, a := range c.DNS {
				d = append(d, a.String())
			}
			parts = append(parts, "DNS "+strings.Join(d, ","))
		}
	}
	if c.VLAN > 0 {
		parts = append(parts, "VLAN "+strconv.Itoa(c.VLAN))
	}
	return strings.Join(parts, "  ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
