package hw

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// tpmDir is the first TPM the kernel found. A box has at most one TPM
// that matters (the one the firmware measures into), and the kernel numbers
// it 0.
const tpmDir = "sys/class/tpm/tpm0"

// TPM describes the Trusted Platform Module.
type TPM struct {
	Present bool `json:"present"` // the kernel found a TPM
	// Version is "2.0" or "1.2"; "" when there is no TPM.
	Version string `json:"version"`
	// Manufacturer is the TCG vendor ID, the four characters the TPM names
	// itself with, trailing spaces and NULs removed: "IFX", "NTC", "STM",
	// "INTC", "IBM" (software TPMs). For TPM 1.2 it comes from sysfs; for
	// TPM 2.0 sysfs does not show it and it is "" until the firmware asks
	// the TPM (TPMManufacturer, SetTPMManufacturer).
	Manufacturer string `json:"manufacturer"`
	// ManufacturerName is the company behind Manufacturer ("Infineon",
	// "Nuvoton"), or "" when the ID is not in the TCG registry we know.
	ManufacturerName string `json:"manufacturer_name"`
	// Description is the firmware's description of the TPM device, from
	// the ACPI _STR of the device (device/description or
	// device/firmware_node/description). Most firmware gives none: "".
	Description string `json:"description"`
}

// readTPM reads the TPM's version from tpm_version_major (Linux 5.6 and
// later). Older kernels lack it; there a TPM 1.2 is told by its caps file,
// which TPM 2.0 chips do not have.
func readTPM(s *source) TPM {
	if !s.exists(tpmDir) {
		return TPM{}
	}
	t := TPM{
		Present: true,
		Description: firstNonEmpty(s.optional(tpmDir+"/device/description"),
			s.optional(tpmDir+"/device/firmware_node/description")),
	}
	caps, haveCaps := s.text(tpmDir + "/caps")
	capsPath := tpmDir + "/caps"
	if !haveCaps {
		caps, haveCaps = s.text(tpmDir + "/device/caps")
		capsPath = tpmDir + "/device/caps"
	}
	switch v, ok := s.text(tpmDir + "/tpm_version_major"); {
	case ok && v == "2":
		t.Version = "2.0"
	case ok && v == "1":
		t.Version = "1.2"
	case ok:
		s.fail(tpmDir+"/tpm_version_major", "want 1 or 2, got %q", v)
	case haveCaps:
		t.Version = "1.2"
	default:
		t.Version = "2.0"
	}
	if haveCaps {
		if id, ok := capsManufacturer(caps); ok {
			t.setManufacturer(id)
		} else {
			s.fail(capsPath, "want a line \"Manufacturer: 0x<8 hex digits>\", got %q", caps)
		}
	}
	return t
}

// capsManufacturer finds "Manufacturer: 0x49424d00" in a TPM 1.2 caps file
// and decodes it to a vendor ID ("IBM").
func capsManufacturer(caps string) (string, bool) {
	for line := range strings.SplitSeq(caps, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "Manufacturer:")
		if !ok {
			continue
		}
		hex, ok := strings.CutPrefix(strings.TrimSpace(v), "0x")
		if !ok {
			return "", false
		}
		n, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			return "", false
		}
		return vendorID(uint32(n)), true
	}
	return "", false
}

// vendorID turns the 32-bit manufacturer value of a TPM into its vendor
// ID: four ASCII characters, big endian, padded with NULs or spaces.
func vendorID(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return strings.TrimRight(string(b[:]), "\x00 ")
}

// setManufacturer sets the vendor ID and the company's name.
func (t *TPM) setManufacturer(id string) {
	t.Manufacturer = id
	t.ManufacturerName = tpmVendors[id]
}

// SetTPMManufacturer records the vendor ID of the TPM, as TPMManufacturer
// returns it, in the inventory. The firmware calls it after Collect on
// boxes with a TPM 2.0, whose manufacturer sysfs does not show.
func (inv *Inventory) SetTPMManufacturer(id string) {
	inv.TPM.setManufacturer(strings.TrimRight(id, "\x00 "))
}

// tpmVendors names the TPM vendor IDs of the TCG's "TPM Vendor ID Registry".
var tpmVendors = map[string]string{
	"AMD":  "AMD",
	"ATML": "Atmel",
	"BRCM": "Broadcom",
	"CSCO": "Cisco",
	"FLYS": "Flyslice Technologies",
	"GOOG": "Google",
	"HISI": "Huawei",
	"HPE":  "HPE",
	"IBM":  "IBM",
	"IFX":  "Infineon",
	"INTC": "Intel",
	"LEN":  "Lenovo",
	"MSFT": "Microsoft",
	"NSM":  "National Semiconductor",
	"NTC":  "Nuvoton",
	"NTZ":  "Nationz",
	"QCOM": "Qualcomm",
	"ROCC": "Fuzhou Rockchip",
	"SMSC": "SMSC",
	"SMSN": "Samsung",
	"SNS":  "Sinosun",
	"STM":  "STMicroelectronics",
	"TXN":  "Texas Instruments",
	"WEC":  "Winbond",
}
