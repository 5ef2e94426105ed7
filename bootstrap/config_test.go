package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	pool := `"pools": [{"subnet": "10.77.1.0/24", "first": "10.77.1.100", "last": "10.77.1.199", "lease": "90s"}]`
	tests := []struct {
		name, json string
		wantErr    string // "" means valid
		check      func(t *testing.T, c Config)
	}{
		{name: "full with defaults", json: `{"mode": "full", "iface": "br0", "address": "10.77.1.1", ` + pool + `}`,
			check: func(t *testing.T, c Config) {
				if c.HTTPPort != 8080 || c.DHCP != "on" || c.IPXEDir != "/usr/lib/ipxe" || c.Admission.MaxTransfers != 64 ||
					time.Duration(c.Admission.MaxWait) != 30*time.Second || time.Duration(c.Pools[0].Lease) != 90*time.Second {
					t.Errorf("defaults not filled in: %+v", c)
				}
			}},
		{name: "proxy needs no pool", json: `{"mode": "proxy", "iface": "br0", "address": "10.77.1.1"}`},
		{name: "full without pool", json: `{"mode": "full", "iface": "br0", "address": "10.77.1.1"}`, wantErr: "full mode needs at least one pool"},
		{name: "bad mode", json: `{"mode": "fast", "iface": "br0", "address": "10.77.1.1"}`, wantErr: `mode "fast"`},
		{name: "no iface", json: `{"mode": "proxy", "address": "10.77.1.1"}`, wantErr: "iface is missing"},
		{name: "ipv6 address", json: `{"mode": "proxy", "iface": "br0", "address": "fd00::1"}`, wantErr: "want our IPv4 address"},
		{name: "bad duration", json: `{"mode": "full", "iface": "br0", "address": "10.77.1.1", "pools": [{"subnet": "10.77.1.0/24", "lease": "an hour"}]}`, wantErr: "time: invalid duration"},
		{name: "bad dhcp", json: `{"mode": "proxy", "iface": "br0", "address": "10.77.1.1", "dhcp": "maybe"}`, wantErr: `dhcp "maybe"`},
		{name: "rule without criteria", json: `{"mode": "proxy", "iface": "br0", "address": "10.77.1.1", "rules": [{"name": "all", "role": "vdi"}]}`, wantErr: "all"},
		{name: "rule with unknown role", json: `{"mode": "proxy", "iface": "br0", "address": "10.77.1.1", "rules": [{"name": "r", "mac_prefixes": ["52:54:00"], "role": "desktop"}]}`, wantErr: "desktop"},
		{name: "not json", json: `mode: full`, wantErr: "see docs/bootstrap.md"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bootstrap.json")
			if err := os.WriteFile(path, []byte(tt.json), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadConfig: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadConfig error = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "nope.json")); err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Fatalf("LoadConfig of a missing file: %v", err)
	}
}
