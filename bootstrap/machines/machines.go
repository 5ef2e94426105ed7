// Package machines is bootstrap's file backend and enrolment inbox: every
// box that asked to boot, whether it may run and in which role.
//
// A box is seen twice on its way up: iPXE asks for its per-machine script
// (knowing one MAC and perhaps the serial), then our firmware enrols with
// the whole inventory (every MAC). Both sightings land on one Machine, found
// by any of its MACs. An unknown box starts pending; a Declared entry or a
// Rule of the configuration can approve it at first sight, otherwise a
// technician approves or rejects it with `bootstrapd machines`.
//
// The state is one JSON file, replaced atomically after every change, so a
// crash loses nothing a technician did and a reader never sees half a file.
package machines

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/hw"
	"github.com/onecloud-edu/onecloud/internal/atomicfile"
)

// Machine is one box in the inbox.
type Machine struct {
	ID     string         `json:"id"`
	State  enrolapi.State `json:"state"`
	Role   string         `json:"role,omitempty"`   // set when approved
	School string         `json:"school,omitempty"` // set when approved, may be empty
	// MACs are all MACs the box showed, the one of its id first.
	MACs    []string `json:"macs"`
	Serial  string   `json:"serial,omitempty"`
	Vendor  string   `json:"vendor,omitempty"`
	Product string   `json:"product,omitempty"`
	UUID    string   `json:"uuid,omitempty"`
	// Addr is the address the box was last seen from.
	Addr      string    `json:"addr,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// DecidedBy says who approved or rejected: "rule:NAME", "declared" or
	// "technician".
	DecidedBy string `json:"decided_by,omitempty"`
	// Reason is why the box was rejected, or the identity conflict it showed.
	Reason string `json:"reason,omitempty"`
	// Conflict marks a box whose MAC was seen with another serial, or that
	// shows a MAC of another machine: perhaps a spoofed MAC. Such a box is
	// never approved by a rule or declaration, only by a technician.
	Conflict bool `json:"conflict,omitempty"`
	// Inventory is the last one the firmware posted; nil until it enrols.
	// It is shared, never modified: treat it as read only.
	Inventory *hw.Inventory `json:"inventory,omitempty"`
}

// BootMAC is the MAC the machine's id was made from.
func (m Machine) BootMAC() string {
	if len(m.MACs) == 0 {
		return ""
	}
	return m.MACs[0]
}

func (m Machine) clone() Machine {
	m.MACs = slices.Clone(m.MACs)
	return m
}

// Sighting is one request of a box: iPXE asking for its script or the
// firmware enrolling.
type Sighting struct {
	MAC  string   // the MAC the box booted from
	MACs []string // every MAC the box has, when known (the firmware knows)
	// Serial, Vendor, Product and UUID are the DMI fields. When empty they
	// are taken from Inventory, so the enrolment handler may pass only MAC
	// and Inventory (the NICs of the inventory are added to MACs too).
	Serial, Vendor, Product, UUID string
	Addr                          netip.Addr // where the request came from
	Source                        string     // "ipxe" or "firmware"
	Inventory                     *hw.Inventory
}

// Sources of a sighting.
const (
	SourceIPXE     = "ipxe"
	SourceFirmware = "firmware"
)

// Limits on what one box can make us keep.
const (
	maxMACs = 64  // MACs of one box
	maxText = 128 // bytes of serial, vendor, product, uuid, reason
	// defaultMaxPending bounds the inbox against a flood of made-up MACs:
	// a county has about a thousand boxes.
	defaultMaxPending = 4096
	// lazyWrite is how long a change of LastSeen alone may wait to be
	// written. A thousand pending boxes poll every 10 s; rewriting the whole
	// file for each poll would write megabytes a second to say "still here".
	lazyWrite = time.Minute
)

// Error kinds, for errors.Is: the admin API answers 404 and 400 with them.
var (
	ErrNotFound = errors.New("no such machine")
	ErrInvalid  = errors.New("invalid request")
)

// kindError is an error whose text is written for the operator and whose
// kind (ErrNotFound, ErrInvalid) is for code.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

func invalidf(format string, a ...any) error {
	return &kindError{kind: ErrInvalid, msg: fmt.Sprintf(format, a...)}
}

func notFound(id string) error {
	return &kindError{kind: ErrNotFound, msg: fmt.Sprintf("no machine %s: see `bootstrapd machines list`", id)}
}

// Store is the inbox, kept in one JSON file. It is safe for concurrent use.
type Store struct {
	path     string
	log      *slog.Logger
	rules    []Rule
	declared map[string]Declared // by normalized MAC

	mu         sync.Mutex
	byID       map[string]*Machine
	byMAC      map[string]string // MAC -> id; a MAC belongs to one machine at most
	gen        uint64            // counts changes
	lazySince  time.Time         // first LastSeen change not yet written, zero if none
	maxPending int

	// wsem admits one writer at a time; a channel so that a caller can stop
	// waiting when its context ends. written (guarded by wsem) is the gen
	// of the last snapshot on disk: a writer that finds its change already
	// written by another returns at once, so a burst of changes costs two
	// writes, not one per change (group commit).
	wsem    chan struct{}
	written uint64
}

// stateFile is the JSON form of the state file.
type stateFile struct {
	Version  int       `json:"version"`
	Machines []Machine `json:"machines"`
}

const stateVersion = 1

// Open loads the inbox from path (created when missing, so that a state
// folder we cannot write is found now and not at the first box) and applies
// rules and declared to the machines it sees from now on. A file that cannot
// be understood is an error: it is never reset, since it holds every
// technician's decision.
func Open(path string, rules []Rule, declared []Declared, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := CheckRules(rules, declared); err != nil {
		return nil, fmt.Errorf("machine rules: %w", err)
	}
	s := &Store{
		path:       path,
		log:        log,
		rules:      slices.Clone(rules),
		declared:   map[string]Declared{},
		byID:       map[string]*Machine{},
		byMAC:      map[string]string{},
		maxPending: defaultMaxPending,
		wsem:       make(chan struct{}, 1),
	}
	for _, d := range declared {
		mac, _ := NormalizeMAC(d.MAC) // checked above
		d.MAC = mac
		s.declared[mac] = d
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.gen = 1
		if err := s.commit(context.Background(), 1); err != nil {
			return nil, err
		}
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read machines state: %w", err)
	}
	if err := s.load(data); err != nil {
		return nil, fmt.Errorf("machines state %s is unusable: %w: repair the file or restore it from a backup (bootstrapd never resets it; moving it away forgets every machine)", path, err)
	}
	log.Info("machines loaded", "file", path, "machines", len(s.byID), "rules", len(rules), "declared", len(declared))
	return s, nil
}

// load fills an empty store from the state file, checking what the rest of
// the code takes for granted.
func (s *Store) load(data []byte) error {
	var f stateFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("not valid JSON of the machines state: %w", err)
	}
	if f.Version != stateVersion {
		return fmt.Errorf("version %d, want %d (written by another bootstrapd?)", f.Version, stateVersion)
	}
	for i := range f.Machines {
		m := f.Machines[i]
		if len(m.MACs) == 0 {
			return fmt.Errorf("machine %q has no MAC", m.ID)
		}
		for j, raw := range m.MACs {
			mac, err := NormalizeMAC(raw)
			if err != nil {
				return fmt.Errorf("machine %q: %w", m.ID, err)
			}
			if other, ok := s.byMAC[mac]; ok {
				return fmt.Errorf("MAC %s belongs to both %s and %s", mac, other, m.ID)
			}
			m.MACs[j] = mac
			s.byMAC[mac] = m.ID
		}
		if m.ID != IDFor(m.MACs[0]) {
			return fmt.Errorf("machine %q: its id is not made from its first MAC %s", m.ID, m.MACs[0])
		}
		switch m.State {
		case enrolapi.Pending, enrolapi.Rejected:
		case enrolapi.Approved:
			if !ValidRole(m.Role) {
				return fmt.Errorf("machine %s is approved with role %q: want one of %s", m.ID, m.Role, Roles)
			}
		default:
			return fmt.Errorf("machine %s has state %q", m.ID, m.State)
		}
		s.byID[m.ID] = &m
	}
	s.gen, s.written = 1, 1
	return nil
}

// commit writes the state if change gen is not on disk yet.
func (s *Store) commit(ctx context.Context, gen uint64) error {
	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("the change is kept in memory but not yet saved to %s: %w", s.path, ctx.Err())
	}
	defer func() { <-s.wsem }()
	if s.written >= gen {
		return nil
	}
	s.mu.Lock()
	f := stateFile{Version: stateVersion, Machines: s.sortedLocked("")}
	data, err := json.MarshalIndent(f, "", "  ")
	g := s.gen
	s.lazySince = time.Time{}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode machines state: %w", err)
	}
	if err := atomicfile.WriteFileDurable(s.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("the change is kept in memory but could not be saved: %w: check the space and permissions of %s", err, filepath.Dir(s.path))
	}
	s.written = g
	return nil
}

// Flush writes what is only in memory (recent LastSeen times). bootstrapd
// calls it when it stops.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	g := s.gen
	s.mu.Unlock()
	return s.commit(ctx, g)
}

// sortedLocked lists the machines in state (all for ""), by first sighting.
func (s *Store) sortedLocked(state enrolapi.State) []Machine {
	out := make([]Machine, 0, len(s.byID))
	for _, m := range s.byID {
		if state == "" || m.State == state {
			out = append(out, m.clone())
		}
	}
	slices.SortFunc(out, func(a, b Machine) int {
		return cmp.Or(a.FirstSeen.Compare(b.FirstSeen), strings.Compare(a.ID, b.ID))
	})
	return out
}

// normalize checks a sighting and brings it to the form the store keeps.
func normalize(sg Sighting) (Sighting, error) {
	boot, err := NormalizeMAC(sg.MAC)
	if err != nil {
		return sg, invalidf("boot MAC: %v", err)
	}
	if sg.Source != SourceIPXE && sg.Source != SourceFirmware {
		return sg, invalidf("sighting of %s: source %q, want %q or %q", boot, sg.Source, SourceIPXE, SourceFirmware)
	}
	macs := []string{boot}
	add := func(mac string) {
		if !slices.Contains(macs, mac) {
			macs = append(macs, mac)
		}
	}
	for _, raw := range sg.MACs {
		mac, err := NormalizeMAC(raw)
		if err != nil {
			return sg, invalidf("sighting of %s: %v", boot, err)
		}
		add(mac)
	}
	if inv := sg.Inventory; inv != nil {
		for _, nic := range inv.NICs {
			// A NIC the inventory shows with no usable MAC is not a reason
			// to turn the box away.
			if mac, err := NormalizeMAC(nic.MAC); err == nil {
				add(mac)
			}
		}
		sg.Serial = cmp.Or(sg.Serial, inv.DMI.Serial)
		sg.Vendor = cmp.Or(sg.Vendor, inv.DMI.Vendor)
		sg.Product = cmp.Or(sg.Product, inv.DMI.Product)
		sg.UUID = cmp.Or(sg.UUID, inv.DMI.UUID)
		sg.Inventory = cloneInventory(inv)
	}
	if len(macs) > maxMACs {
		return sg, invalidf("sighting of %s shows %d MACs, more than %d", boot, len(macs), maxMACs)
	}
	sg.MAC, sg.MACs = boot, macs
	sg.Serial = cleanText(sg.Serial, maxText)
	sg.Vendor = cleanText(sg.Vendor, maxText)
	sg.Product = cleanText(sg.Product, maxText)
	sg.UUID = strings.ToLower(cleanText(sg.UUID, maxText))
	sg.Addr = sg.Addr.Unmap()
	return sg, nil
}

// cloneInventory copies the caller's inventory so that the stored one never
// changes under a reader.
func cloneInventory(inv *hw.Inventory) *hw.Inventory {
	c := *inv
	c.CPU.Flags = slices.Clone(inv.CPU.Flags)
	c.Disks = slices.Clone(inv.Disks)
	c.NICs = slices.Clone(inv.NICs)
	c.Problems = slices.Clone(inv.Problems)
	return &c
}

// Seen records a sighting at time now and returns the machine as it now is:
// new (pending, or approved by a declaration or rule), or known and updated.
// A pending machine is checked against the rules again (they may have been
// added); an approved or rejected one keeps its decision. When the change
// cannot be saved the machine is returned together with the error.
func (s *Store) Seen(ctx context.Context, sg Sighting, now time.Time) (Machine, error) {
	sg, err := normalize(sg)
	if err != nil {
		return Machine{}, err
	}
	s.mu.Lock()
	m, changed, err := s.seenLocked(sg, now)
	if err != nil {
		s.mu.Unlock()
		return Machine{}, err
	}
	out := m.clone()
	s.gen++
	gen := s.gen
	if !changed {
		if s.lazySince.IsZero() {
			s.lazySince = now
		}
		changed = now.Sub(s.lazySince) >= lazyWrite
	}
	s.mu.Unlock()
	if changed {
		return out, s.commit(ctx, gen)
	}
	return out, nil
}

// seenLocked finds or creates the machine of a sighting and updates it. It
// reports whether anything besides LastSeen changed.
func (s *Store) seenLocked(sg Sighting, now time.Time) (*Machine, bool, error) {
	var found []*Machine
	for _, mac := range sg.MACs {
		if id, ok := s.byMAC[mac]; ok && !slices.Contains(found, s.byID[id]) {
			found = append(found, s.byID[id])
		}
	}
	log := s.log.With("mac", sg.MAC, "source", sg.Source)
	if sg.Addr.IsValid() {
		log = log.With("addr", sg.Addr.String())
	}
	if len(found) == 0 {
		return s.addLocked(sg, now, log)
	}

	// Several machines share MACs with this box when iPXE saw it boot from
	// two NICs before the firmware showed both. Keep the one a decision was
	// made for (else the oldest) and fold in the pending others.
	slices.SortStableFunc(found, func(a, b *Machine) int {
		return cmp.Or(
			boolRank(a.State != enrolapi.Pending, b.State != enrolapi.Pending),
			boolRank(slices.Contains(a.MACs, sg.MAC), slices.Contains(b.MACs, sg.MAC)),
			a.FirstSeen.Compare(b.FirstSeen),
			strings.Compare(a.ID, b.ID))
	})
	m := found[0]
	before := m.clone()
	log = log.With("id", m.ID)
	for _, o := range found[1:] {
		if o.State == enrolapi.Pending && !serialsDiffer(m.Serial, o.Serial) {
			s.mergeLocked(m, o)
			log.Info("two machines are one box: merged", "merged", o.ID)
			continue
		}
		s.flagLocked(m, log, fmt.Sprintf("identity conflict: this box shows MACs of machine %s (%s); forget one of them with `bootstrapd machines forget` if they are the same box", o.ID, o.State))
	}
	for _, mac := range sg.MACs {
		if _, taken := s.byMAC[mac]; !taken {
			m.MACs = append(m.MACs, mac)
			s.byMAC[mac] = m.ID
		}
	}
	if serialsDiffer(m.Serial, sg.Serial) {
		// Keep the serial first seen: the newcomer is the suspect.
		s.flagLocked(m, log, fmt.Sprintf("identity conflict: MAC %s was seen with serial %q, now with %q", sg.MAC, m.Serial, sg.Serial))
	} else if sg.Serial != "" {
		m.Serial = sg.Serial
	}
	m.Vendor = cmp.Or(sg.Vendor, m.Vendor)
	m.Product = cmp.Or(sg.Product, m.Product)
	m.UUID = cmp.Or(sg.UUID, m.UUID)
	if sg.Addr.IsValid() {
		m.Addr = sg.Addr.String()
	}
	if sg.Inventory != nil && !reflect.DeepEqual(sg.Inventory, m.Inventory) {
		m.Inventory = sg.Inventory
	}
	s.decideLocked(m, log)
	m.LastSeen = now
	after := m.clone()
	after.LastSeen = before.LastSeen
	return m, !reflect.DeepEqual(before, after), nil
}

func boolRank(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// serialsDiffer is true when both serials are known and not the same.
func serialsDiffer(a, b string) bool { return a != "" && b != "" && !strings.EqualFold(a, b) }

func (s *Store) addLocked(sg Sighting, now time.Time, log *slog.Logger) (*Machine, bool, error) {
	pending := 0
	for _, m := range s.byID {
		if m.State == enrolapi.Pending {
			pending++
		}
	}
	if pending >= s.maxPending {
		log.Warn("inbox full: new machine not recorded", "pending", pending)
		return nil, false, fmt.Errorf("new machine %s not recorded: %d machines are already pending; approve or reject them (`bootstrapd machines list -state pending`)", IDFor(sg.MAC), pending)
	}
	m := &Machine{
		ID:        IDFor(sg.MAC),
		State:     enrolapi.Pending,
		MACs:      sg.MACs,
		Serial:    sg.Serial,
		Vendor:    sg.Vendor,
		Product:   sg.Product,
		UUID:      sg.UUID,
		FirstSeen: now,
		LastSeen:  now,
		Inventory: sg.Inventory,
	}
	if sg.Addr.IsValid() {
		m.Addr = sg.Addr.String()
	}
	s.byID[m.ID] = m
	for _, mac := range m.MACs {
		s.byMAC[mac] = m.ID
	}
	log = log.With("id", m.ID)
	s.decideLocked(m, log)
	if m.State == enrolapi.Pending {
		log.Info("new machine waits for approval", "serial", m.Serial)
	}
	return m, true, nil
}

// mergeLocked folds machine o into m.
func (s *Store) mergeLocked(m, o *Machine) {
	for _, mac := range o.MACs {
		m.MACs = append(m.MACs, mac)
		s.byMAC[mac] = m.ID
	}
	if o.FirstSeen.Before(m.FirstSeen) {
		m.FirstSeen = o.FirstSeen
	}
	m.Serial = cmp.Or(m.Serial, o.Serial)
	m.Vendor = cmp.Or(m.Vendor, o.Vendor)
	m.Product = cmp.Or(m.Product, o.Product)
	m.UUID = cmp.Or(m.UUID, o.UUID)
	if m.Inventory == nil {
		m.Inventory = o.Inventory
	}
	delete(s.byID, o.ID)
}

// flagLocked records an identity conflict; the trust issue refuses such
// boxes, here they are only kept from automatic approval.
func (s *Store) flagLocked(m *Machine, log *slog.Logger, why string) {
	if m.Reason != why && !(m.Conflict && m.State == enrolapi.Rejected) {
		log.Warn(why, "state", m.State)
	}
	m.Conflict = true
	if m.State != enrolapi.Rejected { // the rejection's reason is what the box shows
		m.Reason = why
	}
}

// decideLocked applies the declarations and rules to a pending machine, and
// follows a changed declaration for a machine approved by one.
func (s *Store) decideLocked(m *Machine, log *slog.Logger) {
	var decl *Declared
	for _, mac := range m.MACs {
		if d, ok := s.declared[mac]; ok {
			decl = &d
			break
		}
	}
	switch {
	case m.State == enrolapi.Approved && m.DecidedBy == "declared" && decl != nil:
		if m.Role != decl.Role || m.School != decl.School {
			log.Info("declared role changed in the configuration", "id", m.ID, "role", decl.Role, "school", decl.School, "was_role", m.Role, "was_school", m.School)
			m.Role, m.School = decl.Role, decl.School
		}
		return
	case m.State != enrolapi.Pending:
		return
	case m.Conflict:
		return // a technician must look at it
	case decl != nil:
		m.State, m.Role, m.School, m.DecidedBy = enrolapi.Approved, decl.Role, decl.School, "declared"
		log.Info("machine approved: declared in the configuration", "role", m.Role, "school", m.School)
		return
	}
	for _, r := range s.rules {
		if r.Matches(*m) {
			m.State, m.Role, m.School, m.DecidedBy = enrolapi.Approved, r.Role, r.School, "rule:"+r.Name
			log.Info("machine approved by rule", "rule", r.Name, "role", m.Role, "school", m.School)
			return
		}
	}
}

// resolveLocked finds a machine by its id, or by any of its MACs.
func (s *Store) resolveLocked(id string) (*Machine, error) {
	if m, ok := s.byID[id]; ok {
		return m, nil
	}
	key := strings.ToLower(strings.TrimSpace(id))
	if m, ok := s.byID[key]; ok {
		return m, nil
	}
	if mac, err := NormalizeMAC(strings.TrimPrefix(key, "oc-")); err == nil {
		if mid, ok := s.byMAC[mac]; ok {
			return s.byID[mid], nil
		}
	}
	return nil, notFound(id)
}

// Get returns the machine with this id (or with this MAC).
func (s *Store) Get(id string) (Machine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.resolveLocked(id)
	if err != nil {
		return Machine{}, err
	}
	return m.clone(), nil
}

// List returns the machines in state (all for ""), oldest sighting first.
func (s *Store) List(state enrolapi.State) ([]Machine, error) {
	switch state {
	case "", enrolapi.Pending, enrolapi.Approved, enrolapi.Rejected:
	default:
		return nil, invalidf("state %q: want pending, approved or rejected", state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedLocked(state), nil
}

// change runs f on the machine with this id under the lock and saves.
func (s *Store) change(ctx context.Context, id string, f func(m *Machine) error) (Machine, error) {
	s.mu.Lock()
	m, err := s.resolveLocked(id)
	if err == nil {
		err = f(m)
	}
	if err != nil {
		s.mu.Unlock()
		return Machine{}, err
	}
	out := m.clone()
	s.gen++
	gen := s.gen
	s.mu.Unlock()
	return out, s.commit(ctx, gen)
}

func checkAssignment(id, role, school string) error {
	if !ValidRole(role) {
		return invalidf("role %q for %s: want one of %s", role, id, Roles)
	}
	if err := checkSchool(school); err != nil {
		return invalidf("%s: %v", id, err)
	}
	return nil
}

// Approve lets a machine boot into role at school, whatever its state was.
// An identity conflict stays recorded (Conflict, Reason): it is a fact about
// the box, which the cluster's trust checks weigh; to clear it, Forget the
// machine and let it be seen anew.
func (s *Store) Approve(ctx context.Context, id, role, school string) (Machine, error) {
	return s.change(ctx, id, func(m *Machine) error {
		if err := checkAssignment(m.ID, role, school); err != nil {
			return err
		}
		m.State, m.Role, m.School, m.DecidedBy = enrolapi.Approved, role, school, "technician"
		if !m.Conflict {
			m.Reason = "" // the reason of an earlier rejection
		}
		s.log.Info("machine approved by technician", "id", m.ID, "mac", m.BootMAC(), "role", role, "school", school)
		return nil
	})
}

// Reject keeps a machine from booting into any role; reason is shown on
// its screen.
func (s *Store) Reject(ctx context.Context, id, reason string) (Machine, error) {
	reason = cleanText(reason, maxText)
	if reason == "" {
		reason = "rejected by a technician"
	}
	return s.change(ctx, id, func(m *Machine) error {
		m.State, m.Role, m.School, m.DecidedBy, m.Reason = enrolapi.Rejected, "", "", "technician", reason
		s.log.Info("machine rejected by technician", "id", m.ID, "mac", m.BootMAC(), "reason", reason)
		return nil
	})
}

// Assign gives an approved machine another role, and another school unless
// school is empty (to clear the school, Approve again). The box learns it
// at its next enrolment and reboots into the new role.
func (s *Store) Assign(ctx context.Context, id, role, school string) (Machine, error) {
	return s.change(ctx, id, func(m *Machine) error {
		if m.State != enrolapi.Approved {
			return invalidf("%s is %s, not approved: approve it with `bootstrapd machines approve %s -role ROLE`", m.ID, m.State, m.ID)
		}
		school = cmp.Or(school, m.School)
		if err := checkAssignment(m.ID, role, school); err != nil {
			return err
		}
		m.Role, m.School, m.DecidedBy = role, school, "technician"
		s.log.Info("machine assigned by technician", "id", m.ID, "mac", m.BootMAC(), "role", role, "school", school)
		return nil
	})
}

// Forget removes a machine: at its next boot it is new again.
func (s *Store) Forget(ctx context.Context, id string) error {
	_, err := s.change(ctx, id, func(m *Machine) error {
		for _, mac := range m.MACs {
			delete(s.byMAC, mac)
		}
		delete(s.byID, m.ID)
		s.log.Info("machine forgotten by technician", "id", m.ID, "mac", m.BootMAC())
		return nil
	})
	return err
}

// PendingRetry is how long a pending box waits before it asks again.
const PendingRetry = 10 * time.Second

// Respond is the enrolment answer for m, to a box that booted in bootedRole
// ("" when it booted without one).
func Respond(m Machine, bootedRole string) enrolapi.Response {
	r := enrolapi.Response{ID: m.ID, State: m.State}
	switch m.State {
	case enrolapi.Approved:
		r.Role, r.School = m.Role, m.School
		r.Reboot = bootedRole != m.Role
	case enrolapi.Rejected:
		r.Message = fmt.Sprintf("This box (%s) was rejected: %s. If that is wrong, call your IT technician.", m.ID, cmp.Or(m.Reason, "no reason given"))
	default:
		r.State = enrolapi.Pending
		r.RetryAfter = enrolapi.Duration(PendingRetry)
		r.Message = fmt.Sprintf("This box (%s) waits for approval. Call your IT technician: they approve it with `bootstrapd machines approve %s -role ROLE`.", m.ID, m.ID)
	}
	return r
}
