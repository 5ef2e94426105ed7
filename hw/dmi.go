package hw

import "strconv"

// dmiDir holds the SMBIOS/DMI strings the firmware (BIOS or UEFI) left for
// the kernel. Boards without SMBIOS (some ARM boards) have no such directory,
// which is not a problem; product_serial and product_uuid are readable by
// root only.
const dmiDir = "sys/class/dmi/id"

// DMI identifies the machine as its firmware describes it. Strings are
// copied as the vendor wrote them, placeholders included ("To Be Filled By
// O.E.M.", "Default string"): judging them is the reader's business. Empty
// means absent.
type DMI struct {
	Vendor      string `json:"vendor"`       // sys_vendor: "Dell Inc.", "QEMU"
	Product     string `json:"product"`      // product_name: "PowerEdge R740"
	Serial      string `json:"serial"`       // product_serial: the service tag
	UUID        string `json:"uuid"`         // product_uuid: SMBIOS system UUID, lower case
	BoardVendor string `json:"board_vendor"` // board_vendor
	BoardName   string `json:"board_name"`   // board_name
	BIOSVendor  string `json:"bios_vendor"`  // bios_vendor
	BIOSVersion string `json:"bios_version"` // bios_version
	// ChassisType is the SMBIOS chassis type code (3 desktop, 17 main
	// server chassis, 23 rack mount, 35 mini PC, ...); 0 when unknown.
	ChassisType int `json:"chassis_type"`
}

func readDMI(s *source) DMI {
	d := DMI{
		Vendor:      s.optional(dmiDir + "/sys_vendor"),
		Product:     s.optional(dmiDir + "/product_name"),
		Serial:      s.optional(dmiDir + "/product_serial"),
		UUID:        s.optional(dmiDir + "/product_uuid"),
		BoardVendor: s.optional(dmiDir + "/board_vendor"),
		BoardName:   s.optional(dmiDir + "/board_name"),
		BIOSVendor:  s.optional(dmiDir + "/bios_vendor"),
		BIOSVersion: s.optional(dmiDir + "/bios_version"),
	}
	if v, ok := s.text(dmiDir + "/chassis_type"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 255 {
			s.fail(dmiDir+"/chassis_type", "want an SMBIOS chassis type code 0-255, got %q", v)
		} else {
			d.ChassisType = n
		}
	}
	return d
}

// chassisNames names the SMBIOS chassis type codes (SMBIOS 3.x, table 17)
// for the human table.
var chassisNames = map[int]string{
	1: "other", 2: "unknown", 3: "desktop", 4: "low-profile desktop",
	5: "pizza box", 6: "mini tower", 7: "tower", 8: "portable", 9: "laptop",
	10: "notebook", 11: "hand held", 12: "docking station", 13: "all in one",
	14: "sub notebook", 15: "space-saving", 16: "lunch box",
	17: "main server chassis", 18: "expansion chassis", 19: "sub chassis",
	20: "bus expansion chassis", 21: "peripheral chassis", 22: "RAID chassis",
	23: "rack mount", 24: "sealed-case PC", 25: "multi-system chassis",
	26: "compact PCI", 27: "advanced TCA", 28: "blade", 29: "blade enclosure",
	30: "tablet", 31: "convertible", 32: "detachable", 33: "IoT gateway",
	34: "embedded PC", 35: "mini PC", 36: "stick PC",
}

// ChassisName returns the SMBIOS name of the chassis type ("rack mount"),
// or "" when the code is unknown.
func (d DMI) ChassisName() string {
	return chassisNames[d.ChassisType]
}
