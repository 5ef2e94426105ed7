package main

import (
	"math"
	"slices"
)

// percentile is the nearest-rank percentile (p in 0..100) of xs: the smallest value that at least p% of
// the values are at or below. Nearest rank never interpolates, so a p99 is always a latency some request
// really had; with fewer than 100 values the p99 is the maximum. It is 0 for no values.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// median is the middle value, or the mean of the two middle ones; 0 for no values.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// latencies summarises a set of durations in seconds.
type latencies struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarize(xs []float64) latencies {
	if len(xs) == 0 {
		return latencies{}
	}
	return latencies{N: len(xs), P50: percentile(xs, 50), P99: percentile(xs, 99), Max: slices.Max(xs)}
}
