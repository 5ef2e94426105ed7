package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is every figure of one bench run: the table is made from it, and -json writes it.
type Report struct {
	Started time.Time `json:"started"`
	Commit  string    `json:"commit"`
	Go      string    `json:"go"`
	Kernel  string    `json:"kernel"`
	QEMU    string    `json:"qemu"`
	CPUs    int       `json:"host_cpus"`
	Boots   int       `json:"boots_per_image"`

	Builds  []Build       `json:"builds"` // empty with -skip-build
	Sizes   []Sizes       `json:"sizes"`
	Runs    []Run         `json:"boots"` // in the order they ran
	Summary []BootSummary `json:"boot_summary"`

	// Ratio is the onecloud image's median boot over the bare image's; Target the bound on it.
	Ratio       float64 `json:"ratio"`
	Target      float64 `json:"target"`
	MeetsTarget bool    `json:"meets_target"`

	LoadBefore string `json:"loadavg_before_boots"` // /proc/loadavg's 1, 5 and 15 minute averages
	LoadAfter  string `json:"loadavg_after_boots"`
	Logs       string `json:"logs"`
}

// BootSummary is one image's boots in a few figures, in seconds. The phases are medians of each phase
// on its own, so they need not add up to the median total; they are -1 when the kernel's /init line
// was missing from a boot.
type BootSummary struct {
	Image        string  `json:"image"`
	Marker       string  `json:"marker"`
	Min          float64 `json:"min"`
	Median       float64 `json:"median"`
	Max          float64 `json:"max"`
	BeforeKernel float64 `json:"before_kernel_median"`
	Kernel       float64 `json:"kernel_to_init_median"`
	Userspace    float64 `json:"init_to_marker_median"`
}

// summarize computes each image's summary and the ratio; imgs[0] is the onecloud image, imgs[1] the bare.
func (r *Report) summarize(imgs []imageSpec) {
	for _, img := range imgs {
		s := BootSummary{Image: img.Name, Marker: img.Marker, BeforeKernel: -1, Kernel: -1, Userspace: -1}
		var totals, before, kernel, user []float64
		phasesOK := true
		for _, run := range r.Runs {
			if run.Image != img.Name {
				continue
			}
			totals = append(totals, run.Total)
			b, k, u, ok := run.phases()
			phasesOK = phasesOK && ok
			before, kernel, user = append(before, b), append(kernel, k), append(user, u)
		}
		if len(totals) > 0 {
			s.Min, s.Median, s.Max = slices.Min(totals), median(totals), slices.Max(totals)
			if phasesOK {
				s.BeforeKernel, s.Kernel, s.Userspace = median(before), median(kernel), median(user)
			}
		}
		r.Summary = append(r.Summary, s)
	}
	if len(r.Summary) == 2 && r.Summary[1].Median > 0 {
		r.Ratio = r.Summary[0].Median / r.Summary[1].Median
		r.MeetsTarget = r.Ratio <= r.Target
	}
}

