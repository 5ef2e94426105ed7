package admission

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitQueued waits until l has n waiters, so a test can order its goroutines.
func waitQueued(t *testing.T, l *Limiter, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats().Queued != n {
		if time.Now().After(deadline) {
			t.Fatalf("queue never reached %d waiters (stats %+v)", n, l.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCapAndImmediateRejection(t *testing.T) {
	tests := []struct {
		name       string
		max, queue int
		maxWait    time.Duration
		holders    int // acquired first, all must succeed
	}{
		{"cap 1 no queue", 1, 0, time.Second, 1},
		{"cap 3 no queue", 3, 0, time.Second, 3},
		{"queue but no wait allowed", 2, 5, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.max, tt.queue, tt.maxWait)
			var releases []func()
			for i := range tt.holders {
				rel, err := l.Acquire(t.Context())
				if err != nil {
					t.Fatalf("holder %d: %v", i, err)
				}
				releases = append(releases, rel)
			}
			start := time.Now()
			if _, err := l.Acquire(t.Context()); !errors.Is(err, ErrBusy) {
				t.Fatalf("over the cap: err = %v, want ErrBusy", err)
			}
			if took := time.Since(start); took > 100*time.Millisecond {
				t.Errorf("rejection took %v, want immediate", took)
			}
			st := l.Stats()
			if st.Active != tt.holders || st.Rejected != 1 || st.Admitted != uint64(tt.holders) {
				t.Errorf("stats = %+v, want %d active, %d admitted, 1 rejected", st, tt.holders, tt.holders)
			}
			for _, rel := range releases {
				rel()
			}
			if st := l.Stats(); st.Active != 0 {
				t.Errorf("after release: %d active, want 0", st.Active)
			}
		})
	}
}

func TestFIFO(t *testing.T) {
	const n = 8
	l := New(1, n, 5*time.Second)
	hold, err := l.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := l.Acquire(context.Background())
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			order <- i
			rel()
		}()
		waitQueued(t, l, i+1) // waiter i is in line before waiter i+1 starts
	}
	hold()
	wg.Wait()
	close(order)
	want := 0
	for got := range order {
		if got != want {
			t.Fatalf("waiter %d admitted when %d was next in line", got, want)
		}
		want++
	}
	if want != n {
		t.Fatalf("%d waiters admitted, want %d", want, n)
	}
	if st := l.Stats(); st.MaxWait <= 0 || st.Admitted != n+1 {
		t.Errorf("stats = %+v, want a positive max wait and %d admitted", st, n+1)
	}
}

func TestWaitTimesOut(t *testing.T) {
	l := New(1, 1, 30*time.Millisecond)
	rel, _ := l.Acquire(t.Context())
	defer rel()
	start := time.Now()
	_, err := l.Acquire(t.Context())
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy after the wait", err)
	}
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Errorf("gave up after %v, before maxWait", took)
	}
	if st := l.Stats(); st.Queued != 0 || st.Rejected != 1 {
		t.Errorf("stats = %+v, want the waiter gone and counted as rejected", st)
	}
}

func TestCancelLeavesQueue(t *testing.T) {
	l := New(1, 2, 10*time.Second)
	rel, _ := l.Acquire(t.Context())
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := l.Acquire(ctx)
		errc <- err
	}()
	waitQueued(t, l, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if st := l.Stats(); st.Queued != 0 || st.Rejected != 0 {
		t.Errorf("stats = %+v, want no waiter and no rejection", st)
	}
	rel()
	if st := l.Stats(); st.Active != 0 {
		t.Errorf("the slot was not freed: %+v", st)
	}
	if _, err := l.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire with an ended context: %v, want context.Canceled", err)
	}
}

func TestReleaseTwiceIsHarmless(t *testing.T) {
	l := New(1, 2, 20*time.Millisecond)
	rel, _ := l.Acquire(t.Context())
	rel()
	rel()
	if st := l.Stats(); st.Active != 0 {
		t.Fatalf("active = %d after a double release, want 0", st.Active)
	}
	a, _ := l.Acquire(t.Context())
	defer a()
	// A double release must not hand out a second slot.
	if _, err := l.Acquire(t.Context()); err == nil || l.Stats().Active != 1 {
		t.Fatalf("a second holder got in after a double release (%v, %+v)", err, l.Stats())
	}
}

