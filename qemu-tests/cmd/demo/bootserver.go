package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap"
	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

const (
	// bridgeName is the lab network's interface in the namespace, where bootstrapd listens.
	bridgeName = "lan"
	// The rule that approves the demo's box at first sight: QEMU's MACs all start with 52:54:00.
	ruleName     = "demo"
	ruleMACs     = "52:54:00"
	demoRole     = "vdi"
	demoSchool   = "demo-school"
	bootstrapPkg = "./bootstrap/cmd/bootstrapd"
	// maxSocketPath keeps the admin socket's path well under the 107 bytes a unix socket name may have:
	// bootstrapd binds a temporary name beside it, some 30 bytes longer, before renaming it into place.
	maxSocketPath = 70
	// cliTimeout bounds one `bootstrapd machines` call against the running server.
	cliTimeout = 10 * time.Second
)

// bootServer is bootstrapd as the demo runs it: built from this repository, with its binary,
// configuration, state folder and admin socket in the -logs folder, so that a newcomer can find them and
// run the CLI against the server from another terminal.
type bootServer struct {
	bin, config, state, socket string
	d                          *harness.Daemon // set by start
}

// newBootServer names bootstrapd's files in logDir, which should be absolute: the socket path is shown
// for use from another terminal, in another folder.
func newBootServer(logDir string) *bootServer {
	return &bootServer{
		bin:    filepath.Join(logDir, "bootstrapd"),
		config: filepath.Join(logDir, "bootstrap.json"),
		state:  filepath.Join(logDir, "bootstrapd-state"),
		socket: filepath.Join(logDir, "bootstrapd.sock"),
	}
}

// prepare does what needs no lab: it builds bootstrapd from the repository the demo runs in, writes its
// configuration, and publishes the image into a fresh state folder, so that every demo starts with an
// empty inbox. It returns the published image version.
func (bs *bootServer) prepare(ctx context.Context, image string) (string, error) {
	// The state folder is about to be emptied: not from under the bootstrapd of a demo that still runs.
	if c, err := net.DialTimeout("unix", bs.socket, time.Second); err == nil {
		c.Close()
		return "", fmt.Errorf("a bootstrapd already answers on %s: another demo is running with the same -logs folder; stop it first, or give this one another -logs", bs.socket)
	}
	if err := os.MkdirAll(filepath.Dir(bs.config), 0o755); err != nil {
		return "", fmt.Errorf("make the -logs folder for bootstrapd's files: %w", err)
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", bs.bin, bootstrapPkg)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s in %s: %w\n%s", bootstrapPkg, root, err, bytes.TrimSpace(out))
	}
	cfg, err := json.MarshalIndent(bootConfig(), "", "  ")
	if err != nil {
		return "", fmt.Errorf("bootstrapd's configuration: %w", err)
	}
	if err := os.WriteFile(bs.config, append(cfg, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write bootstrapd's configuration: %w (is the -logs folder writable?)", err)
	}
	if err := os.RemoveAll(bs.state); err != nil {
		return "", fmt.Errorf("empty bootstrapd's state folder of an earlier demo: %w (remove %s by hand)", err, bs.state)
	}
	var stdout, stderr bytes.Buffer
	publish := exec.CommandContext(ctx, bs.bin, "publish", "-state", bs.state, image)
	publish.Stdout, publish.Stderr = &stdout, &stderr
	if err := publish.Run(); err != nil {
		return "", fmt.Errorf("bootstrapd publish -state %s %s: %w\n%s", bs.state, image, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// start runs `bootstrapd serve` in the lab's namespace and waits until it serves. A server that does not
// start ends the demo through t.Fatalf, with the end of its log.
func (bs *bootServer) start(t harness.T, lab *harness.Lab) {
	bs.d = lab.Daemon(t, harness.DaemonConfig{
		Name:  "bootstrapd",
		Argv:  []string{bs.bin, "serve", "-config", bs.config, "-state", bs.state, "-socket", bs.socket},
		Ready: regexp.QuoteMeta(bootstrap.ReadyLine),
	})
}

// cli is the command line of `bootstrapd machines ARGS -socket S`, for the operator to paste.
func (bs *bootServer) cli(args ...string) string {
	return strings.Join(append(append([]string{bs.bin, "machines"}, args...), "-socket", bs.socket), " ")
}

// inbox runs `bootstrapd machines list` against the running server and returns its table.
func (bs *bootServer) inbox(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bs.bin, "machines", "list", "-socket", bs.socket).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", bs.cli("list"), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// moduleRoot is the folder of the go.mod that the go command finds from the working directory, checked to
// be this repository: bootstrapd is built from there.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w: is Go installed and on the PATH? (`make demo` puts /usr/local/go/bin on it)", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("the working directory is in no Go module: run the demo from the onecloud repository (`make demo` does)")
	}
	root := filepath.Dir(gomod)
	if fi, err := os.Stat(filepath.Join(root, bootstrapPkg)); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s is not the onecloud repository (it has no %s to build): run the demo from the onecloud repository", root, bootstrapPkg)
	}
	return root, nil
}

