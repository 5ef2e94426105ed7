// Package admission caps the number of transfers the boot server runs at once
// and queues a bounded number of clients behind them.
//
// When a classroom of terminals powers on together, a thousand of them ask for
// the same 20 MB at the same second. Serving all of them at once makes every
// one slow and many time out; serving a few at full speed and telling the
// rest, in order, to wait finishes sooner for everyone. A Limiter does that:
// at most max holders, up to queue waiters served first come first served
// (so nobody starves), and an immediate ErrBusy beyond that, with a
// suggested, jittered time to come back (RetryAfter) so the rejected clients
// spread out instead of returning together.
package admission

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrBusy is returned when every slot is taken and the queue is full, or when
// a waiter waited its maximum time. Callers answer "busy, come back later"
// (HTTP 503 with Retry-After, a TFTP error) rather than fail the client.
var ErrBusy = errors.New("admission: server busy")

// Bounds of RetryAfter: below a second a client would only add load, and
// beyond five minutes a box looks dead to the technician standing next to it.
const (
	minRetry = time.Second
	maxRetry = 5 * time.Minute
)

// The service rate is measured over the last rateWindow releases that
// happened within rateHorizon; fallbackService is the assumed duration of
// one transfer before there is any history.
const (
	rateWindow      = 64
	rateHorizon     = time.Minute
	fallbackService = 10 * time.Second
)

// rejectHalfLife is how fast the memory of recent rejections fades; it sizes
// the window over which rejected clients are spread.
const rejectHalfLife = 10 * time.Second

// Limiter admits at most max holders at once and queues up to queue more.
// The zero value is not usable; call New.
type Limiter struct {
	max     int
	queue   int
	maxWait time.Duration

	mu      sync.Mutex
	active  int
	waiters list.List // of *waiter, oldest first

	admitted    uint64
	rejected    uint64
	maxWaitSeen time.Duration

	// releases is a ring of the last rateWindow release times, from which
	// the recent service rate is computed.
	releases [rateWindow]time.Time
	nrel     int // total releases recorded (index = nrel % rateWindow)

	// recentRejects decays with rejectHalfLife; it estimates how many
	// rejected clients are about to come back.
	recentRejects float64
	rejectsAt     time.Time

	now func() time.Time // a clock tests can replace
}

type waiter struct {
	ready    chan struct{} // closed when the slot is handed over
	granted  bool          // set under mu together with closing ready
	enqueued time.Time
}

// Stats is a snapshot of a Limiter's state and counters.
type Stats struct {
	Active   int           // holders now
	Queued   int           // waiters now
	Admitted uint64        // slots ever granted
	Rejected uint64        // ErrBusy answers (queue full or waited too long)
	MaxWait  time.Duration // the longest time a waiter waited before being admitted
}

// New returns a Limiter of max concurrent holders, up to queue waiters, each
// waiting at most maxWait. max below 1 is taken as 1, queue below 0 as 0.
func New(max, queue int, maxWait time.Duration) *Limiter {
	if max < 1 {
		max = 1
	}
	if queue < 0 {
		queue = 0
	}
	return &Limiter{max: max, queue: queue, maxWait: maxWait, now: time.Now}
}

// Acquire takes a slot, waiting in line when all are taken. It returns
// ErrBusy at once when the line is full, ErrBusy (wrapped) when the wait
// exceeded maxWait, or ctx's error when ctx ended first. release gives the
// slot back (to the first waiter, if any); calling it more than once is
// harmless.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.active < l.max && l.waiters.Len() == 0 {
		l.active++
		l.admitted++
		l.mu.Unlock()
		return l.releaser(), nil
	}
	if l.waiters.Len() >= l.queue || l.maxWait <= 0 {
		l.reject()
		l.mu.Unlock()
		return nil, ErrBusy
	}
	w := &waiter{ready: make(chan struct{}), enqueued: l.now()}
	elem := l.waiters.PushBack(w)
	l.mu.Unlock()

	timer := time.NewTimer(l.maxWait)
	defer timer.Stop()
	select {
	case <-w.ready:
		return l.releaser(), nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = fmt.Errorf("%w: waited %v for a free slot", ErrBusy, l.maxWait)
	}

	l.mu.Lock()
	if w.granted {
		// The slot arrived while we were giving up: take it if only the
		// wait ran out, hand it on if the caller has gone.
		l.mu.Unlock()
		release = l.releaser()
		if ctx.Err() != nil {
			release()
			return nil, ctx.Err()
		}
		return release, nil
	}
	l.waiters.Remove(elem)
	if errors.Is(err, ErrBusy) {
		l.reject()
	}
	l.mu.Unlock()
	return nil, err
}

