// Package classify tells which kind of network-boot client sent a DHCPv4 packet, so that the DHCP server
// can answer each with the one boot file it can run:
//
//	bios-pxe           a PC BIOS PXE ROM (vendor class PXEClient, arch 0 or none): undionly.kpxe by TFTP
//	uefi-pxe           UEFI PXE on x86-64 (PXEClient, arch 7 or 9): snponly.efi by TFTP
//	uefi-http          UEFI HTTP boot (vendor class HTTPClient, arch 16/17 or none): ipxe.efi by HTTP
//	ipxe               iPXE itself (user class "iPXE" or its option 175): the stage-1 script by HTTP
//	onecloud-firmware  our own firmware's DHCP client (vendor class onecloud-firmware)
//	other              everything else: phones, printers, PCs booting their disk, and boot ROMs of
//	                   architectures we ship no binary for (ARM, IA32, ...)
//
// The order of the rules matters. Our firmware is recognised first, by its vendor class alone. iPXE is
// next, whatever its architecture and although it also says "PXEClient": a box that already runs iPXE
// must get the script, never the iPXE binary again, or it would chain-load itself forever. Only then do
// the vendor classes of the firmware's own boot stacks decide.
//
// Classify is pure: it reads the packet and nothing else, never panics on any packet that
// dhcpv4.FromBytes accepts (FuzzClassify), and the decoders of options 77 and 175 below accept any bytes.
package classify

