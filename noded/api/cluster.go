package api

// The cluster API: what every server node serves over HTTPS with mutual TLS
// (cluster CA), and what occtl, the web console and the nodes call. The
// types travel as JSON. Every route needs a client certificate from the
// cluster CA (an admin's, O=onecloud:admins, or a node's, O=onecloud:nodes)
// except the two attestation routes (ChallengePath, ProofPath), which a box
// calls before it has one and which give nothing away before approval.

import (
	"net/url"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/hw"
)

// DefaultPort is where server nodes serve the cluster API (HTTPS). etcd
// keeps its own ports (2379, 2380).
const DefaultPort = 9443

// Routes of the cluster API, as net/http patterns. "{id}" and "{name}" are
// one path segment each; Path fills them in.
const (
	NodesRoute         = "GET /v1/nodes"                  // admin: NodeList
	RemoveNodeRoute    = "DELETE /v1/nodes/{name}"        // admin: 204; a server node leaves etcd too
	SelfRoute          = "GET /v1/self"                   // node: its own Node
	RoleRequestRoute   = "POST /v1/self/role-request"     // node: RoleRequest -> Machine (the request recorded)
	MachinesRoute      = "GET /v1/machines"               // admin: MachineList
	MachineRoute       = "GET /v1/machines/{id}"          // admin: Machine, with its inventory
	ApproveRoute       = "POST /v1/machines/{id}/approve" // admin: ApproveRequest -> Machine
	DeclareRoute       = "POST /v1/machines"              // admin: DeclareRequest -> Machine (approved)
	RejectRoute        = "POST /v1/machines/{id}/reject"  // admin: RejectRequest -> Machine
	ClusterStatusRoute = "GET /v1/cluster/status"         // admin: ClusterStatus
	ReleasesRoute      = "GET /v1/releases"               // admin: ReleaseList
	AddReleaseRoute    = "POST /v1/releases"              // admin: ReleaseRequest -> Release
	ConsoleRoute       = "GET /v1/settings/console"       // admin: ConsoleSettings
	SetConsoleRoute    = "PUT /v1/settings/console"       // admin: ConsoleSettings -> ConsoleSettings
	ChallengeRoute     = "POST " + ChallengePath          // anyone: AttestRequest -> Challenge (403: Result)
	ProofRoute         = "POST " + ProofPath              // anyone with a session: Proof -> Result
)

// Path turns a route into the path to request, with its {placeholders}
// replaced by args in order (escaped as one segment each).
func Path(route string, args ...string) string {
	_, p, _ := strings.Cut(route, " ")
	for _, a := range args {
		i := strings.Index(p, "{")
		j := strings.Index(p, "}")
		if i < 0 || j < i {
			break
		}
		p = p[:i] + url.PathEscape(a) + p[j+1:]
	}
	return p
}

// Role is what a machine runs as.
type Role string

// Roles.
const (
	RoleServer Role = "server"
	RoleVDI    Role = "vdi"
	RoleIDV    Role = "idv"
	RoleTCI    Role = "tci"
)

// NodeState is what the cluster thinks of a node now.
type NodeState string

// Node states.
const (
	// Ready: its last attestation was accepted and its certificate is valid.
	NodeReady NodeState = "Ready"
	// NotReady: its certificate expired without a new attestation (the box
	// is off, or cannot reach the cluster).
	NodeNotReady NodeState = "NotReady"
	// Refused: its last attestation was refused; Reason says why.
	NodeRefused NodeState = "Refused"
)

// MemberRole is a node's place in the etcd cluster.
type MemberRole string

// Member roles.
const (
	MemberVoter   MemberRole = "voter"
	MemberLearner MemberRole = "learner"
	MemberNone    MemberRole = "none" // terminals, and server nodes not (yet) members
)

// Node is a box that has attested at least once: a server node or a
// terminal. Its name is its machine id ("oc-525400123456").
type Node struct {
	Name   string `json:"name"`
	Role   Role   `json:"role"`
	School string `json:"school,omitempty"`
	Serial string `json:"serial,omitempty"`
	// Addresses are where the node was seen attesting from.
	Addresses []string   `json:"addresses,omitempty"`
	State     NodeState  `json:"state"`
	Member    MemberRole `json:"member"`
	// CertExpiry is when the node certificate last issued to it expires;
	// it re-attests before then.
	CertExpiry   time.Time `json:"cert_expiry,omitzero"`
	LastAttested time.Time `json:"last_attested,omitzero"`
	// Image names the image the node booted ("slot-a/vmlinuz
	// sha256:0123456789ab"), the last one its firmware measured.
	Image  string  `json:"image,omitempty"`
	Images []Image `json:"images,omitempty"`
	// Reason says why the node is Refused or NotReady.
	Reason string `json:"reason,omitempty"`
}

// Image is an image a node's firmware measured.
type Image struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"` // lower-case hex
}

// AttestationStatus is the outcome of a machine's last attestation.
type AttestationStatus struct {
	At       time.Time `json:"at"`
	Accepted bool      `json:"accepted"`
	Reason   Reason    `json:"reason,omitempty"`
	Text     string    `json:"text,omitempty"`
}

