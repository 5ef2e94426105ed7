// Package loadavg reads the machine's load average, which every bench
// prints beside its figures: a figure measured on a busy machine is not the
// same figure.
package loadavg

import (
	"os"
	"strings"
)

// Read returns /proc/loadavg's 1, 5 and 15 minute load averages ("0.52 0.48
// 0.40"), or "unknown".
func Read() string { return parse(os.ReadFile("/proc/loadavg")) }

func parse(b []byte, err error) string {
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
