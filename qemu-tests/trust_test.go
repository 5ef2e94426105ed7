package qemutests

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	releasefile "github.com/onecloud-edu/onecloud/internal/release"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest/attesttest"
	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

// trustWait bounds what the cluster must see after a box is up: its
// attestation, a server node's join and promotion (etcd under TCG).
const trustWait = 5 * time.Minute

// TestTrust is the trust chain end to end, as in the machine room: a server
// node (`noded server`, which also serves network boot with its inbox in the
// cluster) is the cluster of one. The technician releases the image and
// declares three machines from their labels; their TPMs carry EK
// certificates from a test manufacturer CA that the cluster trusts.
//
//   - A server VM boots from the network, its firmware measures the image,
//     enrolment tells it the cluster, and it attests with its TPM, joins etcd
//     as the second member and is promoted to voter.
//   - A terminal VM attests and shows as Ready in `occtl nodes`.
//   - A second terminal boots an image that was published to the boot server
//     but never released: the cluster refuses it, and `occtl machines` says
//     why.
func TestTrust(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	img := builtImage(t, "image")
	dir := t.TempDir()
	bins := buildCommands(t, dir, "noded", "occtl", "bootstrapd")

	lab := harness.NewLab(t)
	lan := lab.Bridge(t, "lan", "10.77.21.1/24")
	addr := lan.Addr().Addr().String()

	// The TPM "manufacturer": one test CA, one chip per box.
	tpms := attesttest.NewFactory(filepath.Join(dir, "tpms"))
	ekCA := filepath.Join(dir, "ek-ca.pem")
	if err := os.WriteFile(ekCA, tpms.CA(t).PEM, 0o644); err != nil {
		t.Fatal(err)
	}

	// The first server node: `noded init`, the boot configuration, the
	// image published to its boot server, then `noded server`.
	state := filepath.Join(dir, "srv1")
	if out, err := exec.CommandContext(ctx, bins["noded"], "init", "-state", state, "-name", "srv1", "-addr", addr).CombinedOutput(); err != nil {
		t.Fatalf("noded init: %v\n%s", err, out)
	}
	cfg := fullMode(lan, nil)
	// Debug: the services' own lines (noded server, noded attest) reach the
	// serial console, and so a failed run's log under out/.
	cfg["iface"], cfg["address"], cfg["kernel_args"] = lan.Name(), addr, pxeArgs+" onecloud.loglevel=debug"
	cfgFile := filepath.Join(dir, "bootstrap.json")
	writeJSON(t, cfgFile, cfg)
	bootState := filepath.Join(state, "bootstrap") // noded's BootstrapState
	publish := func(imageDir string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, bins["bootstrapd"], "publish", "-state", bootState, imageDir).CombinedOutput(); err != nil {
			t.Fatalf("bootstrapd publish %s: %v\n%s", imageDir, err, out)
		}
	}
	publish(filepath.Dir(img.Kernel))
	lab.Daemon(t, harness.DaemonConfig{
		Name: "srv1",
		Argv: []string{bins["noded"], "server", "-state", state, "-name", "srv1", "-addr", addr,
			"-ek-ca", ekCA, "-bootstrap", cfgFile, "-bootstrap-socket", filepath.Join(dir, "bootstrap.sock")},
		Ready: `bootstrapd: serving`, ReadyTimeout: clusterWait,
	})
	occtl := func(args ...string) string {
		t.Helper()
		cmd := lab.Command(ctx, bins["occtl"], args...)
		cmd.Env = append(os.Environ(), "OCCTL_SERVER=https://"+addr+":9443", "OCCTL_DIR="+filepath.Join(state, "admin-admin"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("occtl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	// The technician releases the image and declares the boxes.
	occtl("release", "add", "-image", filepath.Dir(img.Kernel))
	type box struct {
		name, mac, serial, role string
		chip, memory            int
		vm                      *harness.VM
	}
	boxes := []*box{
		{name: "server", mac: "52:54:00:0c:21:02", serial: "SN-TRUST-SRV", role: "server", chip: 1, memory: 1024},
		{name: "term", mac: "52:54:00:0c:21:10", serial: "SN-TRUST-T1", role: "vdi", chip: 2, memory: 512},
		{name: "unreleased", mac: "52:54:00:0c:21:11", serial: "SN-TRUST-T2", role: "vdi", chip: 3, memory: 512},
	}
	for _, b := range boxes {
		occtl("declare", b.mac, "-role", b.role, "-serial", b.serial, "-school", "s01")
	}
	boot := func(b *box) {
		tpmState := filepath.Join(dir, b.name+"-tpm")
		tpms.ManufacturedState(t, b.chip, tpmState)
		b.vm = harness.Start(t, harness.Config{
			Name: b.name, Boot: harness.BootPXE, MemoryMB: b.memory,
			NICs:      []harness.NIC{{Bridge: lan, MAC: b.mac}},
			TPM:       &harness.TPM{StateDir: tpmState},
			ExtraArgs: []string{"-smbios", "type=1,serial=" + b.serial},
		})
	}
	srv, term, unreleased := boxes[0], boxes[1], boxes[2]
	boot(srv)
	boot(term)
	for _, b := range []*box{srv, term} {
		if _, err := b.vm.Console.Expect(ctx, `(?m)^onecloud: ready`, pxeTimeout); err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
	}
	// Both have their boot scripts, which pin the image they boot: a new
	// image, published but not released, now goes to the next box only.
	publish(unreleasedImage(t, filepath.Dir(img.Kernel), filepath.Join(dir, "unreleased-image")))
	boot(unreleased)

	for _, b := range boxes {
		if _, err := b.vm.Console.Seen(ctx, `onecloud: attesting to the cluster at https://`+addr+`:9443 as `+machineID(b.mac), pxeTimeout); err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
	}

	// The terminal is Ready.
	waitFor(t, "the terminal Ready in occtl nodes", func() (bool, string) {
		out := occtl("nodes", "-json")
		var l api.NodeList
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("occtl nodes -json: %v\n%s", err, out)
		}
		nodes := l.Nodes
		i := slices.IndexFunc(nodes, func(n api.Node) bool { return n.Name == machineID(term.mac) })
		return i >= 0 && nodes[i].State == api.NodeReady && nodes[i].Member == api.MemberNone, out
	})
	t.Logf("occtl nodes:\n%s", occtl("nodes"))
	// ... and its own screen says so.
	if _, err := term.vm.Console.Seen(ctx, `onecloud: attestation accepted, certificate until `, trustWait); err != nil {
		t.Error(err)
	}

	// The server VM is the second voting member.
	waitFor(t, "the server VM a voting member", func() (bool, string) {
		out := occtl("cluster", "status", "-json")
		var st api.ClusterStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("occtl cluster status -json: %v\n%s", err, out)
		}
		i := slices.IndexFunc(st.Members, func(m api.ClusterMember) bool { return m.Name == machineID(srv.mac) })
		return len(st.Members) == 2 && i >= 0 && st.Members[i].Role == api.MemberVoter && st.Healthy, out
	})
	t.Logf("occtl cluster status:\n%s", occtl("cluster", "status"))

	// The box on the unreleased image is refused, and the technician reads why.
	waitFor(t, "the unreleased image refused in occtl machines", func() (bool, string) {
		out := occtl("machines", "-json")
		var l api.MachineList
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("occtl machines -json: %v\n%s", err, out)
		}
		ms := l.Machines
		i := slices.IndexFunc(ms, func(m api.Machine) bool { return m.ID == machineID(unreleased.mac) })
		if i < 0 || ms[i].State != enrolapi.Approved {
			return false, out
		}
		a := ms[i].Attestation
		return a != nil && !a.Accepted && a.Reason == api.ReasonImageNotReleased, out
	})
	table := occtl("machines")
	t.Logf("occtl machines:\n%s", table)
	mustShow(t, table, machineID(unreleased.mac)+`.*image-not-released`)
	if _, err := unreleased.vm.Console.Seen(ctx, `onecloud: attestation REFUSED by the cluster: image-not-released`, trustWait); err != nil {
		t.Error(err)
	}
}

