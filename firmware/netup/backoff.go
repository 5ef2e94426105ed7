package netup

import "time"

// Backoff spaces out DHCP attempts: exponential growth from Min to Max, with
// half of each wait chosen at random ("equal jitter"). At 8 in the morning a
// thousand terminals power on within seconds of each other; without the
// random half they would all retry in the same instant, again and again, and
// the boot server would see the storm as a series of spikes.
type Backoff struct {
	Min, Max time.Duration
	// Rand returns a uniform random number in [0, n). math/rand/v2's Int64N
	// on a box; tests pass a fixed function.
	Rand func(n int64) int64
}

// Delay is the wait after the given failed attempt (1 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Min
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + time.Duration(b.Rand(int64(d-half)+1))
}
