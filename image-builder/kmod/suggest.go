package kmod

import (
	"sort"
	"strings"
)

// closest returns up to n candidates nearest to name: first those within a
// small edit distance (typos: "virtio_nett"), then those that contain name or
// that name contains (a prefix or a family: "kvm" for "kvm_intel").
func closest(name string, candidates []string, n int) []string {
	type scored struct {
		name  string
		score int
	}
	limit := max(2, len(name)/3)
	var found []scored
	for _, c := range candidates {
		d := editDistance(name, c)
		switch {
		case d <= limit:
			found = append(found, scored{c, d})
		case strings.Contains(c, name) || strings.Contains(name, c) && len(c) >= 3:
			found = append(found, scored{c, limit + 1 + abs(len(c)-len(name))})
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].score != found[j].score {
			return found[i].score < found[j].score
		}
		return found[i].name < found[j].name
	})
	var out []string
	for i := 0; i < len(found) && i < n; i++ {
		out = append(out, found[i].name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
