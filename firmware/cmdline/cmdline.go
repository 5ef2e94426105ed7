// Package cmdline reads the firmware's options from the kernel command line.
//
// Every option onecloud understands is namespaced "onecloud.*" so that it can
// never collide with a kernel or u-root option, and every one is documented in
// docs/cmdline.md. Parsing is a pure function over the command-line text: a
// bad value is reported and replaced by the default, because a typo typed at a
// PXE menu must never stop a box from booting.
package cmdline

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Prefix starts every onecloud option.
const Prefix = "onecloud."

// Options are the firmware's settings after parsing.
type Options struct {
	// Hostname, if set, overrides the name from DHCP or the derived default.
	Hostname string
	// Network is "dhcp" (every NIC with carrier asks DHCP) or "off".
	Network string
	// Ifaces restricts DHCP to the named interfaces; empty means all physical NICs.
	Ifaces []string
	// Static holds addresses set without DHCP, one per interface.
	Static []StaticAddr
	// DHCPAttemptTimeout bounds one DISCOVER..ACK exchange.
	DHCPAttemptTimeout time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential wait between attempts.
	BackoffMin, BackoffMax time.Duration
	// ModulesSkip names kernel modules never to load (a broken driver on some board).
	ModulesSkip []string
	// ModulesLoad names kernel modules to load even when no device asks for them.
	ModulesLoad []string
	// Noded starts the node daemon; off is for debugging the firmware alone.
	Noded bool
	// LogLevel is the firmware's slog level: debug, info, warn or error.
	LogLevel string
	// Server is the bootstrap server to enrol with ("http://10.77.1.1:8080");
	// empty means the one DHCP option 43 names, if any.
	Server string
	// ID is the machine's id in the bootstrap server's inbox ("oc-525400123456").
	ID string
	// Role is the role the box was booted in (one of Roles()); empty while
	// the box waits for approval.
	Role string
	// School is the school the box belongs to, given with its role.
	School string
	// Menu names the terminals the node console runs on ("tty1", "ttyS0");
	// empty means none (onecloud.menu=off). On the screen (ttyN) it is
	// always shown; on a serial port it opens when Enter is pressed there,
	// and until then the port shows the boot log.
	Menu []string
	// Lang is the console's language until the cluster says otherwise:
	// "zh" or "en".
	Lang string
	// PINHash is the console PIN's hash (pbkdf2-sha256$...) until the
	// cluster sets one; empty means the admin menu stays closed.
	PINHash string
}

// StaticAddr is one onecloud.ip= entry.
type StaticAddr struct {
	Iface   string
	Addr    netip.Prefix
	Gateway netip.Addr   // zero when absent
	DNS     []netip.Addr // may be empty
}

// Defaults returns the options of a box booted with no onecloud.* option.
func Defaults() Options {
	return Options{
		Network:            "dhcp",
		DHCPAttemptTimeout: 4 * time.Second,
		BackoffMin:         time.Second,
		BackoffMax:         60 * time.Second,
		Noded:              true,
		LogLevel:           "info",
		Menu:               []string{"tty1"},
		Lang:               "zh",
	}
}

