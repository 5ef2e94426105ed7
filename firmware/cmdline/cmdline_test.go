package cmdline

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		edit func(*Options) // applied to Defaults() to get the wanted options
		warn []string       // substrings, one per expected warning, in order
	}{
		{name: "empty", line: "", edit: func(*Options) {}},
		{
			name: "console menu",
			line: "onecloud.menu=tty1,ttyS1 onecloud.lang=en onecloud.pin=pbkdf2-sha256$100000$c2FsdA$aGFzaA",
			edit: func(o *Options) {
				o.Menu, o.Lang, o.PINHash = []string{"tty1", "ttyS1"}, "en", "pbkdf2-sha256$100000$c2FsdA$aGFzaA"
			},
		},
		{name: "console menu off", line: "onecloud.menu=off", edit: func(o *Options) { o.Menu = nil }},
		{
			name: "bad console values keep defaults and warn",
			line: "onecloud.menu=tty1,/dev/sda onecloud.lang=fr onecloud.pin=1234",
			edit: func(*Options) {},
			warn: []string{`"/dev/sda" is not a terminal`, "want zh or en", "never the PIN itself"},
		},
		{
			// A PIN given by mistake instead of its hash is never echoed.
			name: "a PIN itself is not shown",
			line: "onecloud.pin=pbkdf2-sha256-731946",
			edit: func(*Options) {},
			warn: []string{`onecloud.pin="(not shown)"`},
		},
		{
			name: "foreign options ignored",
			line: "console=ttyS0,115200 quiet uroot.uinitargs=\"-v\" BOOT_IMAGE=/vmlinuz",
			edit: func(*Options) {},
		},
		{
			name: "all options",
			line: "console=ttyS0 onecloud.hostname=lab-01 onecloud.net=dhcp onecloud.ifaces=eth1,eth2 " +
				"onecloud.dhcp.timeout=2s onecloud.dhcp.backoff=500ms,30s onecloud.modules.skip=bochs " +
				"onecloud.modules.load=tun,bridge onecloud.noded=0 onecloud.loglevel=debug " +
				"onecloud.ip=eth0:10.1.2.3/24:10.1.2.1:10.1.2.53,10.1.2.54",
			edit: func(o *Options) {
				o.Hostname = "lab-01"
				o.Ifaces = []string{"eth1", "eth2"}
				o.DHCPAttemptTimeout = 2 * time.Second
				o.BackoffMin, o.BackoffMax = 500*time.Millisecond, 30*time.Second
				o.ModulesSkip = []string{"bochs"}
				o.ModulesLoad = []string{"tun", "bridge"}
				o.Noded = false
				o.LogLevel = "debug"
				o.Static = []StaticAddr{{
					Iface:   "eth0",
					Addr:    netip.MustParsePrefix("10.1.2.3/24"),
					Gateway: netip.MustParseAddr("10.1.2.1"),
					DNS:     []netip.Addr{netip.MustParseAddr("10.1.2.53"), netip.MustParseAddr("10.1.2.54")},
				}}
			},
		},
		{
			name: "enrolment",
			line: "onecloud.server=http://10.77.1.1:8080 onecloud.id=oc-525400123456 onecloud.role=vdi onecloud.school=s01",
			edit: func(o *Options) {
				o.Server, o.ID, o.Role, o.School = "http://10.77.1.1:8080", "oc-525400123456", "vdi", "s01"
			},
		},
		{
			name: "enrolment, https with a slash, id in capitals",
			line: "onecloud.server=https://boot.school7.edu.cn/ onecloud.id=OC-52540012AB56 onecloud.role=server onecloud.school=County_7-north",
			edit: func(o *Options) {
				o.Server, o.ID, o.Role, o.School = "https://boot.school7.edu.cn/", "oc-52540012ab56", "server", "County_7-north"
			},
		},
		{
			name: "bad enrolment values keep defaults and warn",
			line: "onecloud.server=ftp://10.77.1.1 onecloud.server=http://10.77.1.1:8080/boot onecloud.server=http:///x " +
				"onecloud.server=http://10.77.1.1:99999 onecloud.server=10.77.1.1 onecloud.server=http://a@10.77.1.1 " +
				"onecloud.server=http://10.77.1.1/?x=1 " +
				"onecloud.id=525400123456 onecloud.id=oc-52540012345 onecloud.id=oc-52540012345g " +
				"onecloud.role=desktop onecloud.role= onecloud.school=s/01 onecloud.school=" + strings.Repeat("s", 64),
			edit: func(*Options) {},
			warn: []string{
				`onecloud.server="ftp://10.77.1.1": want an http:// or https:// URL`,
				`onecloud.server="http://10.77.1.1:8080/boot": want the server only`,
				`onecloud.server="http:///x": the URL names no host`,
				`port "99999" is not 1-65535`,
				`onecloud.server="10.77.1.1": want an http:// or https:// URL`,
				`must not carry a user`,
				`want the server only`,
				`onecloud.id="525400123456": want oc- and 12 hexadecimal digits`,
				`onecloud.id="oc-52540012345": want oc-`,
				`character 'g' is not a hexadecimal digit`,
				`onecloud.role="desktop": want one of server, vdi, idv, tci`,
				`onecloud.role="": want one of`,
				`onecloud.school="s/01": character '/'`,
				`a school code has 1 to 63 characters`,
			},
		},
		{
			name: "static without gateway",
			line: "onecloud.ip=eth1:192.168.7.9/16",
			edit: func(o *Options) {
				o.Static = []StaticAddr{{Iface: "eth1", Addr: netip.MustParsePrefix("192.168.7.9/16")}}
			},
		},
		{
			name: "quoted value",
			line: `onecloud.hostname="room-3"`,
			edit: func(o *Options) { o.Hostname = "room-3" },
		},
		{
			name: "bad values keep defaults and warn",
			line: "onecloud.net=maybe onecloud.dhcp.timeout=-3s onecloud.dhcp.backoff=10s,1s " +
				"onecloud.hostname=bad_name onecloud.ip=eth0:10.0.0.1 onecloud.ip=eth0:10.0.0.1/24:10.9.9.9 " +
				"onecloud.noded=perhaps onecloud.loglevel=loud onecloud.colour=blue",
			edit: func(*Options) {},
			warn: []string{
				`onecloud.net="maybe"`,
				`onecloud.dhcp.timeout="-3s": want a positive duration`,
				`MAX 1s is below MIN 10s`,
				`onecloud.hostname="bad_name": character '_'`,
				`address "10.0.0.1" is not an IPv4 ADDR/PREFIX`,
				`gateway 10.9.9.9 is outside 10.0.0.0/24`,
				`onecloud.noded="perhaps"`,
				`onecloud.loglevel="loud"`,
				`unknown option onecloud.colour`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := Defaults()
			tc.edit(&want)
			got, warn := Parse(tc.line)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse options\n got %+v\nwant %+v", got, want)
			}
			if len(warn) != len(tc.warn) {
				t.Fatalf("Parse warnings = %q, want %d of them", warn, len(tc.warn))
			}
			for i := range warn {
				if !strings.Contains(warn[i], tc.warn[i]) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warn[i], tc.warn[i])
				}
			}
		})
	}
}

