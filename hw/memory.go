package hw

import (
	"strconv"
	"strings"
)

const meminfoPath = "proc/meminfo"

// Memory describes main memory, from /proc/meminfo.
type Memory struct {
	// TotalBytes is MemTotal: the memory the kernel manages, a little less
	// than the installed memory (the firmware and the kernel image keep
	// some). A box with 4 GiB installed shows about 3.8 GiB.
	TotalBytes uint64 `json:"total_bytes"`
}

// readMemory finds the line "MemTotal:   16314728 kB".
func readMemory(s *source) Memory {
	text, ok := s.required(meminfoPath)
	if !ok {
		return Memory{}
	}
	for line := range strings.SplitSeq(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "MemTotal:" {
			continue
		}
		if len(fields) != 3 || fields[2] != "kB" {
			s.fail(meminfoPath, "want \"MemTotal: <number> kB\", got %q", line)
			return Memory{}
		}
		kb, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil || kb > 1<<53 {
			s.fail(meminfoPath, "want \"MemTotal: <number> kB\", got %q", line)
			return Memory{}
		}
		return Memory{TotalBytes: kb * 1024}
	}
	s.fail(meminfoPath, "no \"MemTotal:\" line: the file is empty or cut short")
	return Memory{}
}
