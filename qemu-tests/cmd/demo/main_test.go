package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap"
)

func TestBeforeEscape(t *testing.T) {
	for _, c := range []struct {
		in, keys string
		leave    bool
	}{
		{"", "", false},
		{"ls\r", "ls\r", false},
		{"\x1b[A\x03", "\x1b[A\x03", false}, // an arrow key and Ctrl-C go to the box
		{"héllo", "héllo", false},
		{"\x1d", "", true},
		{"ab\x1dcd", "ab", true}, // what follows Ctrl-] is dropped
		{"\x1d\x1d", "", true},
	} {
		keys, leave := beforeEscape([]byte(c.in))
		if string(keys) != c.keys || leave != c.leave {
			t.Errorf("beforeEscape(%q) = %q, %v; want %q, %v", c.in, keys, leave, c.keys, c.leave)
		}
	}
}

// recorder is a fake Console.Send.
type recorder struct {
	sent []string
	err  error
}

func (r *recorder) send(_ context.Context, s string) error {
	r.sent = append(r.sent, s)
	return r.err
}

func TestForwardKeysStopsAtCtrlBracket(t *testing.T) {
	// One byte per read, as a person types, then a read holding Ctrl-] in its middle.
	in := io.MultiReader(iotest.OneByteReader(strings.NewReader("hi")), strings.NewReader("\r\x1dnot sent"), strings.NewReader("nor this"))
	var r recorder
	if err := forwardKeys(t.Context(), in, r.send); err != nil {
		t.Fatalf("forwardKeys = %v, want nil after Ctrl-]", err)
	}
	if got := strings.Join(r.sent, ""); got != "hi\r" {
		t.Errorf("sent %q, want %q", got, "hi\r")
	}
	if len(r.sent) != 3 {
		t.Errorf("sent %q: want one send per read, and none for the read that held only Ctrl-]", r.sent)
	}
}

func TestForwardKeysEndOfInput(t *testing.T) {
	var r recorder
	err := forwardKeys(t.Context(), strings.NewReader("abc"), r.send)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("forwardKeys = %v, want io.EOF when the terminal goes away", err)
	}
	if strings.Join(r.sent, "") != "abc" {
		t.Errorf("sent %q, want abc", r.sent)
	}
}

func TestForwardKeysSendFails(t *testing.T) {
	r := recorder{err: errors.New("QEMU has exited")}
	err := forwardKeys(t.Context(), strings.NewReader("abc\x1d"), r.send)
	if err == nil || !strings.Contains(err.Error(), "QEMU has exited") {
		t.Fatalf("forwardKeys = %v, want the send error", err)
	}
}

func TestScreenCookedMode(t *testing.T) {
	var out, errs bytes.Buffer
	s := newScreen(&out, &errs)
	s.say("booting %d box", 1)
	_, _ = s.guest().Write([]byte("login: "))
	s.say("ready") // the guest's line is unfinished: the host line starts on a new one
	_, _ = s.guest().Write([]byte("onecloud: ready\r\n"))
	s.say("leave")
	_, _ = io.WriteString(s.diagnostics(), "level=INFO msg=x\n")
	want := "demo: booting 1 box\nlogin: \ndemo: ready\nonecloud: ready\r\ndemo: leave\n"
	if out.String() != want {
		t.Errorf("stdout = %q, want %q", out.String(), want)
	}
	if errs.String() != "level=INFO msg=x\n" {
		t.Errorf("stderr = %q", errs.String())
	}
}

func TestScreenRawMode(t *testing.T) {
	var out, errs bytes.Buffer
	s := newScreen(&out, &errs)
	s.setRaw(true)
	_, _ = s.guest().Write([]byte("a\nb")) // the guest's bytes are never changed
	s.say("ready")
	_, _ = io.WriteString(s.diagnostics(), "one\ntwo\n")
	s.setRaw(false)
	s.say("done")
	if want := "a\nb\r\ndemo: ready\r\n"; out.String() != want+"demo: done\n" {
		t.Errorf("stdout = %q, want %q", out.String(), want+"demo: done\n")
	}
	if errs.String() != "one\r\ntwo\r\n" {
		t.Errorf("stderr = %q, want %q", errs.String(), "one\r\ntwo\r\n")
	}
}

