package ui

import (
	"net/netip"
	"time"
)

// The fixed clock of every test.
var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

func logLines() []LogLine {
	return []LogLine{
		{Time: t0.Add(-50 * time.Minute), Level: LevelInfo, Text: "eth0: link up at 1 Gb/s"},
		{Time: t0.Add(-49 * time.Minute), Level: LevelInfo, Text: "eth0: DHCP lease 10.20.1.15/24 from 10.20.1.1 for 1h"},
		{Time: t0.Add(-48 * time.Minute), Level: LevelInfo, Text: "enrolment approved as vdi-terminal, school xx-no3-primary"},
		{Time: t0.Add(-47 * time.Minute), Level: LevelWarn, Text: "clock stepped by 2.4 s after the first time server answer"},
		{Time: t0.Add(-46 * time.Minute), Level: LevelInfo, Text: "attested: node certificate until 2026-03-09 09:14 UTC"},
		{Time: t0.Add(-3 * time.Minute), Level: LevelInfo, Text: "vdi-client started, connecting to desktop pool room-204"},
	}
}

// vdiPXE is a healthy VDI terminal that booted from the network.
func vdiPXE() Status {
	return Status{
		Now: t0, Product: "OneCloud", Version: "1.4.2", Boot: BootPXE,
		Hostname: "vdi-204-17", Role: "vdi-terminal", School: "xx-no3-primary", Serial: "PF2ABCDE",
		NICs:        []NIC{{Name: "eth0", MAC: "52:54:00:12:34:56", Up: true, SpeedMbs: 1000, Addrs: []string{"10.20.1.15/24"}, DHCP: true}},
		DNS:         []string{"10.20.0.53"},
		Gateway:     Reach{Address: "10.20.1.1", State: ReachOK, RTT: 400 * time.Microsecond},
		Cluster:     Reach{Address: "10.0.0.10:7443", State: ReachOK, RTT: 2100 * time.Microsecond},
		BootServer:  "10.0.0.10",
		Enrolment:   Enrolment{State: EnrolApproved},
		Attestation: Attestation{State: AttestAccepted},
		CertExpires: t0.Add(7*24*time.Hour - 16*time.Minute),
		Clock:       Clock{Synced: true, Source: "10.0.0.10", Offset: 3 * time.Millisecond},
		Uptime:      52 * time.Minute, CPUs: 4, CPUPercent: 11.6,
		Memory: Usage{Used: 1288 << 20, Total: 3900 << 20},
		Log:    logLines(),
	}
}

// serverB is a server node on slot B with a network change under test.
func serverB() Status {
	return Status{
		Now: t0, Product: "OneCloud", Version: "1.5.0", Boot: BootSlotB,
		Hostname: "srv-county-02", Role: "server", School: "county-dc", Serial: "CZ2941077K",
		Roles: []string{"server", "storage", "vdi-terminal"},
		NICs: []NIC{
			{Name: "eno1", MAC: "3c:ec:ef:10:22:01", Up: true, SpeedMbs: 10000, Addrs: []string{"10.0.0.12/24"}, VLAN: 20},
			{Name: "eno2", MAC: "3c:ec:ef:10:22:02", Up: false},
		},
		DNS:        []string{"10.0.0.53", "10.0.1.53"},
		Gateway:    Reach{Address: "10.0.0.1", State: ReachOK, RTT: 300 * time.Microsecond},
		Cluster:    Reach{Address: "10.0.0.10:7443", State: ReachFail, Error: "dial tcp: i/o timeout"},
		BootServer: "10.0.0.10",
		Enrolment:  Enrolment{State: EnrolApproved}, Attestation: Attestation{State: AttestAccepted},
		CertExpires: t0.Add(40 * 24 * time.Hour),
		Clock:       Clock{Synced: true, Source: "ntp.county.edu.cn", Offset: -1 * time.Millisecond},
		Uptime:      9*24*time.Hour + 5*time.Hour, CPUs: 32, CPUPercent: 37.2,
		Memory: Usage{Used: 71 << 30, Total: 128 << 30},
		Disks: []Disk{
			{Name: "nvme0n1", Size: 960 << 30, Used: 412 << 30, Total: 900 << 30, Health: HealthOK},
			{Name: "sda", Size: 4000 << 30, Health: HealthFailing},
		},
		Network: &PendingChange{
			Config:   NetConfig{NIC: "eno1", Address: netip.MustParsePrefix("10.0.0.22/24"), Gateway: netip.MustParseAddr("10.0.0.1"), DNS: []netip.Addr{netip.MustParseAddr("10.0.0.53")}, VLAN: 20},
			Deadline: t0.Add(42 * time.Second),
		},
		Diagnostics: []DiagResult{
			{Name: DiagPingGateway, Target: "10.0.0.1", State: DiagOK, Detail: "3/3 answers, 0.3 ms"},
			{Name: DiagPingCluster, Target: "10.0.0.10", State: DiagFail, Detail: "0/3 answers"},
			{Name: DiagDNS, Target: "cluster.county.edu.cn", State: DiagOK, Detail: "10.0.0.10"},
			{Name: DiagDHCP, Target: "eno1", State: DiagRunning},
			{Name: DiagDisk, Target: "sda", State: DiagFail, Detail: "reallocated sectors: 1184"},
			{Name: DiagTPM, State: DiagOK, Detail: "TPM 2.0 self-test passed"},
		},
		Slots: &SlotInfo{Booted: "B", Previous: "A", Slots: []Slot{
			{Name: "A", Version: "1.4.2", State: SlotGood, Installed: t0.Add(-30 * 24 * time.Hour)},
			{Name: "B", Version: "1.5.0", State: SlotTrying, Installed: t0.Add(-9 * 24 * time.Hour)},
		}},
		Notes: []string{"disk sda is failing: replace it"},
		Log:   logLines(),
	}
}

// noNetwork is a box whose cable is out.
func noNetwork() Status {
	return Status{
		Now: t0, Product: "OneCloud", Version: "1.4.2", Boot: BootPXE,
		Serial: "PF2XYZ01",
		NICs: []NIC{
			{Name: "eth0", MAC: "52:54:00:aa:bb:01"},
			{Name: "wlan0", MAC: "52:54:00:aa:bb:02"},
		},
		Uptime: 95 * time.Second, CPUs: 2, CPUPercent: 3,
		Memory: Usage{Used: 300 << 20, Total: 2000 << 20},
		Log: []LogLine{
			{Time: t0.Add(-80 * time.Second), Level: LevelWarn, Text: "eth0: no link: check the cable and the switch port"},
			{Time: t0.Add(-10 * time.Second), Level: LevelError, Text: "enrolment: no network, waiting"},
		},
	}
}

// refused is a box the cluster refuses: its image is not released.
func refused() Status {
	s := vdiPXE()
	s.Hostname, s.Serial = "vdi-101-03", "PF2REF99"
	s.NICs[0].MAC, s.NICs[0].Addrs = "52:54:00:12:99:03", []string{"10.20.1.33/24"}
	s.Attestation = Attestation{State: AttestRefused, Reason: "image-not-released", Detail: "release 1.4.3-rc1 is not released in this cluster"}
	s.CertExpires = time.Time{}
	s.Cluster = Reach{Address: "10.0.0.10:7443", State: ReachOK, RTT: 1900 * time.Microsecond}
	s.Clock = Clock{}
	s.Log = append(s.Log[:3], LogLine{Time: t0.Add(-time.Minute), Level: LevelError, Text: "attestation refused: image-not-released (release 1.4.3-rc1)"})
	return s
}
