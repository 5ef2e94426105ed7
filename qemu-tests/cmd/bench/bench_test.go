package main

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/image-builder/image"
)

func TestParseSteps(t *testing.T) {
	// A log line may come between a step's name and its duration (apt-get update during the kernel step).
	out := "[1/8] read source ... 0.0s, onecloud 0.1.0, commit f2ae4d9f, go1.26.8\n" +
		"[2/8] kernel package linux-image-6.1.0-47-amd64=6.1.170-3 ... time=2026-01-01T00:00:00Z level=INFO msg=\"package not in the apt lists\" took=1.5s\n" +
		"12.3s, downloaded, sha256 verified, unpacked\n" +
		"[5/8] build Go busybox and initramfs (24 commands) ... 116.0s\n" +
		"[6/8] check and measure the initramfs ... failed after 1.0s\n" +
		"[7/8] compress the initramfs (gzip -6) ... 1.6s, 9.7 MiB\n"
	got := parseSteps(out)
	want := []Step{
		{"read source", 0},
		{"kernel package linux-image-6.1.0-47-amd64=6.1.170-3", 12.3},
		{"build Go busybox and initramfs (24 commands)", 116},
		{"compress the initramfs (gzip -6)", 1.6},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseSteps:\n got %v\nwant %v", got, want)
	}
	b := Build{Steps: got}
	if s := b.step("build Go busybox"); s != 116 {
		t.Errorf("step(busybox) = %v, want 116", s)
	}
	if s := b.step("no such step"); s != -1 {
		t.Errorf("step(missing) = %v, want -1", s)
	}
}

// fakeClock advances by a second on every reading.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { c.t = c.t.Add(time.Second); return c.t }

func TestSerialClock(t *testing.T) {
	var log bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0)}
	c := newSerialClock(&log, clk.now, initLine, "bare: uinit reached") // start: t=1
	// Each Write reads the clock once: t=2, 3, 4, 5.
	c.Write([]byte("SeaBIOS\r\n[    0.000000] Linux version 6.1\r\n[    4.250000] Run /init"))
	c.Write([]byte(" as init process\r\n2026/01/01 init: running [\"bare: uinit reached\"]\r\n"))
	c.Write([]byte("bare: uinit"))
	c.Write([]byte(" reached\r\nprompt"))
	if err := c.flush(); err != nil { // t=6
		t.Fatal(err)
	}

	at, line, ok := c.seen(initLine)
	if !ok || at != 2*time.Second || line != "[    4.250000] Run /init as init process" {
		t.Errorf("seen(init) = %v %q %v, want 2s and the whole line", at, line, ok)
	}
	if ts, ok := kernelTimestamp(line); !ok || ts != 4.25 {
		t.Errorf("kernelTimestamp(%q) = %v %v, want 4.25", line, ts, ok)
	}
	// The marker counts at the start of a line only: u-root's init quoting it does not.
	if at, _, ok := c.seen("bare: uinit reached"); !ok || at != 4*time.Second {
		t.Errorf("seen(marker) = %v %v, want 4s", at, ok)
	}
	want := strings.Join([]string{
		"   1.000  SeaBIOS",
		"   1.000  [    0.000000] Linux version 6.1",
		"   2.000  [    4.250000] Run /init as init process",
		"   2.000  2026/01/01 init: running [\"bare: uinit reached\"]",
		"   4.000  bare: uinit reached",
		"   5.000  prompt",
		"",
	}, "\n")
	if log.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", log.String(), want)
	}
}

func TestSummarize(t *testing.T) {
	r := &Report{Target: 1.5}
	for i, tot := range []float64{10, 12, 11, 30, 11.5} {
		r.Runs = append(r.Runs,
			Run{Image: "onecloud", N: i + 1, Total: tot * 1.4, Init: 6, KernelClock: 5},
			Run{Image: "bare", N: i + 1, Total: tot, Init: 6, KernelClock: 5})
	}
	r.Runs[3].Init = -1 // one bare boot without the /init line: no phases for bare
	r.summarize([]imageSpec{{Name: "onecloud"}, {Name: "bare"}})
	o, b := r.Summary[0], r.Summary[1]
	if b.Median != 11.5 || b.Min != 10 || b.Max != 30 {
		t.Errorf("bare summary %+v", b)
	}
	if o.Kernel != 5 || o.BeforeKernel != 1 || !near(o.Userspace, 11.5*1.4-6) {
		t.Errorf("onecloud phases %+v", o)
	}
	if b.Kernel != -1 {
		t.Errorf("bare phases %+v, want unknown", b)
	}
	if !near(r.Ratio, 1.4) || !r.MeetsTarget {
		t.Errorf("ratio %v, meets %v", r.Ratio, r.MeetsTarget)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of four = %v", m)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestWriteTable(t *testing.T) {
	same := true
	r := &Report{
		Commit: "04946deb8ebd676909f2cebf522dab74669e9896-dirty", Go: "go1.26.8", Kernel: "6.1.0-47-amd64", QEMU: "7.2.22",
		CPUs: 2, Boots: 2, Target: 1.5, LoadBefore: "3.00 1.00 1.00", LoadAfter: "0.50 1.00 1.00", Logs: "out/bench/logs",
		Builds: []Build{
			{Image: "onecloud", Caches: "cold", Seconds: 131.2, SameAsWarm: &same,
				Steps: []Step{{"kernel package x", 12.1}, {"build Go busybox and initramfs (24 commands)", 112.3}}},
			{Image: "onecloud", Caches: "warm", Seconds: 14.8},
			{Image: "bare", Caches: "warm", Seconds: 19.2},
		},
		Sizes: []Sizes{
			{Image: "onecloud", Commands: 24, Cpio: 34 << 20, CpioGzip: 10 << 20, Vmlinuz: 8 << 20,
				Components: []image.Component{{Name: "Go busybox (bbin/bb)", Files: 1, Size: 10 << 20, Gzip: 4 << 20},
					{Name: "kernel modules (lib/modules)", Files: 112, Size: 22 << 20, Gzip: 6 << 20},
					{Name: "other files", Files: 3, Size: 288, Gzip: 196}}},
			{Image: "bare", Commands: 114, Cpio: 15 << 20, CpioGzip: 6 << 20, Vmlinuz: 8 << 20,
				Components: []image.Component{{Name: "Go busybox (bbin/bb)", Files: 1, Size: 15 << 20, Gzip: 6 << 20}}},
		},
		Runs: []Run{
			{Image: "onecloud", Total: 16, Init: 12, KernelClock: 4},
			{Image: "bare", Total: 10, Init: 9, KernelClock: 4},
			{Image: "onecloud", Total: 18, Init: 12, KernelClock: 4},
			{Image: "bare", Total: 10, Init: 9, KernelClock: 4},
		},
	}
	r.summarize([]imageSpec{{Name: "onecloud", Marker: readyLine}, {Name: "bare", Marker: "bare: uinit reached"}})
	var out bytes.Buffer
	if err := r.writeTable(&out); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	t.Logf("\n%s", table)
	for _, want := range []string{
		"commit 04946deb8ebd-dirty",
		"131.2s", "kernel package 12.1s, Go busybox 112.3s; same bytes as warm",
		"10.0 MiB / 4.0 MiB", "288 B / 196 B", "24 / 114 commands",
		"17.00s", "10.00s", "ratio 1.70x (target at most 1.5x): over target",
		"16.00s / 18.00s", "expect noisy figures",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q", want)
		}
	}
	for i, line := range strings.Split(table, "\n") {
		if strings.TrimRight(line, " ") != line {
			t.Errorf("line %d ends in spaces: %q", i+1, line)
		}
	}
}
