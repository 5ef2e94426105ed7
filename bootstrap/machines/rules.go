package machines

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Roles lists the roles a machine can be given, for messages.
const Roles = "server, vdi, idv, tci"

// ValidRole reports whether r is one of Roles.
func ValidRole(r string) bool {
	switch r {
	case "server", "vdi", "idv", "tci":
		return true
	}
	return false
}

// checkSchool refuses school names that would not survive the trip to the
// box: the school travels on the kernel command line (onecloud.school=), where
// a space or a quote would split or break it.
func checkSchool(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 63 {
		return fmt.Errorf("school %q is longer than 63 characters", s)
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '-' || c == '_' || c == '.')
		if !ok {
			return fmt.Errorf("school %q: use letters, digits, '-', '_' and '.' only (it goes on the kernel command line)", s)
		}
	}
	return nil
}

// Rule approves the machines it matches at first sight, in Role and School.
// A rule matches when every criterion it sets matches; the first matching
// rule in the configured order wins. The JSON form is the one of the
// "rules" list in bootstrapd's configuration.
type Rule struct {
	Name string `json:"name"`
	// MACPrefixes match when any MAC of the machine starts with one of them
	// ("52:54:00", whole bytes).
	MACPrefixes []string `json:"mac_prefixes,omitempty"`
	// Vendor and Product are compared with the DMI sys_vendor and
	// product_name, whole and ignoring case.
	Vendor  string `json:"vendor,omitempty"`
	Product string `json:"product,omitempty"`
	// Serials match when the machine's serial is one of them (ignoring case).
	Serials []string `json:"serials,omitempty"`
	// Subnet matches the address the machine was last seen from.
	Subnet netip.Prefix `json:"subnet,omitzero"`
	// Any must be set for a rule without criteria: such a rule approves
	// every box that asks, which nobody should get by forgetting a field.
	Any    bool   `json:"any,omitempty"`
	Role   string `json:"role"`
	School string `json:"school,omitempty"`
}

// Declared is a machine listed in the configuration by a technician: it is
// approved in Role at first sight.
type Declared struct {
	MAC    string `json:"mac"`
	Role   string `json:"role"`
	School string `json:"school,omitempty"`
}

// Matches reports whether every criterion the rule sets matches m. A
// criterion about something not yet known of m (the vendor of a box only
// iPXE has seen) does not match; the rule is tried again at the next sighting.
func (r Rule) Matches(m Machine) bool {
	if len(r.MACPrefixes) > 0 && !matchPrefix(r.MACPrefixes, m.MACs) {
		return false
	}
	if r.Vendor != "" && !strings.EqualFold(strings.TrimSpace(r.Vendor), m.Vendor) {
		return false
	}
	if r.Product != "" && !strings.EqualFold(strings.TrimSpace(r.Product), m.Product) {
		return false
	}
	if len(r.Serials) > 0 && !matchSerial(r.Serials, m.Serial) {
		return false
	}
	if r.Subnet.IsValid() {
		a, err := netip.ParseAddr(m.Addr)
		if err != nil || !r.Subnet.Contains(a.Unmap()) {
			return false
		}
	}
	return true
}

func (r Rule) hasCriteria() bool {
	return len(r.MACPrefixes) > 0 || r.Vendor != "" || r.Product != "" || len(r.Serials) > 0 || r.Subnet.IsValid()
}

func matchPrefix(prefixes, macs []string) bool {
	for _, p := range prefixes {
		hp, err := hexPrefix(p)
		if err != nil {
			continue // refused by CheckRules; never matches
		}
		for _, mac := range macs {
			if strings.HasPrefix(strings.ReplaceAll(mac, ":", ""), hp) {
				return true
			}
		}
	}
	return false
}

func matchSerial(serials []string, serial string) bool {
	if serial == "" {
		return false
	}
	for _, s := range serials {
		if strings.EqualFold(strings.TrimSpace(s), serial) {
			return true
		}
	}
	return false
}

