package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

// perfResult is what one perfdhcp run reports: its own rate line and the two exchange statistics.
type perfResult struct {
	Rate     float64 `json:"exchanges_per_s"` // completed DORA exchanges per second of the test period
	Offered  float64 `json:"offered_per_s"`   // perfdhcp's "expected rate"
	DOSent   int64   `json:"discover_sent"`
	DORecv   int64   `json:"offer_received"`
	RASent   int64   `json:"request_sent"`
	RARecv   int64   `json:"ack_received"`
	Rejected int64   `json:"rejected_leases"`
}

// DropPercent is the share of the DORA exchanges perfdhcp started (DISCOVERs sent) that never completed
// (no ACK): a lost OFFER and a lost ACK both count, once.
func (r perfResult) DropPercent() float64 {
	if r.DOSent == 0 {
		return 0
	}
	done := min(r.RARecv, r.DOSent)
	return 100 * float64(r.DOSent-done) / float64(r.DOSent)
}

// parsePerfdhcp reads perfdhcp 2.2's final report:
//
//	***Rate statistics***
//	Rate: 986.153 4-way exchanges/second, expected rate: 1000
//	***Statistics for: DISCOVER-OFFER***
//	sent packets: 4999
//	received packets: 4958
//	...
//	***Statistics for: REQUEST-ACK***
//	sent packets: 4958
//	received packets: 4932
//	rejected leases: 0
//
// The periodic reports some versions print while running are overwritten by the final one, which comes
// last. A report without the rate line or the DISCOVER-OFFER section is an error: perfdhcp did not run.
func parsePerfdhcp(out string) (perfResult, error) {
	var r perfResult
	var haveRate, haveDO bool
	section := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "***Statistics for:"); ok {
			section = strings.TrimSpace(strings.TrimSuffix(name, "***"))
			continue
		}
		if strings.HasPrefix(line, "***") {
			section = ""
		}
		if rest, ok := strings.CutPrefix(line, "Rate:"); ok {
			// " 986.153 4-way exchanges/second, expected rate: 1000"
			f := strings.Fields(rest)
			if len(f) < 1 {
				return r, fmt.Errorf("perfdhcp rate line %q: no number", line)
			}
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return r, fmt.Errorf("perfdhcp rate line %q: %w", line, err)
			}
			r.Rate, haveRate = v, true
			if _, exp, ok := strings.Cut(rest, "expected rate:"); ok {
				if v, err := strconv.ParseFloat(strings.TrimSpace(exp), 64); err == nil {
					r.Offered = v
				}
			}
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok || section == "" {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			continue // "drops ratio: 0.8 %", delays in ms: not needed
		}
		switch section + "/" + key {
		case "DISCOVER-OFFER/sent packets":
			r.DOSent, haveDO = n, true
		case "DISCOVER-OFFER/received packets":
			r.DORecv = n
		case "REQUEST-ACK/sent packets":
			r.RASent = n
		case "REQUEST-ACK/received packets":
			r.RARecv = n
		case "REQUEST-ACK/rejected leases":
			r.Rejected = n
		}
	}
	if !haveRate || !haveDO {
		return r, errors.New("perfdhcp printed no final report (no rate line or no DISCOVER-OFFER statistics)")
	}
	return r, nil
}

// perfdhcpArgs is the command line of one rate step: DORA exchanges at rate per second from clients
// different MACs, for period, through iface (whose broadcast reaches the server under test).
func perfdhcpArgs(iface string, rate, clients int, period time.Duration) []string {
	return []string{"-4", "-l", iface, "-r", strconv.Itoa(rate), "-R", strconv.Itoa(clients),
		"-p", strconv.Itoa(int(period.Round(time.Second) / time.Second))}
}

// runPerfdhcp runs perfdhcp in the client namespace and parses its report. perfdhcp exits with status 3
// when packets were dropped, which under overload is the point of the test, not an error.
func runPerfdhcp(ctx context.Context, cli *harness.Lab, args []string, period time.Duration) (perfResult, string, error) {
	ctx, cancel := context.WithTimeout(ctx, period+30*time.Second)
	defer cancel()
	cmd := cli.Command(ctx, "perfdhcp", args...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 3) {
		return perfResult{}, string(out), fmt.Errorf("perfdhcp %s: %w: %s", strings.Join(args, " "), err, lastLines(string(out), 5))
	}
	r, perr := parsePerfdhcp(string(out))
	if perr != nil {
		return r, string(out), fmt.Errorf("perfdhcp %s: %w: %s", strings.Join(args, " "), perr, lastLines(string(out), 5))
	}
	return r, string(out), nil
}

// lastLines is the last n lines of s, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
