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
	"slices"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

const (
	// bridgeName is the lab network's interface in the namespace, where the server node serves network boot.
	bridgeName = "lan"
	// nodeName is the server node's name, given to `noded init` and `noded server`.
	nodeName = "srv1"
	// apiPort is the cluster API's port (api.DefaultPort), which occtl and the box's `noded attest` call.
	apiPort = api.DefaultPort
	// What the technician declares from the box's label before it first boots: its MAC (QEMU's range,
	// 52:54:00, "de" for demo), its serial number (also given to QEMU as the board's SMBIOS serial, which
	// the firmware reads and attests with), and the role and school it is approved in.
	boxMAC     = "52:54:00:de:00:01"
	boxSerial  = "SN-DEMO-0001"
	demoRole   = "vdi"
	demoSchool = "demo-school"
	// boxChip names the box's TPM in the test manufacturer's factory. Chip 0 is the one made with the CA,
	// so the demo runs swtpm_setup once.
	boxChip = 0
	// maxSocketPath keeps the boot server's admin socket's path well under the 107 bytes a unix socket
	// name may have: it binds a temporary name beside it, some 30 bytes longer, before renaming it into place.
	maxSocketPath = 70
	// cliTimeout bounds one occtl call against the running server node.
	cliTimeout = 30 * time.Second
	// nodeReadyTimeout bounds `noded server`'s start: etcd, the cluster API, then network boot.
	nodeReadyTimeout = 90 * time.Second
)

// The packages of the programs the demo builds from this repository.
const (
	nodedPkg      = "./noded/cmd/noded"
	occtlPkg      = "./noded/cmd/occtl"
	bootstrapdPkg = "./bootstrap/cmd/bootstrapd" // only for `bootstrapd publish`
)

// build is one program to build: its package, and the path of the binary.
type build struct{ pkg, bin string }

// serverNode is the cluster of one as the demo runs it: `noded server` with network boot, built from this
// repository, with its binaries, state folder (cluster CA, etcd, the admin bundle, the published image),
// boot configuration, admin socket and the box's TPM in the -logs folder, so that a newcomer can find them
// and run occtl against the cluster from another terminal.
type serverNode struct {
	nodedBin, occtlBin, bootstrapdBin string // the built programs
	// state is `noded init`'s state folder; bootState the boot server's inside it, where images are
	// published; adminDir the admin bundle that `noded init` wrote, which occtl uses.
	state, bootState, adminDir string
	config, socket             string // the boot configuration (-bootstrap) and its admin socket
	// ekCA is the test TPM manufacturer's CA (-ek-ca); tpms the factory that made it, and boxTPM the
	// box's TPM state, manufactured with an EK certificate from that CA.
	ekCA, tpms, boxTPM string

	d   *harness.Daemon // set by start
	lab *harness.Lab    // set by start
}

// newServerNode names the server node's files in logDir, which should be absolute: the paths are shown
// for use from another terminal, in another folder.
func newServerNode(logDir string) *serverNode {
	state := filepath.Join(logDir, "server-state")
	return &serverNode{
		nodedBin:      filepath.Join(logDir, "noded"),
		occtlBin:      filepath.Join(logDir, "occtl"),
		bootstrapdBin: filepath.Join(logDir, "bootstrapd"),
		state:         state,
		bootState:     filepath.Join(state, "bootstrap"),   // noded's BootstrapState
		adminDir:      filepath.Join(state, "admin-admin"), // `noded init`'s default admin bundle
		config:        filepath.Join(logDir, "bootstrap.json"),
		socket:        filepath.Join(logDir, "bootstrap.sock"),
		ekCA:          filepath.Join(logDir, "ek-ca.pem"),
		tpms:          filepath.Join(logDir, "tpm-factory"),
		boxTPM:        filepath.Join(logDir, "box-tpm"),
	}
}

// builds are the programs the server node needs, where they are built to.
func (n *serverNode) builds() []build {
	return []build{{nodedPkg, n.nodedBin}, {occtlPkg, n.occtlBin}, {bootstrapdPkg, n.bootstrapdBin}}
}

