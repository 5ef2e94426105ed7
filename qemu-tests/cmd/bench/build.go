package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/image-builder/image"
	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

// imageSpec is one of the two images the bench builds and boots.
type imageSpec struct {
	Name    string // "onecloud" or "bare", as the table shows it
	Profile string // the image-builder subcommand: "build" or "bare"
	Dir     string // where it is built, and booted from
	Marker  string // the console line that ends its boot
	// MAC is its NIC's address, the same on every boot so that every boot gets the same lease from
	// dnsmasq, as a box that reboots does.
	MAC string
}

// Build is one timed image build.
type Build struct {
	Image   string  `json:"image"`
	Caches  string  `json:"caches"` // "cold", "first" (real caches, untimed in the table) or "warm"
	Seconds float64 `json:"seconds"`
	// Steps are the builder's own steps with their durations, as it printed them.
	Steps []Step `json:"steps"`
	Log   string `json:"log"`
	// SameAsWarm says, for the cold build, whether its initramfs has the SHA-256 of the warm build's: the
	// build is meant to be reproducible whatever the state of the caches.
	SameAsWarm *bool `json:"same_as_warm,omitempty"`
}

// Step is one step of the builder's progress report ("[5/8] build Go busybox ... 15.8s").
type Step struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// cachesText describes Build.Caches for people.
func cachesText(caches string) string {
	switch caches {
	case "cold":
		return "empty Go build and kernel caches"
	case "first":
		return "real caches, first build"
	case "warm":
		return "real caches, second build"
	}
	return caches
}

// step returns the duration of the first step whose name starts with prefix, or -1.
func (b Build) step(prefix string) float64 {
	for _, s := range b.Steps {
		if strings.HasPrefix(s.Name, prefix) {
			return s.Seconds
		}
	}
	return -1
}

// builder runs the image-builder command, compiled once into a temporary folder: running it through
// `go run` would add the compile time of the builder itself to every build, and with an empty GOCACHE
// that would be most of it.
//
// The builder cannot be stopped half-way (u-root's Go build takes no context), so on Ctrl-C the bench
// kills it with everything it started (see command). For that to leave nothing behind, everything a build
// writes goes to folders the bench removes: its temporary files (TMPDIR), the cold build's caches, and
// its output, which replaces the image's folder only once the build has succeeded.
type builder struct {
	bin    string
	root   string // the module root the builder runs in
	logDir string
	stderr io.Writer // the builder's progress is shown as it runs
	log    *slog.Logger
	sess   *harness.Session
}

