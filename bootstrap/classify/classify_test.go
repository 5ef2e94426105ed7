package classify

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var testMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

// discover builds a DISCOVER from testMAC with the given options.
func discover(t testing.TB, opts ...dhcpv4.Option) *dhcpv4.DHCPv4 {
	t.Helper()
	mods := []dhcpv4.Modifier{}
	for _, o := range opts {
		mods = append(mods, dhcpv4.WithOption(o))
	}
	p, err := dhcpv4.NewDiscovery(testMAC, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func vendor(s string) dhcpv4.Option { return dhcpv4.OptClassIdentifier(s) }
func arch(a uint16) dhcpv4.Option   { return dhcpv4.OptClientArch(iana.Arch(a)) }
func raw(code uint8, b ...byte) dhcpv4.Option {
	return dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(code), b)
}

func TestClassify(t *testing.T) {
	ipxeHTTP := raw(175, 0xb1, 0x05, 0x01, 0x80, 0x86, 0x10, 0x0e, 0x13, 0x01, 0x01, 0x15, 0x01, 0x01)
	ipxeNoHTTP := raw(175, 0x15, 0x01, 0x01, 0x24, 0x01, 0x01)
	tests := []struct {
		name     string
		opts     []dhcpv4.Option
		class    Class
		arch     uint16
		hasArch  bool
		uefi     bool
		ipxe     bool
		ipxeHTTP bool
		reason   string // a substring of Reason
	}{
		{name: "bios pxe rom", opts: []dhcpv4.Option{vendor("PXEClient:Arch:00000:UNDI:002001"), arch(0)},
			class: BIOSPXE, hasArch: true},
		{name: "pxe without arch option", opts: []dhcpv4.Option{vendor("PXEClient")}, class: BIOSPXE},
		{name: "uefi pxe x64 (7)", opts: []dhcpv4.Option{vendor("PXEClient:Arch:00007:UNDI:003000"), arch(7)},
			class: UEFIPXE, arch: 7, hasArch: true, uefi: true},
		{name: "uefi pxe 9", opts: []dhcpv4.Option{vendor("PXEClient:Arch:00009:UNDI:003000"), arch(9)},
			class: UEFIPXE, arch: 9, hasArch: true, uefi: true},
		{name: "uefi pxe arm64", opts: []dhcpv4.Option{vendor("PXEClient:Arch:00011:UNDI:003000"), arch(11)},
			class: Other, arch: 11, hasArch: true, uefi: true, reason: "no boot file for this architecture"},
		{name: "uefi pxe ia32", opts: []dhcpv4.Option{vendor("PXEClient:Arch:00006:UNDI:003000"), arch(6)},
			class: Other, arch: 6, hasArch: true, uefi: true, reason: "arch 6"},
		{name: "uefi http x64", opts: []dhcpv4.Option{vendor("HTTPClient:Arch:00016:UNDI:003000"), arch(16)},
			class: UEFIHTTP, arch: 16, hasArch: true, uefi: true},
		{name: "uefi http without arch", opts: []dhcpv4.Option{vendor("HTTPClient")}, class: UEFIHTTP},
		{name: "uefi http arm64", opts: []dhcpv4.Option{vendor("HTTPClient:Arch:00019"), arch(19)},
			class: Other, arch: 19, hasArch: true, uefi: true, reason: "HTTPClient"},
		{name: "ipxe bios by user class", opts: []dhcpv4.Option{vendor("PXEClient:Arch:00000:UNDI:002001"), arch(0),
			raw(77, 'i', 'P', 'X', 'E')}, class: IPXE, hasArch: true, ipxe: true},
		{name: "ipxe user class in rfc 3004 form", opts: []dhcpv4.Option{raw(77, 4, 'i', 'P', 'X', 'E')},
			class: IPXE, ipxe: true},
		{name: "ipxe efi with http", opts: []dhcpv4.Option{vendor("PXEClient:Arch:00007:UNDI:003010"), arch(7),
			raw(77, 'i', 'P', 'X', 'E'), ipxeHTTP}, class: IPXE, arch: 7, hasArch: true, uefi: true, ipxe: true, ipxeHTTP: true},
		{name: "ipxe by option 175 alone, no http", opts: []dhcpv4.Option{ipxeNoHTTP}, class: IPXE, ipxe: true},
		{name: "ipxe on arm64 is still ipxe", opts: []dhcpv4.Option{arch(11), raw(77, 'i', 'P', 'X', 'E')},
			class: IPXE, arch: 11, hasArch: true, uefi: true, ipxe: true},
		{name: "our firmware", opts: []dhcpv4.Option{vendor("onecloud-firmware")}, class: Firmware},
		{name: "our firmware, versioned", opts: []dhcpv4.Option{vendor("onecloud-firmware:2")}, class: Firmware},
		{name: "our firmware wins over ipxe markers", opts: []dhcpv4.Option{vendor("onecloud-firmware"),
			raw(77, 'i', 'P', 'X', 'E')}, class: Firmware, ipxe: true},
		{name: "not our firmware", opts: []dhcpv4.Option{vendor("onecloud-firmwarex")}, class: Other},
		{name: "windows pc", opts: []dhcpv4.Option{vendor("MSFT 5.0")}, class: Other,
			reason: "no PXEClient/HTTPClient vendor class"},
		{name: "no options", class: Other, reason: "no PXEClient/HTTPClient vendor class"},
		{name: "lowercase pxeclient is not pxe", opts: []dhcpv4.Option{vendor("pxeclient")}, class: Other},
		{name: "one-byte arch option is ignored", opts: []dhcpv4.Option{vendor("PXEClient"), raw(93, 7)}, class: BIOSPXE},
		{name: "user class other than ipxe", opts: []dhcpv4.Option{vendor("PXEClient"), raw(77, 'g', 'P', 'X', 'E')},
			class: BIOSPXE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Classify(discover(t, tt.opts...))
			if c.Class != tt.class || c.Arch != tt.arch || c.HasArch != tt.hasArch || c.UEFI != tt.uefi ||
				c.IPXE != tt.ipxe || c.IPXEHTTP != tt.ipxeHTTP {
				t.Errorf("Classify = %+v\nwant class %s arch %d/%v uefi %v ipxe %v ipxeHTTP %v",
					c, tt.class, tt.arch, tt.hasArch, tt.uefi, tt.ipxe, tt.ipxeHTTP)
			}
			if c.MAC != "52:54:00:12:34:56" {
				t.Errorf("MAC = %q", c.MAC)
			}
			if c.Reason == "" || !strings.Contains(c.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", c.Reason, tt.reason)
			}
		})
	}
}

