// Package enrolapi holds the wire types of enrolment: a box that booted our
// firmware tells the bootstrap server what it is, and learns whether it may
// run and in which role. The firmware is the client, bootstrap the server;
// both use these types, so the two cannot drift apart.
//
// Enrolment is the one exchange a box makes before it has any credential, so
// the answer carries nothing secret: a pending or rejected box learns only
// its id and when to ask again.
package enrolapi

import (
	"time"

	"github.com/onecloud-edu/onecloud/hw"
)

// Path is where the bootstrap server takes enrolment requests (POST, JSON).
const Path = "/v1/enrol"

// Request is what a box sends: the MAC it booted from and its whole inventory.
type Request struct {
	// BootMAC is the MAC of the NIC that got the box its address ("52:54:00:12:34:56").
	BootMAC string `json:"boot_mac"`
	// ID is the id given on the kernel command line (onecloud.id=), if any.
	ID        string        `json:"id,omitempty"`
	Inventory *hw.Inventory `json:"inventory"`
	// Role is the role the box booted in ("" when it booted without one), so
	// the server can tell it to reboot when its assignment changed.
	Role string `json:"role,omitempty"`
}

// State is a machine's place in the inbox.
type State string

// States of a machine.
const (
	Pending  State = "pending"  // seen, waiting for a rule or the technician
	Approved State = "approved" // may boot into Role
	Rejected State = "rejected" // never boots into a role; Message says why
)

// Response is the server's answer.
type Response struct {
	ID    string `json:"id"`
	State State  `json:"state"`
	// Role and School are set when approved.
	Role   string `json:"role,omitempty"`
	School string `json:"school,omitempty"`
	// Reboot says the box runs in another role than assigned and should boot
	// again to take its new one.
	Reboot bool `json:"reboot,omitempty"`
	// RetryAfter is how long to wait before asking again (pending boxes poll).
	RetryAfter Duration `json:"retry_after,omitempty"`
	// Message is for the box's screen: why it waits, or why it was rejected.
	Message string `json:"message,omitempty"`
	// Cluster, for an approved box, is where it attests next (set when the
	// bootstrap server runs inside a server node, which knows its cluster).
	Cluster *Cluster `json:"cluster,omitempty"`
	// Console, for an approved box, is its node console's settings from
	// the cluster.
	Console *Console `json:"console,omitempty"`
}

// Console is the node console's settings. The PIN travels only as its hash
// (internal/pinhash), which the box checks typed PINs against.
type Console struct {
	PINHash string `json:"pin_hash,omitempty"`
	Lang    string `json:"lang,omitempty"`
}

// Cluster is the cluster an approved box attests to for its node
// certificate. Nothing in it is secret: the CA certificate is public, and
// the cluster gives nothing before the box's TPM has proved what it is.
//
// It travels over plain HTTP, like the image the box booted: whoever can
// change one can change the other, so it trusts the CA no less than the box
// trusts its own firmware. An installed box keeps the CA it first joined
// with (the disk layout of the upgrades issue).
type Cluster struct {
	// API is a server node's cluster API ("https://10.77.1.1:9443").
	API string `json:"api"`
	// CA is the cluster CA certificate, PEM.
	CA string `json:"ca"`
}

// Duration is a time.Duration that travels as text ("30s").
type Duration time.Duration

// MarshalText writes the duration as Go duration text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads Go duration text.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