// Parse returns the options found in a kernel command line, starting from
// Defaults. Problems are returned as warnings, one per bad or unknown option,
// each naming the option and what was kept instead.
func Parse(line string) (Options, []string) {
	o := Defaults()
	var warn []string
	bad := func(key, val, why string) {
		warn = append(warn, fmt.Sprintf("ignoring %s%s=%q: %s", Prefix, key, val, why))
	}
	for _, field := range fields(line) {
		name, val, _ := strings.Cut(field, "=")
		key, ok := strings.CutPrefix(name, Prefix)
		if !ok {
			continue
		}
		switch key {
		case "hostname":
			if err := checkHostname(val); err != nil {
				bad(key, val, err.Error())
				continue
			}
			o.Hostname = val
		case "net":
			if val != "dhcp" && val != "off" {
				bad(key, val, `want "dhcp" or "off"`)
				continue
			}
			o.Network = val
		case "ifaces":
			o.Ifaces = list(val)
		case "ip":
			s, err := parseStatic(val)
			if err != nil {
				bad(key, val, err.Error())
				continue
			}
			o.Static = append(o.Static, s)
		case "dhcp.timeout":
			d, err := duration(val)
			if err != nil {
				bad(key, val, err.Error())
				continue
			}
			o.DHCPAttemptTimeout = d
		case "dhcp.backoff":
			lo, hi, err := durationRange(val)
			if err != nil {
				bad(key, val, err.Error())
				continue
			}
			o.BackoffMin, o.BackoffMax = lo, hi
		case "modules.skip":
			o.ModulesSkip = list(val)
		case "modules.load":
			o.ModulesLoad = list(val)
		case "noded":
			b, err := strconv.ParseBool(val)
			if err != nil {
				bad(key, val, "want on/off as 1 or 0")
				continue
			}
			o.Noded = b
		case "loglevel":
			if !slices.Contains([]string{"debug", "info", "warn", "error"}, val) {
				bad(key, val, "want debug, info, warn or error")
				continue
			}
			o.LogLevel = val
		case "server":
			if err := CheckServer(val); err != nil {
				bad(key, val, err.Error())
				continue
			}
			o.Server = val
		case "id":
			if err := CheckID(val); err != nil {
				bad(key, val, err.Error())
				continue
			}
			o.ID = strings.ToLower(val)
		case "role":
			if err := CheckRole(val); err != nil {
				bad(key, val, err.Error())
				continue
			}
			o.Role = val
		case "school":
			if err := CheckSchool(val); err != nil {
				bad(key, val, err.Error())
				continue
			}
			o.School = val
		case "menu":
			if val == "off" {
				o.Menu = nil
				continue
			}
			ttys := list(val)
			if i := slices.IndexFunc(ttys, func(t string) bool { return !ttyRe.MatchString(t) }); i >= 0 {
				bad(key, val, fmt.Sprintf("%q is not a terminal: want names such as tty1 or ttyS0, or off", ttys[i]))
				continue
			}
			o.Menu = ttys
		case "lang":
			if val != "zh" && val != "en" {
				bad(key, val, "want zh or en")
				continue
			}
			o.Lang = val
		case "pin":
			if !strings.HasPrefix(val, "pbkdf2-sha256$") || strings.Count(val, "$") != 3 {
				bad(key, "(not shown)", "want a PIN hash pbkdf2-sha256$ITER$SALT$HASH (never the PIN itself)")
				continue
			}
			o.PINHash = val
		default:
			warn = append(warn, fmt.Sprintf("unknown option %s (see docs/cmdline.md)", name))
		}
	}
	return o, warn
}

// ttyRe is a terminal the console may run on: a virtual terminal of the
// screen or a serial port.
var ttyRe = regexp.MustCompile(`^tty([1-9]|1[0-2]|S[0-9]{1,2}|USB[0-9]{1,2}|AMA[0-9])$`)

// fields splits a command line like the kernel does: on spaces, except inside
// double quotes, which are removed.
func fields(line string) []string {
	var out []string
	var cur strings.Builder
	quoted, inField := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
			inField = true
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			if inField {
				out = append(out, cur.String())
				cur.Reset()
				inField = false
			}
		default:
			cur.WriteRune(r)
			inField = true
		}
	}
	if inField {
		out = append(out, cur.String())
	}
	return out
}

func list(val string) []string {
	var out []string
	for _, s := range strings.Split(val, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func duration(val string) (time.Duration, error) {
	d, err := time.ParseDuration(val)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration like 4s or 1m")
	}
	return d, nil
}

func durationRange(val string) (time.Duration, time.Duration, error) {
	a, b, ok := strings.Cut(val, ",")
	if !ok {
		return 0, 0, fmt.Errorf("want MIN,MAX like 1s,60s")
	}
	lo, err := duration(a)
	if err != nil {
		return 0, 0, err
	}
	hi, err := duration(b)
	if err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("MAX %s is below MIN %s", hi, lo)
	}
	return lo, hi, nil
}

