// Package units writes sizes for people: the status screens of the
// firmware and of the node console show memory and disks the same way.
package units

import "fmt"

// Bytes writes n in binary units with one decimal: "512 B", "64.0 MiB",
// "3.8 GiB".
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