// newBuilder compiles the image-builder command.
func newBuilder(ctx context.Context, sess *harness.Session, root, logDir string, stderr io.Writer, log *slog.Logger) (*builder, error) {
	b := &builder{root: root, logDir: logDir, stderr: stderr, log: log, sess: sess}
	dir, err := b.tempDir("", "onecloud-bench-")
	if err != nil {
		return nil, err
	}
	b.bin = filepath.Join(dir, "image-builder")
	log.Info("compiling the image-builder command (not timed)")
	cmd := command(ctx, "go", "build", "-o", b.bin, "./image-builder/cmd/image-builder")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("compile image-builder: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return b, nil
}

// measureBuilds makes the builds of the table: the cold one if asked, then each image twice with the
// real caches, timing the second.
func (b *builder) measureBuilds(ctx context.Context, ours, bare imageSpec, cold bool) ([]Build, error) {
	var builds []Build
	var coldSum string
	if cold {
		// World-readable, as the real cache is: apt-get downloads the kernel as its _apt user.
		caches, err := b.tempDir("", "onecloud-bench-cold-")
		if err != nil {
			return nil, err
		}
		env := []string{"GOCACHE=" + filepath.Join(caches, "go-build")}
		c, err := b.build(ctx, ours, "cold", filepath.Join(caches, "onecloud"), env)
		if err != nil {
			return nil, err
		}
		if coldSum, err = initramfsSHA256(ours.Dir); err != nil {
			return nil, err
		}
		// The empty caches have served; they now hold a gigabyte of compiled packages.
		if err := os.RemoveAll(caches); err != nil {
			b.log.Warn("cannot remove the cold build's caches", "dir", caches, "err", err)
		}
		builds = append(builds, c)
	}
	for _, img := range []imageSpec{ours, bare} {
		for _, caches := range []string{"first", "warm"} {
			w, err := b.build(ctx, img, caches, image.DefaultCacheDir(), nil)
			if err != nil {
				return nil, err
			}
			builds = append(builds, w)
		}
	}
	if cold {
		warmSum, err := initramfsSHA256(ours.Dir)
		if err != nil {
			return nil, err
		}
		same := coldSum == warmSum
		builds[0].SameAsWarm = &same
		if !same {
			b.log.Warn("the cold and the warm build gave different initramfs bytes: the build is not reproducible across cache states",
				"cold", coldSum, "warm", warmSum)
		}
	}
	return builds, nil
}

// build runs one image build, with the given downloads cache and extra environment, and times it; the
// image then replaces img.Dir. The builder's progress goes to the terminal and to
// logs/build-<image>-<caches>.log.
func (b *builder) build(ctx context.Context, img imageSpec, caches, cacheDir string, env []string) (Build, error) {
	res := Build{Image: img.Name, Caches: caches, Log: filepath.Join(b.logDir, fmt.Sprintf("build-%s-%s.log", img.Name, caches))}
	tmp, err := b.tempDir("", "onecloud-bench-build-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	// Beside img.Dir, so that the rename below stays on one file system.
	out, err := b.tempDir(filepath.Dir(img.Dir), "."+filepath.Base(img.Dir)+"-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(out)
	logFile, err := os.Create(res.Log)
	if err != nil {
		return res, err
	}
	defer logFile.Close()
	var output strings.Builder
	b.log.Info("building", "image", img.Name, "caches", cachesText(caches), "log", res.Log)

	cmd := command(ctx, b.bin, img.Profile, "-o", out, "-cache", cacheDir)
	cmd.Dir = b.root
	cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp), env...)
	cmd.Stdout = io.MultiWriter(b.stderr, logFile, &output)
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	err = cmd.Run()
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		fmt.Fprintln(b.stderr) // the builder may have stopped in the middle of a progress line
		if ctx.Err() != nil {
			return res, fmt.Errorf("the %s build (%s) was interrupted: %w", img.Name, cachesText(caches), ctx.Err())
		}
		return res, fmt.Errorf("the %s build (%s) failed: %w; its output is in %s", img.Name, cachesText(caches), err, res.Log)
	}
	res.Steps = parseSteps(output.String())
	if err := os.RemoveAll(img.Dir); err != nil {
		return res, fmt.Errorf("replace the %s image: %w", img.Name, err)
	}
	if err := os.Rename(out, img.Dir); err != nil {
		return res, fmt.Errorf("replace the %s image: %w", img.Name, err)
	}
	return res, nil
}

// tempDir makes a fresh folder in dir (the temporary folder if ""), readable by all as the builder's
// outputs and caches are, and removed when the session closes if it is still there.
func (b *builder) tempDir(dir, pattern string) (string, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
	}
	d, err := os.MkdirTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	b.sess.Cleanup(func() { os.RemoveAll(d) })
	return d, os.Chmod(d, 0o755)
}

// initramfsSHA256 is the digest the manifest in dir records for the initramfs.
func initramfsSHA256(dir string) (string, error) {
	m, err := image.ReadManifest(dir)
	if err != nil {
		return "", err
	}
	for _, a := range m.Artefacts {
		if a.Name == "initramfs.cpio.gz" {
			return a.SHA256, nil
		}
	}
	return "", fmt.Errorf("the manifest in %s lists no initramfs.cpio.gz", dir)
}

var (
	// stepStart is the start of a step line of the builder's progress report: "[5/8] build Go busybox ... ".
	stepStart = regexp.MustCompile(`(?m)^\[\d+/\d+\] (.*?) \.\.\. `)
	// stepEnd is its duration, printed right after it, or at the start of a later line when a log line
	// came in between.
	stepEnd = regexp.MustCompile(`(?m)(?:\A|^)(\d+\.\d+)s(?:,|$)`)
)

// parseSteps reads the step durations out of the builder's output. A step whose duration cannot be found
// is left out: the step times are a breakdown for the reader, the total is measured here.
func parseSteps(out string) []Step {
	var steps []Step
	starts := stepStart.FindAllStringSubmatchIndex(out, -1)
	for i, s := range starts {
		rest := out[s[1]:]
		if i+1 < len(starts) {
			rest = out[s[1]:starts[i+1][0]]
		}
		m := stepEnd.FindStringSubmatch(rest)
		if m == nil {
			continue
		}
		secs, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		steps = append(steps, Step{Name: out[s[2]:s[3]], Seconds: secs})
	}
	return steps
}

// command is exec.CommandContext for a child that starts others (go build starts compilers): the child
// gets a process group of its own, so that a Ctrl-C on the terminal reaches only the bench, and when ctx
// ends the whole group is killed. SIGKILL, because the image-builder finishes its Go build before it
// looks at a SIGINT or SIGTERM, which takes minutes; what it leaves is in folders the bench removes.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		// The group is the child's own, and the child is not reaped yet, so its id is not reused.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = 5 * time.Second // for the output pipes, should a grandchild still hold them
	return cmd
}
