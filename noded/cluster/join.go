package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Join makes this node a member of the cluster reachable at endpoints
// (client URLs of existing members):
//
//  1. through the client API it adds this node's peer URL as a learner
//     (a learner receives the log but does not vote, so a slow newcomer
//     cannot cost the cluster its majority);
//  2. it starts etcd with initial-cluster-state=existing and the member list
//     the cluster returned;
//  3. it asks for promotion to voter, retrying while etcd answers that the
//     learner has not caught up with the leader yet.
//
// Join is safe to repeat: a node whose data folder already holds a member
// restarts it and only finishes the promotion; a node that was added but
// crashed before starting reuses its entry.
func Join(ctx context.Context, cfg Config, endpoints []string) (*Member, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("join: give the client URL of at least one existing member (https://ADDRESS:%d)", DefaultClientPort)
	}
	ec, err := cfg.embedConfig()
	if err != nil {
		return nil, err
	}
	log := cfg.logger()
	if initialised(cfg.DataDir) {
		log.Info("rejoining with the membership recorded in the data folder", "member", cfg.Name, "data", cfg.DataDir)
		m, err := start(ctx, cfg, ec)
		if err != nil {
			return nil, err
		}
		if !m.etcd.Server.IsLearner() {
			return m, nil
		}
		c, err := Dial(endpoints, cfg.TLS, log)
		if err == nil {
			err = m.promote(ctx, c)
			c.Close()
		}
		if err != nil {
			m.Close()
			return nil, err
		}
		return m, nil
	}

	// A learner refuses most client requests, promotion included, so the
	// whole join talks to the existing members.
	c, err := Dial(endpoints, cfg.TLS, log)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	list, err := c.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("join: list the members at %v (are they up, and is this node's etcd certificate from the same cluster CA?): %w", endpoints, err)
	}
	members := list.Members
	self := findPeer(members, cfg.PeerURL())
	switch {
	case self != nil && self.Name != "":
		return nil, fmt.Errorf("join: a started member %q already uses peer URL %s but this node's data folder %s is empty: remove that member first (it is a previous life of this node, or an address clash)", self.Name, cfg.PeerURL(), cfg.DataDir)
	case self != nil:
		log.Info("reusing this node's learner entry from an interrupted join", "member", cfg.Name, "id", fmt.Sprintf("%x", self.ID))
	default:
		for _, m := range members {
			if m.Name == cfg.Name {
				return nil, fmt.Errorf("join: the cluster already has a member named %q (peer %v): remove it or choose another node name", cfg.Name, m.PeerURLs)
			}
		}
		resp, err := addLearner(ctx, c, cfg.PeerURL(), log)
		if err != nil {
			if isEtcdErr(err, rpctypes.ErrTooManyLearners) {
				return nil, fmt.Errorf("join: another server node is joining right now (etcd allows one learner at a time): retry when it has been promoted: %w", err)
			}
			return nil, fmt.Errorf("join: add %s as a learner: %w", cfg.PeerURL(), err)
		}
		members = resp.Members
		self = resp.Member
		log.Info("added as a learner", "member", cfg.Name, "id", fmt.Sprintf("%x", self.ID), "peer", cfg.PeerURL())
	}

	initial, err := initialCluster(members, self.ID, cfg.Name)
	if err != nil {
		return nil, err
	}
	ec.ClusterState = embed.ClusterStateFlagExisting
	ec.InitialCluster = initial
	m, err := start(ctx, cfg, ec)
	if err != nil {
		return nil, fmt.Errorf("join: %w (the cluster keeps this node as an unstarted learner: run the join again, or remove it)", err)
	}
	if err := m.promote(ctx, c); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// addLearner adds peerURL as a learner. etcd refuses membership changes
// ("unhealthy cluster") until the receiving member has been connected to a
// majority for five seconds, which is the case right after the previous
// join; that refusal is waited out.
func addLearner(ctx context.Context, c *clientv3.Client, peerURL string, log *slog.Logger) (*clientv3.MemberAddResponse, error) {
	for {
		resp, err := c.MemberAddAsLearner(ctx, []string{peerURL})
		if !isEtcdErr(err, rpctypes.ErrUnhealthy) {
			return resp, err
		}
		log.Info("cluster not ready for a membership change yet; waiting", "peer", peerURL)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last refusal: %w)", ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
}

func findPeer(members []*etcdserverpb.Member, peerURL string) *etcdserverpb.Member {
	for _, m := range members {
		if slices.Contains(m.PeerURLs, peerURL) {
			return m
		}
	}
	return nil
}

// initialCluster spells the member list as etcd's initial-cluster flag.
// The joiner's entry has no name yet (it has not started), so it gets ours.
func initialCluster(members []*etcdserverpb.Member, self uint64, name string) (string, error) {
	var parts []string
	for _, m := range members {
		n := m.Name
		if m.ID == self {
			n = name
		} else if n == "" {
			return "", fmt.Errorf("join: member %x (peer %v) was added but never started: finish its join or remove it before adding another node", m.ID, m.PeerURLs)
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ","), nil
}

// promote turns this member from learner into voter once etcd agrees it has
// caught up, asking through c (a client of the voting members); it returns
// at once if it already votes.
func (m *Member) promote(ctx context.Context, c *clientv3.Client) error {
	wait := 50 * time.Millisecond
	for {
		if !m.etcd.Server.IsLearner() {
			return nil
		}
		_, err := c.MemberPromote(ctx, m.ID())
		switch {
		case err == nil:
			m.log.Info("promoted from learner to voting member", "member", m.cfg.Name)
			// Wait for the promotion to reach this member's own log, so
			// that it serves clients when Join returns.
			for m.etcd.Server.IsLearner() {
				select {
				case <-ctx.Done():
					return fmt.Errorf("promote %s: promoted, but this member has not applied it yet: %w", m.cfg.Name, ctx.Err())
				case <-time.After(20 * time.Millisecond):
				}
			}
			return nil
		case isEtcdErr(err, rpctypes.ErrMemberNotLearner):
			return nil
		case isEtcdErr(err, rpctypes.ErrMemberLearnerNotReady):
			m.log.Debug("learner not caught up yet; retrying promotion", "member", m.cfg.Name, "wait", wait)
		default:
			return fmt.Errorf("promote %s to voting member: %w", m.cfg.Name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promote %s: the learner did not catch up with the leader: %w", m.cfg.Name, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
