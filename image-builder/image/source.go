package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Source is what the image is built from: the repository's version, commit
// and Go toolchain. Two builds with equal Sources give identical artefacts.
type Source struct {
	Dir     string // module root (holds go.mod and VERSION)
	Version string // from the VERSION file
	Commit  string // git commit, with "-dirty" when the work tree has changes
	Go      string // Go toolchain version, e.g. "go1.26.0"
}

var versionRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+~-]*$`)

// ReadSource reads the version, commit and toolchain of the module at dir.
// commit, when not empty, is used instead of asking git (for builds from a
// source tarball or in CI).
func ReadSource(ctx context.Context, dir, commit string) (Source, error) {
	s := Source{Dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, "VERSION"))
	if err != nil {
		return s, fmt.Errorf("read the version: %w", err)
	}
	s.Version = strings.TrimSpace(string(b))
	if !versionRE.MatchString(s.Version) {
		return s, fmt.Errorf("VERSION holds %q; it must be one version string such as 0.1.0", s.Version)
	}

	s.Commit = commit
	if s.Commit == "" {
		if s.Commit, err = gitCommit(ctx, dir); err != nil {
			return s, fmt.Errorf("cannot tell the commit (%w): build from a git checkout, or pass -commit or set ONECLOUD_COMMIT", err)
		}
	}

	out, err := command(ctx, dir, nil, "go", "env", "GOVERSION", "GOAMD64")
	if err != nil {
		return s, err
	}
	goVersion, amd64Level, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	s.Go = goVersion
	// The images must run on every amd64 machine, and the same source must
	// give the same bytes whoever builds it.
	if amd64Level != "v1" {
		return s, fmt.Errorf("GOAMD64 is %q: the image must run on any amd64 CPU; unset GOAMD64 (go env -u GOAMD64)", amd64Level)
	}
	return s, nil
}

// gitCommit is HEAD's commit, with "-dirty" when tracked files differ from it
// or untracked files exist (they may be built into the image too).
func gitCommit(ctx context.Context, dir string) (string, error) {
	// Reading must not write: git status would otherwise refresh the index,
	// changing the repository under other builds and editors.
	env := []string{"GIT_OPTIONAL_LOCKS=0"}
	head, err := command(ctx, dir, env, "git", "rev-parse", "HEAD")
	if err != nil {
		return "", err
	}
	status, err := command(ctx, dir, env, "git", "status", "--porcelain")
	if err != nil {
		return "", err
	}
	c := strings.TrimSpace(string(head))
	if len(bytes.TrimSpace(status)) > 0 {
		c += "-dirty"
	}
	return c, nil
}

// command runs name in dir and returns its standard output, or an error that
// carries its standard error.
func command(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%s is not installed: %w", name, err)
		}
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// ModuleRoot finds the root of the Go module that holds dir, where go.mod,
// VERSION and the command packages are.
func ModuleRoot(ctx context.Context, dir string) (string, error) {
	out, err := command(ctx, dir, nil, "go", "env", "GOMOD")
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("%s is not inside the onecloud Go module: run the image-builder from the repository", dir)
	}
	return filepath.Dir(gomod), nil
}