// parseStatic reads IFACE:ADDR/PREFIX[:GATEWAY[:DNS[,DNS...]]].
func parseStatic(val string) (StaticAddr, error) {
	parts := strings.Split(val, ":")
	if len(parts) < 2 || len(parts) > 4 || parts[0] == "" {
		return StaticAddr{}, fmt.Errorf("want IFACE:ADDR/PREFIX[:GATEWAY[:DNS,...]], e.g. eth0:10.1.2.3/24:10.1.2.1")
	}
	s := StaticAddr{Iface: parts[0]}
	p, err := netip.ParsePrefix(parts[1])
	if err != nil || !p.Addr().Is4() {
		return StaticAddr{}, fmt.Errorf("address %q is not an IPv4 ADDR/PREFIX", parts[1])
	}
	s.Addr = p
	if len(parts) > 2 && parts[2] != "" {
		gw, err := netip.ParseAddr(parts[2])
		if err != nil || !gw.Is4() {
			return StaticAddr{}, fmt.Errorf("gateway %q is not an IPv4 address", parts[2])
		}
		if !p.Masked().Contains(gw) {
			return StaticAddr{}, fmt.Errorf("gateway %s is outside %s", gw, p.Masked())
		}
		s.Gateway = gw
	}
	if len(parts) > 3 {
		for _, d := range list(parts[3]) {
			a, err := netip.ParseAddr(d)
			if err != nil {
				return StaticAddr{}, fmt.Errorf("DNS server %q is not an IP address", d)
			}
			s.DNS = append(s.DNS, a)
		}
	}
	return s, nil
}

// checkHostname accepts RFC 1123 host names (letters, digits, hyphens; labels
// of at most 63 characters).
func checkHostname(h string) error {
	if h == "" || len(h) > 64 {
		return fmt.Errorf("a host name has 1 to 64 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q must be 1-63 characters and not start or end with '-'", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("character %q is not allowed in a host name", r)
			}
		}
	}
	return nil
}

// Roles are the roles a box can run in.
func Roles() []string { return []string{"server", "vdi", "idv", "tci"} }

// CheckServer accepts the base URL of a bootstrap server: http or https, a
// host, and no path beyond "/", query or fragment, because the firmware
// appends its own paths (/v1/enrol) to it.
func CheckServer(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: want http://HOST[:PORT], e.g. http://10.77.1.1:8080")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("want an http:// or https:// URL, e.g. http://10.77.1.1:8080")
	case u.Hostname() == "":
		return fmt.Errorf("the URL names no host, e.g. http://10.77.1.1:8080")
	case u.User != nil:
		return fmt.Errorf("the URL must not carry a user or password")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.Opaque != "":
		return fmt.Errorf("want the server only, without a path, query or fragment, e.g. http://10.77.1.1:8080")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not 1-65535", p)
		}
	}
	return nil
}

// CheckID accepts a machine id: "oc-" and 12 hexadecimal digits (the boot
// MAC without colons). The server writes them in lower case; Parse lowers an
// id typed in capitals at a PXE menu so that it still names the same machine.
func CheckID(s string) error {
	hex, ok := strings.CutPrefix(strings.ToLower(s), "oc-")
	if !ok || len(hex) != 12 {
		return fmt.Errorf("want oc- and 12 hexadecimal digits, e.g. oc-525400123456")
	}
	for _, r := range hex {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return fmt.Errorf("character %q is not a hexadecimal digit", r)
		}
	}
	return nil
}

// CheckRole accepts one of Roles().
func CheckRole(s string) error {
	if !slices.Contains(Roles(), s) {
		return fmt.Errorf("want one of %s", strings.Join(Roles(), ", "))
	}
	return nil
}

// CheckSchool accepts a school code: 1 to 32 letters, digits, '-' and '_'.
func CheckSchool(s string) error {
	// The same rule as the bootstrap server's (bootstrap/machines), which
	// hands the school out.
	if s == "" || len(s) > 63 {
		return fmt.Errorf("a school code has 1 to 63 characters")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("character %q is not allowed (letters, digits, '-', '_' and '.')", r)
		}
	}
	return nil
}
