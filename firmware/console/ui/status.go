package ui

import (
	"net/netip"
	"time"
)

// Status is everything the console shows about the box: plain data the
// console process gathers and hands to every Model (the screen's and the
// serial console's) as a StatusUpdate. Empty fields are shown as unknown.
type Status struct {
	// Now is the box's clock when the status was gathered; the model's
	// countdowns and ages are measured from it (and from Tick).
	Now time.Time `json:"now"`

	Product string `json:"product"`
	Version string `json:"version"`
	// Boot is where this firmware came from: BootPXE, BootSlotA, BootSlotB.
	Boot     string `json:"boot"`
	Hostname string `json:"hostname"`
	Role     string `json:"role"`
	School   string `json:"school"`
	Serial   string `json:"serial"`
	// Roles are the roles the technician may request (from the cluster);
	// empty lets them type one.
	Roles []string `json:"roles,omitempty"`

	NICs []NIC    `json:"nics"`
	DNS  []string `json:"dns,omitempty"`
	// Gateway and Cluster say whether the default gateway and the cluster
	// API answer; Address is what was tried.
	Gateway Reach `json:"gateway"`
	Cluster Reach `json:"cluster"`
	// BootServer is the bootstrap server the box enrols with (host or
	// host:port; empty when it is learnt from DHCP).
	BootServer string `json:"boot_server,omitempty"`

	Enrolment   Enrolment   `json:"enrolment"`
	Attestation Attestation `json:"attestation"`
	// CertExpires is the end of the node certificate; zero when there is none.
	CertExpires time.Time `json:"cert_expires,omitzero"`
	Clock       Clock     `json:"clock"`

	Uptime     time.Duration `json:"uptime"` // nanoseconds in JSON
	CPUs       int           `json:"cpus"`
	CPUPercent float64       `json:"cpu_percent"` // busy, 0-100, over all CPUs
	Memory     Usage         `json:"memory"`
	Disks      []Disk        `json:"disks,omitempty"`

	// Network is the network change under test, nil when there is none.
	Network     *PendingChange `json:"network_change,omitempty"`
	Diagnostics []DiagResult   `json:"diagnostics,omitempty"`
	// Log holds the last important log lines, oldest first.
	Log []LogLine `json:"log,omitempty"`
	// Slots is nil on a box that boots from the network (PXE).
	Slots *SlotInfo `json:"slots,omitempty"`
	// Notes are short lines worth a technician's eye (failed modules,
	// unknown command-line options), shown in yellow on the status screen.
	Notes []string `json:"notes,omitempty"`
}

// Boot sources.
const (
	BootPXE   = "pxe"
	BootSlotA = "slot-a"
	BootSlotB = "slot-b"
)

// NIC is one network interface.
type NIC struct {
	Name string `json:"name"`
	MAC  string `json:"mac"`
	// Up says the link is up (a cable and a switch port answer).
	Up       bool     `json:"up"`
	SpeedMbs int      `json:"speed_mbs,omitempty"` // 0 when unknown
	Addrs    []string `json:"addrs,omitempty"`     // CIDR, e.g. 10.1.2.3/24
	DHCP     bool     `json:"dhcp"`
	VLAN     int      `json:"vlan,omitempty"` // 0: untagged
}

// Reachability states.
const (
	ReachUnknown = ""     // not checked yet
	ReachOK      = "ok"   // answered
	ReachFail    = "fail" // did not answer
)

// Reach is whether a peer answers.
type Reach struct {
	Address string        `json:"address,omitempty"`
	State   string        `json:"state"`
	RTT     time.Duration `json:"rtt,omitempty"`
	Error   string        `json:"error,omitempty"` // why not, for ReachFail
}

// Enrolment states, from the enrolment client.
const (
	EnrolNone       = ""           // not started: the box is not online yet
	EnrolNoServer   = "no-server"  // no boot server known
	EnrolContacting = "contacting" // asking the boot server
	EnrolPending    = "pending"    // waiting for approval
	EnrolApproved   = "approved"
	EnrolRejected   = "rejected"
	EnrolError      = "error"
)