// hexPrefix turns "52:54:00", "52-54-00" or "525400" into "525400".
func hexPrefix(p string) (string, error) {
	h := strings.ToLower(strings.NewReplacer(":", "", "-", "", ".", "").Replace(strings.TrimSpace(p)))
	if len(h) < 2 || len(h) > 12 || len(h)%2 != 0 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("MAC prefix %q: want whole bytes in hex, like 52:54:00", p)
	}
	return h, nil
}

// CheckRules refuses rules and declarations that would do something the
// technician did not mean: a rule without criteria (unless "any": true),
// an unknown role, a school that cannot go on a kernel command line, two
// rules of one name, a MAC declared twice. bootstrapd calls it when it loads
// its configuration; Open calls it too.
func CheckRules(rules []Rule, declared []Declared) error {
	var errs []error
	names := map[string]bool{}
	for i, r := range rules {
		what := fmt.Sprintf("rule %q", r.Name)
		if r.Name == "" {
			what = fmt.Sprintf("rule #%d", i+1)
			errs = append(errs, fmt.Errorf("%s has no name: give each rule a unique name (it is recorded in the machines it approves)", what))
		} else if names[r.Name] {
			errs = append(errs, fmt.Errorf("%s is defined twice: rule names must be unique", what))
		}
		names[r.Name] = true
		if !ValidRole(r.Role) {
			errs = append(errs, fmt.Errorf("%s: role %q: want one of %s", what, r.Role, Roles))
		}
		if err := checkSchool(r.School); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
		switch {
		case !r.hasCriteria() && !r.Any:
			errs = append(errs, fmt.Errorf("%s sets no criterion and would approve every box that asks: add mac_prefixes, vendor, product, serials or subnet, or say \"any\": true if that is really meant", what))
		case r.hasCriteria() && r.Any:
			errs = append(errs, fmt.Errorf("%s sets both \"any\": true and criteria: remove one of them", what))
		}
		for _, p := range r.MACPrefixes {
			if _, err := hexPrefix(p); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
			}
		}
		for _, s := range r.Serials {
			if strings.TrimSpace(s) == "" {
				errs = append(errs, fmt.Errorf("%s: empty serial in serials", what))
			}
		}
	}
	macs := map[string]bool{}
	for i, d := range declared {
		mac, err := NormalizeMAC(d.MAC)
		if err != nil {
			errs = append(errs, fmt.Errorf("declared machine #%d: %w", i+1, err))
			continue
		}
		what := "declared machine " + mac
		if macs[mac] {
			errs = append(errs, fmt.Errorf("%s is declared twice: keep one entry", what))
		}
		macs[mac] = true
		if !ValidRole(d.Role) {
			errs = append(errs, fmt.Errorf("%s: role %q: want one of %s", what, d.Role, Roles))
		}
		if err := checkSchool(d.School); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	return errors.Join(errs...)
}

// NormalizeMAC returns an Ethernet MAC in the one form the inbox keeps,
// lower case with colons ("52:54:00:12:34:56"). It takes the forms iPXE
// and technicians write: colons, hyphens, dots, or 12 bare hex digits.
func NormalizeMAC(s string) (string, error) {
	t := strings.TrimSpace(s)
	if len(t) == 12 && strings.Trim(strings.ToLower(t), "0123456789abcdef") == "" {
		t = t[0:2] + ":" + t[2:4] + ":" + t[4:6] + ":" + t[6:8] + ":" + t[8:10] + ":" + t[10:12]
	}
	hw, err := net.ParseMAC(t)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("MAC %q: want 6 bytes like 52:54:00:12:34:56", s)
	}
	if string(hw) == "\x00\x00\x00\x00\x00\x00" || string(hw) == "\xff\xff\xff\xff\xff\xff" {
		return "", fmt.Errorf("MAC %s is not the address of a NIC", hw)
	}
	return hw.String(), nil
}

// IDFor is the id of the machine whose boot MAC is mac (normalized): "oc-"
// and the 12 hex digits, the host name our firmware gives the box, so that
// a technician sees one name everywhere.
func IDFor(mac string) string { return "oc-" + strings.ReplaceAll(mac, ":", "") }

// cleanText makes a string from a box (or a URL a box asked for) safe to
// keep and print: no control characters, valid UTF-8, bounded length.
func cleanText(s string, max int) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, "?"))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