// bootConfig is bootstrapd's configuration for the lab: full mode on the lab bridge, so it is the lab's
// DHCP server (a pool of .100 to .199), and one rule that approves the demo's box at first sight, so that
// it boots into its role without a hand on it.
func bootConfig() bootstrap.Config {
	lan := netip.MustParsePrefix(labCIDR)
	at := func(n byte) netip.Addr { a := lan.Masked().Addr().As4(); a[3] = n; return netip.AddrFrom4(a) }
	return bootstrap.Config{
		Mode:    "full",
		Iface:   bridgeName,
		Address: lan.Addr(),
		Pools: []bootstrap.PoolConfig{{
			Subnet: lan.Masked(), First: at(100), Last: at(199), Router: lan.Addr(),
			Lease: bootstrap.JSONDuration(time.Hour),
		}},
		Rules:      []machines.Rule{{Name: ruleName, MACPrefixes: []string{ruleMACs}, Role: demoRole, School: demoSchool}},
		KernelArgs: cmdline,
	}
}

// boxFacts is what the box's console says about it: its address from the status screen's network line,
// and its id, enrolment state and role from the enrolment client's lines.
type boxFacts struct {
	addr  string // "10.77.0.142"
	id    string // "oc-525400ab12cd"
	state string // "approved", "pending" or "rejected"
	role  string // "vdi, school demo-school"; "none yet" before approval
}

var (
	networkLine = regexp.MustCompile(`Network: connected, (\d+\.\d+\.\d+\.\d+)/\d+ on eth0`)
	enrolLine   = regexp.MustCompile(`onecloud: enrolment (approved|pending|rejected), id ([^\s:(),]+)`)
	roleLine    = regexp.MustCompile(`(?m)^onecloud: role ([^\r\n]+)`)
)

// parseBoxFacts reads the facts from the console output; the latest line of each kind wins, since the
// screen is redrawn and the enrolment state may change.
func parseBoxFacts(console string) boxFacts {
	var f boxFacts
	if m := lastMatch(networkLine, console); m != nil {
		f.addr = m[1]
	}
	if m := lastMatch(enrolLine, console); m != nil {
		f.state, f.id = m[1], m[2]
	}
	if m := lastMatch(roleLine, console); m != nil {
		f.role = strings.TrimSpace(m[1])
	}
	return f
}

// complete reports whether the box is on the network and approved in its role.
func (f boxFacts) complete() bool {
	return f.addr != "" && f.id != "" && f.state == "approved" && f.role != "" && f.role != "none yet"
}

// missing says, for the operator, what the console has not shown yet.
func (f boxFacts) missing() string {
	var m []string
	if f.addr == "" {
		m = append(m, `its address ("Network: connected, ADDR/24 on eth0")`)
	}
	switch {
	case f.id == "":
		m = append(m, `its enrolment ("onecloud: enrolment approved, id ...")`)
	case f.state != "approved":
		m = append(m, fmt.Sprintf("its approval (the enrolment of %s is %s)", f.id, f.state))
	}
	if f.role == "" || f.role == "none yet" {
		m = append(m, `its role ("onecloud: role ...")`)
	}
	return strings.Join(m, ", ")
}

func lastMatch(re *regexp.Regexp, s string) []string {
	all := re.FindAllStringSubmatch(s, -1)
	if len(all) == 0 {
		return nil
	}
	return all[len(all)-1]
}