func TestScreenNoticesLostOutput(t *testing.T) {
	var errs bytes.Buffer
	out := &failAfter{n: 1}
	s := newScreen(out, &errs)
	_, _ = s.guest().Write([]byte("one\r\n"))
	select {
	case <-s.lost:
		t.Fatal("lost after a write that worked")
	default:
	}
	if n, err := s.guest().Write([]byte("two\r\n")); n != 5 || err != nil {
		t.Errorf("guest write = %d, %v: want it to succeed for the serial log's sake", n, err)
	}
	s.say("and a host line") // a second failure must not close lost twice
	select {
	case <-s.lost:
	default:
		t.Fatal("a failed write to stdout did not close lost")
	}
}

// failAfter is a stdout whose reader goes away after n writes.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, syscall.EPIPE
	}
	f.n--
	return len(p), nil
}

func TestParseArgs(t *testing.T) {
	o, err := parseArgs(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := options{image: "out/image", timeout: defaultTimeout, logDir: "out/demo"}
	if o != want {
		t.Errorf("defaults = %+v, want %+v", o, want)
	}

	o, err = parseArgs([]string{"-image", "/srv/oc/out/image/", "-until-ready", "-timeout", "90s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want = options{image: "/srv/oc/out/image/", untilReady: true, timeout: 90 * time.Second, logDir: "/srv/oc/out/demo"}
	if o != want {
		t.Errorf("parsed %+v, want %+v", o, want)
	}

	o, err = parseArgs([]string{"-logs", "/tmp/d", "-timeout", "0"}, io.Discard)
	if err != nil || o.logDir != "/tmp/d" || o.timeout != 0 {
		t.Errorf("parsed %+v, %v; want logs /tmp/d and no timeout", o, err)
	}
}

func TestParseArgsRejects(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"out/image"}, `unexpected argument "out/image"`},
		{[]string{"-timeout", "-1s"}, "negative"},
		{[]string{"-timeout", "soon"}, "invalid value"},
		{[]string{"-image", ""}, "-image is empty"},
		{[]string{"-kvm"}, "not defined"},
	} {
		var stderr bytes.Buffer
		if _, err := parseArgs(c.args, &stderr); err == nil {
			t.Errorf("parseArgs(%q) accepted it", c.args)
		}
		if !strings.Contains(stderr.String(), c.says) {
			t.Errorf("parseArgs(%q) said %q, want it to say %q", c.args, stderr.String(), c.says)
		}
	}
	var stderr bytes.Buffer
	if _, err := parseArgs([]string{"-h"}, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "Ctrl-]") {
		t.Errorf("-h: %v, %q; want flag.ErrHelp and a usage that says how to leave", err, stderr.String())
	}
}

