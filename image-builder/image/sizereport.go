package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/onecloud-edu/onecloud/image-builder/kmod"
	"github.com/u-root/mkuimage/cpio"
)

// Component is one part of the initramfs in the size report.
type Component struct {
	Name  string `json:"name"`
	Files int    `json:"files"`
	Size  int64  `json:"size"`      // bytes of file data, uncompressed
	Gzip  int64  `json:"gzip_size"` // the same data compressed alone
}

// SizeReport breaks the image down by component.
type SizeReport struct {
	Busybox, Modules, Other Component
	Commands                map[string][]string // in the busybox, by origin ("onecloud", "u-root")
	Overhead                int64               // cpio headers, padding and trailer
	Cpio, Gzip, Kernel      int64               // whole initramfs.cpio, initramfs.cpio.gz and vmlinuz
	Largest                 []kmod.Module
}

// measure reads back the uncompressed initramfs, checks what every image
// must hold, and sizes its components. Reading the archive the builder wrote,
// rather than trusting what was asked of it, also catches a file that u-root's
// builder dropped because another one had the same path.
func measure(cpioPath string, want []string, modulesPrefix string) (SizeReport, error) {
	var r SizeReport
	f, err := os.Open(cpioPath)
	if err != nil {
		return r, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return r, err
	}
	r.Cpio = st.Size()
	r.Busybox.Name, r.Modules.Name, r.Other.Name = "Go busybox (bbin/bb)", "kernel modules (lib/modules)", "other files"

	gz := map[*Component]*gzipSize{&r.Busybox: newGzipSize(), &r.Modules: newGzipSize(), &r.Other: newGzipSize()}
	seen := map[string]bool{}
	var data int64
	rr := cpio.Newc.Reader(f)
	for {
		rec, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return r, fmt.Errorf("read back %s: %w", cpioPath, err)
		}
		if rec.MTime != 0 || rec.UID != 0 || rec.GID != 0 {
			return r, fmt.Errorf("%s in the initramfs has time %d, owner %d:%d; every entry must have 0 for a reproducible image",
				rec.Name, rec.MTime, rec.UID, rec.GID)
		}
		seen[rec.Name] = true
		c := &r.Other
		switch {
		case rec.Name == "bbin/bb":
			c = &r.Busybox
		case modulesPrefix != "" && strings.HasPrefix(rec.Name, modulesPrefix):
			c = &r.Modules
		}
		if rec.Mode&cpio.S_IFMT == cpio.S_IFREG {
			c.Files++
			c.Size += int64(rec.FileSize)
			data += int64(rec.FileSize)
			if _, err := io.Copy(gz[c], io.NewSectionReader(rec.ReaderAt, 0, int64(rec.FileSize))); err != nil {
				return r, err
			}
		}
	}
	for c, g := range gz {
		c.Gzip = g.Size()
	}
	r.Overhead = r.Cpio - data
	var missing []string
	for _, name := range want {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return r, fmt.Errorf("the initramfs lacks %s", strings.Join(missing, ", "))
	}
	return r, nil
}

// largestModules returns the n largest modules of the set, largest first.
func largestModules(s *kmod.Set, n int) []kmod.Module {
	mods := append([]kmod.Module(nil), s.Modules...)
	sort.Slice(mods, func(i, j int) bool {
		if mods[i].Size != mods[j].Size {
			return mods[i].Size > mods[j].Size
		}
		return mods[i].Name < mods[j].Name
	})
	if len(mods) > n {
		mods = mods[:n]
	}
	return mods
}

// Text is size-report.txt.
func (r SizeReport) Text(title string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", title)
	fmt.Fprintf(&b, "%-32s %6s %24s %24s\n", "initramfs component", "files", "uncompressed", fmt.Sprintf("gzip -%d alone", gzipLevel))
	for _, c := range []Component{r.Busybox, r.Modules, r.Other} {
		if c.Files == 0 && c.Size == 0 {
			continue
		}
		fmt.Fprintf(&b, "%-32s %6d %24s %24s\n", c.Name, c.Files, size(c.Size), size(c.Gzip))
		if c.Name != r.Busybox.Name {
			continue
		}
		origins := make([]string, 0, len(r.Commands))
		for o := range r.Commands {
			origins = append(origins, o)
		}
		sort.Strings(origins)
		for _, o := range origins {
			b.WriteString(wrap(fmt.Sprintf("  %d %s commands:", len(r.Commands[o]), o), r.Commands[o], "    "))
		}
	}
	fmt.Fprintf(&b, "%-32s %6s %24s\n", "cpio headers and padding", "", size(r.Overhead))
	fmt.Fprintf(&b, "%-32s %6s %24s %24s\n", "initramfs (cpio, cpio.gz)", "", size(r.Cpio), size(r.Gzip))
	fmt.Fprintf(&b, "\n%-32s %6s %24s\n", "kernel vmlinuz", "", size(r.Kernel))
	fmt.Fprintf(&b, "%-32s %6s %24s\n", "to boot (vmlinuz + cpio.gz)", "", size(r.Kernel+r.Gzip))
	if len(r.Largest) > 0 {
		fmt.Fprintf(&b, "\nlargest kernel modules:\n")
		for _, m := range r.Largest {
			fmt.Fprintf(&b, "  %-28s %24s  %s\n", m.Name, size(m.Size), m.Path)
		}
	}
	return b.String()
}

// size prints bytes in MiB and exactly: "14.2 MiB (14,876,544)".
func size(n int64) string {
	return fmt.Sprintf("%s (%s)", mib(n), thousands(n))
}

// mib prints bytes in MiB with one decimal: "14.2 MiB".
func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// thousands prints n with thousands separators: "14,876,544".
func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && c != '-' && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// wrap joins words into lines of at most 100 columns, the first starting
// with first and the others with indent.
func wrap(first string, words []string, indent string) string {
	var lines []string
	line := first
	for _, w := range words {
		if len(line)+1+len(w) > 100 {
			lines = append(lines, line)
			line = indent + w
			continue
		}
		line += " " + w
	}
	return strings.Join(append(lines, line), "\n") + "\n"
}
