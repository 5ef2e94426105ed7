package hw

// Sources returns the paths, relative to the root, of every file and link
// that Collect may read. A "*" stands for exactly one path element (a disk
// or an interface name).
//
// The recorder (package hw/record) copies exactly these paths, so a recorded
// tree is small and holds everything Collect needs. When Collect learns to
// read a new file, add it here, or recorded trees will lack it; the
// round-trip test in hw/record catches the omission for the testdata trees.
func Sources() []string {
	return []string{
		// cpu.go and memory.go
		"proc/cpuinfo",
		"proc/meminfo",

		// dmi.go
		dmiDir + "/sys_vendor",
		dmiDir + "/product_name",
		dmiDir + "/product_serial",
		dmiDir + "/product_uuid",
		dmiDir + "/board_vendor",
		dmiDir + "/board_name",
		dmiDir + "/bios_vendor",
		dmiDir + "/bios_version",
		dmiDir + "/chassis_type",

		// block.go: sys/block/* are links into sys/devices; their targets
		// tell the transport, so the recorder keeps them as links.
		blockDir + "/*/device",
		blockDir + "/*/size",
		blockDir + "/*/removable",
		blockDir + "/*/queue/rotational",
		blockDir + "/*/serial",
		blockDir + "/*/device/model",
		blockDir + "/*/device/serial",
		blockDir + "/*/device/name",

		// nic.go
		netDir + "/*/device",
		netDir + "/*/device/driver",
		netDir + "/*/address",
		netDir + "/*/carrier",
		netDir + "/*/speed",
		netDir + "/*/phy80211",

		// tpm.go
		tpmDir + "/tpm_version_major",
		tpmDir + "/caps",
		tpmDir + "/device/caps",
		tpmDir + "/device/description",
		tpmDir + "/device/firmware_node/description",
	}
}