func TestNeverOverCap(t *testing.T) {
	const max, workers, rounds = 3, 40, 50
	l := New(max, 10, 50*time.Millisecond)
	var inside, peak atomic.Int32
	var ok, busy atomic.Uint64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				rel, err := l.Acquire(context.Background())
				if err != nil {
					if !errors.Is(err, ErrBusy) {
						t.Errorf("unexpected error %v", err)
					}
					busy.Add(1)
					continue
				}
				n := inside.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(50 * time.Microsecond)
				inside.Add(-1)
				ok.Add(1)
				rel()
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > max {
		t.Errorf("%d holders at once, cap %d", p, max)
	}
	st := l.Stats()
	if st.Active != 0 || st.Queued != 0 {
		t.Errorf("after the storm: %+v, want nothing active or queued", st)
	}
	if st.Admitted != ok.Load() || st.Rejected != busy.Load() || ok.Load()+busy.Load() != workers*rounds {
		t.Errorf("stats %+v disagree with the clients' %d ok and %d busy", st, ok.Load(), busy.Load())
	}
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name     string
		rejects  int           // clients turned away just now
		perSec   int           // service rate established before
		min, max time.Duration // bounds every suggestion must respect
		spread   time.Duration // at least this between the smallest and largest of many
	}{
		// 200 waiting at 10/s: base 20 s, answers in [10 s, 30 s).
		{"storm", 200, 10, 10 * time.Second, 30 * time.Second, 15 * time.Second},
		// Nothing waiting: the floor of one second.
		{"idle", 0, 10, time.Second, 1500 * time.Millisecond, 0},
		// An enormous backlog is capped.
		{"capped", 20000, 10, 100 * time.Second, 5 * time.Minute, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1e9, 0)}
			l := New(4, 0, time.Second)
			l.now = clock.now
			for range 2 * tt.perSec {
				rel, err := l.Acquire(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				clock.advance(time.Second / time.Duration(tt.perSec))
				rel()
			}
			var held []func()
			for range 4 {
				rel, _ := l.Acquire(t.Context())
				held = append(held, rel)
			}
			for range tt.rejects {
				if _, err := l.Acquire(t.Context()); !errors.Is(err, ErrBusy) {
					t.Fatalf("err = %v, want ErrBusy", err)
				}
			}
			lo, hi := maxRetry, time.Duration(0)
			seen := map[time.Duration]bool{}
			for range 1000 {
				d := l.RetryAfter()
				if d < tt.min || d > tt.max {
					t.Fatalf("RetryAfter = %v, want within [%v, %v]", d, tt.min, tt.max)
				}
				lo, hi = min(lo, d), max(hi, d)
				seen[d] = true
			}
			if hi-lo < tt.spread {
				t.Errorf("1000 suggestions span only %v..%v, want at least %v apart", lo, hi, tt.spread)
			}
			if tt.spread > 0 && len(seen) < 900 {
				t.Errorf("only %d distinct suggestions of 1000: clients would come back together", len(seen))
			}
			for _, rel := range held {
				rel()
			}
		})
	}
}

func TestRetryAfterRejectsFade(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	l := New(1, 0, time.Second)
	l.now = clock.now
	rel, _ := l.Acquire(t.Context())
	defer rel()
	for range 1000 {
		l.Acquire(t.Context())
	}
	if d := l.RetryAfter(); d < time.Minute {
		t.Fatalf("right after 1000 rejections RetryAfter = %v, want long", d)
	}
	clock.advance(5 * time.Minute) // 30 half-lives: the storm is forgotten
	if d := l.RetryAfter(); d > 1500*time.Millisecond {
		t.Errorf("long after the storm RetryAfter = %v, want about a second", d)
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	l := New(8, 1024, time.Second)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rel, err := l.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			rel()
		}
	})
}

func BenchmarkContended(b *testing.B) {
	l := New(1, 1<<20, time.Minute)
	ctx := context.Background()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rel, err := l.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			rel()
		}
	})
	b.ReportMetric(float64(l.Stats().MaxWait.Microseconds()), "max-wait-µs")
}
