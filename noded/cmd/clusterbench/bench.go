package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	joinkit "github.com/onecloud-edu/onecloud/noded/join"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/cluster"
	"github.com/onecloud-edu/onecloud/noded/server/servertest"
)

// benchCluster runs one cluster of one: the attestation round trips with
// each client count, then the admin's reads and writes.
func benchCluster(ctx context.Context, o options, r *Report, log *slog.Logger) error {
	t, err := newTB()
	if err != nil {
		return err
	}
	defer t.close()
	return guard(func() error {
		log.Info("starting a cluster of one (embedded etcd) and its API")
		e := startEnv(ctx, t, "srv1")
		most := 0
		for _, c := range o.clients {
			most = max(most, c)
		}
		log.Info("starting software TPMs and approving their boxes", "boxes", most)
		boxes := make([]*servertest.Box, most)
		for i := range boxes {
			boxes[i] = e.newBox(ctx, t, i+1, api.RoleVDI)
		}
		for _, c := range o.clients {
			clients := make([]*api.Client, c)
			for i := range clients {
				clients[i] = e.client(t, nil) // attestation needs no certificate
			}
			log.Info("attesting", "clients", c, "attestations", max(o.attestations, c))
			s := roundTrips(ctx, e, boxes[:c], clients, max(o.attestations, c), log)
			r.RoundTrips = append(r.RoundTrips, s)
			log.Info("attested", "clients", c, "p50", ms(percentile(s.Lat, 50)), "failed", s.Errors)
		}

		log.Info("cluster API reads", "requests", o.requests)
		r.Reads = timeRequests(ctx, "GET /v1/nodes", o.requests, log, func(int) error {
			_, err := e.admin.Nodes(ctx)
			return err
		})
		log.Info("cluster API writes", "requests", o.requests)
		r.Writes = timeRequests(ctx, "POST /v1/releases", o.requests, log, func(i int) error {
			sum := sha256.Sum256(fmt.Appendf(nil, "clusterbench release %d", i))
			_, err := e.admin.AddRelease(ctx, api.ReleaseRequest{SHA256: hex.EncodeToString(sum[:]), Name: fmt.Sprintf("bench-%d", i)})
			return err
		})
		return ctx.Err()
	})
}

// roundTrips runs n whole round trips shared among the boxes, each box on
// its own goroutine with its own client: the box enrols (the inbox
// sighting bootstrap records), then attests (EK and AK, challenge,
// credential activation, quote, verification, node certificate).
func roundTrips(ctx context.Context, e *env, boxes []*servertest.Box, clients []*api.Client, n int, log *slog.Logger) Series {
	s := Series{Name: "round trip", Clients: len(boxes)}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
	)
	start := time.Now()
	for i, b := range boxes {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				t0 := time.Now()
				err := e.enrol(ctx, b)
				if err == nil {
					_, err = b.Attest(ctx, clients[i])
				}
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					s.Errors++
					log.Warn("attestation failed", "mac", b.MAC, "err", err)
				} else {
					s.Lat = append(s.Lat, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.Elapsed = time.Since(start)
	return s
}

// timeRequests makes n requests one after another after one that is not
// counted (it opens the TLS connection).
func timeRequests(ctx context.Context, name string, n int, log *slog.Logger, do func(i int) error) Series {
	s := Series{Name: name}
	if err := do(-1); err != nil {
		log.Warn("first request failed", "request", name, "err", err)
	}
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		t0 := time.Now()
		if err := do(i); err != nil {
			s.Errors++
			log.Warn("request failed", "request", name, "err", err)
			continue
		}
		s.Lat = append(s.Lat, time.Since(t0))
	}
	s.Elapsed = time.Since(start)
	return s
}

// benchJoins times o.joins server node joins, each into a fresh cluster of
// one, so that every join meets the same cluster.
func benchJoins(ctx context.Context, o options, r *Report, log *slog.Logger) error {
	r.Joins = Series{Name: "join"}
	var last error
	for i := range o.joins {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d, err := joinOnce(ctx, i, log)
		if err != nil {
			r.Joins.Errors++
			last = err
			log.Warn("join failed", "run", i+1, "err", err)
			continue
		}
		r.Joins.Lat = append(r.Joins.Lat, d)
		log.Info("joined", "run", i+1, "seconds", d.Seconds())
	}
	if len(r.Joins.Lat) == 0 && last != nil {
		return last
	}
	return nil
}

// joinOnce starts a cluster of one, approves a second machine as a server
// node and times what `noded server -join` does on it: attest with its
// swtpm asking for an etcd peer certificate too, write the certificates
// into its state folder, add itself as an etcd learner, start its member
// and be promoted; the clock stops when the first node reports two voters.
func joinOnce(ctx context.Context, run int, log *slog.Logger) (time.Duration, error) {
	t, err := newTB()
	if err != nil {
		return 0, err
	}
	defer t.close()
	var d time.Duration
	err = guard(func() error {
		log.Info("join: starting a cluster of one and a machine approved as a server node", "run", run+1)
		e := startEnv(ctx, t, "srv1")
		b := e.newBox(ctx, t, 1000+run, api.RoleServer)
		state := stateDir(t)
		start := time.Now()
		m, err := join(ctx, e, b, state)
		if err != nil {
			return err
		}
		t.Cleanup(m.Close)
		if err := twoVoters(ctx, e.member); err != nil {
			return err
		}
		d = time.Since(start)
		return nil
	})
	return d, err
}

// join is noded's -join path (noded/join, then cluster.Join) for box b
// with state folder state.
func join(ctx context.Context, e *env, b *servertest.Box, state string) (*cluster.Member, error) {
	kit, err := joinkit.Attest(ctx, joinkit.Request{
		Server: e.url, Root: e.ca.Root, Name: b.ID, Addr: net.IPv4(127, 0, 0, 1),
		Serial: b.Serial, EventLog: b.EventLog(), TPM: b.TPM.Conn, Timeout: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("attest %s to join: %w", b.MAC, err)
	}
	if err := kit.Write(state); err != nil {
		return nil, err
	}
	cfg := cluster.StateConfig(state, b.ID, net.IPv4(127, 0, 0, 1), slog.New(slog.DiscardHandler))
	if cfg.PeerAddr, err = freePort(); err != nil {
		return nil, err
	}
	if cfg.ClientAddr, err = freePort(); err != nil {
		return nil, err
	}
	return cluster.Join(ctx, cfg, kit.Endpoints)
}

// twoVoters waits until m's cluster shows two healthy voting members.
func twoVoters(ctx context.Context, m *cluster.Member) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		st, err := m.Status(ctx)
		voters := 0
		for _, ms := range st.Members {
			if !ms.Learner && ms.Healthy {
				voters++
			}
		}
		if err == nil && voters == 2 && len(st.Members) == 2 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster never showed two voters (%+v, %v): %w", st, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