// reject counts one rejection. l.mu is held.
func (l *Limiter) reject() {
	l.rejected++
	now := l.now()
	l.recentRejects = l.decayedRejects(now) + 1
	l.rejectsAt = now
}

// decayedRejects is recentRejects as of now. l.mu is held.
func (l *Limiter) decayedRejects(now time.Time) float64 {
	if l.rejectsAt.IsZero() {
		return 0
	}
	dt := now.Sub(l.rejectsAt)
	return l.recentRejects * math.Exp2(-float64(dt)/float64(rejectHalfLife))
}

func (l *Limiter) releaser() func() {
	var once sync.Once
	return func() { once.Do(l.release) }
}

// release hands the slot to the oldest waiter, or frees it.
func (l *Limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.releases[l.nrel%rateWindow] = now
	l.nrel++
	front := l.waiters.Front()
	if front == nil {
		l.active--
		return
	}
	w := l.waiters.Remove(front).(*waiter)
	w.granted = true
	l.admitted++
	if waited := now.Sub(w.enqueued); waited > l.maxWaitSeen {
		l.maxWaitSeen = waited
	}
	close(w.ready) // the slot passes directly: active stays the same
}

// Stats returns the current state and counters.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{
		Active:   l.active,
		Queued:   l.waiters.Len(),
		Admitted: l.admitted,
		Rejected: l.rejected,
		MaxWait:  l.maxWaitSeen,
	}
}

// RetryAfter suggests how long a rejected client should wait before trying
// again. The base is the time the server needs, at its recent service rate,
// to work through the clients queued now and those recently turned away
// (capped so that answers stay spread below the maximum); the answer is drawn uniformly from [base/2, 3·base/2) so that clients
// rejected in the same second come back spread over the whole window rather
// than as a second storm. It is clamped to [1s, 5m].
func (l *Limiter) RetryAfter() time.Duration {
	l.mu.Lock()
	now := l.now()
	backlog := float64(l.waiters.Len()) + l.decayedRejects(now)
	rate := l.serviceRate(now)
	l.mu.Unlock()

	// The base is capped at two thirds of maxRetry so that even at the cap
	// the answers stay spread over [base/2, maxRetry) instead of all being
	// clamped to the same maximum.
	base := min(backlog/rate, (maxRetry * 2 / 3).Seconds())
	baseD := max(time.Duration(base*float64(time.Second)), minRetry)
	d := baseD/2 + time.Duration(rand.Int64N(int64(baseD)))
	return min(max(d, minRetry), maxRetry)
}

// serviceRate is the number of releases per second over the last minute,
// measured up to now (so a server whose transfers stopped finishing counts as
// slow). With too little history it assumes a transfer takes fallbackService,
// about what a 20 MB image takes when a gigabit link is shared by a hundred.
// l.mu is held.
func (l *Limiter) serviceRate(now time.Time) float64 {
	fallback := float64(l.max) / fallbackService.Seconds()
	n := 0
	var oldest time.Time
	for i := 1; i <= min(l.nrel, rateWindow); i++ {
		t := l.releases[(l.nrel-i)%rateWindow]
		if now.Sub(t) > rateHorizon {
			break
		}
		n, oldest = i, t
	}
	span := now.Sub(oldest)
	if n < 2 || span <= 0 {
		return fallback
	}
	return float64(n-1) / span.Seconds()
}