// median is the middle value, or the mean of the two middle ones.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// writeTable prints the report as one aligned table: a column per image and a note column.
func (r *Report) writeTable(w io.Writer) error {
	ours, bare := r.Sizes[0], r.Sizes[1]
	so, sb := r.Summary[0], r.Summary[1]
	fmt.Fprintf(w, "\nonecloud bench  %s  commit %s  %s  kernel %s\n", r.Started.Format("2006-01-02 15:04 UTC"), shortCommit(r.Commit), r.Go, r.Kernel)
	fmt.Fprintf(w, "QEMU %s, -accel tcg, %d MiB, %d vCPU, one e1000 NIC on a lab bridge with dnsmasq; host: %d CPUs\n\n",
		r.QEMU, memoryMB, vCPUs, r.CPUs)

	// Every row has all four cells, so that the section rows do not break the columns; the padding this
	// leaves at the ends of lines is trimmed after.
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	row("", "onecloud", "bare", "")

	row("Image build", "", "", "")
	cold, warmOurs, warmBare := r.build("onecloud", "cold"), r.build("onecloud", "warm"), r.build("bare", "warm")
	switch {
	case len(r.Builds) == 0:
		row("  cold: empty Go build and kernel caches", "-", "-", "not run (-skip-build)")
	case cold == nil:
		row("  cold: empty Go build and kernel caches", "-", "-", "not run (-skip-cold)")
	default:
		note := fmt.Sprintf("kernel package %s, Go busybox %s", secs(cold.step("kernel package")), secs(cold.step("build Go busybox")))
		if cold.SameAsWarm != nil && *cold.SameAsWarm {
			note += "; same bytes as warm"
		} else if cold.SameAsWarm != nil {
			note += "; DIFFERENT bytes from warm"
		}
		row("  cold: empty Go build and kernel caches", secs(cold.Seconds), "-", note)
	}
	if warmOurs != nil && warmBare != nil {
		note := ""
		if bbO, bbB := warmOurs.step("build Go busybox"), warmBare.step("build Go busybox"); bbO >= 0 && bbB >= 0 {
			note = fmt.Sprintf("Go busybox %s / %s", secs(bbO), secs(bbB))
		}
		row("  warm: real caches, second build", secs(warmOurs.Seconds), secs(warmBare.Seconds), note)
	} else {
		row("  warm: real caches, second build", "-", "-", "not run (-skip-build)")
	}

	row("Initramfs (uncompressed / gzip alone)", "", "", "")
	bbO, bbB := ours.component("Go busybox"), bare.component("Go busybox")
	row("  Go busybox", pair(bbO.Size, bbO.Gzip), pair(bbB.Size, bbB.Gzip),
		fmt.Sprintf("%d / %d commands", ours.Commands, bare.Commands))
	modO, modB := ours.component("kernel modules"), bare.component("kernel modules")
	row("  kernel modules", pair(modO.Size, modO.Gzip), pair(modB.Size, modB.Gzip),
		fmt.Sprintf("%d / %d files (.ko and index)", modO.Files, modB.Files))
	othO, othB := ours.component("other"), bare.component("other")
	row("  other files", pair(othO.Size, othO.Gzip), pair(othB.Size, othB.Gzip), "")
	row("  whole initramfs (cpio / cpio.gz)", pair(ours.Cpio, ours.CpioGzip), pair(bare.Cpio, bare.CpioGzip),
		fmt.Sprintf("%.2fx / %.2fx", ratio(float64(ours.Cpio), float64(bare.Cpio)), ratio(float64(ours.CpioGzip), float64(bare.CpioGzip))))
	row("  kernel vmlinuz", size(ours.Vmlinuz), size(bare.Vmlinuz), "")

	row(fmt.Sprintf("Boot to marker under TCG (%d boots each, alternating)", r.Boots), "", "", "")
	row("  marker line", quote(so.Marker), quote(sb.Marker), "")
	verdict := "over target"
	if r.MeetsTarget {
		verdict = "meets target"
	}
	row("  total, median", secs2(so.Median), secs2(sb.Median), fmt.Sprintf("ratio %.2fx (target at most %.1fx): %s", r.Ratio, r.Target, verdict))
	row("  total, min / max", secs2(so.Min)+" / "+secs2(so.Max), secs2(sb.Min)+" / "+secs2(sb.Max), "")
	row("  QEMU, BIOS, kernel load, median", secs2(so.BeforeKernel), secs2(sb.BeforeKernel), phaseRatio(so.BeforeKernel, sb.BeforeKernel))
	row("  kernel start to /init, median", secs2(so.Kernel), secs2(sb.Kernel), phaseRatio(so.Kernel, sb.Kernel)+" (kernel clock)")
	row("  /init to marker, median", secs2(so.Userspace), secs2(sb.Userspace), phaseRatio(so.Userspace, sb.Userspace))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n") {
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}

	fmt.Fprintf(w, "\nload average (1, 5, 15 min): %s before the boots, %s after", r.LoadBefore, r.LoadAfter)
	if busy(r.LoadBefore, r.CPUs) || busy(r.LoadAfter, r.CPUs) {
		fmt.Fprintf(w, ": more runnable processes than CPUs, so other work shared the machine; expect noisy figures")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "logs: %s (build-*.log; <image>-<n>.serial.log, each line after the host time since QEMU started)\n", r.Logs)
	return nil
}

// busy tells whether a load average line's 1-minute figure exceeds the machine's CPUs.
func busy(load string, cpus int) bool {
	f := strings.Fields(load)
	if len(f) == 0 {
		return false
	}
	l, err := strconv.ParseFloat(f[0], 64)
	return err == nil && l > float64(cpus)
}

// build finds a build of the report, or nil.
func (r *Report) build(img, caches string) *Build {
	for i := range r.Builds {
		if b := &r.Builds[i]; b.Image == img && b.Caches == caches {
			return b
		}
	}
	return nil
}

func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the JSON report: %w", err)
	}
	return nil
}

// secs formats seconds; a negative value means unknown.
func secs(s float64) string {
	if s < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fs", s)
}

// secs2 formats seconds of a boot, to the hundredth; a negative value means unknown.
func secs2(s float64) string {
	if s < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs", s)
}

// size formats a byte count: MiB, or bytes when it is too small to show in MiB.
func size(n int64) string {
	if n < 100*1024 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func pair(uncompressed, gzipped int64) string {
	if uncompressed == 0 {
		return "none"
	}
	return size(uncompressed) + " / " + size(gzipped)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func phaseRatio(ours, bare float64) string {
	if ours < 0 || bare <= 0 {
		return ""
	}
	return fmt.Sprintf("%.2fx", ours/bare)
}

func quote(s string) string { return `"` + s + `"` }

// qemuVersion is the version QEMU reports, e.g. "7.2.22".
func qemuVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "qemu-system-x86_64", "--version").Output()
	if err != nil {
		return "(unknown version)"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	f := strings.Fields(first) // QEMU emulator version 7.2.22 (Debian ...)
	if len(f) >= 4 {
		return f[3]
	}
	return strings.TrimSpace(first)
}

// shortCommit shortens a commit id to 12 hex digits, keeping a "-dirty" suffix.
func shortCommit(c string) string {
	id, dirty, _ := strings.Cut(c, "-")
	if len(id) > 12 {
		id = id[:12]
	}
	if dirty != "" {
		id += "-" + dirty
	}
	return id
}
