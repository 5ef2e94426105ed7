package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Apt downloads packages with `apt-get download`, which fetches from the
// machine's configured Debian mirror and checks the package against the
// signed archive index on the way.
type Apt struct {
	// Update lets Download run `apt-get update` once (as root only) when
	// the package is not found, since a fresh machine may have no or stale
	// package lists. Without it a missing package is reported at once.
	Update bool
	Log    *slog.Logger
}

// Download implements Downloader.
func (a Apt) Download(ctx context.Context, pin Pin, dir string) (string, error) {
	if err := allowAptSandbox(dir); err != nil {
		return "", err
	}
	err := a.download(ctx, pin, dir)
	if errors.Is(err, ErrNotOnMirror) && a.Update && os.Geteuid() == 0 {
		a.Log.Info("package not in the apt lists, running apt-get update once", "package", pin.String())
		if uerr := UpdateLists(ctx); uerr != nil {
			return "", fmt.Errorf("%w (and apt-get update failed: %v)", err, uerr)
		}
		err = a.download(ctx, pin, dir)
	}
	if err != nil {
		return "", err
	}
	debs, err := filepath.Glob(filepath.Join(dir, "*.deb"))
	if err != nil || len(debs) != 1 {
		return "", fmt.Errorf("apt-get download left %d .deb files in %s, want 1", len(debs), dir)
	}
	return debs[0], nil
}

func (a Apt) download(ctx context.Context, pin Pin, dir string) error {
	err := run(ctx, dir, "apt-get", "download", pin.String())
	if err == nil {
		return nil
	}
	if notFound(err.Error()) {
		return fmt.Errorf("%w: %v", ErrNotOnMirror, err)
	}
	return err
}

// notFound recognises apt's messages for an unknown package or version.
func notFound(aptOutput string) bool {
	for _, s := range []string{
		"Unable to locate package",
		"' was not found",                // E: Version 'x' for 'pkg' was not found
		"Couldn't find any package by",   // glob or regex fallbacks
		"has no installation candidate",  // listed, but no version to fetch
		"Can't select candidate version", // apt-get's wording for some of the above
	} {
		if strings.Contains(aptOutput, s) {
			return true
		}
	}
	return false
}

// allowAptSandbox lets apt's unprivileged download user write into dir.
// apt-get run as root drops to the user _apt for downloading; if _apt cannot
// write the target directory apt falls back to downloading as root and warns
// about it. Handing the (fresh, private) directory to _apt keeps the sandbox.
func allowAptSandbox(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("_apt")
	if err != nil {
		return nil // no sandbox user on this system: apt runs as root anyway
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil
	}
	if err := os.Chown(dir, uid, -1); err != nil {
		return fmt.Errorf("let apt's _apt user write the download directory: %w", err)
	}
	return nil
}

// run runs a command in dir and returns an error carrying its output when it
// fails.
func run(ctx context.Context, dir, name string, args ...string) error {
	_, err := output(ctx, dir, name, args...)
	return err
}

// output runs a command in dir and returns its standard output. A failure
// carries the command line and its standard error, trimmed to what apt and
// dpkg print as errors when there are any.
func output(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	// Messages are matched in English whatever the operator's locale.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%s not found: this builder needs Debian's apt and dpkg tools (%w)", name, err)
		}
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, errorLines(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// errorLines keeps apt's "E:" lines when there are any, else the whole text.
func errorLines(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "E: ") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return strings.TrimSpace(s)
	}
	return strings.Join(keep, "; ")
}

// UpdateLists runs `apt-get update`, so that the package lists know what the
// mirror has today.
func UpdateLists(ctx context.Context) error {
	return run(ctx, "", "apt-get", "update")
}