func TestFields(t *testing.T) {
	got := fields(" a  b=\"c d\"\te\n")
	want := []string{"a", "b=c d", "e"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fields = %q, want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("onecloud.ip=eth0:10.1.2.3/24:10.1.2.1:1.1.1.1 onecloud.dhcp.backoff=1s,2s")
	f.Add(`onecloud.hostname="x y" onecloud.net=off`)
	f.Add("onecloud.server=http://10.77.1.1:8080 onecloud.id=oc-525400123456 onecloud.role=vdi onecloud.school=s01")
	f.Fuzz(func(t *testing.T, line string) {
		o, _ := Parse(line)
		if o.BackoffMin <= 0 || o.BackoffMax < o.BackoffMin || o.DHCPAttemptTimeout <= 0 {
			t.Fatalf("Parse(%q) gave unusable timings %+v", line, o)
		}
		// What Parse accepts must pass its own checks: the firmware builds
		// URLs from Server and prints the others on the console.
		if o.Server != "" && CheckServer(o.Server) != nil || o.ID != "" && CheckID(o.ID) != nil ||
			o.Role != "" && CheckRole(o.Role) != nil || o.School != "" && CheckSchool(o.School) != nil {
			t.Fatalf("Parse(%q) accepted a bad enrolment value: %+v", line, o)
		}
	})
}
