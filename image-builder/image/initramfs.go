package image

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/onecloud-edu/onecloud/image-builder/kmod"
	"github.com/onecloud-edu/onecloud/internal/release"
	"github.com/u-root/gobusybox/src/pkg/bb/findpkg"
	"github.com/u-root/gobusybox/src/pkg/golang"
	"github.com/u-root/mkuimage/cpio"
	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/mkuimage/uimage/builder"
	"github.com/u-root/mkuimage/uimage/initramfs"
	"github.com/u-root/uio/llog"
)

// goEnv is the Go build environment of every image: a static linux/amd64
// build, run from the module root so that our module's go.mod decides the
// versions of u-root and everything else.
func goEnv(moduleRoot string) *golang.Environ {
	return golang.Default(
		golang.WithGOOS("linux"),
		golang.WithGOARCH("amd64"),
		golang.DisableCGO(),
		golang.WithWorkingDir(moduleRoot),
	)
}

// resolveCommands expands the profile's command packages (and globs such as
// u-root's cmds/core/*) into a sorted list of package paths with `go list`.
func resolveCommands(ctx context.Context, moduleRoot string, patterns []string, log *slog.Logger) ([]string, error) {
	pkgs, err := findpkg.ResolveGlobs(urootLogger(ctx, log).AtLevel(slog.LevelInfo), goEnv(moduleRoot), findpkg.DefaultEnv(), patterns)
	if err != nil {
		return nil, fmt.Errorf("find the image's Go commands: %w", err)
	}
	sort.Strings(pkgs)
	return pkgs, nil
}

// ModuleSuffix ends the name of every kernel module in the image: they are
// stored compressed with zstd ("e1000.ko.zst"), as depmod names them.
const ModuleSuffix = ".zst"

