package loadavg

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		err  error
		want string
	}{
		{"0.52 0.48 0.40 2/312 4242\n", nil, "0.52 0.48 0.40"},
		{"1.00 2.00\n", nil, "unknown"},
		{"", errors.New("no /proc"), "unknown"},
	} {
		if got := parse([]byte(tc.in), tc.err); got != tc.want {
			t.Errorf("parse(%q, %v) = %q, want %q", tc.in, tc.err, got, tc.want)
		}
	}
}
