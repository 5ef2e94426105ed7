package kmod

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Module is one loadable module of a kernel.
type Module struct {
	Name string // normalized: "dm_verity"
	Path string // relative to lib/modules/<release>: "kernel/drivers/md/dm-verity.ko"
	Size int64  // bytes
	Info Modinfo
}

// Index is every module of one kernel release, as found in an unpacked
// package's lib/modules/<release> directory.
type Index struct {
	Dir     string // the lib/modules/<release> directory
	Release string

	modules map[string]Module // loadable modules by normalized name
	builtin map[string]bool   // normalized names of modules built into the kernel
	// builtinAliases are the alias= values of built-in modules, from
	// modules.builtin.modinfo: a soft dependency on one of them is met.
	builtinAliases []string
}

// Scan reads every module below dir (lib/modules/<release>) and the
// modules.builtin lists next to them.
func Scan(dir, release string) (*Index, error) {
	ix := &Index{Dir: dir, Release: release, modules: map[string]Module{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		base := d.Name()
		if !strings.HasSuffix(base, ".ko") {
			if strings.Contains(base, ".ko.") {
				return fmt.Errorf("compressed module %s is not supported: pin a kernel package with plain .ko modules "+
					"(Debian's 6.1 kernels have them) or teach kmod to decompress", p)
			}
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mi, err := ReadModinfo(p)
		if err != nil {
			return err
		}
		name := Normalize(strings.TrimSuffix(base, ".ko"))
		if mi.Name != "" && mi.Name != name {
			return fmt.Errorf("module file %s says its name is %q", rel, mi.Name)
		}
		if other, ok := ix.modules[name]; ok {
			return fmt.Errorf("module %s exists twice: %s and %s", name, other.Path, rel)
		}
		ix.modules[name] = Module{Name: name, Path: filepath.ToSlash(rel), Size: info.Size(), Info: mi}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan kernel modules: %w", err)
	}
	if len(ix.modules) == 0 {
		return nil, fmt.Errorf("no kernel modules below %s", dir)
	}

	builtin, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("kernel package lacks its list of built-in modules: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(builtin))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			ix.builtin[Normalize(strings.TrimSuffix(path.Base(line), ".ko"))] = true
		}
	}
	// modules.builtin.modinfo is optional (older kernels lack it); without
	// it soft dependencies on built-in aliases are reported as unresolved.
	if data, err := os.ReadFile(filepath.Join(dir, "modules.builtin.modinfo")); err == nil {
		for _, field := range bytes.Split(data, []byte{0}) {
			// "crc32c_generic.alias=crypto-crc32c"
			if _, alias, ok := strings.Cut(string(field), ".alias="); ok {
				ix.builtinAliases = append(ix.builtinAliases, alias)
			}
		}
	}
	return ix, nil
}

// Module returns the loadable module of that name ('-' or '_' alike).
func (ix *Index) Module(name string) (Module, bool) {
	m, ok := ix.modules[Normalize(name)]
	return m, ok
}

// Builtin reports whether the named module is built into the kernel.
func (ix *Index) Builtin(name string) bool {
	return ix.builtin[Normalize(name)]
}

// Names lists all module names, loadable and built-in, sorted.
func (ix *Index) Names() []string {
	names := make([]string, 0, len(ix.modules)+len(ix.builtin))
	for n := range ix.modules {
		names = append(names, n)
	}
	for n := range ix.builtin {
		if _, ok := ix.modules[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// byAlias returns the loadable modules with an alias pattern matching name,
// sorted by name, the way modprobe resolves "crypto-crc32c" to every module
// that provides it; and whether a built-in module provides it.
func (ix *Index) byAlias(name string) (mods []Module, builtin bool) {
	for _, m := range ix.modules {
		for _, a := range m.Info.Aliases {
			if ok, _ := path.Match(a, name); ok {
				mods = append(mods, m)
				break
			}
		}
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Name < mods[j].Name })
	for _, a := range ix.builtinAliases {
		if ok, _ := path.Match(a, name); ok {
			builtin = true
			break
		}
	}
	return mods, builtin
}
