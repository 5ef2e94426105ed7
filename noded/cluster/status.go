package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// memberStatusTimeout bounds the wait for one member's answer: a dead member
// must not make the whole status slow.
const memberStatusTimeout = 2 * time.Second

// Status is the cluster as this member sees it.
type Status struct {
	Leader    string         `json:"leader"`     // leader's name; "" when no member reports one
	RaftIndex uint64         `json:"raft_index"` // highest raft index any member reported
	Members   []MemberStatus `json:"members"`
}

// MemberStatus is one member's entry.
type MemberStatus struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name"` // "" for a member added but not started yet
	PeerURLs   []string `json:"peer_urls"`
	ClientURLs []string `json:"client_urls"`
	Learner    bool     `json:"learner"`
	Leader     bool     `json:"leader"`
	Healthy    bool     `json:"healthy"`
	RaftIndex  uint64   `json:"raft_index"`
	RaftTerm   uint64   `json:"raft_term"`
	DBSize     int64    `json:"db_size"`
	Error      string   `json:"error,omitempty"` // why it is not healthy
}

// Status lists the members and asks each, concurrently, for its own state.
func (m *Member) Status(ctx context.Context) (Status, error) {
	list, err := m.client.MemberList(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("list cluster members (is a majority of server nodes up?): %w", err)
	}
	st := Status{Members: make([]MemberStatus, len(list.Members))}
	var wg sync.WaitGroup
	for i, mem := range list.Members {
		ms := &st.Members[i]
		*ms = MemberStatus{ID: mem.ID, Name: mem.Name, PeerURLs: mem.PeerURLs, ClientURLs: mem.ClientURLs, Learner: mem.IsLearner}
		if len(mem.ClientURLs) == 0 {
			ms.Error = "added but not started"
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, memberStatusTimeout)
			defer cancel()
			resp, err := m.client.Status(cctx, mem.ClientURLs[0])
			if err != nil {
				ms.Error = err.Error()
				return
			}
			ms.RaftIndex, ms.RaftTerm, ms.DBSize = resp.RaftIndex, resp.RaftTerm, resp.DbSize
			ms.Leader = resp.Leader == mem.ID
			ms.Healthy = len(resp.Errors) == 0
			ms.Error = strings.Join(resp.Errors, "; ")
		})
	}
	wg.Wait()
	for _, ms := range st.Members {
		if ms.Leader {
			st.Leader = ms.Name
		}
		st.RaftIndex = max(st.RaftIndex, ms.RaftIndex)
	}
	slices.SortFunc(st.Members, func(a, b MemberStatus) int { return strings.Compare(a.Name, b.Name) })
	return st, nil
}

// Remove takes the member called name (or with that ID in hex) out of the
// cluster. Removing the last voting member is refused: it would leave a
// cluster that can never serve again. A removed member's etcd stops; its
// data folder must be wiped before that node joins again.
func (m *Member) Remove(ctx context.Context, name string) error {
	list, err := m.client.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("list cluster members (is a majority of server nodes up?): %w", err)
	}
	var names []string
	voters := 0
	for _, mem := range list.Members {
		if mem.Name != "" {
			names = append(names, mem.Name)
		} else {
			names = append(names, fmt.Sprintf("%x (not started)", mem.ID))
		}
		if !mem.IsLearner {
			voters++
		}
	}
	for _, mem := range list.Members {
		if mem.Name != name && fmt.Sprintf("%x", mem.ID) != name {
			continue
		}
		if !mem.IsLearner && voters == 1 {
			return fmt.Errorf("refusing to remove %q: it is the only voting member, and the cluster would be lost", name)
		}
		if _, err := m.client.MemberRemove(ctx, mem.ID); err != nil {
			return fmt.Errorf("remove member %q: %w", name, err)
		}
		m.log.Info("member removed from the cluster", "member", name, "id", fmt.Sprintf("%x", mem.ID), "by", m.cfg.Name)
		return nil
	}
	return fmt.Errorf("no cluster member named %q; members are: %s", name, strings.Join(names, ", "))
}
