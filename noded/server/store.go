package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/cluster"
	"github.com/onecloud-edu/onecloud/noded/verify"
)

// Collections of the cluster store (under cluster.Prefix) this package
// keeps.
const (
	colMachines     = "machines"     // api.Machine by machine id
	colSerials      = "serials"      // serialEntry by serialKey: approved machines by serial
	colNodes        = "nodes"        // api.Node by node name (= machine id)
	colAttestations = "attestations" // attestationRecord by serialKey
	colReleases     = "releases"     // api.Release by hex digest
	colAudit        = "audit"        // AuditEntry by time-ordered name
	colSettings     = "settings"     // api.ConsoleSettings as "console"
)

// serialEntry indexes an approved machine by its serial, which the
// verifier looks machines up by.
type serialEntry struct {
	Serial    string `json:"serial"`
	MachineID string `json:"machine_id"`
}

// attestationRecord is the verifier's memory of a serial.
type attestationRecord struct {
	Serial string        `json:"serial"`
	Record verify.Record `json:"record"`
}

// AuditEntry records one refused attestation.
type AuditEntry struct {
	At        time.Time  `json:"at"`
	MachineID string     `json:"machine_id,omitempty"`
	Serial    string     `json:"serial,omitempty"`
	Addr      string     `json:"addr,omitempty"`
	Reason    api.Reason `json:"reason"`
	Text      string     `json:"text"`
}

// state is the server's view of the cluster store.
type state struct {
	machines     *cluster.Store[api.Machine]
	serials      *cluster.Store[serialEntry]
	nodes        *cluster.Store[api.Node]
	attestations *cluster.Store[attestationRecord]
	releases     *cluster.Store[api.Release]
	audit        *cluster.Store[AuditEntry]
	console      *cluster.Store[api.ConsoleSettings]
}

func newState(kv clientv3.KV) (*state, error) {
	var s state
	var err error
	// The names are constants; an error here is a programming mistake,
	// but it is returned rather than panicking all the same.
	if s.machines, err = cluster.NewStore[api.Machine](kv, colMachines); err != nil {
		return nil, err
	}
	if s.serials, err = cluster.NewStore[serialEntry](kv, colSerials); err != nil {
		return nil, err
	}
	if s.nodes, err = cluster.NewStore[api.Node](kv, colNodes); err != nil {
		return nil, err
	}
	if s.attestations, err = cluster.NewStore[attestationRecord](kv, colAttestations); err != nil {
		return nil, err
	}
	if s.releases, err = cluster.NewStore[api.Release](kv, colReleases); err != nil {
		return nil, err
	}
	if s.audit, err = cluster.NewStore[AuditEntry](kv, colAudit); err != nil {
		return nil, err
	}
	if s.console, err = cluster.NewStore[api.ConsoleSettings](kv, colSettings); err != nil {
		return nil, err
	}
	return &s, nil
}

// serialKey names a serial's records: a serial number is whatever the
// board vendor typed (spaces, slashes), a store name is one safe segment.
func serialKey(serial string) string {
	sum := sha256.Sum256([]byte(serial))
	return "sn-" + hex.EncodeToString(sum[:20])
}

// maxCASTries bounds the read-modify-write retries of one change; losing
// that often means something rewrites the record in a loop.
const maxCASTries = 16

// update reads a record, lets f change it (exists says whether it was
// there) and writes it back with a compare-and-swap on the revision read,
// retrying when another writer came in between. f returning errSkip leaves
// the record as it is.
func update[T any](ctx context.Context, st *cluster.Store[T], name string, f func(v *T, exists bool) error) (T, error) {
	for range maxCASTries {
		v, rev, err := st.Get(ctx, name)
		exists := err == nil
		if errors.Is(err, cluster.ErrNotFound) {
			var zero T
			v, rev, err = zero, 0, nil
		}
		if err != nil {
			return v, err
		}
		if err := f(&v, exists); err != nil {
			if errors.Is(err, errSkip) {
				return v, nil
			}
			return v, err
		}
		_, err = st.CAS(ctx, name, v, rev)
		if errors.Is(err, cluster.ErrConflict) {
			continue
		}
		return v, err
	}
	var zero T
	return zero, fmt.Errorf("%s: changed by others %d times in a row while this server tried to update it; retry", st.Key(name), maxCASTries)
}

// errSkip tells update that nothing needs writing.
var errSkip = errors.New("nothing to write")

// Approval implements verify.Machines: a serial is approved when the
// index names a machine that is approved with that very serial (the index
// may lag behind a rejection by a moment; the machine record decides).
func (s *state) Approval(ctx context.Context, serial string) (verify.Approval, bool, error) {
	e, _, err := s.serials.Get(ctx, serialKey(serial))
	if errors.Is(err, cluster.ErrNotFound) {
		return verify.Approval{}, false, nil
	}
	if err != nil {
		return verify.Approval{}, false, err
	}
	m, _, err := s.machines.Get(ctx, e.MachineID)
	if errors.Is(err, cluster.ErrNotFound) {
		return verify.Approval{}, false, nil
	}
	if err != nil {
		return verify.Approval{}, false, err
	}
	if m.State != enrolapi.Approved || m.Serial != serial {
		return verify.Approval{}, false, nil
	}
	return verify.Approval{MachineID: m.ID, EKHash: m.EKHash}, true, nil
}

// attestationStore is verify.Store on the cluster store. Save writes with
// a compare-and-swap on the revision of the serial's last Load, so that two
// server nodes verifying the same serial at once cannot both move its
// counters: the loser's Save fails and its box attests again.
type attestationStore struct {
	st   *cluster.Store[attestationRecord]
	revs *revisions
}

// Load implements verify.Store.
func (a attestationStore) Load(ctx context.Context, serial string) (verify.Record, bool, error) {
	r, rev, err := a.st.Get(ctx, serialKey(serial))
	if errors.Is(err, cluster.ErrNotFound) {
		a.revs.set(serial, 0)
		return verify.Record{}, false, nil
	}
	if err != nil {
		return verify.Record{}, false, err
	}
	a.revs.set(serial, rev)
	return r.Record, true, nil
}

// Save implements verify.Store.
func (a attestationStore) Save(ctx context.Context, serial string, r verify.Record) error {
	rev, ok := a.revs.take(serial)
	if !ok {
		return fmt.Errorf("save the attestation record of %q without loading it first: a bug in the verifier", serial)
	}
	_, err := a.st.CAS(ctx, serialKey(serial), attestationRecord{Serial: serial, Record: r}, rev)
	return err
}

// releasedStore is verify.Released on the cluster store.
type releasedStore struct{ st *cluster.Store[api.Release] }

// Released implements verify.Released.
func (r releasedStore) Released(ctx context.Context, sum []byte) (bool, error) {
	_, _, err := r.st.Get(ctx, hex.EncodeToString(sum))
	if errors.Is(err, cluster.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// auditName orders audit entries by time; the random tail keeps two
// entries of the same nanosecond apart.
func auditName(at time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%019d-%s", at.UnixNano(), hex.EncodeToString(b[:]))
}

// revisions remembers the revision of each serial's last loaded
// attestation record, for the compare-and-swap of its Save. The verifier
// loads and saves one serial under its own lock, so the last Load before a
// Save is that Save's.
type revisions struct {
	mu sync.Mutex
	m  map[string]int64
}

func (r *revisions) set(serial string, rev int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[serial] = rev
}

func (r *revisions) take(serial string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rev, ok := r.m[serial]
	delete(r.m, serial)
	return rev, ok
}
