package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

// perfdhcpOut is perfdhcp 2.2.0's report of a run against dnsmasq at an offered 1,000/s.
const perfdhcpOut = `Running: perfdhcp -4 -l cpeer0 -r 1000 -R 1000 -p 5
Scenario: basic.
Multi-thread mode enabled.
***Rate statistics***
Rate: 213.044 4-way exchanges/second, expected rate: 1000

***Malformed Packets***
Malformed packets: 0
***Statistics for: DISCOVER-OFFER***
sent packets: 4999
received packets: 2674
drops: 2325
drops ratio: 46.5079 %
orphans: 0
rejected leases: 0
non unique addresses: 0

min delay: 0.114 ms
avg delay: 59.061 ms
collected packets: 6

***Statistics for: REQUEST-ACK***
sent packets: 2674
received packets: 1066
drops: 1608
drops ratio: 60.120 %
orphans: 0
rejected leases: 3
non unique addresses: 0

min delay: 1.114 ms
collected packets: 131
`

func TestParsePerfdhcp(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    perfResult
		wantErr bool
	}{
		{"overloaded dnsmasq", perfdhcpOut,
			perfResult{Rate: 213.044, Offered: 1000, DOSent: 4999, DORecv: 2674, RASent: 2674, RARecv: 1066, Rejected: 3}, false},
		{"no server answered: no REQUEST-ACK section",
			"***Rate statistics***\nRate: 0 4-way exchanges/second, expected rate: 100\n" +
				"***Statistics for: DISCOVER-OFFER***\nsent packets: 199\nreceived packets: 0\ndrops: 199\n",
			perfResult{Rate: 0, Offered: 100, DOSent: 199}, false},
		{"perfdhcp failed to start", "Error running perfdhcp: failed to open socket on cboot0\n", perfResult{}, true},
		{"rate line without figures", "Rate: oops\n***Statistics for: DISCOVER-OFFER***\nsent packets: 1\n", perfResult{}, true},
		{"no DISCOVER-OFFER section", "Rate: 10 4-way exchanges/second, expected rate: 10\n", perfResult{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePerfdhcp(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDropPercent(t *testing.T) {
	tests := []struct {
		r    perfResult
		want float64
	}{
		{perfResult{DOSent: 4999, RARecv: 1066}, 100 * float64(4999-1066) / 4999},
		{perfResult{DOSent: 100, RARecv: 100}, 0},
		{perfResult{DOSent: 100, RARecv: 120}, 0}, // duplicates never make it negative
		{perfResult{}, 0},
	}
	for _, tt := range tests {
		if got := tt.r.DropPercent(); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%+v: DropPercent = %v, want %v", tt.r, got, tt.want)
		}
	}
}

func TestPerfdhcpArgs(t *testing.T) {
	got := strings.Join(perfdhcpArgs("cboot0", 4000, 1000, 10*time.Second), " ")
	if want := "-4 -l cboot0 -r 4000 -R 1000 -p 10"; got != want {
		t.Errorf("perfdhcpArgs = %q, want %q", got, want)
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100 .. 1, unsorted on purpose
	}
	tests := []struct {
		name string
		xs   []float64
		p    float64
		want float64
	}{
		{"empty", nil, 99, 0},
		{"one value", []float64{3}, 99, 3},
		{"p99 of 1..100 is 99", hundred, 99, 99},
		{"p50 of 1..100 is 50", hundred, 50, 50},
		{"p100 is the max", hundred, 100, 100},
		{"p0 is the min", hundred, 0, 1},
		{"p99 of 10 values is the max", []float64{5, 1, 9, 2, 8, 3, 7, 4, 6, 10}, 99, 10},
		{"p90 of 10 values", []float64{5, 1, 9, 2, 8, 3, 7, 4, 6, 10}, 90, 9},
		{"p99 of 1000 values is the 990th", func() []float64 {
			xs := make([]float64, 1000)
			for i := range xs {
				xs[i] = float64(i + 1)
			}
			return xs
		}(), 99, 990},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.xs, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
	if hundred[0] != 100 {
		t.Error("percentile sorted its argument in place")
	}
}

func TestMedianAndSummarize(t *testing.T) {
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of 4 values = %v, want 2.5", got)
	}
	if got := median([]float64{0.3, 0.1, 0.2}); got != 0.2 {
		t.Errorf("median of 3 values = %v, want 0.2", got)
	}
	if got := median(nil); got != 0 {
		t.Errorf("median of none = %v, want 0", got)
	}
	s := summarize([]float64{2, 1, 4, 3})
	if want := (latencies{N: 4, P50: 2, P99: 4, Max: 4}); s != want {
		t.Errorf("summarize = %+v, want %+v", s, want)
	}
}

func TestTableWrite(t *testing.T) {
	noFail, failed := true, false
	tab := &table{
		heading: []string{"onecloud boot bench  (test)"},
		ours:    "bootstrapd",
		sections: []section{
			{title: "DHCP, against dnsmasq", how: "DHCP: how it was measured.", rows: []row{
				{label: "offered 1,000/s", ours: "999/s (0.0%)", peer: "213/s (57.4%)", ratio: 999.0 / 213},
				{label: "best", ours: "2,384/s", peer: "295/s", ratio: 2384.0 / 295, target: &target{atLeast: true, x: 1.5}},
			}},
			{title: "Storm, against dnsmasq + nginx", how: "Storm: how.", rows: []row{
				{label: "whole storm", ours: "30.0s", peer: "20.0s", ratio: 1.5, target: &target{x: 1.2}, extraOK: &noFail, extraNote: "no failed boot"},
				{label: "fast but failing", ours: "1.00s", peer: "2.00s", ratio: 0.5, target: &target{x: 1.2}, extraOK: &failed},
				{label: "no peer figure", ours: "1.00s", peer: "-", target: &target{x: 1.2}},
			}},
		},
		footer: []string{"footer line"},
	}
	var buf bytes.Buffer
	if err := tab.write(&buf); err != nil {
		t.Fatal(err)
	}
	want := `onecloud boot bench  (test)

                                    bootstrapd    peer           ratio  target                        result
DHCP, against dnsmasq [1]
  offered 1,000/s                   999/s (0.0%)  213/s (57.4%)  4.69x
  best                              2,384/s       295/s          8.08x  at least 1.5x                 pass
Storm, against dnsmasq + nginx [2]
  whole storm                       30.0s         20.0s          1.50x  at most 1.2x, no failed boot  FAIL
  fast but failing                  1.00s         2.00s          0.50x  at most 1.2x                  FAIL
  no peer figure                    1.00s         -              -      at most 1.2x                  FAIL

[1] DHCP: how it was measured.
[2] Storm: how.
footer line
`
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestTarget(t *testing.T) {
	tests := []struct {
		t    target
		r    float64
		want bool
	}{
		{target{atLeast: true, x: 1.5}, 1.5, true},
		{target{atLeast: true, x: 1.5}, 1.49, false},
		{target{x: 1.2}, 1.2, true},
		{target{x: 1.2}, 1.21, false},
	}
	for _, tt := range tests {
		if got := tt.t.met(tt.r); got != tt.want {
			t.Errorf("%v met(%v) = %v, want %v", tt.t, tt.r, got, tt.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4000: "-4,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	for s, want := range map[float64]string{-1: "-", 0.054: "0.05s", 9.999: "10.00s", 12.34: "12.3s"} {
		if got := secs(s); got != want {
			t.Errorf("secs(%v) = %q, want %q", s, got, want)
		}
	}
	if got := failures(0, 10); got != "no failures" {
		t.Errorf("failures(0) = %q", got)
	}
	if got := failures(3, 10); got != "3 of 10 FAILED" {
		t.Errorf("failures(3) = %q", got)
	}
	if got := wrap("aa bb cc dd", 7, "  "); got != "aa bb\n  cc dd" {
		t.Errorf("wrap = %q", got)
	}
	for out, want := range map[string]string{
		"Dnsmasq version 2.90  Copyright (c) 2000-2024 Simon Kelley": "2.90",
		"nginx version: nginx/1.22.1":                                "1.22.1",
		"2.2.0\n":                                                    "2.2.0",
		"command not found":                                          "(unknown version)",
	} {
		if got := parseVersion(out); got != want {
			t.Errorf("parseVersion(%q) = %q, want %q", out, got, want)
		}
	}
}
