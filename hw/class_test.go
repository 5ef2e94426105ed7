package hw

import "testing"

func TestClassify(t *testing.T) {
	disk := Disk{Name: "sda"}
	stick := Disk{Name: "sdb", Removable: true}
	tests := []struct {
		name string
		inv  Inventory
		want string
	}{
		{"guest", Inventory{CPU: CPU{Flags: []string{"hypervisor"}, Sockets: 2}, DMI: DMI{ChassisType: 23}}, ClassVM},
		{"rack mount", Inventory{DMI: DMI{ChassisType: 23}, CPU: CPU{Sockets: 1}}, ClassServer},
		{"two sockets in a tower", Inventory{DMI: DMI{ChassisType: 7}, CPU: CPU{Sockets: 2}, Disks: []Disk{disk}}, ClassServer},
		{"no disk", Inventory{DMI: DMI{ChassisType: 35}, CPU: CPU{Sockets: 1}}, ClassThinClient},
		{"only a USB stick", Inventory{CPU: CPU{Sockets: 1}, Disks: []Disk{stick}}, ClassThinClient},
		{"desktop with disk", Inventory{DMI: DMI{ChassisType: 3}, CPU: CPU{Sockets: 1}, Disks: []Disk{disk, stick}}, ClassPC},
	}
	for _, tt := range tests {
		if got := classify(tt.inv); got != tt.want {
			t.Errorf("%s: classify = %q, want %q", tt.name, got, tt.want)
		}
	}
}