import (
	"fmt"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Class is the kind of network-boot client.
type Class string

// The classes; see the package comment for what each one gets.
const (
	BIOSPXE  Class = "bios-pxe"
	UEFIPXE  Class = "uefi-pxe"
	UEFIHTTP Class = "uefi-http"
	IPXE     Class = "ipxe"
	Firmware Class = "onecloud-firmware"
	Other    Class = "other"
)

// Classes lists every class, for counters and tables.
func Classes() []Class { return []Class{BIOSPXE, UEFIPXE, UEFIHTTP, IPXE, Firmware, Other} }

// Boots reports whether c is a network-boot client that gets a boot file.
func (c Class) Boots() bool {
	switch c {
	case BIOSPXE, UEFIPXE, UEFIHTTP, IPXE:
		return true
	}
	return false
}

// Client is what Classify learnt about the sender of a packet.
type Client struct {
	Class Class
	// MAC is the client hardware address (chaddr) as aa:bb:cc:dd:ee:ff; "" when the packet has none.
	MAC string
	// Arch is the first client system architecture (option 93, RFC 4578), valid when HasArch.
	Arch    uint16
	HasArch bool
	// UEFI is set when Arch is one of the EFI architectures.
	UEFI bool
	// IPXE is set when the client is iPXE: user class "iPXE" (option 77) or iPXE's option 175.
	IPXE bool
	// IPXEHTTP is set when option 175 lists the HTTP feature (0x13): this iPXE can fetch http:// URLs.
	IPXEHTTP bool
	// IPXEFeatures is set when option 175 was present at all, so that a missing HTTP feature means
	// "this iPXE has no HTTP" rather than "we cannot tell".
	IPXEFeatures bool
	// VendorClass is option 60 as sent.
	VendorClass string
	// Reason says in words why the client got its class, for logs; for Other it says what is missing.
	Reason string
}

// DHCP option codes and values this package reads.
const (
	optVendorClass = 60
	optUserClass   = 77
	optClientArch  = 93
	optIPXEEncap   = 175

	// ipxeFeatureHTTP is iPXE's feature code for HTTP inside option 175 (DHCP_EB_FEATURE_HTTP).
	ipxeFeatureHTTP = 0x13

	vendorPXE      = "PXEClient"
	vendorHTTP     = "HTTPClient"
	vendorFirmware = "onecloud-firmware"
)

// Client system architectures (RFC 4578 section 2.1 and the IANA registry) that matter here.
const (
	ArchBIOS      uint16 = 0
	ArchEFIX64    uint16 = 7  // RFC 4578's "EFI BC", which every x86-64 UEFI sends
	ArchEFIBC     uint16 = 9  // RFC 4578's "EFI x86-64"; the registry swapped 7 and 9 (errata 4624)
	ArchEFIARM64  uint16 = 11 // no binary for it: such a client is Other
	ArchHTTPX64   uint16 = 16
	ArchHTTPEFIBC uint16 = 17
)

// IsEFIArch reports whether arch is a UEFI architecture (IANA "Processor Architecture Types": the EFI
// and UEFI HTTP entries).
func IsEFIArch(arch uint16) bool {
	switch arch {
	case 2, 6, 7, 8, 9, 10, 11, 15, 16, 17, 18, 19, 25, 26, 27, 28, 29, 30, 33, 34, 35, 36, 37, 38, 39, 40:
		return true
	}
	return false
}

// Classify tells which kind of client sent p. It never fails: a packet it cannot place is Other, with
// the reason in Client.Reason.
func Classify(p *dhcpv4.DHCPv4) Client {
	var c Client
	if p == nil {
		c.Class, c.Reason = Other, "no packet"
		return c
	}
	if len(p.ClientHWAddr) > 0 {
		c.MAC = p.ClientHWAddr.String()
	}
	opts := p.Options
	c.VendorClass = string(opts.Get(dhcpv4.GenericOptionCode(optVendorClass)))
	if a := opts.Get(dhcpv4.GenericOptionCode(optClientArch)); len(a) >= 2 {
		c.Arch, c.HasArch = uint16(a[0])<<8|uint16(a[1]), true
		c.UEFI = IsEFIArch(c.Arch)
	}
	if enc, ok := opts[optIPXEEncap]; ok {
		c.IPXE, c.IPXEFeatures = true, true
		c.IPXEHTTP = IPXEHasFeature(enc, ipxeFeatureHTTP)
	}
	for _, uc := range UserClasses(opts.Get(dhcpv4.GenericOptionCode(optUserClass))) {
		if uc == "iPXE" {
			c.IPXE = true
		}
	}

	switch {
	case p.OpCode != dhcpv4.OpcodeBootRequest:
		c.Class, c.Reason = Other, fmt.Sprintf("not a client request (op %d)", p.OpCode)
	case c.VendorClass == vendorFirmware || strings.HasPrefix(c.VendorClass, vendorFirmware+":"):
		c.Class, c.Reason = Firmware, "vendor class "+vendorFirmware
	case c.IPXE:
		c.Class, c.Reason = IPXE, "iPXE user class or option 175"
	case strings.HasPrefix(c.VendorClass, vendorHTTP):
		switch {
		case !c.HasArch || c.Arch == ArchHTTPX64 || c.Arch == ArchHTTPEFIBC:
			c.Class, c.Reason = UEFIHTTP, "vendor class HTTPClient"+c.archText()
		default:
			c.Class, c.Reason = Other, "HTTPClient"+c.archText()+": no boot file for this architecture"
		}
	case strings.HasPrefix(c.VendorClass, vendorPXE):
		switch {
		case !c.HasArch || c.Arch == ArchBIOS:
			c.Class, c.Reason = BIOSPXE, "vendor class PXEClient"+c.archText()
		case c.Arch == ArchEFIX64 || c.Arch == ArchEFIBC:
			c.Class, c.Reason = UEFIPXE, "vendor class PXEClient"+c.archText()
		default:
			c.Class, c.Reason = Other, "PXEClient"+c.archText()+": no boot file for this architecture"
		}
	default:
		c.Class, c.Reason = Other, "no PXEClient/HTTPClient vendor class"
	}
	return c
}

func (c Client) archText() string {
	if !c.HasArch {
		return ", no arch"
	}
	return fmt.Sprintf(", arch %d", c.Arch)
}

// UserClasses decodes option 77. RFC 3004 makes it a list of length-prefixed strings, but iPXE (and
// other clients) send one plain string, "iPXE"; data that is not a well-formed RFC 3004 list is taken
// as one plain string. Empty data gives nil.
func UserClasses(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	var list []string
	for rest := b; len(rest) > 0; {
		n := int(rest[0])
		if n == 0 || n > len(rest)-1 {
			return []string{string(b)}
		}
		list = append(list, string(rest[1:1+n]))
		rest = rest[1+n:]
	}
	return list
}

// SubOptions decodes encapsulated options (RFC 2132 8.4: code, length, value; 0 pads and 255 ends), as
// in option 43 and iPXE's option 175. A later copy of a code replaces an earlier one. It returns an
// error for a truncated sub-option, along with what it decoded before it.
func SubOptions(b []byte) (map[uint8][]byte, error) {
	subs := map[uint8][]byte{}
	for i := 0; i < len(b); {
		code := b[i]
		switch code {
		case 0:
			i++
			continue
		case 255:
			return subs, nil
		}
		if i+1 >= len(b) {
			return subs, fmt.Errorf("sub-option %d at offset %d has no length byte", code, i)
		}
		n := int(b[i+1])
		if i+2+n > len(b) {
			return subs, fmt.Errorf("sub-option %d at offset %d says %d bytes, only %d left", code, i, n, len(b)-i-2)
		}
		subs[code] = b[i+2 : i+2+n]
		i += 2 + n
	}
	return subs, nil
}

// IPXEHasFeature reports whether iPXE's option 175 lists a feature (its sub-options are feature codes
// whose value is the feature's version; a zero-length value still announces the feature). A truncated
// option counts for what was decoded before the damage.
func IPXEHasFeature(opt175 []byte, feature uint8) bool {
	subs, _ := SubOptions(opt175)
	_, ok := subs[feature]
	return ok
}
