package hw

import "testing"

func TestCapsManufacturer(t *testing.T) {
	tests := []struct {
		caps string
		want string
		ok   bool
	}{
		{"Manufacturer: 0x49424d00\nTCG version: 1.2\nFirmware version: 18.158\n", "IBM", true},
		{"Manufacturer: 0x49465800\nTCG version: 1.2\n", "IFX", true},
		{"Manufacturer: 0x53544d20\n", "STM", true},
		{"Manufacturer: 0x4e544300\n", "NTC", true},
		{"Manufacturer: IBM\n", "", false},
		{"Manufacturer: 0x1234567890\n", "", false},
		{"TCG version: 1.2\n", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := capsManufacturer(tt.caps)
		if got != tt.want || ok != tt.ok {
			t.Errorf("capsManufacturer(%q) = %q, %v; want %q, %v", tt.caps, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSetTPMManufacturer(t *testing.T) {
	tests := []struct{ id, want, name string }{
		{"NTC", "NTC", "Nuvoton"},
		{"STM ", "STM", "STMicroelectronics"},
		{"IFX\x00", "IFX", "Infineon"},
		{"ZZZZ", "ZZZZ", ""},
	}
	for _, tt := range tests {
		var inv Inventory
		inv.SetTPMManufacturer(tt.id)
		if inv.TPM.Manufacturer != tt.want || inv.TPM.ManufacturerName != tt.name {
			t.Errorf("SetTPMManufacturer(%q): %q %q, want %q %q", tt.id, inv.TPM.Manufacturer, inv.TPM.ManufacturerName, tt.want, tt.name)
		}
	}
}
