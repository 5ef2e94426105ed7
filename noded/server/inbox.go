package server

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"github.com/onecloud-edu/onecloud/noded/api"
)

// lazySeen is how long a sighting that changes nothing but the time may go
// unwritten: a thousand pending boxes poll every ten seconds.
const lazySeen = time.Minute

// Seen records a sighting of a box in the inbox kept in the cluster store,
// which makes Server a bootstrap.Backend. A machine is found by the id of
// its boot MAC and starts pending; the first of Config.Rules that matches
// approves it, else it waits for an administrator (`occtl approve`, or
// `occtl declare` before it first boots). A machine with an identity
// conflict is never approved by a rule. Unlike the bootstrap file inbox, a
// box seen on two NICs is not merged into one machine.
func (s *Server) Seen(ctx context.Context, sg machines.Sighting, now time.Time) (machines.Machine, error) {
	mac, err := machines.NormalizeMAC(sg.MAC)
	if err != nil {
		return machines.Machine{}, fmt.Errorf("%w: boot MAC: %v", machines.ErrInvalid, err)
	}
	if inv := sg.Inventory; inv != nil {
		sg.Serial = cmp.Or(sg.Serial, inv.DMI.Serial)
		sg.Vendor = cmp.Or(sg.Vendor, inv.DMI.Vendor)
		sg.Product = cmp.Or(sg.Product, inv.DMI.Product)
		sg.UUID = cmp.Or(sg.UUID, inv.DMI.UUID)
	}
	macs := []string{mac}
	for _, raw := range sg.MACs {
		if m, err := machines.NormalizeMAC(raw); err == nil && !slices.Contains(macs, m) && len(macs) < 64 {
			macs = append(macs, m)
		}
	}
	id := machines.IDFor(mac)
	addr := ""
	if sg.Addr.IsValid() {
		addr = sg.Addr.Unmap().String()
	}
	serialLearned := false
	m, err := update(ctx, s.state.machines, id, func(m *api.Machine, exists bool) error {
		before := *m
		if !exists {
			*m = api.Machine{ID: id, State: enrolapi.Pending, FirstSeen: now}
			s.log.Info("new machine waits for approval", "id", id, "mac", mac, "serial", sg.Serial, "addr", addr)
		}
		for _, x := range macs {
			if !slices.Contains(m.MACs, x) {
				m.MACs = append(m.MACs, x)
			}
		}
		serial := text(sg.Serial)
		switch {
		case m.Serial == "" && serial != "":
			m.Serial, serialLearned = serial, true
		case serial != "" && !strings.EqualFold(m.Serial, serial):
			// Keep the serial first seen: the newcomer is the suspect.
			why := fmt.Sprintf("identity conflict: MAC %s was seen with serial %q, now with %q", mac, m.Serial, serial)
			if m.Reason != why {
				s.log.Warn(why, "id", id, "mac", mac, "addr", addr)
			}
			m.Conflict = true
			if m.State != enrolapi.Rejected {
				m.Reason = why
			}
		}
		m.Vendor = cmp.Or(text(sg.Vendor), m.Vendor)
		m.Product = cmp.Or(text(sg.Product), m.Product)
		m.UUID = cmp.Or(strings.ToLower(text(sg.UUID)), m.UUID)
		m.Addr = cmp.Or(addr, m.Addr)
		if sg.Inventory != nil {
			m.Inventory = sg.Inventory
		}
		if m.State == enrolapi.Pending && !m.Conflict {
			for _, r := range s.cfg.Rules {
				if r.Matches(toInbox(*m)) {
					m.State, m.Role, m.School, m.DecidedBy = enrolapi.Approved, api.Role(r.Role), r.School, "rule:"+r.Name
					s.log.Info("machine approved by rule", "id", id, "mac", mac, "rule", r.Name, "role", r.Role, "school", r.School)
					break
				}
			}
		}
		lastSeen := m.LastSeen
		m.LastSeen = now
		if exists && now.Sub(lastSeen) < lazySeen && sameExceptSeen(before, *m) {
			return errSkip
		}
		return nil
	})
	if err != nil {
		return machines.Machine{}, fmt.Errorf("record the sighting of %s in the cluster store: %w", id, err)
	}
	if serialLearned {
		if err := s.indexSerial(ctx, m); err != nil {
			return toInbox(m), err
		}
	}
	return toInbox(m), nil
}

// sameExceptSeen compares what a sighting can change besides LastSeen.
// The inventory is compared by presence only: the firmware posts the same
// one at every enrolment.
func sameExceptSeen(a, b api.Machine) bool {
	return a.State == b.State && slices.Equal(a.MACs, b.MACs) && a.Serial == b.Serial && a.Vendor == b.Vendor &&
		a.Product == b.Product && a.UUID == b.UUID && a.Addr == b.Addr && a.Reason == b.Reason &&
		a.Conflict == b.Conflict && (a.Inventory == nil) == (b.Inventory == nil)
}

// text keeps a string from a box printable and short.
func text(s string) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, "?"))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > 128 {
		s = strings.ToValidUTF8(s[:128], "")
	}
	return s
}

// toInbox is the bootstrap inbox's view of a machine.
func toInbox(m api.Machine) machines.Machine {
	return machines.Machine{
		ID: m.ID, State: m.State, Role: string(m.Role), School: m.School, MACs: slices.Clone(m.MACs),
		Serial: m.Serial, Vendor: m.Vendor, Product: m.Product, UUID: m.UUID, Addr: m.Addr,
		FirstSeen: m.FirstSeen, LastSeen: m.LastSeen, DecidedBy: m.DecidedBy, Reason: m.Reason,
		Conflict: m.Conflict, Inventory: m.Inventory,
	}
}