func TestPreflightMissingImage(t *testing.T) {
	dir := t.TempDir()
	node := newServerNode(dir)
	err := preflight(options{image: filepath.Join(dir, "image")}, node)
	if err == nil || !strings.Contains(err.Error(), "run `make image`") {
		t.Errorf("preflight without an image = %v, want it to say to run `make image`", err)
	}
	if os.Geteuid() != 0 && !strings.Contains(err.Error(), "sudo make demo") {
		t.Errorf("preflight as a user = %v, want it to say to run as root", err)
	}

	img := filepath.Join(dir, "image")
	if err := os.MkdirAll(img, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vmlinuz", "initramfs.cpio.gz"} {
		if err := os.WriteFile(filepath.Join(img, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An image from before release files: occtl release add -image needs release.json.
	if err := preflight(options{image: img}, node); err == nil || !strings.Contains(err.Error(), "release.json is missing") {
		t.Errorf("preflight with an image without release.json = %v, want it to name release.json", err)
	}
	if err := os.WriteFile(filepath.Join(img, "release.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := preflight(options{image: img}, node); err != nil && strings.Contains(err.Error(), "make image") {
		t.Errorf("preflight with an image still asks for one: %v", err)
	}
}

func TestInstalled(t *testing.T) {
	if !installed("sh") {
		t.Error(`installed("sh") = false`)
	}
	if installed("no-such-program-onecloud-demo") {
		t.Error("installed finds a program that does not exist")
	}
}

func TestSequenceFilter(t *testing.T) {
	for _, c := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"plain text", []string{"iPXE initialising devices...ok\r\n"}, "iPXE initialising devices...ok\r\n"},
		{"SeaBIOS's start", []string{"\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS\r\n"}, "\x1b[0mSeaBIOS\r\n"},
		{"colours stay", []string{"\x1b[0;1miPXE\x1b[0m"}, "\x1b[0;1miPXE\x1b[0m"},
		{"split across writes", []string{"a\x1b", "[?", "7lb\x1b[2", "Jc\x1b", "c"}, "abc"},
		{"a held start that is no dropped sequence", []string{"a\x1b[", "0mb"}, "a\x1b[0mb"},
		{"clear to end of line stays", []string{"\x1b[2K"}, "\x1b[2K"},
		{"escape at the very end is held", []string{"x\x1b"}, "x"},
	} {
		var f sequenceFilter
		var got []byte
		for _, w := range c.writes {
			got = append(got, f.filter([]byte(w))...)
		}
		if string(got) != c.want {
			t.Errorf("%s: filtered %q to %q, want %q", c.name, c.writes, got, c.want)
		}
	}
}

func TestScreenDropsSequencesNotTheLog(t *testing.T) {
	var out, errs, log bytes.Buffer
	s := newScreen(&out, &errs)
	guest := io.MultiWriter(s.guest(), &log)
	_, _ = io.WriteString(guest, "\x1bc\x1b[2JSeaBIOS\r\n")
	s.say("ready")
	if want := "SeaBIOS\r\ndemo: ready\n"; out.String() != want {
		t.Errorf("stdout = %q, want %q", out.String(), want)
	}
	if log.String() != "\x1bc\x1b[2JSeaBIOS\r\n" {
		t.Errorf("the serial log got %q, want the guest's bytes unchanged", log.String())
	}
}

// console is what a box's serial console shows around the ready line, cut down from a real demo.
const console = "Filename: http://10.77.0.1:8080/boot.ipxe\r\n" +
	"onecloud: role none yet\r\n" +
	"onecloud: enrolment pending, id oc-525400de0001: waiting for approval\r\n" +
	" Network: connected, 10.77.0.100/24 on eth0\r\n" +
	"   eth0     52:54:00:de:00:01 e1000   10.77.0.100/24 gw 10.77.0.1 dhcp 1h\r\n" +
	"onecloud: ready\r\n" +
	"onecloud: enrolment approved, id oc-525400de0001\r\n" +
	"onecloud: role vdi, school demo-school\r\n" +
	"onecloud: attesting to the cluster at https://10.77.0.1:9443 as oc-525400de0001 (noded attest)\r\n"

// The firmware's verdict lines (firmware/screen Attestation), as they follow the console above.
const (
	accepted   = "onecloud: attestation accepted, certificate until 2026-05-02 10:00 UTC, renewed in 16h0m0s\r\n"
	refused    = "onecloud: attestation REFUSED by the cluster: image-not-released: sha256:ab not released; asking again in 5m0s\r\n"
	unanswered = "onecloud: attestation cluster-unreachable: dial tcp 10.77.0.1:9443: connection refused, retrying in 30s\r\n"
)

func TestParseBoxFacts(t *testing.T) {
	approved := boxFacts{addr: "10.77.0.100", id: "oc-525400de0001", state: "approved", role: "vdi, school demo-school"}
	withVerdict := func(v string) boxFacts { f := approved; f.attestation = v; return f }
	for _, c := range []struct {
		name                        string
		console                     string
		want                        boxFacts
		complete, attested, refused bool
		missing                     string
	}{
		{"approved after ready, no verdict yet", console, approved, true, false, false, ""},
		{"attested", console + accepted,
			withVerdict("accepted, certificate until 2026-05-02 10:00 UTC, renewed in 16h0m0s"), true, true, false, ""},
		{"refused", console + refused,
			withVerdict("REFUSED by the cluster: image-not-released: sha256:ab not released; asking again in 5m0s"), true, false, true, ""},
		{"the cluster not answering yet", console + unanswered,
			withVerdict("cluster-unreachable: dial tcp 10.77.0.1:9443: connection refused, retrying in 30s"), true, false, false, ""},
		{"accepted after a refusal: the latest verdict wins", console + refused + accepted,
			withVerdict("accepted, certificate until 2026-05-02 10:00 UTC, renewed in 16h0m0s"), true, true, false, ""},
		{"the attesting line is no verdict", "onecloud: attesting to the cluster at https://10.77.0.1:9443 as oc-1 (noded attest)\r\n",
			boxFacts{}, false, false, false, "its enrolment"},
		{"a verdict mid-line is another program's", console + "noded: attestation accepted\r\n", approved, true, false, false, ""},
		{"pending", console[:strings.Index(console, "onecloud: ready")],
			boxFacts{addr: "10.77.0.100", id: "oc-525400de0001", state: "pending", role: "none yet"}, false, false, false, "its approval"},
		{"no network line", "onecloud: enrolment approved, id oc-1 (welcome)\r\nonecloud: role tci\r\n",
			boxFacts{id: "oc-1", state: "approved", role: "tci"}, false, false, false, "its address"},
		{"another NIC only", " Network: connected, 10.9.0.5/24 on eth1\r\n", boxFacts{}, false, false, false, "its enrolment"},
		{"nothing", "", boxFacts{}, false, false, false, "its role"},
		{"a later address wins", " Network: connected, 10.77.0.100/24 on eth0\r\n Network: connected, 10.77.0.101/24 on eth0\r\n",
			boxFacts{addr: "10.77.0.101"}, false, false, false, "its enrolment"},
	} {
		got := parseBoxFacts(c.console)
		if got != c.want {
			t.Errorf("%s: parseBoxFacts = %+v, want %+v", c.name, got, c.want)
		}
		if got.complete() != c.complete || got.attested() != c.attested || got.refused() != c.refused {
			t.Errorf("%s: complete, attested, refused = %v, %v, %v; want %v, %v, %v", c.name,
				got.complete(), got.attested(), got.refused(), c.complete, c.attested, c.refused)
		}
		if !strings.Contains(got.missing(), c.missing) || (c.complete && got.missing() != "") {
			t.Errorf("%s: missing() = %q, want it to name %q", c.name, got.missing(), c.missing)
		}
	}
}

func TestMachineID(t *testing.T) {
	if got := machineID(boxMAC); got != "oc-525400de0001" {
		t.Errorf("machineID(%s) = %q, want oc-525400de0001", boxMAC, got)
	}
	if got := machineID("52:54:00:AB:CD:EF"); got != "oc-525400abcdef" {
		t.Errorf("machineID of upper-case hex = %q, want oc-525400abcdef", got)
	}
}

func TestBootConfig(t *testing.T) {
	b, err := json.Marshal(bootConfig())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bootstrap.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// bootstrapd's own loader must take it, as `bootstrapd serve` will.
	cfg, err := bootstrap.LoadConfig(path)
	if err != nil {
		t.Fatalf("bootstrapd refuses the demo's configuration: %v\n%s", err, b)
	}
	if cfg.Mode != "full" || cfg.Iface != "lan" || cfg.Address.String() != "10.77.0.1" || cfg.KernelArgs != "console=ttyS0,115200" {
		t.Errorf("mode %q iface %q address %s kernel args %q: want full on lan at 10.77.0.1 with the serial console",
			cfg.Mode, cfg.Iface, cfg.Address, cfg.KernelArgs)
	}
	if len(cfg.Pools) != 1 {
		t.Fatalf("pools %+v: want one", cfg.Pools)
	}
	p := cfg.Pools[0]
	if p.Subnet.String() != "10.77.0.0/24" || p.First.String() != "10.77.0.100" || p.Last.String() != "10.77.0.199" || p.Router.String() != "10.77.0.1" {
		t.Errorf("pool %+v: want 10.77.0.100 to .199 in 10.77.0.0/24, router 10.77.0.1", p)
	}
	// The box is declared with occtl: a rule would approve it without the technician, and declared
	// machines in the file are refused by noded server (its inbox is the cluster's).
	if len(cfg.Rules) != 0 || len(cfg.Machines) != 0 {
		t.Errorf("rules %+v, machines %+v: want none", cfg.Rules, cfg.Machines)
	}
	if strings.Contains(string(b), `"rules"`) || strings.Contains(string(b), `"machines"`) {
		t.Errorf("the configuration names rules or machines: %s", b)
	}
}

func TestServerNodePaths(t *testing.T) {
	n := newServerNode("/srv/oc/out/demo")
	want := serverNode{
		nodedBin: "/srv/oc/out/demo/noded", occtlBin: "/srv/oc/out/demo/occtl", bootstrapdBin: "/srv/oc/out/demo/bootstrapd",
		state: "/srv/oc/out/demo/server-state", bootState: "/srv/oc/out/demo/server-state/bootstrap",
		adminDir: "/srv/oc/out/demo/server-state/admin-admin",
		config:   "/srv/oc/out/demo/bootstrap.json", socket: "/srv/oc/out/demo/bootstrap.sock",
		ekCA: "/srv/oc/out/demo/ek-ca.pem", tpms: "/srv/oc/out/demo/tpm-factory", boxTPM: "/srv/oc/out/demo/box-tpm",
	}
	if *n != want {
		t.Errorf("newServerNode = %+v, want %+v", *n, want)
	}
	var built []string
	for _, b := range n.builds() {
		built = append(built, b.pkg+" -> "+b.bin)
	}
	if wantBuilt := []string{
		"./noded/cmd/noded -> /srv/oc/out/demo/noded", "./noded/cmd/occtl -> /srv/oc/out/demo/occtl",
		"./bootstrap/cmd/bootstrapd -> /srv/oc/out/demo/bootstrapd",
	}; !slices.Equal(built, wantBuilt) {
		t.Errorf("builds = %q, want %q", built, wantBuilt)
	}
}

func TestOcctlCommandLines(t *testing.T) {
	n := newServerNode("/srv/oc/out/demo")
	env := []string{"OCCTL_SERVER=https://10.77.0.1:9443", "OCCTL_DIR=/srv/oc/out/demo/server-state/admin-admin"}
	if got := n.occtlEnv(); !slices.Equal(got, env) {
		t.Errorf("occtlEnv = %q, want %q", got, env)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nodes"}, "nsenter --net=/run/netns/ocq-1-2-ab env OCCTL_SERVER=https://10.77.0.1:9443 " +
			"OCCTL_DIR=/srv/oc/out/demo/server-state/admin-admin /srv/oc/out/demo/occtl nodes"},
		{[]string{"machines", "show", "oc-525400de0001"}, "nsenter --net=/run/netns/ocq-1-2-ab env OCCTL_SERVER=https://10.77.0.1:9443 " +
			"OCCTL_DIR=/srv/oc/out/demo/server-state/admin-admin /srv/oc/out/demo/occtl machines show oc-525400de0001"},
	} {
		if got := n.occtlLine("ocq-1-2-ab", c.args...); got != c.want {
			t.Errorf("occtlLine(%q) = %q, want %q", c.args, got, c.want)
		}
	}

	var steps [][]string
	for _, st := range technicianSteps("/srv/oc/out/image") {
		if st.what == "" {
			t.Errorf("step %q says nothing of what it does", st.args)
		}
		steps = append(steps, st.args)
	}
	want := [][]string{
		{"release", "add", "-image", "/srv/oc/out/image"},
		{"declare", "52:54:00:de:00:01", "-role", "vdi", "-school", "demo-school", "-serial", "SN-DEMO-0001"},
	}
	if !slices.EqualFunc(steps, want, slices.Equal) {
		t.Errorf("technicianSteps = %q, want %q", steps, want)
	}
}

func TestBoxQEMUArgs(t *testing.T) {
	want := []string{"-machine", "graphics=off", "-smbios", "type=1,serial=SN-DEMO-0001"}
	if got := boxQEMUArgs(); !slices.Equal(got, want) {
		t.Errorf("boxQEMUArgs = %q, want %q (SeaBIOS's serial console, and the declared serial in SMBIOS)", got, want)
	}
}

func TestNodeVerdict(t *testing.T) {
	const id = "oc-525400de0001"
	for _, c := range []struct {
		name, json, says string
	}{
		{"ready", `{"nodes":[{"name":"srv1","role":"server","state":"Ready","member":"voter"},` +
			`{"name":"oc-525400de0001","role":"vdi","school":"demo-school","state":"Ready","member":"none"}]}`, ""},
		{"absent", `{"nodes":[{"name":"srv1","role":"server","state":"Ready","member":"voter"}]}`, "no node oc-525400de0001"},
		{"no nodes", `{"nodes":[]}`, "no node"},
		{"refused", `{"nodes":[{"name":"oc-525400de0001","role":"vdi","state":"Refused","member":"none","reason":"image-not-released"}]}`,
			"Refused, not Ready (image-not-released)"},
		{"another role", `{"nodes":[{"name":"oc-525400de0001","role":"tci","state":"Ready","member":"none"}]}`, `role "tci"`},
		{"not JSON", "no cluster API at https://10.77.0.1:9443", "occtl nodes -json"},
	} {
		err := nodeVerdict([]byte(c.json), id)
		switch {
		case c.says == "" && err != nil:
			t.Errorf("%s: nodeVerdict = %v, want nil", c.name, err)
		case c.says != "" && (err == nil || !strings.Contains(err.Error(), c.says)):
			t.Errorf("%s: nodeVerdict = %v, want it to say %q", c.name, err, c.says)
		}
	}
}

func TestScreenSayLines(t *testing.T) {
	var out bytes.Buffer
	s := newScreen(&out, io.Discard)
	s.sayLines("NAME   STATE\noc-1   Ready\n")
	s.sayLines("\n") // nothing to show: no empty line
	if want := "demo:   NAME   STATE\ndemo:   oc-1   Ready\n"; out.String() != want {
		t.Errorf("stdout = %q, want %q", out.String(), want)
	}
}

func TestPreflightLongSocket(t *testing.T) {
	long := "/" + strings.Repeat("d", maxSocketPath)
	err := preflight(options{image: t.TempDir(), logDir: long}, newServerNode(long))
	if err == nil || !strings.Contains(err.Error(), "shorter -logs") {
		t.Errorf("preflight with -logs %s = %v, want it to ask for a shorter -logs folder", long, err)
	}
	if err := preflight(options{image: t.TempDir(), logDir: "/work/out/demo"}, newServerNode("/work/out/demo")); err != nil && strings.Contains(err.Error(), "-logs") {
		t.Errorf("preflight complains about a short -logs folder: %v", err)
	}
	const comma = "/tmp/demo,1"
	if err := preflight(options{image: t.TempDir(), logDir: comma}, newServerNode(comma)); err == nil || !strings.Contains(err.Error(), "has a comma") {
		t.Errorf("preflight with -logs %s = %v, want it to refuse the comma", comma, err)
	}
}

func TestAbsolute(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	o, err := absolute(options{image: "out/image", logDir: "/tmp/d/../e"})
	if err != nil {
		t.Fatal(err)
	}
	if o.image != filepath.Join(wd, "out/image") || o.logDir != "/tmp/e" {
		t.Errorf("absolute = image %q, logs %q; want %q and /tmp/e", o.image, o.logDir, filepath.Join(wd, "out/image"))
	}
}

func TestModuleRoot(t *testing.T) {
	if !installed("go") {
		t.Skip("no go command on the PATH")
	}
	root, err := moduleRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The test runs in qemu-tests/cmd/demo, three folders below the root.
	wd, _ := os.Getwd()
	if want := filepath.Dir(filepath.Dir(filepath.Dir(wd))); root != want {
		t.Errorf("moduleRoot = %q, want %q", root, want)
	}

	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{t.TempDir(), other} { // in no module; in another module
		t.Chdir(dir)
		if _, err := moduleRoot(t.Context()); err == nil || !strings.Contains(err.Error(), "from the onecloud repository") {
			t.Errorf("moduleRoot in %s = %v, want it to say to run the demo from the onecloud repository", dir, err)
		}
	}
}

func TestPrepareRefusesWhileAnotherDemoRuns(t *testing.T) {
	dir := t.TempDir()
	n := newServerNode(dir)
	l, err := net.Listen("unix", n.socket) // a running server node's boot admin socket
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	state := filepath.Join(n.state, "pki", "ca.crt")
	if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = n.prepare(t.Context(), filepath.Join(dir, "image"))
	if err == nil || !strings.Contains(err.Error(), "another demo is running") {
		t.Errorf("prepare with a live socket = %v, want it to say another demo is running", err)
	}
	if !isFile(state) {
		t.Error("prepare emptied the state folder of the running server")
	}
}
