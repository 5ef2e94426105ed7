package kmod

import (
	"fmt"
	"sort"
	"strings"
)

// Set is a closed set of modules: the wanted ones and everything they need.
type Set struct {
	Release string
	Modules []Module // sorted by Path
	// Wanted are the wanted names that are loadable modules; Builtin the
	// wanted names the kernel has built in (nothing to ship for them).
	Wanted, Builtin []string
	// Unresolved lists soft dependencies that no module or built-in
	// provides, as "jbd2 pre: crypto-crc32c". Soft dependencies are
	// optional, so they are reported rather than fatal.
	Unresolved []string

	byName map[string]Module
}

// UnknownModulesError names the wanted modules the kernel does not have,
// each with the closest names it does have.
type UnknownModulesError struct {
	Release string
	Unknown map[string][]string // wanted name -> suggestions
}

func (e *UnknownModulesError) Error() string {
	names := make([]string, 0, len(e.Unknown))
	for n := range e.Unknown {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "kernel %s has no module", e.Release)
	for i, n := range names {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %q", n)
		if s := e.Unknown[n]; len(s) > 0 {
			fmt.Fprintf(&b, " (did you mean %s?)", strings.Join(s, ", "))
		}
	}
	b.WriteString(": fix the name in the wanted module list, or drop it")
	return b.String()
}

// Resolve returns the wanted modules with the closure of their dependencies
// (depends=) and soft dependencies (softdep= pre and post, by module name or
// alias). Every module in the closure must be built for ix.Release.
func (ix *Index) Resolve(wanted []string) (*Set, error) {
	s := &Set{Release: ix.Release, byName: map[string]Module{}}
	unknown := map[string][]string{}
	r := resolver{ix: ix, set: s, state: map[string]int{}}
	for _, w := range wanted {
		n := Normalize(w)
		switch m, ok := ix.modules[n]; {
		case ok:
			s.Wanted = append(s.Wanted, n)
			if err := r.visit(m, "wanted"); err != nil {
				return nil, err
			}
		case ix.builtin[n]:
			s.Builtin = append(s.Builtin, n)
		default:
			unknown[w] = closest(n, ix.Names(), 3)
		}
	}
	if len(unknown) > 0 {
		return nil, &UnknownModulesError{Release: ix.Release, Unknown: unknown}
	}
	for _, m := range s.byName {
		s.Modules = append(s.Modules, m)
	}
	sort.Slice(s.Modules, func(i, j int) bool { return s.Modules[i].Path < s.Modules[j].Path })
	sort.Strings(s.Wanted)
	sort.Strings(s.Builtin)
	sort.Strings(s.Unresolved)
	return s, nil
}

// resolver walks dependencies depth first. state is 1 while a module's
// dependencies are being visited and 2 when it is done, which detects
// cycles (depmod refuses them too).
type resolver struct {
	ix    *Index
	set   *Set
	state map[string]int
}

func (r resolver) visit(m Module, why string) error {
	switch r.state[m.Name] {
	case 1:
		return fmt.Errorf("kernel modules have a dependency cycle through %s", m.Name)
	case 2:
		return nil
	}
	if got := vermagicRelease(m.Info.Vermagic); got != r.ix.Release {
		return fmt.Errorf("module %s (%s) was built for kernel %q, not %s: the kernel package is inconsistent",
			m.Name, why, got, r.ix.Release)
	}
	r.state[m.Name] = 1
	for _, d := range m.Info.Depends {
		dm, ok := r.ix.modules[d]
		if !ok {
			if r.ix.builtin[d] {
				continue
			}
			return fmt.Errorf("module %s depends on %s, which kernel %s does not have", m.Name, d, r.ix.Release)
		}
		if err := r.visit(dm, "needed by "+m.Name); err != nil {
			return err
		}
	}
	r.state[m.Name] = 2
	r.set.byName[m.Name] = m

	pre, post := SoftDep(m.Info.SoftDeps)
	for _, group := range []struct {
		kind  string
		names []string
	}{{"pre", pre}, {"post", post}} {
		for _, n := range group.names {
			if err := r.soft(m, group.kind, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// soft adds what a soft dependency names: a module, or every module with a
// matching alias. One met by the kernel itself needs nothing.
func (r resolver) soft(m Module, kind, name string) error {
	why := "soft dependency of " + m.Name
	if dm, ok := r.ix.modules[Normalize(name)]; ok {
		return r.visit(dm, why)
	}
	if r.ix.builtin[Normalize(name)] {
		return nil
	}
	mods, builtin := r.ix.byAlias(name)
	for _, dm := range mods {
		if err := r.visit(dm, why); err != nil {
			return err
		}
	}
	if len(mods) == 0 && !builtin {
		r.set.Unresolved = append(r.set.Unresolved, fmt.Sprintf("%s %s: %s", m.Name, kind, name))
	}
	return nil
}

// Module returns the module of that name in the set.
func (s *Set) Module(name string) (Module, bool) {
	m, ok := s.byName[Normalize(name)]
	return m, ok
}

// Deps returns the modules that the named one needs, transitively, in
// modules.dep order: every module comes before the modules it depends on.
// Loading the list from the last entry to the first, then the module itself,
// meets every dependency (that is how modprobe reads modules.dep).
func (s *Set) Deps(name string) []Module {
	m, ok := s.Module(name)
	if !ok {
		return nil
	}
	var order []Module // post-order: dependencies before dependents
	done := map[string]bool{m.Name: true}
	var walk func(m Module)
	walk = func(m Module) {
		deps := append([]string(nil), m.Info.Depends...)
		sort.Strings(deps)
		for _, d := range deps {
			dm, ok := s.byName[d]
			if !ok || done[d] {
				continue // built in, or already placed
			}
			done[d] = true
			walk(dm)
			order = append(order, dm)
		}
	}
	walk(m)
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	return order
}

// Size is the total size of the set's module files in bytes.
func (s *Set) Size() int64 {
	var n int64
	for _, m := range s.Modules {
		n += m.Size
	}
	return n
}
