package machines

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRuleMatches(t *testing.T) {
	m := Machine{
		MACs:    []string{"52:54:00:12:34:56", "a0:36:9f:00:00:01"},
		Serial:  "CZ1234ABC",
		Vendor:  "Dell Inc.",
		Product: "OptiPlex 3000 Thin Client",
		Addr:    "10.77.1.23",
	}
	tests := []struct {
		name string
		rule Rule
		m    Machine
		want bool
	}{
		{"mac prefix of boot NIC", Rule{MACPrefixes: []string{"52:54:00"}}, m, true},
		{"mac prefix of second NIC", Rule{MACPrefixes: []string{"a0:36:9f"}}, m, true},
		{"mac prefix hyphens, upper case", Rule{MACPrefixes: []string{"A0-36-9F"}}, m, true},
		{"mac prefix bare hex", Rule{MACPrefixes: []string{"525400"}}, m, true},
		{"mac prefix other", Rule{MACPrefixes: []string{"00:1b:21"}}, m, false},
		{"one of several prefixes", Rule{MACPrefixes: []string{"00:1b:21", "52:54:00:12"}}, m, true},
		{"vendor ignores case", Rule{Vendor: "DELL INC."}, m, true},
		{"vendor is whole", Rule{Vendor: "Dell"}, m, false},
		{"product", Rule{Product: "optiplex 3000 thin client"}, m, true},
		{"product other", Rule{Product: "OptiPlex 3000"}, m, false},
		{"serial in list", Rule{Serials: []string{"XYZ", "cz1234abc"}}, m, true},
		{"serial not in list", Rule{Serials: []string{"XYZ"}}, m, false},
		{"serial unknown", Rule{Serials: []string{"CZ1234ABC"}}, Machine{MACs: m.MACs}, false},
		{"subnet", Rule{Subnet: netip.MustParsePrefix("10.77.0.0/16")}, m, true},
		{"subnet other", Rule{Subnet: netip.MustParsePrefix("10.78.0.0/16")}, m, false},
		{"subnet, address unknown", Rule{Subnet: netip.MustParsePrefix("10.77.0.0/16")}, Machine{MACs: m.MACs}, false},
		{"subnet, mapped v4 address", Rule{Subnet: netip.MustParsePrefix("10.77.0.0/16")}, Machine{Addr: "::ffff:10.77.1.2"}, true},
		{"all criteria match", Rule{MACPrefixes: []string{"52:54:00"}, Vendor: "dell inc.", Product: "OptiPlex 3000 Thin Client", Serials: []string{"CZ1234ABC"}, Subnet: netip.MustParsePrefix("10.77.1.0/24")}, m, true},
		{"all but one criterion match", Rule{MACPrefixes: []string{"52:54:00"}, Vendor: "dell inc.", Subnet: netip.MustParsePrefix("10.1.0.0/16")}, m, false},
		{"vendor known only later", Rule{Vendor: "Dell Inc."}, Machine{MACs: m.MACs}, false},
		{"any", Rule{Any: true}, Machine{MACs: m.MACs}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rule.Matches(tt.m); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckRules(t *testing.T) {
	ok := Rule{Name: "lab", MACPrefixes: []string{"52:54:00"}, Role: "vdi", School: "s-01"}
	tests := []struct {
		name     string
		rules    []Rule
		declared []Declared
		wantErr  string // "" for none
	}{
		{"good", []Rule{ok, {Name: "rest", Any: true, Role: "tci"}}, []Declared{{MAC: "52-54-00-00-00-09", Role: "server"}}, ""},
		{"no criterion", []Rule{{Name: "all", Role: "vdi"}}, nil, `rule "all" sets no criterion`},
		{"any and criteria", []Rule{{Name: "x", Any: true, Vendor: "QEMU", Role: "vdi"}}, nil, "both"},
		{"bad role", []Rule{{Name: "x", Vendor: "QEMU", Role: "desktop"}}, nil, `role "desktop": want one of server, vdi, idv, tci`},
		{"no role", []Rule{{Name: "x", Vendor: "QEMU"}}, nil, `role ""`},
		{"duplicate name", []Rule{ok, ok}, nil, `rule "lab" is defined twice`},
		{"no name", []Rule{{Vendor: "QEMU", Role: "vdi"}}, nil, "rule #1 has no name"},
		{"bad prefix", []Rule{{Name: "x", MACPrefixes: []string{"52:5"}, Role: "vdi"}}, nil, `MAC prefix "52:5"`},
		{"school with space", []Rule{{Name: "x", Vendor: "QEMU", Role: "vdi", School: "St Mary"}}, nil, "kernel command line"},
		{"empty serial", []Rule{{Name: "x", Serials: []string{" "}, Role: "vdi"}}, nil, "empty serial"},
		{"declared bad MAC", nil, []Declared{{MAC: "52:54:00", Role: "vdi"}}, "declared machine #1"},
		{"declared twice", nil, []Declared{{MAC: "52:54:00:00:00:01", Role: "vdi"}, {MAC: "525400000001", Role: "tci"}}, "declared twice"},
		{"declared bad role", nil, []Declared{{MAC: "52:54:00:00:00:01", Role: "x"}}, `declared machine 52:54:00:00:00:01: role "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRules(tt.rules, tt.declared)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("CheckRules: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("CheckRules = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNormalizeMAC(t *testing.T) {
	tests := []struct{ in, want string }{
		{"52:54:00:12:34:56", "52:54:00:12:34:56"},
		{"52-54-00-AB-CD-EF", "52:54:00:ab:cd:ef"},
		{"525400ABCDEF", "52:54:00:ab:cd:ef"},
		{" 5254.00ab.cdef ", "52:54:00:ab:cd:ef"},
		{"00:00:00:00:00:00", ""},
		{"ff:ff:ff:ff:ff:ff", ""},
		{"52:54:00:12:34", ""},
		{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", ""}, // InfiniBand
		{"oc-525400123456", ""},
	}
	for _, tt := range tests {
		got, err := NormalizeMAC(tt.in)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("NormalizeMAC(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"  CZ123 \n", 10, "CZ123"},
		{"a\x1b[2Jb", 10, "a?[2Jb"},
		{"bad\xffutf8", 20, "bad?utf8"},
		{"Zürich-Süd", 3, "Z\xc3\xbc"},
		{"Zürich-Süd", 2, "Z"},
	}
	for _, tt := range tests {
		if got := cleanText(tt.in, tt.max); got != tt.want {
			t.Errorf("cleanText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
