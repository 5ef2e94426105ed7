package image

import (
	"strings"
	"testing"
	"time"
)

func TestProgress(t *testing.T) {
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	var out strings.Builder
	p := newProgress(&out, 3, now)

	done := p.step("kernel package %s", "linux-image-x=1")
	clock = clock.Add(1500 * time.Millisecond)
	done("cached")
	done = p.step("build Go busybox (%d commands)", 24)
	clock = clock.Add(38 * time.Second)
	done("")

	p.fail() // between steps: prints nothing
	p.step("compress")
	clock = clock.Add(time.Second)
	p.fail()

	want := "[1/3] kernel package linux-image-x=1 ... 1.5s, cached\n" +
		"[2/3] build Go busybox (24 commands) ... 38.0s\n" +
		"[3/3] compress ... failed after 1.0s\n"
	if out.String() != want {
		t.Errorf("progress output =\n%s\nwant\n%s", out.String(), want)
	}
	if got := p.elapsed(); got != 40500*time.Millisecond {
		t.Errorf("elapsed = %v, want 40.5s", got)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 8234944: "8,234,944", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
