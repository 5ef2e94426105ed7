package hw

import "testing"

func TestDiskTransport(t *testing.T) {
	tests := []struct{ link, want string }{
		{"../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda", "ata"},
		{"../devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb", "usb"},
		{"../devices/pci0000:00/0000:00:04.0/0000:03:00.0/nvme/nvme0/nvme0n1", "nvme"},
		{"../devices/pci0000:00/0000:00:1c.0/0000:01:00.0/mmc_host/mmc0/mmc0:0001/block/mmcblk0", "mmc"},
		{"../devices/pci0000:00/0000:00:05.0/virtio2/host2/target2:0:0/2:0:0:0/block/sda", "scsi"},
		{"../devices/pci0000:00/0000:00:04.0/virtio0/block/vda", "virtio"},
		{"../devices/platform/something/block/xyz0", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := diskTransport(tt.link); got != tt.want {
			t.Errorf("diskTransport(%q) = %q, want %q", tt.link, got, tt.want)
		}
	}
}

func TestNotDisks(t *testing.T) {
	tests := []struct {
		name string
		skip bool
	}{
		{"sr0", true}, {"fd0", true}, {"mmcblk0boot0", true}, {"mmcblk0boot1", true}, {"mmcblk0rpmb", true},
		{"sda", false}, {"mmcblk0", false}, {"nvme0n1", false}, {"vda", false}, {"srv", false},
	}
	for _, tt := range tests {
		if got := notDisks.MatchString(tt.name); got != tt.skip {
			t.Errorf("notDisks(%q) = %v, want %v", tt.name, got, tt.skip)
		}
	}
}
