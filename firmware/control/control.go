// Package control is the firmware's control API: how the node console asks
// onecloud-init, which owns the NICs, enrolment and power, to change them.
//
// It is HTTP with JSON bodies on a unix socket of mode 0600
// (/run/onecloud/control.sock): the file's permissions are its
// authentication, as for noded's local API, since only root on the box
// (the console runs as root) may reconfigure or power off the box.
//
//	GET  /v1/state                network change being tested, last one, every NIC's configuration
//	POST /v1/network              netcfg.Change: apply it, test it, revert it unless the cluster answers
//	POST /v1/network/confirm      keep the change being tested
//	POST /v1/servers              {"boot": URL, "cluster": URL}: kept for the next enrolment
//	POST /v1/reenrol              enrol again
//	POST /v1/role-request         {"role": ROLE}: ask the boot server for another role
//	POST /v1/reboot               stop the services and reboot
//	POST /v1/poweroff             stop the services and power off
//	POST /v1/factory-reset        {"serial": SERIAL}: only when SERIAL is this box's
//	POST /v1/rollback             boot the previous image
//
// Answers are JSON: the State for the network routes, {"message": ...}
// for the others, {"error": ...} with 400 (bad input: the message says what
// to correct), 409 (not now: a change is pending, or none is), 501 (not in
// this firmware yet), 503 (the part that would do it is not running) or 500.
package control

import (
	"context"
	"errors"

	"github.com/onecloud-edu/onecloud/firmware/netcfg"
)

// SocketPath is where onecloud-init serves the API.
const SocketPath = "/run/onecloud/control.sock"

// Network changes the NICs with test-and-revert: *netcfg.Tester.
type Network interface {
	State() netcfg.State
	NICs() []netcfg.NICStatus
	Apply(ctx context.Context, c netcfg.Change) error
	Confirm(ctx context.Context) error
}

// Box is everything else the console may ask; onecloud-init implements it.
// Inputs reach it checked. An action this firmware cannot do yet returns an
// error wrapping ErrNotAvailable.
type Box interface {
	// Serial is the box's serial number (DMI), "" when the board has none.
	Serial() string
	SetServers(ctx context.Context, s Servers) error
	Reenrol(ctx context.Context) error
	RequestRole(ctx context.Context, role string) error
	// Reboot and PowerOff start stopping the box and return at once, so
	// that the console hears the answer.
	Reboot(ctx context.Context) error
	PowerOff(ctx context.Context) error
	FactoryReset(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Errors a Box (or Network) wraps to choose the answer's status.
var (
	ErrNotAvailable = errors.New("not available in this firmware yet")
	ErrNotRunning   = errors.New("not running on this box now")
)

// State is GET /v1/state's answer.
type State struct {
	Network netcfg.State       `json:"network"`
	NICs    []netcfg.NICStatus `json:"nics"`
}

// Servers is POST /v1/servers' body: where the box enrols next time, and
// the cluster it attests to. An empty field leaves that one as it is.
type Servers struct {
	Boot    string `json:"boot,omitempty"`    // http(s)://HOST[:PORT], e.g. http://10.77.1.1:8080
	Cluster string `json:"cluster,omitempty"` // https://HOST:PORT of the cluster API
}

// RoleRequest is POST /v1/role-request's body.
type RoleRequest struct {
	Role string `json:"role"`
}

// FactoryReset is POST /v1/factory-reset's body: the serial number typed by
// the technician, read from the box's label, as a deliberate confirmation.
type FactoryReset struct {
	Serial string `json:"serial"`
}

// Reply is the answer of the routes that only act.
type Reply struct {
	Message string `json:"message"`
}

// errorReply is every failed answer.
type errorReply struct {
	Error string `json:"error"`
}
