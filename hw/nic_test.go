package hw

import "testing"

func TestNICPCI(t *testing.T) {
	tests := []struct{ link, want string }{
		{"../../devices/pci0000:00/0000:00:03.0/net/eth0", "0000:00:03.0"},
		{"../../devices/pci0000:00/0000:00:1c.0/0000:03:00.0/net/enp3s0", "0000:03:00.0"},
		{"../../devices/pci0000:00/0000:00:03.0/virtio0/net/eth0", "0000:00:03.0"},
		{"../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/net/enx001122334455", ""},
		{"../../devices/virtual/net/lo", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := nicPCI(tt.link); got != tt.want {
			t.Errorf("nicPCI(%q) = %q, want %q", tt.link, got, tt.want)
		}
	}
}