// Machine is a box in the enrolment inbox, as the cluster keeps it: what
// bootstrap's inbox knows (bootstrap/machines.Machine), the EK recorded at
// approval and the outcome of its last attestation.
type Machine struct {
	ID        string         `json:"id"`
	State     enrolapi.State `json:"state"`
	Role      Role           `json:"role,omitempty"`
	School    string         `json:"school,omitempty"`
	MACs      []string       `json:"macs"`
	Serial    string         `json:"serial,omitempty"`
	Vendor    string         `json:"vendor,omitempty"`
	Product   string         `json:"product,omitempty"`
	UUID      string         `json:"uuid,omitempty"`
	Addr      string         `json:"addr,omitempty"`
	FirstSeen time.Time      `json:"first_seen,omitzero"`
	LastSeen  time.Time      `json:"last_seen,omitzero"`
	DecidedBy string         `json:"decided_by,omitempty"`
	// Reason is why the machine was rejected, or the identity conflict it
	// showed.
	Reason   string `json:"reason,omitempty"`
	Conflict bool   `json:"conflict,omitempty"`
	// EKHash is the EK fingerprint (EKHash) recorded at approval, for a
	// TPM without a manufacturer certificate.
	EKHash      string             `json:"ek_hash,omitempty"`
	Attestation *AttestationStatus `json:"attestation,omitempty"`
	// RequestedRole is a role the box asked for from its console, waiting
	// for the technician (`occtl approve ID -role R` grants it).
	RequestedRole Role      `json:"requested_role,omitempty"`
	RequestedAt   time.Time `json:"requested_at,omitzero"`
	// Inventory is left out of lists; MachineRoute returns it.
	Inventory *hw.Inventory `json:"inventory,omitempty"`
}

// ClusterStatus is the etcd cluster as the answering server node sees it.
type ClusterStatus struct {
	Leader string `json:"leader"` // "" when there is none: the cluster cannot write
	// Healthy: a leader, and every member answers without errors.
	Healthy   bool            `json:"healthy"`
	RaftIndex uint64          `json:"raft_index"`
	Members   []ClusterMember `json:"members"`
	Learners  []string        `json:"learners,omitempty"`
}

// ClusterMember is one etcd member.
type ClusterMember struct {
	Name       string     `json:"name"` // "" for a member added but not started
	ID         string     `json:"id"`   // hex
	Role       MemberRole `json:"role"`
	Leader     bool       `json:"leader"`
	Healthy    bool       `json:"healthy"`
	PeerURLs   []string   `json:"peer_urls"`
	ClientURLs []string   `json:"client_urls"`
	RaftIndex  uint64     `json:"raft_index"`
	RaftTerm   uint64     `json:"raft_term"`
	DBSize     int64      `json:"db_size"`
	Error      string     `json:"error,omitempty"`
}

// RoleRequest is a box asking, from its console, to become another role.
type RoleRequest struct {
	Role Role `json:"role"`
}

// ConsoleSettings are the node console's settings for every box, handed
// out with the enrolment answer: the PIN that opens its admin menu (only
// its hash, internal/pinhash: the PIN itself never reaches the cluster)
// and its language.
type ConsoleSettings struct {
	PINHash string    `json:"pin_hash,omitempty"`
	Lang    string    `json:"lang,omitempty"` // "zh" or "en"; "" leaves each box's default
	SetBy   string    `json:"set_by,omitempty"`
	SetAt   time.Time `json:"set_at,omitzero"`
}

// Release is an image digest the cluster accepts in attestations.
type Release struct {
	SHA256  string    `json:"sha256"` // lower-case hex
	Name    string    `json:"name,omitempty"`
	Added   time.Time `json:"added"`
	AddedBy string    `json:"added_by,omitempty"`
}

// Request bodies.
type (
	// ApproveRequest approves a machine in a role.
	ApproveRequest struct {
		Role   Role   `json:"role"`
		School string `json:"school,omitempty"`
		// EKHash records the TPM's EK fingerprint (EKHash) for a TPM
		// without a manufacturer certificate; it also pins the EK.
		EKHash string `json:"ek_hash,omitempty"`
	}
	// DeclareRequest approves a machine before it has ever booted: a
	// technician who unpacks a new server node enters its MAC, serial and
	// EK fingerprint from the box's label or the vendor's delivery note.
	DeclareRequest struct {
		MAC    string `json:"mac"`
		Serial string `json:"serial,omitempty"`
		ApproveRequest
	}
	// RejectRequest rejects a machine.
	RejectRequest struct {
		Reason string `json:"reason,omitempty"`
	}
	// ReleaseRequest adds a released image digest.
	ReleaseRequest struct {
		SHA256 string `json:"sha256"`
		Name   string `json:"name,omitempty"`
	}
)

// Response bodies of lists.
type (
	NodeList struct {
		Nodes []Node `json:"nodes"`
	}
	MachineList struct {
		Machines []Machine `json:"machines"`
	}
	ReleaseList struct {
		Releases []Release `json:"releases"`
	}
)

// ErrorBody is the body of every error answer except a refused challenge
// (403 with a Result).
type ErrorBody struct {
	Error string `json:"error"`
}