// buildCommands builds the named commands of this repository into dir.
func buildCommands(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	pkgs := map[string]string{"noded": "../noded/cmd/noded", "occtl": "../noded/cmd/occtl", "bootstrapd": "../bootstrap/cmd/bootstrapd"}
	bins := map[string]string{}
	for _, n := range names {
		bins[n] = filepath.Join(dir, n)
		if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bins[n], pkgs[n]).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", n, err, out)
		}
	}
	return bins
}

// waitFor polls cond every two seconds for trustWait; on time out it fails
// with what the last look showed.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(trustWait)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen:\n%s", what, trustWait, seen)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(2 * time.Second):
		}
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// unreleasedImage makes, in dir, the image at from with another release
// file: the same kernel, and the initramfs with one more cpio archive
// appended that replaces release.json (the kernel unpacks archives in order,
// the later file wins), as a rebuilt or tampered image would differ. The
// manifest is updated so that the boot server publishes it.
func unreleasedImage(t *testing.T, from, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var rel releasefile.Info
	readJSON(t, filepath.Join(from, "release.json"), &rel)
	rel.Version += "-unreleased"
	relBytes, err := json.MarshalIndent(rel, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	relBytes = append(relBytes, '\n')

	initrd, err := os.ReadFile(filepath.Join(from, "initramfs.cpio.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var extra bytes.Buffer
	zw := gzip.NewWriter(&extra)
	w := cpio.Newc.Writer(zw)
	if err := cpio.WriteRecordsAndDirs(w, []cpio.Record{cpio.StaticFile(releasefile.Path, string(relBytes), 0o644)}); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"initramfs.cpio.gz": append(initrd, extra.Bytes()...),
		"release.json":      relBytes,
	}
	kernel, err := os.ReadFile(filepath.Join(from, "vmlinuz"))
	if err != nil {
		t.Fatal(err)
	}
	files["vmlinuz"] = kernel

	var manifest map[string]any
	readJSON(t, filepath.Join(from, "manifest.json"), &manifest)
	manifest["version"] = rel.Version
	var artefacts []map[string]any
	for name, b := range files {
		sum := sha256.Sum256(b)
		artefacts = append(artefacts, map[string]any{"name": name, "size": len(b), "sha256": hex.EncodeToString(sum[:])})
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest["artefacts"] = artefacts
	writeJSON(t, filepath.Join(dir, "manifest.json"), manifest)
	return dir
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (rebuild the image: `make image`)", err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