// releaseFile is the image's release file, byte for byte: the firmware
// measures it (docs/measured-boot.md), so the copy beside the image
// (ReleaseOut) must be these bytes too.
func releaseFile(rel release.Info) ([]byte, error) {
	b, err := json.MarshalIndent(rel, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// skeleton is what the image holds besides the Go commands: u-root's default
// directories and device nodes, the release file, and the kernel modules
// (mods may be nil) with their index files. It is kept in memory with fixed
// modes and zero times so that nothing of the build machine (umask, file
// dates) reaches the image.
func skeleton(rel release.Info, mods *kmod.Set, modulesDir string) (*cpio.Archive, error) {
	a := uimage.DefaultRamfs()
	file := func(name string, data []byte) error {
		return a.WriteRecord(cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | 0o644}))
	}
	b, err := releaseFile(rel)
	if err != nil {
		return nil, err
	}
	if err := file(release.Path, b); err != nil {
		return nil, err
	}
	if mods == nil {
		return a, nil
	}
	dir := path.Join("lib/modules", mods.Release)
	// The modules are stored zstd-compressed (the firmware's loader unpacks
	// each as it loads it): the initramfs stays in RAM for as long as a
	// diskless terminal runs, and the kernel unpacks it at every boot, so
	// 22 MiB of mostly unused drivers are worth shrinking to a third.
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	if err != nil {
		return nil, err
	}
	defer zw.Close()
	for _, m := range mods.Modules {
		b, err := os.ReadFile(filepath.Join(modulesDir, m.Path))
		if err != nil {
			return nil, fmt.Errorf("read kernel module (if the kernel cache is damaged, delete it and build again): %w", err)
		}
		if err := file(path.Join(dir, m.Path+ModuleSuffix), zw.EncodeAll(b, nil)); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"modules.dep", mods.DepFile(ModuleSuffix)},
		{"modules.alias", mods.AliasFile()},
		{"modules.softdep", mods.SoftdepFile()},
	} {
		if err := file(path.Join(dir, f.name), f.data); err != nil {
			return nil, err
		}
	}
	// The firmware's loader reads these to know what needs no loading.
	for _, name := range []string{"modules.builtin", "modules.builtin.modinfo"} {
		b, err := os.ReadFile(filepath.Join(modulesDir, name))
		if err != nil {
			return nil, fmt.Errorf("kernel package: %w", err)
		}
		if err := file(path.Join(dir, name), b); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// buildInitramfs compiles the commands into one Go busybox with u-root's
// builder and writes the uncompressed initramfs, base plus busybox, to out.
// workDir receives the builder's generated sources and binary.
//
// The Go build cannot be cancelled half-way (the builder takes no context):
// ctx is checked before it starts.
func buildInitramfs(ctx context.Context, src Source, p Profile, commands []string, base *cpio.Archive, workDir, out string, log *slog.Logger) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// gobusybox passes -a, which makes go build recompile every package
	// on every build (the standard library included) instead of using
	// Go's build cache. The cache is keyed by content and -trimpath keeps
	// the temporary source paths out of it, so a cached package is the
	// same bytes as a recompiled one (an image built with an empty
	// GOCACHE was compared with a warm one: identical); the later
	// -a=false turns the flag off, saving about 100 s per build.
	godebug, err := defaultGODEBUG(ctx, src.Dir, commands[0])
	if err != nil {
		return err
	}
	buildOpts := &golang.BuildOpts{ExtraArgs: []string{
		"-a=false",
		// u-root's builder compiles the busybox in GOPATH mode, where the go
		// command gives a binary the GODEBUG defaults of Go 1.20: TLS 1.0,
		// 3DES and RSA key exchange on for servers, SHA-1 certificates
		// accepted, the old ServeMux patterns and timer channels. Our
		// commands are written for the Go of our go.mod, so the binary gets
		// that module's defaults, the way a module-mode build would. (These
		// ldflags replace the builder's "-s -w -buildid=", which they keep.)
		"-ldflags=-s -w -buildid= -X=runtime.godebugDefault=" + godebug,
	}}
	mods := []uimage.Modifier{
		uimage.WithReplaceEnv(goEnv(src.Dir)),
		uimage.WithCommands(buildOpts, &busybox{}, commands...),
		uimage.WithBaseArchive(base),
		uimage.WithInit(p.Init),
		uimage.WithUinit(p.Uinit, p.UinitArgs...),
		uimage.WithShell(p.Shell),
		uimage.WithTempDir(workDir),
		uimage.WithCPIOOutput(out),
		// Nothing is taken from the build machine's file system, so
		// there are no shared libraries to look for.
		uimage.WithSkipLDD(),
	}
	if err := uimage.Create(urootLogger(ctx, log), mods...); err != nil {
		return fmt.Errorf("build the initramfs with u-root's builder: %w", err)
	}
	return nil
}

// defaultGODEBUG is the GODEBUG default the go command gives a main package
// of our module: empty while go.mod names the Go release being used, a list
// of compatibility settings once go.mod lags behind it.
func defaultGODEBUG(ctx context.Context, moduleRoot, mainPkg string) (string, error) {
	out, err := command(ctx, moduleRoot, []string{"GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0"},
		"go", "list", "-f", "{{.DefaultGODEBUG}}", mainPkg)
	if err != nil {
		return "", fmt.Errorf("ask go for the module's GODEBUG defaults: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// busybox is u-root's busybox builder with one change: the binary's mode is
// set to 0755. go build creates it with 0777 minus the umask, which would
// make the image depend on the umask of whoever builds it.
type busybox struct {
	builder.GBBBuilder
}

// Build implements builder.Builder.
func (b *busybox) Build(l *llog.Logger, files *initramfs.Files, o builder.Opts) error {
	if err := b.GBBBuilder.Build(l, files, o); err != nil {
		return err
	}
	src, ok := files.Files[path.Join(b.DefaultBinaryDir(), "bb")]
	if !ok {
		return fmt.Errorf("u-root's builder did not produce bbin/bb")
	}
	return os.Chmod(src, 0o755)
}

// urootLogger sends u-root's log lines to slog one level lower than u-root
// gives them: its step-by-step chatter is for -v, its warnings stay visible
// as information.
func urootLogger(ctx context.Context, log *slog.Logger) *llog.Logger {
	return &llog.Logger{
		Level: slog.LevelDebug - 4,
		Sink: func(level slog.Level, format string, v ...any) {
			log.Log(ctx, level-4, fmt.Sprintf(format, v...))
		},
	}
}
