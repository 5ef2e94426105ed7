package qemutests

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/bootstrap/machines"
	"github.com/onecloud-edu/onecloud/firmware/measure"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest"
	"github.com/onecloud-edu/onecloud/noded/attest/tcptpm"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

// Timing of the fault test. etcd in `noded server` keeps its production
// timing (100 ms heartbeat, 1 s election), so every wait here is a few
// elections long.
const (
	clusterWait     = 60 * time.Second // a state the cluster must reach (formed, caught up)
	clusterProgress = 10               // acknowledged writes that show the cluster serves
	apiTimeout      = 4 * time.Second  // one cluster API request
	nodeReady       = `noded: server mode serving`
)

// clusterNode is one server node: a lab namespace of its own, cabled to the
// server network, with its state folder, swtpm and `noded server`. A node
// that joins is a machine (boot MAC, serial) named by its machine id.
type clusterNode struct {
	name, ip, state string
	mac, serial     string
	lab             *harness.Lab
	link            *harness.Link
	tpm             *harness.Daemon
	server          *harness.Daemon
	api             *api.Client
}

func (n *clusterNode) serverArgv(bin string) []string {
	return []string{bin, "server", "-state", n.state, "-name", n.name, "-addr", n.ip}
}

// TestCluster runs three server nodes as `noded server` processes, each in
// its own network namespace on one bridge, and checks that the cluster
// survives a killed node and a cut-off node without losing an acknowledged
// write: a checker writes releases through the cluster API all along, and
// every one it was told succeeded must be on every node at the end.
func TestCluster(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	bin := filepath.Join(dir, "noded")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "../noded/cmd/noded")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build noded: %v\n%s", err, out)
	}
	// The server network: a bridge in a namespace of its own, and a cable
	// from it to each node's namespace. Node 1 is the one `noded init`
	// makes; nodes 2 and 3 are machines that join, named by machine id.
	hub := harness.NewLab(t)
	net0 := hub.Bridge(t, "srvnet", "")
	nodes := make([]*clusterNode, 3)
	for i := range nodes {
		n := &clusterNode{name: "srv1", ip: fmt.Sprintf("10.78.0.%d", i+1)}
		if i > 0 {
			mac, err := machines.NormalizeMAC(fmt.Sprintf("52:54:00:78:00:%02x", i+1))
			if err != nil {
				t.Fatal(err)
			}
			n.mac, n.serial, n.name = mac, fmt.Sprintf("SN-CLUSTER-%d", i+1), machines.IDFor(mac)
		}
		n.state = filepath.Join(dir, n.name)
		n.lab = harness.NewLab(t)
		n.link = net0.Connect(t, n.lab, "eth0", n.ip+"/24")
		n.tpm = startNodeTPM(t, n, filepath.Join(dir, n.name+"-tpm"))
		nodes[i] = n
	}

	// Node 1 founds the cluster and holds its CA.
	initCmd := exec.CommandContext(ctx, bin, "init", "-state", nodes[0].state, "-name", nodes[0].name, "-addr", nodes[0].ip)
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("noded init: %v\n%s", err, out)
	}
	adminDir := filepath.Join(nodes[0].state, "admin-admin")
	caFile := filepath.Join(adminDir, pki.CACertFile)
	admin, err := tls.LoadX509KeyPair(filepath.Join(adminDir, "admin.crt"), filepath.Join(adminDir, "admin.key"))
	if err != nil {
		t.Fatalf("admin bundle from noded init: %v", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("admin bundle from noded init: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	connectAPI := func(n *clusterNode) {
		// The test process reaches each node's cluster API from inside
		// that node's namespace, so that it still reaches a node whose
		// cable is pulled, as a technician at its console would.
		c, err := api.NewClient(api.ClientConfig{
			Server:      "https://" + n.lab.Forward(t, net.JoinHostPort(n.ip, fmt.Sprint(api.DefaultPort))),
			ServerName:  n.ip,
			CA:          roots,
			Certificate: &admin,
			Timeout:     apiTimeout,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		n.api = c
	}
	nodes[0].server = nodes[0].lab.Daemon(t, harness.DaemonConfig{
		Name: nodes[0].name, Argv: nodes[0].serverArgv(bin), Ready: nodeReady, ReadyTimeout: clusterWait,
	})
	connectAPI(nodes[0])

	// Nodes 2 and 3 join as the product has them: the firmware measured
	// their image into their own TPM, the technician approved each machine
	// as a server node with its EK fingerprint and released the image, and
	// `noded server -join` attests through node 1, keeps the certificates
	// the cluster issues and joins etcd as a learner that is promoted.
	image, imageBytes := filepath.Join(dir, "server-image"), []byte("onecloud server image for TestCluster")
	if err := os.WriteFile(image, imageBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	imageSum := sha256.Sum256(imageBytes)
	if _, err := nodes[0].api.AddRelease(ctx, api.ReleaseRequest{SHA256: hex.EncodeToString(imageSum[:]), Name: "server-image"}); err != nil {
		t.Fatalf("release the server image: %v", err)
	}
	for _, n := range nodes[1:] {
		eventLog := filepath.Join(dir, n.name+"-measurements.log")
		ek, err := bootNodeTPM(ctx, t, n, image, eventLog)
		if err != nil {
			t.Fatalf("%s's TPM: %v", n.name, err)
		}
		// The technician declares the new server node from its label (MAC,
		// serial) and its EK fingerprint before it first boots.
		m, err := nodes[0].api.Declare(ctx, api.DeclareRequest{MAC: n.mac, Serial: n.serial,
			ApproveRequest: api.ApproveRequest{Role: api.RoleServer, EKHash: ek}})
		if err != nil || m.ID != n.name || m.State != enrolapi.Approved {
			t.Fatalf("declare %s as a server node: %+v, %v", n.name, m, err)
		}
		argv := append(n.serverArgv(bin), "-join", "https://"+net.JoinHostPort(nodes[0].ip, fmt.Sprint(api.DefaultPort)),
			"-ca", caFile, "-tpm", "tcp:127.0.0.1:2321", "-serial", n.serial, "-event-log", eventLog)
		n.server = n.lab.Daemon(t, harness.DaemonConfig{Name: n.name, Argv: argv, Ready: nodeReady, ReadyTimeout: clusterWait})
		connectAPI(n)
		if m, err := nodes[0].api.Machine(ctx, n.name); err != nil || m.Attestation == nil || !m.Attestation.Accepted {
			t.Errorf("%s joined, but the cluster shows no accepted attestation for it: %+v, %v", n.name, m.Attestation, err)
		}
		if _, err := os.Stat(filepath.Join(pki.Dir(n.state), pki.CAKeyFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s holds the cluster CA's key after joining (%v): only node 1 may", n.name, err)
		}
	}
	st := waitCluster(t, nodes[0], "three voting members, all healthy", func(st api.ClusterStatus) bool {
		return healthyVoters(st) == 3
	})
	t.Logf("cluster formed: leader %s, raft index %d", st.Leader, st.RaftIndex)

	// The checker writes through nodes 1 and 2, the majority while node 3
	// is cut off later; when one of them is dead it uses the other.
	chk := startChecker(t, nodes[0], nodes[1])
	chk.waitProgress(t, "the formed cluster")

	// Kill: a power cut on the leader, the hardest member to lose. The other
	// two are a majority; they elect a new leader and go on.
	victim := nodeNamed(nodes, st.Leader)
	if victim == nil {
		t.Fatalf("the leader %q is none of the nodes", st.Leader)
	}
	pid := victim.server.PID()
	victim.server.Kill()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("%s (pid %d) still exists after SIGKILL: %v", victim.name, pid, err)
	}
	t.Logf("killed the leader %s (pid %d)", victim.name, pid)
	chk.waitProgress(t, victim.name+" killed")
	for _, n := range nodes {
		if n == victim {
			continue
		}
		if _, err := n.api.AddRelease(ctx, release("through-"+n.name+"-while-"+victim.name+"-dead")); err != nil {
			t.Errorf("write through %s while %s is dead: %v (two of three members must serve)", n.name, victim.name, err)
		}
	}
	if err := victim.server.Start(ctx); err != nil {
		t.Fatalf("restart %s: %v", victim.name, err)
	}
	waitCluster(t, nodes[0], victim.name+" back, all healthy", func(st api.ClusterStatus) bool {
		return healthyVoters(st) == 3
	})

	// Cut: node 3's cable is pulled. It must refuse writes; nodes 1 and 2
	// go on.
	cut := nodes[2]
	if err := cut.link.SetUp(ctx, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("cut %s off (bridge port %s down)", cut.name, cut.link.Port())
	chk.waitProgress(t, cut.name+" cut off")
	// A write through the cut-off node cannot reach a majority. Give it the
	// time of a few elections so that it has noticed it is alone.
	time.Sleep(2 * time.Second)
	if r, err := cut.api.AddRelease(ctx, release("through-cut-off-"+cut.name)); err == nil {
		t.Errorf("%s accepted a write (%s) while cut off from the majority", cut.name, r.SHA256)
	} else {
		t.Logf("%s refused a write while cut off, as it must: %v", cut.name, err)
	}
	chk.waitProgress(t, cut.name+" cut off, after its refusal")
	majority := waitCluster(t, nodes[0], "the majority serving without "+cut.name, func(st api.ClusterStatus) bool {
		return st.Leader != "" && st.Leader != cut.name && healthyVoters(st) == 2
	})

	// Heal: the cable goes back and node 3 catches up with what the
	// majority wrote without it.
	if err := cut.link.SetUp(ctx, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("healed %s; it must reach raft index %d", cut.name, majority.RaftIndex)
	waitCluster(t, nodes[0], cut.name+" caught up", func(st api.ClusterStatus) bool {
		m, ok := member(st, cut.name)
		return healthyVoters(st) == 3 && ok && m.RaftIndex >= majority.RaftIndex
	})
	chk.waitProgress(t, "the healed cluster")

	acked := chk.stop()
	t.Logf("checker: %d writes acknowledged, %d attempts failed", len(acked), chk.failures())
	for _, n := range nodes {
		checkAllPresent(t, n, acked)
	}
	for _, n := range nodes {
		if err := syscall.Kill(n.tpm.PID(), 0); err != nil {
			t.Errorf("%s's swtpm (pid %d) is gone: %v", n.name, n.tpm.PID(), err)
		}
	}
}

// startNodeTPM starts the node's own swtpm, serving TPM commands on its
// namespace's loopback (port 2321, control 2322) as a board's TPM would be
// there for noded (`noded server -tpm tcp:127.0.0.1:2321`). It has no EK
// certificate, so the technician approves the machine with its EK hash.
func startNodeTPM(t *testing.T, n *clusterNode, state string) *harness.Daemon {
	t.Helper()
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	swtpm, err := exec.LookPath("swtpm")
	if err != nil {
		t.Fatalf("swtpm: %v (install the Debian package swtpm)", err)
	}
	d := n.lab.Daemon(t, harness.DaemonConfig{
		Name: n.name + "-swtpm",
		Argv: []string{swtpm, "socket", "--tpm2",
			"--tpmstate", "dir=" + state + ",mode=0600",
			"--server", "type=tcp,bindaddr=127.0.0.1,port=2321",
			"--ctrl", "type=tcp,bindaddr=127.0.0.1,port=2322",
			"--flags", "not-need-init,startup-clear",
			"--log", "level=1",
		},
		StopGrace: 2 * time.Second,
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := n.lab.Do(func() error {
			c, err := net.DialTimeout("tcp", "127.0.0.1:2321", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's swtpm does not listen on 127.0.0.1:2321: %v; its log: %s", n.name, err, d.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bootNodeTPM does to a joining node's swtpm what happens to a board's TPM
// before `noded server -join`: its firmware measures the image it boots
// into PCR 13 and writes the event log at eventLog, and the technician
// reads the EK fingerprint to approve the machine with, which it returns.
// The connection is closed before noded opens the TPM: swtpm serves one
// client at a time.
func bootNodeTPM(ctx context.Context, t *testing.T, n *clusterNode, image, eventLog string) (string, error) {
	conn, err := tcptpm.Dial(ctx, n.lab.Forward(t, "127.0.0.1:2321"))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	m, err := measure.NewMeasurer(ctx, measure.Device{TPM: conn}, eventLog, nil)
	if err != nil {
		return "", err
	}
	if err := m.MeasureFile(ctx, image, "slot-a/vmlinuz"); err != nil {
		return "", err
	}
	if err := m.Check(ctx); err != nil {
		return "", err
	}
	s, err := attest.New(conn, attest.Options{}).Begin(ctx, n.name, n.serial)
	if err != nil {
		return "", fmt.Errorf("read the EK: %w", err)
	}
	defer s.Close()
	return api.EKHash(s.Request().EKPublic)
}

// release is a release record named name, its digest derived from the name.
func release(name string) api.ReleaseRequest {
	sum := sha256.Sum256([]byte(name))
	return api.ReleaseRequest{SHA256: hex.EncodeToString(sum[:]), Name: name}
}

func healthyVoters(st api.ClusterStatus) int {
	n := 0
	for _, m := range st.Members {
		if m.Role == api.MemberVoter && m.Healthy && m.Name != "" {
			n++
		}
	}
	return n
}

func nodeNamed(nodes []*clusterNode, name string) *clusterNode {
	for _, n := range nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

func member(st api.ClusterStatus, name string) (api.ClusterMember, bool) {
	for _, m := range st.Members {
		if m.Name == name {
			return m, true
		}
	}
	return api.ClusterMember{}, false
}

// waitCluster polls the cluster status through n until ok, and fails the
// test with the last status seen if it does not come.
func waitCluster(t *testing.T, n *clusterNode, what string, ok func(api.ClusterStatus) bool) api.ClusterStatus {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	var last api.ClusterStatus
	var lastErr error
	for time.Now().Before(deadline) {
		st, err := n.api.ClusterStatus(t.Context())
		if err == nil && ok(st) {
			return st
		}
		last, lastErr = st, err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("waiting for %s: not within %s; last status through %s: %+v (error %v)", what, clusterWait, n.name, last, lastErr)
	return last
}

// checker writes release records, one after another, through the cluster
// API of a few nodes (the next one when a node fails), and remembers every
// write a node acknowledged.
type checker struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	acked  []string // digests
	failed int
}

func startChecker(t *testing.T, via ...*clusterNode) *checker {
	ctx, cancel := context.WithCancel(t.Context())
	c := &checker{cancel: cancel, done: make(chan struct{})}
	t.Cleanup(func() { c.stop() })
	go func() {
		defer close(c.done)
		for i := 0; ctx.Err() == nil; i++ {
			req := release(fmt.Sprintf("checker-%04d", i))
			for k := range via {
				n := via[(i+k)%len(via)]
				if _, err := n.api.AddRelease(ctx, req); err != nil {
					c.mu.Lock()
					c.failed++
					c.mu.Unlock()
					continue
				}
				c.mu.Lock()
				c.acked = append(c.acked, req.SHA256)
				c.mu.Unlock()
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return c
}

func (c *checker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.acked)
}

func (c *checker) failures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

// waitProgress fails the test unless clusterProgress more writes are
// acknowledged within clusterWait: the cluster serves.
func (c *checker) waitProgress(t *testing.T, phase string) {
	t.Helper()
	start := time.Now()
	want := c.count() + clusterProgress
	for c.count() < want {
		if time.Since(start) > clusterWait {
			t.Fatalf("%s: the cluster stopped taking writes (%d acknowledged, %d failed attempts in all)", phase, c.count(), c.failures())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%s: %d writes acknowledged in %s", phase, clusterProgress, time.Since(start).Round(time.Millisecond))
}

// stop ends the writes and returns the acknowledged ones.
func (c *checker) stop() []string {
	c.cancel()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.acked...)
}

// checkAllPresent reads the releases through n (a linearizable read, served
// from n's own copy once it has applied everything committed before the
// read) and reports every acknowledged write that is missing.
func checkAllPresent(t *testing.T, n *clusterNode, acked []string) {
	t.Helper()
	rels, err := n.api.Releases(t.Context())
	if err != nil {
		t.Errorf("read the releases through %s: %v", n.name, err)
		return
	}
	have := make(map[string]bool, len(rels))
	for _, r := range rels {
		have[r.SHA256] = true
	}
	var missing []string
	for _, sum := range acked {
		if !have[sum] {
			missing = append(missing, sum)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s lacks %d of %d acknowledged writes, e.g. %s", n.name, len(missing), len(acked), missing[0])
		return
	}
	t.Logf("%s holds all %d acknowledged writes (%d releases in all)", n.name, len(acked), len(rels))
}
