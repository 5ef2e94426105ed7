// Package modload loads the kernel modules that the box's devices ask for.
//
// Every device the kernel finds publishes a "modalias" string in sysfs (for a
// PCI NIC something like pci:v00008086d0000100Esv...). The image-builder writes
// depmod's modules.alias and modules.dep next to the modules, so matching the
// two tells which driver each device needs, without a fixed list that would be
// wrong on the next board. Loading a bus driver (virtio_pci) creates new
// devices (virtio:d00000001...), so the scan repeats until nothing new loads,
// the way udev's coldplug settles.
package modload

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Index is what depmod's files say about the modules in one directory
// (/lib/modules/<kernel release>).
type Index struct {
	dir     string
	paths   map[string]string   // module name -> path relative to dir
	deps    map[string][]string // module name -> names it depends on
	aliases []alias
	builtin map[string]bool
}

type alias struct {
	pattern string // a shell glob, as depmod writes it
	prefix  string // the pattern's literal start, checked before the glob
	module  string
}

// Name normalises a module name: the kernel treats '-' and '_' alike, and
// file names carry a .ko suffix, and .ko.zst when compressed.
func Name(s string) string {
	s = path.Base(s)
	s = strings.TrimSuffix(s, ".zst")
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// ReadIndex reads modules.dep, modules.alias and, when present,
// modules.builtin from dir. A missing modules.dep is an error that says how to
// get one; a malformed line names its file and line number.
func ReadIndex(dir string) (*Index, error) {
	ix := &Index{
		dir:     dir,
		paths:   map[string]string{},
		deps:    map[string][]string{},
		builtin: map[string]bool{},
	}
	if err := eachLine(filepath.Join(dir, "modules.dep"), ix.depLine); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no module index in %s: the image was built without kernel modules; rebuild it with image-builder: %w", dir, err)
		}
		return nil, err
	}
	if err := eachLine(filepath.Join(dir, "modules.alias"), ix.aliasLine); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := eachLine(filepath.Join(dir, "modules.builtin"), func(line string) error {
		ix.builtin[Name(line)] = true
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return ix, nil
}

// depLine reads "kernel/x/a.ko: kernel/y/b.ko kernel/z/c.ko".
func (ix *Index) depLine(line string) error {
	mod, deps, ok := strings.Cut(line, ":")
	if !ok {
		return fmt.Errorf("want \"module.ko: deps...\"")
	}
	name := Name(mod)
	ix.paths[name] = strings.TrimSpace(mod)
	var names []string
	for _, d := range strings.Fields(deps) {
		names = append(names, Name(d))
	}
	ix.deps[name] = names
	return nil
}

// aliasLine reads "alias PATTERN module".
func (ix *Index) aliasLine(line string) error {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "alias" {
		return fmt.Errorf("want \"alias PATTERN MODULE\"")
	}
	if _, err := path.Match(f[1], ""); err != nil {
		return fmt.Errorf("bad pattern %q: %w", f[1], err)
	}
	// Matching every device against every glob costs seconds under
	// software emulation; almost every pattern starts with a literal bus and
	// vendor ("pci:v00008086d..."), which rules most of them out at once.
	prefix := f[1]
	if i := strings.IndexAny(prefix, `*?[\`); i >= 0 {
		prefix = prefix[:i]
	}
	ix.aliases = append(ix.aliases, alias{pattern: f[1], prefix: prefix, module: Name(f[2])})
	return nil
}

func eachLine(p string, fn func(string) error) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := fn(line); err != nil {
			return fmt.Errorf("%s line %d: %w", p, n, err)
		}
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	return nil
}

// Match returns the modules whose alias patterns match a device's modalias,
// each once, in index order.
func (ix *Index) Match(modalias string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range ix.aliases {
		if seen[a.module] || !strings.HasPrefix(modalias, a.prefix) {
			continue
		}
		if ok, _ := path.Match(a.pattern, modalias); ok {
			seen[a.module] = true
			out = append(out, a.module)
		}
	}
	return out
}

// Builtin reports whether a module is compiled into the kernel.
func (ix *Index) Builtin(name string) bool { return ix.builtin[Name(name)] }

// Known reports whether the index has a module file of that name.
func (ix *Index) Known(name string) bool {
	_, ok := ix.paths[Name(name)]
	return ok
}

// Path returns the module's file.
func (ix *Index) Path(name string) string {
	return filepath.Join(ix.dir, ix.paths[Name(name)])
}

// Order returns name and everything it needs, dependencies first, so that
// loading them in that order never meets an unresolved symbol.
func (ix *Index) Order(name string) ([]string, error) {
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, chain []string) error
	visit = func(n string, chain []string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, n), " -> "))
		case 2:
			return nil
		}
		if _, ok := ix.paths[n]; !ok {
			if len(chain) == 0 {
				return fmt.Errorf("module %s is not in this image (not in %s/modules.dep)", n, ix.dir)
			}
			return fmt.Errorf("module %s needs %s, which is not in this image", chain[len(chain)-1], n)
		}
		state[n] = 1
		for _, d := range ix.deps[n] {
			if err := visit(d, append(chain, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		out = append(out, n)
		return nil
	}
	if err := visit(Name(name), nil); err != nil {
		return nil, err
	}
	return out, nil
}
