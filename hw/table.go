package hw

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Table writes the inventory for people: a few "key value" lines about the
// machine, one line per disk and per NIC, then any problems. It fits 80
// columns: long strings are cut, and "-" stands for unknown. The format is
// for reading, not parsing; programs use the JSON form.
func (inv Inventory) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(cells ...string) {
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}

	machine := inv.Machine()
	var about []string
	if c := inv.DMI.ChassisName(); c != "" {
		about = append(about, c)
	}
	about = append(about, inv.Class)
	line("Machine", clip(machine, 48)+" ("+strings.Join(about, ", ")+")")
	line("Serial", clip(dash(inv.DMI.Serial), 24)+"  UUID "+dash(inv.DMI.UUID))
	line("Board", clip(dash(join(inv.DMI.BoardVendor, inv.DMI.BoardName)), 70))
	line("BIOS", clip(dash(join(inv.DMI.BIOSVendor, inv.DMI.BIOSVersion)), 70))
	line("CPU", clip(dash(inv.CPU.Model), 70))
	topology := fmt.Sprintf("%s, %s, %s", count(inv.CPU.Sockets, "socket"), count(inv.CPU.Cores, "core"), count(inv.CPU.Threads, "thread"))
	if inv.CPU.Virtualization != "" {
		topology += ", " + inv.CPU.Virtualization
	}
	line("", topology)
	line("Memory", memoryText(inv.Memory.TotalBytes))
	line("TPM", inv.tpmText())
	fmt.Fprintln(tw)

	if len(inv.Disks) == 0 {
		line("DISK", "none")
	} else {
		line("DISK", "SIZE", "KIND", "BUS", "MODEL", "SERIAL")
		for _, d := range inv.Disks {
			line(d.Name, bytesText(d.SizeBytes), d.Kind(), dash(d.Transport), clip(dash(d.Model), 20), clip(dash(d.Serial), 16))
		}
	}
	fmt.Fprintln(tw)

	if len(inv.NICs) == 0 {
		line("NIC", "none")
	} else {
		line("NIC", "MAC", "DRIVER", "PCI", "LINK", "SPEED")
		for _, n := range inv.NICs {
			driver := dash(n.Driver)
			if n.Wireless {
				driver += " (wifi)"
			}
			line(clip(n.Name, 12), dash(n.MAC), clip(driver, 14), dash(n.PCI), n.Carrier, speedText(n.SpeedMbps))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// Problems are printed whole, even when long: cutting them would cut
	// off the file name or the reason.
	if len(inv.Problems) > 0 {
		if _, err := fmt.Fprintf(w, "\n%s, the fields they feed are missing:\n", count(len(inv.Problems), "problem")); err != nil {
			return err
		}
		for _, p := range inv.Problems {
			for i, l := range strings.Split(p, "\n") {
				prefix := "  "
				if i == 0 {
					prefix = "- "
				}
				if _, err := fmt.Fprintln(w, prefix+l); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Summary returns the inventory in one line for the firmware's status
// screen, such as
//
//	Dell Inc. PowerEdge R740, 4 cores (vmx), 7.8 GiB, 2 disks 128 MiB, 2 NICs, TPM 2.0 NTC
func (inv Inventory) Summary() string {
	parts := []string{inv.Machine()}
	cores := count(inv.CPU.Cores, "core")
	if inv.CPU.Virtualization != "" {
		cores += " (" + inv.CPU.Virtualization + ")"
	}
	parts = append(parts, cores, memoryText(inv.Memory.TotalBytes))

	var total uint64
	for _, d := range inv.Disks {
		total += d.SizeBytes
	}
	if len(inv.Disks) == 0 {
		parts = append(parts, "no disk")
	} else {
		parts = append(parts, count(len(inv.Disks), "disk")+" "+bytesText(total))
	}
	if len(inv.NICs) == 0 {
		parts = append(parts, "no NIC")
	} else {
		parts = append(parts, count(len(inv.NICs), "NIC"))
	}
	if inv.TPM.Present {
		parts = append(parts, strings.TrimSpace("TPM "+inv.TPM.Version+" "+inv.TPM.Manufacturer))
	} else {
		parts = append(parts, "no TPM")
	}
	if len(inv.Problems) > 0 {
		parts = append(parts, count(len(inv.Problems), "problem"))
	}
	return strings.Join(parts, ", ")
}

// Machine names the machine by vendor and product ("Dell Inc. PowerEdge
// R740"), or "unknown machine" when DMI says nothing.
func (inv Inventory) Machine() string {
	vendor, product := inv.DMI.Vendor, inv.DMI.Product
	if strings.HasPrefix(product, vendor) {
		vendor = "" // product names that repeat the vendor: "HP ProDesk 400"
	}
	if m := join(vendor, product); m != "" {
		return m
	}
	return "unknown machine"
}

// Kind is what the table calls a disk: "removable" for removable media
// (whose rotational flag means nothing: USB sticks claim to spin), else
// "hdd" for rotational disks and "ssd" for the rest.
func (d Disk) Kind() string {
	switch {
	case d.Removable:
		return "removable"
	case d.Rotational:
		return "hdd"
	}
	return "ssd"
}

func (inv Inventory) tpmText() string {
	t := inv.TPM
	switch {
	case !t.Present:
		return "none"
	case t.Manufacturer == "":
		return t.Version + ", manufacturer unknown"
	case t.ManufacturerName == "":
		return t.Version + " " + t.Manufacturer
	}
	return t.Version + " " + t.Manufacturer + " (" + t.ManufacturerName + ")"
}

// bytesText writes a size in binary units: "64 MiB", "7.8 GiB".
func bytesText(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v < 10 && i > 0 && v != float64(int(v)) {
		return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " " + units[i]
}

// memoryText is bytesText, or "memory unknown" when /proc/meminfo failed.
func memoryText(n uint64) string {
	if n == 0 {
		return "memory unknown"
	}
	return bytesText(n)
}

// speedText writes a link speed: "100 Mb/s", "10 Gb/s", "-" when unknown.
func speedText(mbps int) string {
	switch {
	case mbps <= 0:
		return "-"
	case mbps >= 1000 && mbps%1000 == 0 && mbps != 1000:
		return strconv.Itoa(mbps/1000) + " Gb/s"
	}
	return strconv.Itoa(mbps) + " Mb/s"
}

// count writes "1 disk", "2 disks".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// join joins the non-empty strings with a space.
func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip cuts s to at most n characters, marking the cut with "...".
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}