func TestClassifyOddPackets(t *testing.T) {
	if c := Classify(nil); c.Class != Other {
		t.Errorf("nil packet: %+v", c)
	}
	reply := discover(t, vendor("PXEClient"))
	reply.OpCode = dhcpv4.OpcodeBootReply
	if c := Classify(reply); c.Class != Other || !strings.Contains(c.Reason, "not a client request") {
		t.Errorf("a reply: %+v", c)
	}
	noMAC := discover(t, vendor("PXEClient"))
	noMAC.ClientHWAddr = nil
	if c := Classify(noMAC); c.MAC != "" || c.Class != BIOSPXE {
		t.Errorf("no chaddr: %+v", c)
	}
}

// TestRecorded classifies the DISCOVERs recorded from real clients (see testdata/README.md): the file
// name says what sent it.
func TestRecorded(t *testing.T) {
	want := map[string]struct {
		class          Class
		uefi, ipxeHTTP bool
		arch           uint16
	}{
		"seabios-ipxe":      {class: IPXE, ipxeHTTP: true, arch: 0},
		"ovmf-ipxe":         {class: IPXE, uefi: true, ipxeHTTP: true, arch: 7},
		"ovmf-pxe":          {class: UEFIPXE, uefi: true, arch: 7},
		"ovmf-http":         {class: UEFIHTTP, uefi: true, arch: 16},
		"onecloud-firmware": {class: Firmware},
	}
	files, err := filepath.Glob("testdata/packets/*.bin")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		base := filepath.Base(f)
		source := base[:strings.LastIndex(base, "-")]
		w, ok := want[source]
		if !ok {
			t.Errorf("%s: unknown source %q: add it to this table", f, source)
			continue
		}
		seen[source] = true
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := dhcpv4.FromBytes(b)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		c := Classify(p)
		if c.Class != w.class || c.UEFI != w.uefi || c.IPXEHTTP != w.ipxeHTTP || c.Arch != w.arch || c.MAC == "" {
			t.Errorf("%s: Classify = %+v, want %+v", f, c, w)
		}
	}
	for source := range want {
		if !seen[source] {
			t.Logf("no recorded packet of %s in testdata/packets", source)
		}
	}
	if len(seen) < 4 {
		t.Errorf("only %d recorded sources in testdata/packets; record them again (testdata/README.md)", len(seen))
	}
}

