package kmod

import (
	"fmt"
	"sort"
	"strings"
)

// The index files depmod would write for the set, in depmod's text formats,
// so that the firmware (and modprobe, were it there) can read them:
//
//	modules.dep      kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio_ring.ko ...
//	modules.alias    alias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_pci
//	modules.softdep  softdep ext4 pre: crypto-crc32c
//
// Lines are sorted (modules.dep by path, the others by module name with each
// module's entries in .modinfo order) so that the files are reproducible.

// DepFile returns modules.dep: each module's path, a colon, and the paths of
// all the modules it needs in the order Deps gives. suffix is appended to
// every path: ".zst" when the image holds the modules compressed, as depmod
// writes "kernel/.../e1000.ko.zst".
func (s *Set) DepFile(suffix string) []byte {
	var b strings.Builder
	for _, m := range s.Modules {
		b.WriteString(m.Path + suffix + ":")
		for _, d := range s.Deps(m.Name) {
			b.WriteString(" " + d.Path + suffix)
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// AliasFile returns modules.alias: one "alias PATTERN MODULE" line per alias.
func (s *Set) AliasFile() []byte {
	var b strings.Builder
	b.WriteString("# Aliases extracted from modules themselves.\n")
	for _, m := range s.byNameSorted() {
		for _, a := range m.Info.Aliases {
			fmt.Fprintf(&b, "alias %s %s\n", a, m.Name)
		}
	}
	return []byte(b.String())
}

// SoftdepFile returns modules.softdep: one "softdep MODULE VALUE" line per
// softdep= entry, the value as the module wrote it.
func (s *Set) SoftdepFile() []byte {
	var b strings.Builder
	b.WriteString("# Soft dependencies extracted from modules themselves.\n")
	for _, m := range s.byNameSorted() {
		for _, v := range m.Info.SoftDeps {
			fmt.Fprintf(&b, "softdep %s %s\n", m.Name, v)
		}
	}
	return []byte(b.String())
}

func (s *Set) byNameSorted() []Module {
	mods := append([]Module(nil), s.Modules...)
	sort.Slice(mods, func(i, j int) bool { return mods[i].Name < mods[j].Name })
	return mods
}