// prepare does what needs no lab: it builds noded, occtl and bootstrapd from the repository the demo runs
// in, makes a new cluster in a fresh state folder (`noded init`), so that every demo starts with an empty
// inbox, writes the boot configuration, and publishes the image to the node's boot server. It returns the
// published image version.
func (n *serverNode) prepare(ctx context.Context, image string) (string, error) {
	// The state folder is about to be emptied: not from under the server node of a demo that still runs.
	if c, err := net.DialTimeout("unix", n.socket, time.Second); err == nil {
		c.Close()
		return "", fmt.Errorf("a boot server already answers on %s: another demo is running with the same -logs folder; stop it first, or give this one another -logs", n.socket)
	}
	if err := os.MkdirAll(filepath.Dir(n.config), 0o755); err != nil {
		return "", fmt.Errorf("make the -logs folder for the server node's files: %w", err)
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	for _, b := range n.builds() {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s in %s: %w\n%s", b.pkg, root, err, bytes.TrimSpace(out))
		}
	}
	// An earlier demo's cluster, and its TPMs: a new CA and a new chip each time (swtpm_setup does not
	// overwrite a state, nor os.CopyFS a file).
	for _, dir := range []string{n.state, n.tpms, n.boxTPM} {
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("empty %s of an earlier demo: %w (remove it by hand)", dir, err)
		}
	}
	if _, err := runQuiet(ctx, n.nodedBin, "init", "-state", n.state, "-name", nodeName, "-addr", nodeAddr()); err != nil {
		return "", err
	}
	cfg, err := json.MarshalIndent(bootConfig(), "", "  ")
	if err != nil {
		return "", fmt.Errorf("the boot configuration: %w", err)
	}
	if err := os.WriteFile(n.config, append(cfg, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write the boot configuration: %w (is the -logs folder writable?)", err)
	}
	version, err := runQuiet(ctx, n.bootstrapdBin, "publish", "-state", n.bootState, image)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(version), nil
}

// runQuiet runs a program to its end and returns its stdout; its error names the command line and says
// what the program wrote on stderr.
func runQuiet(ctx context.Context, argv ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// tpmT is the harness's Session as attesttest's T, which also wants Fatal.
type tpmT struct{ *harness.Session }

func (t tpmT) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }

var _ attesttest.T = tpmT{}

// manufactureTPM plays the TPM manufacturer: a test CA, whose certificates the server node trusts
// (-ek-ca), and the box's TPM state with an EK certificate from it, for the box's swtpm. A failure ends
// the demo through s.Fatalf.
func (n *serverNode) manufactureTPM(s *harness.Session) {
	t := tpmT{s}
	factory := attesttest.NewFactory(n.tpms)
	if err := os.WriteFile(n.ekCA, factory.CA(t).PEM, 0o644); err != nil {
		s.Fatalf("demo: write the TPM manufacturer's CA for -ek-ca: %v", err)
	}
	factory.ManufacturedState(t, boxChip, n.boxTPM)
}

// start runs `noded server` with network boot in the lab's namespace and waits until it serves. A server
// that does not start ends the demo through t.Fatalf, with the end of its log.
func (n *serverNode) start(t harness.T, lab *harness.Lab) {
	n.lab = lab
	n.d = lab.Daemon(t, harness.DaemonConfig{
		Name: nodeName,
		Argv: []string{n.nodedBin, "server", "-state", n.state, "-name", nodeName, "-addr", nodeAddr(),
			"-ek-ca", n.ekCA, "-bootstrap", n.config, "-bootstrap-socket", n.socket},
		Ready:        regexp.QuoteMeta(bootstrap.ReadyLine),
		ReadyTimeout: nodeReadyTimeout,
	})
}

// nodeAddr is the server node's address on the lab network, the cluster API's and the boot server's.
func nodeAddr() string { return netip.MustParsePrefix(labCIDR).Addr().String() }

// apiURL is the cluster API, as occtl and the box call it.
func apiURL() string { return fmt.Sprintf("https://%s:%d", nodeAddr(), apiPort) }

// occtlEnv is what tells occtl which cluster to call and with which admin certificate.
func (n *serverNode) occtlEnv() []string {
	return []string{"OCCTL_SERVER=" + apiURL(), "OCCTL_DIR=" + n.adminDir}
}

// step is one of the technician's occtl commands, and what it does in a few words.
type step struct {
	what string
	args []string
}

// technicianSteps are the occtl commands a technician runs before the box first boots: release the image
// the boot server serves (the cluster accepts attestations of released images only), and declare the box
// from its label.
func technicianSteps(image string) []step {
	return []step{
		{"releases the image that the boot server serves", []string{"release", "add", "-image", image}},
		{"declares the box from its label", []string{"declare", boxMAC, "-role", demoRole, "-school", demoSchool, "-serial", boxSerial}},
	}
}