func TestUserClasses(t *testing.T) {
	tests := []struct {
		in   []byte
		want []string
	}{
		{nil, nil},
		{[]byte("iPXE"), []string{"iPXE"}},
		{[]byte("\x04iPXE"), []string{"iPXE"}},
		{[]byte("\x04iPXE\x03abc"), []string{"iPXE", "abc"}},
		{[]byte("\x04iPX"), []string{"\x04iPX"}}, // truncated: taken as plain text
		{[]byte("\x00abc"), []string{"\x00abc"}}, // zero length is not RFC 3004
		{[]byte("\x04iPXE\x00"), []string{"\x04iPXE\x00"}},
	}
	for _, tt := range tests {
		got := UserClasses(tt.in)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("UserClasses(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSubOptions(t *testing.T) {
	tests := []struct {
		in      []byte
		want    map[uint8]string
		wantErr bool
	}{
		{in: nil, want: map[uint8]string{}},
		{in: []byte{1, 3, 'a', 'b', 'c', 2, 0}, want: map[uint8]string{1: "abc", 2: ""}},
		{in: []byte{0, 0, 1, 1, 'x', 255, 2, 1, 'y'}, want: map[uint8]string{1: "x"}},
		{in: []byte{1, 1, 'x', 1, 1, 'y'}, want: map[uint8]string{1: "y"}},
		{in: []byte{1, 5, 'x'}, want: map[uint8]string{}, wantErr: true},
		{in: []byte{1, 1, 'x', 7}, want: map[uint8]string{1: "x"}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := SubOptions(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("SubOptions(%v) error = %v, want error %v", tt.in, err, tt.wantErr)
		}
		if len(got) != len(tt.want) {
			t.Errorf("SubOptions(%v) = %q, want %q", tt.in, got, tt.want)
		}
		for k, v := range tt.want {
			if string(got[k]) != v {
				t.Errorf("SubOptions(%v)[%d] = %q, want %q", tt.in, k, got[k], v)
			}
		}
	}
	if !IPXEHasFeature([]byte{0x13, 1, 1}, 0x13) || IPXEHasFeature([]byte{0x15, 1, 1}, 0x13) {
		t.Error("IPXEHasFeature got the HTTP feature wrong")
	}
}

// FuzzClassify feeds raw bytes through dhcpv4.FromBytes and Classify, seeded with the recorded packets:
// nothing may panic, and what Classify says must agree with itself.
func FuzzClassify(f *testing.F) {
	files, err := filepath.Glob("testdata/packets/*.bin")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, p := range []*dhcpv4.DHCPv4{
		discover(f, vendor("PXEClient:Arch:00000:UNDI:002001"), arch(0)),
		discover(f, vendor("HTTPClient:Arch:00016:UNDI:003000"), arch(16)),
		discover(f, vendor("onecloud-firmware")),
		discover(f, raw(77, 'i', 'P', 'X', 'E'), raw(175, 0x13, 1, 1)),
		discover(f, raw(175, 0x13)),
	} {
		f.Add(p.ToBytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		c := Classify(p)
		if c.Reason == "" {
			t.Errorf("no reason for %+v", c)
		}
		if c.Class.Boots() && p.OpCode != dhcpv4.OpcodeBootRequest {
			t.Errorf("a %s reply classified as %s", p.OpCode, c.Class)
		}
		if c.Class == IPXE && !c.IPXE {
			t.Errorf("class ipxe without the iPXE flag: %+v", c)
		}
		if c.UEFI && !c.HasArch {
			t.Errorf("UEFI without an arch: %+v", c)
		}
	})
}

// FuzzUserClasses checks option 77's decoder: any bytes, no panic, and what it returns is either the
// whole input as one string or an RFC 3004 list that encodes back to the input.
func FuzzUserClasses(f *testing.F) {
	f.Add([]byte("iPXE"))
	f.Add([]byte("\x04iPXE\x03abc"))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := UserClasses(b)
		if len(b) == 0 {
			if got != nil {
				t.Fatalf("UserClasses(empty) = %q", got)
			}
			return
		}
		if len(got) == 1 && got[0] == string(b) {
			return
		}
		var enc []byte
		for _, s := range got {
			enc = append(enc, byte(len(s)))
			enc = append(enc, s...)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("UserClasses(%q) = %q, which is neither the input nor its RFC 3004 decoding", b, got)
		}
	})
}

// FuzzSubOptions checks the decoder of options 43 and 175: any bytes, no panic, and every value it
// returns is one the input holds after its code and length.
func FuzzSubOptions(f *testing.F) {
	f.Add([]byte{0xb1, 0x05, 0x01, 0x80, 0x86, 0x10, 0x0e, 0x13, 0x01, 0x01})
	f.Add([]byte{1, 3, 'a', 'b', 'c', 255})
	f.Add([]byte{1, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		subs, _ := SubOptions(b)
		for code, v := range subs {
			if code == 0 || code == 255 {
				t.Fatalf("pad or end decoded as sub-option %d", code)
			}
			if !bytes.Contains(b, append([]byte{code, byte(len(v))}, v...)) {
				t.Fatalf("sub-option %d = %x is not in %x", code, v, b)
			}
		}
		_ = IPXEHasFeature(b, 0x13)
	})
}
