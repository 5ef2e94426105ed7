// Package image builds the onecloud boot image: the pinned Debian kernel and
// an initramfs made by u-root's Go builder (mkuimage) holding our commands
// and a few u-root tools compiled into one Go busybox, the kernel modules the
// boxes need with their depmod index files, and the release file.
//
// The build is reproducible: the same commit and Go toolchain give
// byte-identical artefacts. The busybox is built with -trimpath and without a
// build id; every initramfs entry has zero times and owners and a fixed mode,
// in sorted order; the gzip stream carries no name or time; the manifest
// holds no build time. TestReproducible builds twice and compares.
package image

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/image-builder/kernel"
	"github.com/onecloud-edu/onecloud/image-builder/kmod"
	"github.com/onecloud-edu/onecloud/internal/release"
)

// Options control one build.
type Options struct {
	Profile Profile
	// SourceDir is the root of the onecloud Go module.
	SourceDir string
	// OutDir receives the artefacts; empty means out/<Profile.OutDir>
	// below SourceDir.
	OutDir string
	// CacheDir is the downloads cache ($ONECLOUD_CACHE); kernel packages
	// are kept in its kernel/ folder.
	CacheDir string
	// Commit overrides asking git for the commit.
	Commit string
	// Progress receives the step-by-step report; nil discards it.
	Progress io.Writer
	Log      *slog.Logger
}

// DefaultCacheDir is $ONECLOUD_CACHE, or /var/cache/onecloud.
func DefaultCacheDir() string {
	if d := os.Getenv("ONECLOUD_CACHE"); d != "" {
		return d
	}
	return "/var/cache/onecloud"
}

const (
	product      = "onecloud"
	initramfsOut = "initramfs.cpio.gz"
	vmlinuzOut   = "vmlinuz"
	reportOut    = "size-report.txt"
	// ReleaseOut is a copy of the release file inside the initramfs: its
	// SHA-256 in the manifest is the digest the firmware measures, which
	// the technician releases (`occtl release add -image DIR`).
	ReleaseOut = "release.json"
)

// Build builds the image described by o and returns its manifest, which it
// has also written, last, into the output directory.
func Build(ctx context.Context, o Options) (*Manifest, error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.OutDir == "" {
		o.OutDir = filepath.Join(o.SourceDir, "out", o.Profile.OutDir)
	}
	p := newProgress(o.Progress, 8, time.Now)
	defer p.fail()

	done := p.step("read source")
	src, err := ReadSource(ctx, o.SourceDir, o.Commit)
	if err != nil {
		return nil, err
	}
	done("%s %s, commit %s, %s", product, src.Version, src.Commit, src.Go)

	pin := kernel.Pinned()
	done = p.step("kernel package %s", pin)
	cache := kernel.Cache{
		Dir:        filepath.Join(o.CacheDir, "kernel"),
		Downloader: kernel.Apt{Update: true, Log: o.Log},
		Unpacker:   kernel.Dpkg{},
		Log:        o.Log,
	}
	k, err := cache.Fetch(ctx, pin)
	if err != nil {
		return nil, err
	}
	done("%s", kernelNote(k))

	done = p.step("kernel modules")
	var mods *kmod.Set
	if o.Profile.Modules {
		if mods, err = resolveModules(k); err != nil {
			return nil, err
		}
		done("%d wanted, %d with dependencies (%s), %d built in",
			len(mods.Wanted), len(mods.Modules), mib(mods.Size()), len(mods.Builtin))
		for _, u := range mods.Unresolved {
			o.Log.Warn("soft dependency of a kernel module not found; the module may lack a helper at run time", "softdep", u)
		}
	} else {
		done("none in the %s profile", o.Profile.Name)
	}

	done = p.step("find Go commands")
	pkgs, err := resolveCommands(ctx, src.Dir, o.Profile.Commands, o.Log)
	if err != nil {
		return nil, err
	}
	commands := describeCommands(pkgs)
	done("%d commands", len(commands))

	work, err := os.MkdirTemp("", "onecloud-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	rel := release.Info{Product: product, Version: src.Version, Commit: src.Commit, Kernel: k.Release}
	base, err := skeleton(rel, mods, k.ModulesDir())
	if err != nil {
		return nil, err
	}
	cpioPath := filepath.Join(work, "initramfs.cpio")
	done = p.step("build Go busybox and initramfs (%d commands)", len(commands))
	if err := buildInitramfs(ctx, src, o.Profile, pkgs, base, work, cpioPath, o.Log); err != nil {
		return nil, err
	}
	done("")

	done = p.step("check and measure the initramfs")
	modPrefix := ""
	if mods != nil {
		modPrefix = path.Join("lib/modules", k.Release) + "/"
	}
	report, err := measure(cpioPath, required(o.Profile, commands, mods), modPrefix)
	if err != nil {
		return nil, err
	}
	report.Commands = map[string][]string{}
	for _, c := range commands {
		report.Commands[c.Origin] = append(report.Commands[c.Origin], c.Name)
	}
	if mods != nil {
		report.Largest = largestModules(mods, 10)
	}
	done("%s uncompressed", mib(report.Cpio))

	st, err := newStaging(o.OutDir)
	if err != nil {
		return nil, err
	}
	defer st.cleanup()
	done = p.step("compress the initramfs (gzip -%d)", gzipLevel)
	initrd, err := st.add(initramfsOut, func(w io.Writer) error { return gzipFile(cpioPath, w) })
	if err != nil {
		return nil, err
	}
	report.Gzip = initrd.Size
	done("%s", mib(initrd.Size))

	done = p.step("write artefacts to %s", o.OutDir)
	vmlinuz, err := st.addFile(vmlinuzOut, k.Vmlinuz())
	if err != nil {
		return nil, err
	}
	report.Kernel = vmlinuz.Size
	title := fmt.Sprintf("Size report: %s image %s (commit %s), kernel %s", o.Profile.Name, src.Version, src.Commit, k.Release)
	text, err := st.add(reportOut, func(w io.Writer) error { _, err := io.WriteString(w, report.Text(title)); return err })
	if err != nil {
		return nil, err
	}
	relBytes, err := releaseFile(rel)
	if err != nil {
		return nil, err
	}
	relOut, err := st.add(ReleaseOut, func(w io.Writer) error { _, err := w.Write(relBytes); return err })
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Product: product, Profile: o.Profile.Name, Version: src.Version, Commit: src.Commit, Go: src.Go,
		Kernel: KernelInfo{Pin: k.Pin, Release: k.Release},
		Init:   o.Profile.Init, Uinit: o.Profile.Uinit, UinitArgs: o.Profile.UinitArgs, Shell: o.Profile.Shell,
		Commands:       commands,
		Modules:        moduleInfos(mods),
		ModulesBuiltin: []string{},
		Sizes:          []Component{report.Busybox, report.Modules, report.Other},
		Artefacts:      []Artefact{vmlinuz, initrd, relOut, text},
	}
	if mods != nil {
		m.ModulesBuiltin, m.ModulesUnresolved = mods.Builtin, mods.Unresolved
	}
	b, err := m.encode()
	if err != nil {
		return nil, err
	}
	if err := st.publish(b); err != nil {
		return nil, err
	}
	done("")

	summary(o.Progress, m, o.OutDir, len(b), p.elapsed())
	return m, nil
}