// Enrolment is where the box is with the bootstrap server.
type Enrolment struct {
	State string `json:"state"`
	// Detail is the server's message or the error, shown as is.
	Detail string `json:"detail,omitempty"`
	ID     string `json:"id,omitempty"` // the enrolment request, for the technician to quote
}

// Attestation states, from noded attest.
const (
	AttestNone      = "" // the box has not attested yet
	AttestAttesting = "attesting"
	AttestAccepted  = "accepted"
	AttestRefused   = "refused"
	AttestError     = "error"
)

// Attestation is whether the cluster trusts this box.
type Attestation struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"` // a short code, e.g. image-not-released
	Detail string `json:"detail,omitempty"`
}

// Clock is whether the box's clock is set from a time server.
type Clock struct {
	Synced bool          `json:"synced"`
	Source string        `json:"source,omitempty"`
	Offset time.Duration `json:"offset,omitempty"`
}

// Usage is used and total bytes.
type Usage struct {
	Used  uint64 `json:"used"`
	Total uint64 `json:"total"`
}

// Disk health values, from /sys (and SMART where there is one).
const (
	HealthUnknown = ""
	HealthOK      = "ok"
	HealthFailing = "failing"
)

// Disk is one disk; Used and Total are of its data partition, zero on a
// disk the box does not use.
type Disk struct {
	Name   string `json:"name"`
	Size   uint64 `json:"size"`
	Used   uint64 `json:"used,omitempty"`
	Total  uint64 `json:"total,omitempty"`
	Health string `json:"health,omitempty"`
}

// NetConfig is a network configuration, as the technician enters it and
// as ApplyNetwork carries it.
type NetConfig struct {
	NIC     string       `json:"nic"`
	DHCP    bool         `json:"dhcp"`
	Address netip.Prefix `json:"address,omitzero"` // static only
	Gateway netip.Addr   `json:"gateway,omitzero"` // static only; may be zero
	DNS     []netip.Addr `json:"dns,omitempty"`    // static only
	VLAN    int          `json:"vlan,omitempty"`   // 1-4094, 0 for untagged
}

// PendingChange is a network change under test: the console process
// reverts it by itself at Deadline unless it is confirmed.
type PendingChange struct {
	Config    NetConfig `json:"config"`
	Deadline  time.Time `json:"deadline"`
	Confirmed bool      `json:"confirmed,omitempty"`
	Reverted  bool      `json:"reverted,omitempty"`
	// Reason says why it was reverted (timeout, technician, error).
	Reason string `json:"reason,omitempty"`
}

// Diagnostic names the model knows how to word; others are shown as is.
const (
	DiagPingGateway = "ping-gateway"
	DiagPingCluster = "ping-cluster"
	DiagDNS         = "dns"
	DiagDHCP        = "dhcp"
	DiagDisk        = "disk"
	DiagTPM         = "tpm"
)

// Diagnostic states.
const (
	DiagRunning = "running"
	DiagOK      = "ok"
	DiagFail    = "fail"
)

// DiagResult is the outcome of one diagnostic.
type DiagResult struct {
	Name   string    `json:"name"`
	Target string    `json:"target,omitempty"` // what was tested: an address, a disk
	State  string    `json:"state"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// Log levels.
const (
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// LogLine is one log line.
type LogLine struct {
	Time  time.Time `json:"time"`
	Level string    `json:"level"`
	Text  string    `json:"text"`
}

// Slot states.
const (
	SlotGood   = "good"   // booted and confirmed healthy
	SlotTrying = "trying" // being tried for the first time
	SlotBad    = "bad"    // failed to come up
	SlotEmpty  = "empty"
)

// SlotInfo is the A/B firmware slots of a box that boots from disk.
type SlotInfo struct {
	Booted string `json:"booted"` // "A" or "B"
	Slots  []Slot `json:"slots"`
	// Previous is the slot a rollback boots, empty when none is usable.
	Previous string `json:"previous,omitempty"`
}

// Slot is one firmware slot.
type Slot struct {
	Name      string    `json:"name"` // "A" or "B"
	Version   string    `json:"version,omitempty"`
	State     string    `json:"state"`
	Installed time.Time `json:"installed,omitzero"`
}
