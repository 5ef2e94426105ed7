// Package kmod reads the kernel modules of an unpacked kernel package,
// resolves a wanted list of module names to the closure of their
// dependencies, and writes the depmod index files (modules.dep,
// modules.alias, modules.softdep) for that closure.
//
// Why not run depmod: Debian ships the kernel package without modules.dep
// (the postinst runs depmod on the installed system), the build machine's
// depmod may differ from the one the box would have, and depmod would index
// all 4,000 modules when the image carries a few dozen. Everything depmod
// needs is in each module's .modinfo ELF section, which debug/elf reads.
package kmod

import (
	"bytes"
	"debug/elf"
	"fmt"
	"strings"
)

// Modinfo is what a module's .modinfo section says about it: NUL-separated
// "key=value" strings written by the kernel's MODULE_* macros.
type Modinfo struct {
	Name     string   // "name=": the module name, with underscores
	Vermagic string   // "vermagic=": kernel release and build options it was built for
	Depends  []string // "depends=": modules whose symbols it uses (comma-separated)
	Aliases  []string // "alias=": modalias patterns and alternative names
	SoftDeps []string // "softdep=": raw "pre: a b post: c" values, one per entry
}

// ReadModinfo reads the .modinfo section of the module file at path.
func ReadModinfo(path string) (Modinfo, error) {
	f, err := elf.Open(path)
	if err != nil {
		return Modinfo{}, fmt.Errorf("module %s is not a readable ELF object: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return Modinfo{}, fmt.Errorf("module %s has no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return Modinfo{}, fmt.Errorf("module %s: read .modinfo: %w", path, err)
	}
	return parseModinfo(data), nil
}

func parseModinfo(data []byte) Modinfo {
	var mi Modinfo
	for _, field := range bytes.Split(data, []byte{0}) {
		key, value, ok := strings.Cut(string(field), "=")
		if !ok {
			continue // alignment padding between entries
		}
		switch key {
		case "name":
			mi.Name = value
		case "vermagic":
			mi.Vermagic = value
		case "depends":
			for _, d := range strings.Split(value, ",") {
				if d != "" {
					mi.Depends = append(mi.Depends, Normalize(d))
				}
			}
		case "alias":
			mi.Aliases = append(mi.Aliases, value)
		case "softdep":
			mi.SoftDeps = append(mi.SoftDeps, value)
		}
	}
	return mi
}

// SoftDep splits softdep values ("pre: crypto-crc32c", "pre: a post: b") into
// the names to load before and after the module. Like modprobe, it ignores
// names that come before any "pre:" or "post:".
func SoftDep(values []string) (pre, post []string) {
	for _, v := range values {
		var into *[]string
		for _, tok := range strings.Fields(v) {
			switch tok {
			case "pre:":
				into = &pre
			case "post:":
				into = &post
			default:
				if into != nil {
					*into = append(*into, tok)
				}
			}
		}
	}
	return pre, post
}

// Normalize is the kernel's spelling of a module name: file names and
// depends= entries may use '-' where the module name has '_' (dm-verity.ko
// is the module dm_verity).
func Normalize(name string) string {
	return strings.ReplaceAll(name, "-", "_")
}

// vermagicRelease is the kernel release a module was built for: the first
// word of its vermagic ("6.1.0-47-amd64 SMP preempt mod_unload modversions").
func vermagicRelease(vermagic string) string {
	f := strings.Fields(vermagic)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
