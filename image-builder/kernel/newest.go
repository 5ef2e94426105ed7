package kernel

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Candidate is a kernel package the apt lists offer, as `kernel-pin` reports
// it before the operator moves the pin.
type Candidate struct {
	Pin
	// Suites that carry this version ("bookworm/main",
	// "bookworm-security/main"). A version only in the security suite is
	// replaced there by the next security upload sooner than a point
	// release replaces one in main.
	Suites []string
}

// Candidates asks apt for the packages of the same kernel series as current
// (for linux-image-6.1.0-47-amd64: every linux-image-6.1.0-N-amd64), newest
// ABI first, each with the version and SHA-256 that the signed archive index
// gives and the suites that carry it. Callers that pin one should verify the
// digest against a download (Cache.FetchDeb does).
func Candidates(ctx context.Context, current Pin) ([]Candidate, error) {
	series, err := series(current)
	if err != nil {
		return nil, err
	}
	pattern := "^linux-image-" + regexp.QuoteMeta(series) + "-[0-9]+-amd64$"
	out, err := output(ctx, "", "apt-cache", "search", "--names-only", pattern)
	if err != nil {
		return nil, err
	}
	names, err := byABI(out, series)
	if err != nil {
		return nil, err
	}
	var cands []Candidate
	for _, name := range names {
		show, err := output(ctx, "", "apt-cache", "show", "--no-all-versions", name)
		if err != nil {
			return nil, err
		}
		version, sum, err := parseShow(show)
		if err != nil {
			return nil, fmt.Errorf("apt-cache show %s: %w", name, err)
		}
		madison, err := output(ctx, "", "apt-cache", "madison", name)
		if err != nil {
			return nil, err
		}
		cands = append(cands, Candidate{
			Pin:    Pin{Package: name, Version: version, SHA256: sum},
			Suites: parseMadison(madison, version),
		})
	}
	return cands, nil
}

// InMain reports whether a suite other than a security suite carries the
// candidate: such a version stays on the mirror until the next point
// release, while the security suite keeps only the latest upload.
func (c Candidate) InMain() bool {
	for _, s := range c.Suites {
		if !strings.Contains(s, "-security") {
			return true
		}
	}
	return false
}

// series is "6.1.0" for linux-image-6.1.0-47-amd64: the part of the release
// that stays fixed while Debian bumps the ABI number N for security updates.
func series(p Pin) (string, error) {
	rel := p.Release()
	i := strings.Index(rel, "-")
	if i < 0 {
		return "", fmt.Errorf("kernel pin %q has no release of the form X.Y.Z-N-amd64", p.Package)
	}
	return rel[:i], nil
}

// byABI lists the packages of the series in the output of `apt-cache
// search` ("linux-image-6.1.0-47-amd64 - Linux 6.1 for ..."), highest ABI
// number first.
func byABI(searchOutput []byte, series string) ([]string, error) {
	prefix := "linux-image-" + series + "-"
	abi := map[string]int{}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(searchOutput))
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), " ")
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || !strings.HasSuffix(rest, "-amd64") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(rest, "-amd64"))
		if err != nil {
			continue
		}
		abi[name] = n
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("the apt lists have no linux-image-%s-N-amd64 package: check /etc/apt/sources.list "+
			"names a Debian release with that kernel series and run apt-get update", series)
	}
	sort.Slice(names, func(i, j int) bool { return abi[names[i]] > abi[names[j]] })
	return names, nil
}

// parseShow reads Version and SHA256 from one `apt-cache show` stanza.
func parseShow(show []byte) (version, sum string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(show))
	for sc.Scan() {
		line := sc.Text()
		if line == "" && version != "" {
			break // only the first stanza
		}
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			version = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "SHA256: "); ok {
			sum = strings.TrimSpace(v)
		}
	}
	if version == "" || sum == "" {
		return "", "", fmt.Errorf("no Version and SHA256 fields in its output")
	}
	return version, sum, nil
}

// parseMadison lists the suites of `apt-cache madison` lines that carry
// version ("pkg | 6.1.170-3 | http://deb.debian.org/debian bookworm/main amd64 Packages").
func parseMadison(madison []byte, version string) []string {
	var suites []string
	sc := bufio.NewScanner(bytes.NewReader(madison))
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "|")
		if len(parts) != 3 || strings.TrimSpace(parts[1]) != version {
			continue
		}
		fields := strings.Fields(parts[2])
		if len(fields) >= 2 {
			suites = append(suites, fields[1])
		}
	}
	return suites
}
