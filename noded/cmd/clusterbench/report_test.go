package main

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range xs {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted on purpose
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, -1},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"one p99", ms(7), 99, 7 * time.Millisecond},
		{"median of three, unsorted", ms(30, 10, 20), 50, 20 * time.Millisecond},
		{"median of four is the lower middle", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p100 is the maximum", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 10 is the maximum", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"tiny p is the minimum", ms(5, 3, 9), 0.1, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			if got := percentile(tt.in, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.in, tt.p, got, tt.want)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("percentile reordered its input: %v", tt.in)
			}
		})
	}
}

func TestPerSecond(t *testing.T) {
	tests := []struct {
		name string
		s    Series
		want float64
	}{
		{"none", Series{}, -1},
		{"no time", Series{Lat: []time.Duration{1}}, -1},
		{"four in two seconds", Series{Lat: make([]time.Duration, 4), Elapsed: 2 * time.Second}, 2},
	}
	for _, tt := range tests {
		if got := tt.s.perSecond(); got != tt.want {
			t.Errorf("%s: perSecond = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBusy(t *testing.T) {
	tests := []struct {
		load string
		cpus int
		want bool
	}{
		{"0.50 0.40 0.30", 2, false},
		{"2.00 1.00 1.00", 2, false},
		{"2.01 1.00 1.00", 2, true},
		{"unknown", 2, false},
		{"", 2, false},
	}
	for _, tt := range tests {
		if got := busy(tt.load, tt.cpus); got != tt.want {
			t.Errorf("busy(%q, %d) = %v, want %v", tt.load, tt.cpus, got, tt.want)
		}
	}
}

func TestWriteTable(t *testing.T) {
	ms := time.Millisecond
	r := &Report{
		Started: time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC), Go: "go1.26.8", CPUs: 2,
		RoundTrips: []Series{
			{Clients: 1, Lat: []time.Duration{80 * ms, 100 * ms}, Elapsed: time.Second},
			{Clients: 4, Lat: []time.Duration{200 * ms}, Elapsed: 500 * ms, Errors: 2},
		},
		Joins:      Series{Lat: []time.Duration{300 * ms, 250 * ms, 900 * ms}},
		Reads:      Series{Lat: []time.Duration{5 * ms, 7 * ms}, Elapsed: 12 * ms},
		Writes:     Series{},
		LoadBefore: "3.10 2.00 1.00", LoadAfter: "1.00 1.00 1.00",
	}
	var out bytes.Buffer
	if err := r.writeTable(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"go1.26.8  host: 2 CPUs  full run",
		"1 swtpm client at once",
		"4 swtpm clients at once",
		"2 failed (see stderr)",
		"2.0 attestations/s",
		"300.0 ms", // median of three joins
		"min 250.0 ms, max 900.0 ms",
		"166.7 requests/s",
		"3.10 2.00 1.00 before, 1.00 1.00 1.00 after: more runnable processes than CPUs",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	// The 1-client row: p50 of two is the lower, p99 the higher.
	row := lineWith(text, "1 swtpm client at once")
	if f := strings.Fields(row); len(f) < 11 || f[5] != "2" || f[6] != "80.0" || f[8] != "100.0" {
		t.Errorf("1-client row %q: want 2 samples, p50 80.0 ms, p99 100.0 ms", row)
	}
	// A series with no samples shows dashes, not zeros.
	if row := lineWith(text, "POST /v1/releases"); strings.Count(row, "-") < 3 || strings.Contains(row, "0.0") {
		t.Errorf("empty write row %q: want dashes", row)
	}
	for l := range strings.Lines(text) {
		if strings.HasSuffix(strings.TrimSuffix(l, "\n"), " ") {
			t.Errorf("line ends in spaces: %q", l)
		}
	}
	// Columns line up: every figure column starts where its header does.
	header := lineWith(text, "samples")
	col := strings.Index(header, "p50")
	if row := lineWith(text, "GET /v1/nodes"); len(row) <= col || !strings.HasPrefix(row[col:], "5.0 ms") {
		t.Errorf("read row %q does not put its p50 under the header %q", row, header)
	}
}

func lineWith(text, s string) string {
	for l := range strings.Lines(text) {
		if strings.Contains(l, s) {
			return strings.TrimSuffix(l, "\n")
		}
	}
	return ""
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    options
		wantErr string
	}{
		{"defaults", nil, options{clients: []int{1, 4, 16}, attestations: 96, joins: 3, requests: 500}, ""},
		{"quick", []string{"-quick"}, options{quick: true, clients: []int{1, 4, 16}, attestations: 12, joins: 1, requests: 40}, ""},
		{"quick with a count", []string{"-quick", "-joins", "3", "-clients", "2, 8"}, options{quick: true, clients: []int{2, 8}, attestations: 12, joins: 3, requests: 40}, ""},
		{"bad clients", []string{"-clients", "1,x"}, options{}, "client counts from 1 to 64"},
		{"zero clients", []string{"-clients", "0"}, options{}, "client counts from 1 to 64"},
		{"negative", []string{"-requests", "-5"}, options{}, "-requests -5: give a positive count"},
		{"argument", []string{"now"}, options{}, "takes flags only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.quick != tt.want.quick || !slices.Equal(got.clients, tt.want.clients) || got.attestations != tt.want.attestations ||
				got.joins != tt.want.joins || got.requests != tt.want.requests {
				t.Errorf("parseFlags(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestGuard(t *testing.T) {
	tests := []struct {
		name string
		f    func() error
		want string
	}{
		{"fine", func() error { return nil }, ""},
		{"fatal", func() error { (&tb{}).Fatalf("swtpm %s", "missing"); return nil }, "swtpm missing"},
		{"panic", func() error { panic("boom") }, "bench setup panicked: boom"},
	}
	for _, tt := range tests {
		err := guard(tt.f)
		if got := ""; err != nil {
			got = err.Error()
			if got != tt.want {
				t.Errorf("%s: guard = %q, want %q", tt.name, got, tt.want)
			}
		} else if tt.want != "" {
			t.Errorf("%s: guard = nil, want %q", tt.name, tt.want)
		}
	}
}
