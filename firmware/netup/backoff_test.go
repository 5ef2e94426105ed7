package netup

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	low := func(int64) int64 { return 0 }
	high := func(n int64) int64 { return n - 1 }
	b := Backoff{Min: time.Second, Max: 16 * time.Second}
	for _, tc := range []struct {
		attempt   int
		min, maxi time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{5, 8 * time.Second, 16 * time.Second},
		{9, 8 * time.Second, 16 * time.Second}, // capped
		{1000, 8 * time.Second, 16 * time.Second},
	} {
		b.Rand = low
		if got := b.Delay(tc.attempt); got != tc.min {
			t.Errorf("attempt %d, lowest draw: %v, want %v", tc.attempt, got, tc.min)
		}
		b.Rand = high
		if got := b.Delay(tc.attempt); got != tc.maxi {
			t.Errorf("attempt %d, highest draw: %v, want %v", tc.attempt, got, tc.maxi)
		}
	}
}

// A thousand terminals failing at the same moment must not retry in the same
// moment: their waits spread over the whole jitter window.
func TestBackoffSpreadsAThousandTerminals(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := Backoff{Min: time.Second, Max: time.Minute, Rand: r.Int64N}
	const attempt = 4 // window 4s..8s
	buckets := make([]int, 8)
	for range 1000 {
		d := b.Delay(attempt)
		if d < 4*time.Second || d > 8*time.Second {
			t.Fatalf("delay %v outside 4s..8s", d)
		}
		i := int((d - 4*time.Second) * 8 / (4*time.Second + 1))
		buckets[i]++
	}
	for i, n := range buckets {
		// Uniform would be 125 per half-second bucket; lockstep would put
		// all 1000 in one.
		if n < 60 || n > 200 {
			t.Errorf("bucket %d holds %d of 1000 retries; want them spread (%v)", i, n, buckets)
		}
	}
}