// occtl runs occtl with args inside the lab's namespace, where the cluster API is, and returns its output.
func (n *serverNode) occtl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	cmd := n.lab.Command(ctx, n.occtlBin, args...)
	cmd.Env = append(os.Environ(), n.occtlEnv()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("occtl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// occtlLine is the command line that runs occtl with args from another terminal, as root: in the lab's
// namespace (nsenter, as the harness does, since `ip netns exec` fails in a chroot), told the cluster and
// the admin bundle.
func (n *serverNode) occtlLine(lab string, args ...string) string {
	argv := []string{"nsenter", "--net=" + filepath.Join("/run/netns", lab), "env"}
	argv = append(append(append(argv, n.occtlEnv()...), n.occtlBin), args...)
	return strings.Join(argv, " ")
}

// nodeVerdict reads `occtl nodes -json` and says whether the cluster has the box, id, Ready in the demo's
// role: nil if so, else what it shows instead.
func nodeVerdict(nodesJSON []byte, id string) error {
	var l api.NodeList
	if err := json.Unmarshal(nodesJSON, &l); err != nil {
		return fmt.Errorf("occtl nodes -json: %w", err)
	}
	i := slices.IndexFunc(l.Nodes, func(n api.Node) bool { return n.Name == id })
	switch {
	case i < 0:
		return fmt.Errorf("the cluster has no node %s", id)
	case l.Nodes[i].State != api.NodeReady:
		return fmt.Errorf("the cluster has %s %s, not %s (%s)", id, l.Nodes[i].State, api.NodeReady, l.Nodes[i].Reason)
	case l.Nodes[i].Role != demoRole:
		return fmt.Errorf("the cluster has %s in role %q, not %q", id, l.Nodes[i].Role, demoRole)
	}
	return nil
}

// moduleRoot is the folder of the go.mod that the go command finds from the working directory, checked to
// be this repository: the server node's programs are built from there.
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
	for _, pkg := range []string{nodedPkg, occtlPkg, bootstrapdPkg} {
		if fi, err := os.Stat(filepath.Join(root, pkg)); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("%s is not the onecloud repository (it has no %s to build): run the demo from the onecloud repository", root, pkg)
		}
	}
	return root, nil
}

// bootConfig is the server node's boot configuration for the lab: full mode on the lab bridge, so it is
// the lab's DHCP server (a pool of .100 to .199). It has no rules: the box is declared with occtl, as a
// technician would from its label, and its inbox is the cluster's.
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
		KernelArgs: cmdline,
	}
}

// machineID is the id the cluster knows a box by: oc- and its boot MAC in hex.
func machineID(mac string) string { return "oc-" + strings.ReplaceAll(strings.ToLower(mac), ":", "") }

// boxFacts is what the box's console says about it: its address from the status screen's network line,
// its id, enrolment state and role from the enrolment client's lines, and the cluster's verdict on its
// attestation.
type boxFacts struct {
	addr        string // "10.77.0.142"
	id          string // "oc-525400ab12cd"
	state       string // "approved", "pending" or "rejected"
	role        string // "vdi, school demo-school"; "none yet" before approval
	attestation string // "accepted, certificate until ...", "REFUSED by the cluster: ..."; "" before any verdict
}

var (
	networkLine     = regexp.MustCompile(`Network: connected, (\d+\.\d+\.\d+\.\d+)/\d+ on eth0`)
	enrolLine       = regexp.MustCompile(`onecloud: enrolment (approved|pending|rejected), id ([^\s:(),]+)`)
	roleLine        = regexp.MustCompile(`(?m)^onecloud: role ([^\r\n]+)`)
	attestationLine = regexp.MustCompile(`(?m)^onecloud: attestation ([^\r\n]+)`)
)

// parseBoxFacts reads the facts from the console output; the latest line of each kind wins, since the
// screen is redrawn and the enrolment state and the attestation verdict may change.
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
	if m := lastMatch(attestationLine, console); m != nil {
		f.attestation = strings.TrimSpace(m[1])
	}
	return f
}

// complete reports whether the box is on the network and approved in its role.
func (f boxFacts) complete() bool {
	return f.addr != "" && f.id != "" && f.state == "approved" && f.role != "" && f.role != "none yet"
}

// attested reports whether the cluster accepted the box's attestation; refused, whether it refused it
// (the firmware asks again only minutes later).
func (f boxFacts) attested() bool { return strings.HasPrefix(f.attestation, "accepted") }
func (f boxFacts) refused() bool  { return strings.HasPrefix(f.attestation, "REFUSED") }

// missing says, for the operator, what the console has not shown yet of the box's approval in its role.
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
