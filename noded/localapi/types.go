// Package localapi is noded's local status API: JSON over a unix socket that
// only root on the box can open.
//
// The firmware's status screen (and later the console menu) reads it, so one
// set of types here describes the node for both sides. The cluster API, with
// mutual TLS, is a different thing and arrives with the cluster issue.
package localapi

import (
	"time"

	"github.com/onecloud-edu/onecloud/hw"
	"github.com/onecloud-edu/onecloud/internal/release"
)

// SocketPath is where noded listens on a box.
const SocketPath = "/run/onecloud/noded.sock"

// ServicesPath is where the firmware's supervisor publishes the state of the
// services it runs; noded reads it for the status.
const ServicesPath = "/run/onecloud/services.json"

// InventoryPath is where the firmware leaves the hardware inventory it took
// at boot, so that noded does not probe the hardware a second time.
const InventoryPath = "/run/onecloud/inventory.json"

// Status is the node's local status.
type Status struct {
	Release    release.Info  `json:"release"`
	Hostname   string        `json:"hostname"`
	UptimeSec  float64       `json:"uptime_seconds"`
	Inventory  *hw.Inventory `json:"inventory,omitempty"`
	Interfaces []Interface   `json:"interfaces"`
	Services   []Service     `json:"services"`
	// Problems lists what noded could not find out, for the status screen.
	Problems []string `json:"problems,omitempty"`
}

// Interface is one network interface as the kernel sees it now.
type Interface struct {
	Name    string   `json:"name"`
	MAC     string   `json:"mac,omitempty"`
	Up      bool     `json:"up"`
	Carrier bool     `json:"carrier"`
	Addrs   []string `json:"addrs,omitempty"` // IPv4 and global IPv6, CIDR form
}

// Service is one long-running program the firmware supervises.
type Service struct {
	Name     string    `json:"name"`
	State    string    `json:"state"` // starting, running, backoff, stopped
	PID      int       `json:"pid,omitempty"`
	Restarts int       `json:"restarts"`
	Since    time.Time `json:"since"`
	LastExit string    `json:"last_exit,omitempty"`
}

// Service states.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateBackoff  = "backoff"
	StateStopped  = "stopped"
)