func kernelNote(k kernel.Kernel) string {
	switch {
	case k.DebCached && k.TreeCached:
		return "cached (sha256 verified)"
	case k.DebCached:
		return "package cached (sha256 verified), unpacked"
	default:
		return "downloaded, sha256 verified, unpacked"
	}
}

// resolveModules reads modules.txt and resolves it against the kernel.
func resolveModules(k kernel.Kernel) (*kmod.Set, error) {
	wanted, err := kmod.ParseList([]byte(wantedModules), "image-builder/image/modules.txt")
	if err != nil {
		return nil, err
	}
	ix, err := kmod.Scan(k.ModulesDir(), k.Release)
	if err != nil {
		return nil, fmt.Errorf("%w (if the kernel cache is damaged, delete %s and build again)", err, k.Tree)
	}
	set, err := ix.Resolve(wanted)
	if err != nil {
		return nil, fmt.Errorf("image-builder/image/modules.txt: %w", err)
	}
	return set, nil
}

// describeCommands names each command package and where it comes from.
func describeCommands(pkgs []string) []Command {
	cmds := make([]Command, 0, len(pkgs))
	for _, p := range pkgs {
		origin := "u-root"
		if strings.HasPrefix(p, module+"/") {
			origin = product
		}
		cmds = append(cmds, Command{Name: commandName(p), Package: p, Origin: origin})
	}
	return cmds
}

// required lists the paths the initramfs must hold for the profile to boot.
func required(p Profile, commands []Command, mods *kmod.Set) []string {
	want := []string{"init", "bin/uinit", "bin/sh", "bbin/bb", release.Path}
	for _, c := range commands {
		want = append(want, "bbin/"+c.Name)
	}
	if len(p.UinitArgs) > 0 {
		want = append(want, "etc/uinit.flags")
	}
	if mods != nil {
		dir := path.Join("lib/modules", mods.Release)
		for _, f := range []string{"modules.dep", "modules.alias", "modules.softdep", "modules.builtin", "modules.builtin.modinfo"} {
			want = append(want, path.Join(dir, f))
		}
		for _, m := range mods.Modules {
			want = append(want, path.Join(dir, m.Path+ModuleSuffix))
		}
	}
	return want
}

func moduleInfos(s *kmod.Set) []ModuleInfo {
	if s == nil {
		return []ModuleInfo{}
	}
	infos := make([]ModuleInfo, 0, len(s.Modules))
	for _, m := range s.Modules {
		deps := []string{}
		for _, d := range s.Deps(m.Name) {
			deps = append(deps, d.Name)
		}
		infos = append(infos, ModuleInfo{
			Name: m.Name, Path: m.Path + ModuleSuffix, Size: m.Size, Depends: deps,
			Wanted: slices.Contains(s.Wanted, m.Name),
		})
	}
	return infos
}

// summary prints the final table of artefacts.
func summary(w io.Writer, m *Manifest, dir string, manifestSize int, took time.Duration) {
	fmt.Fprintf(w, "\nbuilt the %s image %s (commit %s) in %s: %s\n", m.Profile, m.Version, m.Commit, seconds(took), dir)
	for _, a := range m.Artefacts {
		fmt.Fprintf(w, "  %-18s %10s  %11s bytes  sha256 %s\n", a.Name, mib(a.Size), thousands(a.Size), a.SHA256)
	}
	fmt.Fprintf(w, "  %-18s %10s  %11s bytes\n", ManifestName, mib(int64(manifestSize)), thousands(int64(manifestSize)))
}
