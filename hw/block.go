package hw

import (
	"regexp"
	"strings"
)

// blockDir lists one entry per whole block device (partitions are below
// them), each a link into sys/devices.
const blockDir = "sys/block"

// Disk is a block device that can hold data: a disk, an SSD, an NVMe
// namespace, an eMMC or SD card, a USB stick.
type Disk struct {
	Name       string `json:"name"`       // kernel name: "sda", "nvme0n1", "vda", "mmcblk0"
	SizeBytes  uint64 `json:"size_bytes"` // size: 512-byte sectors times 512, whatever the device's block size
	Rotational bool   `json:"rotational"` // queue/rotational: a spinning disk (virtual disks often claim to be)
	Removable  bool   `json:"removable"`  // removable: removable medium (USB sticks, card readers)
	Model      string `json:"model"`      // device/model (ATA, SCSI, NVMe) or device/name (MMC); "" for virtio
	Serial     string `json:"serial"`     // serial (virtio) or device/serial (NVMe, MMC); "" for ATA, which sysfs does not show as text
	// Transport is how the disk is attached, from the device path: "ata"
	// (SATA or IDE), "nvme", "usb", "mmc", "scsi" (SAS, virtio-scsi), "virtio"
	// (virtio-blk), or "" when not recognised.
	Transport string `json:"transport"`
}

// notDisks are whole block devices with a device link that hold no data of
// ours: optical drives, floppies, and the boot and RPMB areas of eMMC chips,
// which the kernel lists beside the eMMC itself.
var notDisks = regexp.MustCompile(`^(sr|fd)[0-9]+$|^mmcblk[0-9]+(boot[0-9]+|rpmb)$`)

// readDisks lists the disks. A block device counts when it has a device
// link (this leaves out loop, ram, zram, dm-*, md* and nbd devices, which
// are made by software), is not in notDisks, and holds a medium (size
// greater than zero: an empty card reader is no disk).
func readDisks(s *source) []Disk {
	disks := []Disk{}
	for _, name := range s.names(blockDir) {
		dir := blockDir + "/" + name
		if notDisks.MatchString(name) || !s.exists(dir+"/device") {
			continue
		}
		d := Disk{
			Name:       name,
			Rotational: s.flag(dir + "/queue/rotational"),
			Removable:  s.flag(dir + "/removable"),
			Model:      firstNonEmpty(s.optional(dir+"/device/model"), s.optional(dir+"/device/name")),
			Serial:     firstNonEmpty(s.optional(dir+"/serial"), s.optional(dir+"/device/serial")),
			Transport:  diskTransport(s.link(dir)),
		}
		// A size that cannot be read keeps the disk in the list (with the
		// problem reported): losing a disk from the inventory would hide it.
		if sectors, ok := s.uint(dir+"/size", "a number of 512-byte sectors"); ok {
			if sectors == 0 {
				continue
			}
			if sectors > 1<<54 {
				s.fail(dir+"/size", "%d sectors is beyond any disk", sectors)
			} else {
				d.SizeBytes = sectors * 512
			}
		}
		disks = append(disks, d)
	}
	return disks
}

// diskTransport names how a disk is attached from the path its sys/block link
// points to, such as
//
//	../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda
//	../devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb
//	../devices/pci0000:00/0000:00:04.0/virtio1/block/vda
//
// The first match in this order wins: a USB disk also has a SCSI host, and
// a virtio-scsi disk sits below a virtio device.
func diskTransport(link string) string {
	parts := strings.Split(link, "/")
	for _, t := range []struct{ prefix, name string }{
		{"usb", "usb"},
		{"ata", "ata"},
		{"nvme", "nvme"},
		{"mmc", "mmc"},
		{"host", "scsi"},
		{"virtio", "virtio"},
	} {
		for _, p := range parts {
			if rest, ok := strings.CutPrefix(p, t.prefix); ok && (rest == "" || isNumber(rest) || rest == "_host") {
				return t.name
			}
		}
	}
	return ""
}
