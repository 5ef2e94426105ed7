package hw

import (
	"slices"
	"strconv"
	"strings"
)

const cpuinfoPath = "proc/cpuinfo"

// CPU describes the processors, from /proc/cpuinfo.
type CPU struct {
	Model   string `json:"model"`   // "model name": "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz"
	Vendor  string `json:"vendor"`  // "vendor_id": "GenuineIntel", "AuthenticAMD"
	Sockets int    `json:"sockets"` // distinct "physical id"s; 1 when the kernel gives none
	Cores   int    `json:"cores"`   // distinct ("physical id", "core id") pairs; Threads when the kernel gives none
	Threads int    `json:"threads"` // logical processors the kernel runs ("processor" entries)
	// Virtualization is "vmx" (Intel VT-x), "svm" (AMD-V) or "" when the
	// CPU offers neither or the firmware turned it off. It decides whether
	// the box can run desktops locally (IDV).
	Virtualization string `json:"virtualization"`
	// Flags are the flags of interestingFlags that the CPU has, sorted.
	Flags []string `json:"flags"`
}

// interestingFlags are the /proc/cpuinfo flags the inventory reports:
// virtualisation (vmx, svm), running as a guest (hypervisor), 64-bit (lm),
// and what desktop images and crypto care about. The list may grow within
// schema 1.
var interestingFlags = []string{
	"aes", "avx", "avx2", "avx512f", "hypervisor", "lm", "nx", "rdrand",
	"sha_ni", "sse4_2", "svm", "vmx",
}

// readCPU parses /proc/cpuinfo: blocks of "key : value" lines, one block per
// logical processor, separated by blank lines.
func readCPU(s *source) CPU {
	c := CPU{Flags: []string{}}
	text, ok := s.required(cpuinfoPath)
	if !ok {
		return c
	}
	type core struct{ socket, id string }
	sockets := map[string]bool{}
	cores := map[core]bool{}
	var haveTopology bool
	var flags []string
	var cur core
	// end closes the block of one processor.
	end := func() {
		if cur.socket != "" {
			sockets[cur.socket] = true
			cores[cur] = true
			haveTopology = true
		}
		cur = core{}
	}
	for i, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			end()
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			s.fail(cpuinfoPath, "line %d: want \"key : value\", got %q", i+1, line)
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "processor":
			c.Threads++
		case "vendor_id":
			c.Vendor = firstNonEmpty(c.Vendor, value)
		case "model name":
			c.Model = firstNonEmpty(c.Model, value)
		case "physical id":
			if !isNumber(value) {
				s.fail(cpuinfoPath, "line %d: want a number after \"physical id\", got %q", i+1, value)
			}
			cur.socket = value
		case "core id":
			if !isNumber(value) {
				s.fail(cpuinfoPath, "line %d: want a number after \"core id\", got %q", i+1, value)
			}
			cur.id = value
		case "flags":
			// All processors of a machine have the same flags; the first
			// block's are the machine's.
			if flags == nil {
				flags = strings.Fields(value)
			}
		}
	}
	end()

	if c.Threads == 0 {
		s.fail(cpuinfoPath, "no \"processor\" lines: the file is empty or cut short")
		return c
	}
	// Without topology lines (some hypervisors, other architectures) every
	// logical processor counts as a core of one socket.
	c.Sockets, c.Cores = 1, c.Threads
	if haveTopology {
		c.Sockets, c.Cores = len(sockets), len(cores)
	}
	for _, f := range interestingFlags {
		if slices.Contains(flags, f) {
			c.Flags = append(c.Flags, f)
		}
	}
	switch {
	case slices.Contains(flags, "vmx"):
		c.Virtualization = "vmx"
	case slices.Contains(flags, "svm"):
		c.Virtualization = "svm"
	}
	return c
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
