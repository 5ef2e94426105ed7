// Command demo shows the zero-touch path of onecloud on the cluster: a server node (`noded server`), the
// cluster of one, which also serves network boot, and one blank terminal that boots from it over the
// network, with its serial console on this terminal. It is what `make demo` runs after building the image,
// so that someone new to the project sees, a few minutes after cloning it, a technician release the image
// and declare a box from its label with occtl, then the box, with nothing on it, fetch our firmware from
// the network, get approved as declared, come up in its role and prove to the cluster with its TPM what it
// runs: iPXE fetching the boot script, kernel and initramfs from the server node, the firmware's boot
// steps, "onecloud: enrolment approved", its role, "onecloud: ready", "onecloud: attestation accepted", and
// the box Ready in `occtl nodes`.
//
// Its steps; every file is in the -logs folder (out/demo/ by default):
//
//  1. It builds noded, occtl and bootstrapd (used only for `bootstrapd publish`) from this repository, from
//     the root that `go env GOMOD` names.
//  2. It makes a new cluster in a fresh state folder (`noded init -state server-state -name srv1 -addr
//     10.77.0.1`, whose admin bundle is server-state/admin-admin/), writes the boot configuration
//     (bootstrap.json: full mode on the lab bridge, a DHCP pool of .100 to .199, no rules: the box is
//     declared) and publishes the image (out/image) to the node's boot server (`bootstrapd publish -state
//     server-state/bootstrap`).
//  3. It plays the TPM manufacturer, as noded/attest/attesttest does for the tests: a test CA (ek-ca.pem)
//     and the box's TPM state (box-tpm/) with an EK certificate from it.
//  4. On the QEMU tests' harness (qemu-tests/harness), used outside go test through a Session, it makes a
//     lab network namespace with one bridge (lan, 10.77.0.1/24) and runs there `noded server -bootstrap
//     bootstrap.json -ek-ca ek-ca.pem -bootstrap-socket bootstrap.sock`: the cluster API on port 9443 and
//     network boot (DHCP, TFTP, HTTP), the enrolment inbox in the cluster (etcd).
//  5. As the technician would from the box's label, it releases the image (`occtl release add -image`) and
//     declares the box (`occtl declare 52:54:00:de:00:01 -role vdi -school demo-school -serial
//     SN-DEMO-0001`), occtl running in the lab's namespace with the admin bundle.
//  6. The box boots by PXE: SeaBIOS and the iPXE ROM of an e1000 NIC with the declared MAC, the declared
//     serial in its SMBIOS, a software TPM 2.0 (swtpm) on the manufactured state, a blank 64 MiB qcow2
//     disk. Its enrolment answer names the cluster API and CA, and its firmware starts `noded attest`.
//  7. When the box is ready the demo prints its address, id and role, waits up to 2 minutes for the
//     cluster's verdict on its attestation ("onecloud: attestation accepted" on its console), checks that
//     the cluster has it Ready in its role, and prints `occtl nodes` and `occtl machines`. While the demo
//     runs, occtl works from another terminal too, in the lab's namespace, as the demo says: `nsenter
//     --net=/run/netns/LAB env OCCTL_SERVER=https://10.77.0.1:9443 OCCTL_DIR=out/demo/server-state/admin-admin
//     out/demo/occtl nodes` (or `ip netns exec LAB ...` outside a chroot).
//
// When stdin is a terminal it is put in raw mode and what is typed goes to the box's console, as with
// telnet; Ctrl-] leaves. Leaving (Ctrl-], SIGINT, SIGTERM, a terminal that hangs up, or the box powering
// off by itself) restores the terminal, switches the box off, removes the lab (namespace, bridge, tap,
// noded, swtpm, QEMU) and ends with a one-line summary. A ready box gets the ACPI power button and 20 s to
// power off in order before its power is cut (a second Ctrl-C cuts it at once); a box that is not ready yet
// has its power cut at once, since its disk and TPM are scratch anyway. The box's serial output is kept in
// box.serial.log in the -logs folder, to scroll back through.
//
// When stdin is not a terminal (CI, a pipe) it is left alone: the demo runs until the box is ready, says
// so, and keeps the box running until SIGINT or SIGTERM. With -until-ready it stops as soon as the box is
// ready and attested and the cluster's tables have been shown, which is how the demo itself is tested,
// also on a fresh machine.
//
// Usage, as root (`make demo` builds the image first):
//
//	go run ./qemu-tests/cmd/demo [-image out/image] [-until-ready] [-timeout 5m] [-logs out/demo]
//
// The exit status is 0 when the demo did what it should; 1 when a program could not be built, the cluster
// could not be made or started, the technician's occtl steps failed, the box failed to become ready in its
// role or (with -until-ready) to be attested and Ready in the cluster, did not power off in order, or the
// lab could not be removed; and 2 for bad arguments.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

const (
	// labCIDR is the server node's address on the box's network, the lab bridge: it hands out .100 to .199.
	labCIDR = "10.77.0.1/24"
	// cmdline is what the boot server adds to the box's kernel command line: the kernel's and the firmware's
	// console on the serial port, which is this terminal.
	cmdline = "console=ttyS0,115200"
	// readyPattern is the firmware's line for "has an address and noded answers".
	readyPattern = `(?m)^onecloud: ready`
	// powerOffLine is what the firmware prints when it powers off in order.
	powerOffLine = "onecloud: power off"
	// defaultTimeout bounds the boot to ready; a PXE boot takes 60 to 80 s under TCG (the NIC ROM's DHCP,
	// the iPXE script, some 18 MB over HTTP, then our boot).
	defaultTimeout = 5 * time.Minute
	// stopGrace is how long the box has to power off in order after the ACPI power button before QEMU is
	// killed. The firmware needs a few seconds under TCG; the harness's default of 30 s is long to wait
	// in front of a terminal.
	stopGrace = 20 * time.Second
	// stopTimeout bounds the whole stop, including the kill after the grace.
	stopTimeout = stopGrace + 30*time.Second
	// factsWait bounds the wait, once the box is ready, for its console to show its approval and role:
	// the firmware prints them and the ready line in either order, normally within a second.
	factsWait = 30 * time.Second
	// attestWait bounds the wait, once the box is approved in its role, for the cluster's verdict on its
	// attestation: its firmware starts noded attest after enrolment, and a quote under TCG takes seconds.
	attestWait = 2 * time.Minute
	// consolePoll is how often the box's console is read for its facts.
	consolePoll = 250 * time.Millisecond
	// serialLogName is the file, in the -logs folder, that keeps the box's serial output.
	serialLogName = "box.serial.log"
)

func main() { os.Exit(run(os.Args[1:])) }

// leaveSignals are the signals that end the demo in order: Ctrl-C outside raw mode, kill, and a
// terminal that hangs up.
func leaveSignals() []os.Signal { return []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP} }

// run is the whole demo, from the arguments to the summary; it returns the exit status. Failures inside
// the harness's constructors (NewLab, Bridge, Daemon, Start) end the program through Session.Fatalf,
// which removes what was made and exits with status 1: that is why the terminal goes raw only after the
// box has started.
func run(args []string) int {
	opts, err := parseArgs(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // parseArgs has said what was wrong
	}
	if opts, err = absolute(opts); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 1
	}
	node := newServerNode(opts.logDir)
	if err := preflight(opts, node); err != nil {
		fmt.Fprintf(os.Stderr, "demo: cannot start:\n%v\n", err)
		return 1
	}

	// SIGINT, SIGTERM and SIGHUP (the terminal hung up) end the demo in order; by default they would kill
	// it and leave the lab behind. In raw mode Ctrl-C is a key for the box, not a signal; and QEMU, swtpm
	// and noded run in process groups of their own, so a Ctrl-C reaches only the demo.
	ctx, stopSignals := signal.NotifyContext(context.Background(), leaveSignals()...)
	defer stopSignals()
	// A write to a closed pipe on stdout (`make demo | head`) would kill the demo just as outright; with
	// SIGPIPE ignored it fails instead, and the screen takes that as its cue to leave.
	signal.Ignore(syscall.SIGPIPE)

	scr := newScreen(os.Stdout, os.Stderr)
	keyboard := !opts.untilReady && term.IsTerminal(int(os.Stdin.Fd()))
	printBanner(scr, opts, keyboard)

	serialPath := filepath.Join(opts.logDir, serialLogName)
	serialLog, err := createFile(serialPath)
	if err != nil {
		scr.warn("demo: cannot create the serial log: %v (is %s writable? -logs picks another folder)", err, opts.logDir)
		return 1
	}
	// Closed last: QEMU, whose output goes there, is gone once the session is closed.
	defer serialLog.Close()

	scr.say("building noded, occtl and bootstrapd into %s, making a new cluster (noded init -name %s -addr %s) and", opts.logDir, nodeName, nodeAddr())
	scr.say("publishing the image to its boot server (bootstrapd publish -state %s)", node.bootState)
	version, err := node.prepare(ctx, opts.image)
	switch {
	case ctx.Err() != nil:
		scr.say("%s while the server node was being prepared; there is no lab to remove yet", context.Cause(ctx))
		return 1
	case err != nil:
		scr.warn("demo: cannot prepare the server node: %v", err)
		return 1
	}
	scr.say("published %s as version %s; manufacturing the box's TPM, then starting noded server in the lab", opts.image, version)

	s := harness.NewSession(ctx, "demo", scr.diagnostics())
	defer s.Close() // for a panic; the normal path closes it explicitly, in order, below
	node.manufactureTPM(s)
	lab := harness.NewLab(s)
	lan := lab.Bridge(s, bridgeName, labCIDR)
	node.start(s, lab)
	scr.say("noded server %s serves the cluster API at %s and network boot on %s; its log: %s", nodeName, apiURL(), bridgeName, node.d.LogPath())
	for _, st := range technicianSteps(opts.image) {
		scr.say("the technician %s: occtl %s", st.what, strings.Join(st.args, " "))
		out, err := node.occtl(ctx, st.args...)
		if err != nil {
			s.Fatalf("demo: the technician's step failed: %v", err) // removes the lab, exits 1
		}
		scr.sayLines(out)
	}
	scr.say("run occtl from another terminal while the demo runs, as root: %s", node.occtlLine(lab.Name(), "machines"))
	box := harness.Start(s, harness.Config{
		Name: "box",
		// SeaBIOS boots the NIC's iPXE ROM, which gets everything else from the server node.
		Boot:      harness.BootPXE,
		NICs:      []harness.NIC{{Bridge: lan, Model: "e1000", MAC: boxMAC}},
		TPM:       &harness.TPM{StateDir: node.boxTPM},
		Disks:     []harness.Disk{{SizeMB: 64}},
		StopGrace: stopGrace,
		ExtraArgs: boxQEMUArgs(),
		// The screen writer never fails, so the log always gets its copy too.
		SerialOut: io.MultiWriter(scr.guest(), serialLog),
	})
	harnessLogs := filepath.Dir(box.Console.LogPath())

	d := &demo{opts: opts, scr: scr, lab: lab, node: node, box: box}

	// typing bounds the sends of forwarded keys: it ends when the demo leaves.
	typing, stopTyping := context.WithCancel(ctx)
	defer stopTyping()
	keys := make(chan error, 1) // why typing ended: nil for Ctrl-], else why the terminal could not be read
	restore := func() {}
	if keyboard {
		r, err := rawTerminal(os.Stdin, scr)
		if err != nil {
			scr.say("cannot put the terminal in raw mode (%v): what you type will not reach the box; leave with Ctrl-C", err)
		} else {
			restore, d.keyboard = r, true
			defer restore() // for a panic; restored explicitly below
			// The goroutine stays blocked reading stdin after the demo has left (a read of a terminal
			// cannot be interrupted); it ends with the program.
			go func() { keys <- forwardKeys(typing, os.Stdin, box.Console.Send) }()
		}
	}

	end := d.waitForEnd(ctx, keys)
	stopTyping()
	restore()
	if end.err != nil {
		// Errorf marks the session failed, which keeps the harness's logs (QEMU, swtpm, noded).
		s.Errorf("demo: %v", end.err)
	}

	powerOff := stopBox(scr, box, end)
	failedBefore := s.Failed()
	s.Close()
	cleanupFailed := s.Failed() && !failedBefore

	parts := []string{powerOff.summary}
	switch {
	case namespaceExists(lab.Name()):
		parts = append(parts, fmt.Sprintf("the lab namespace %s is still there (remove it with `ip netns delete %s`)", lab.Name(), lab.Name()))
	case cleanupFailed:
		parts = append(parts, "removing the lab reported the problems above")
	default:
		parts = append(parts, "lab removed")
	}
	parts = append(parts, "serial log kept in "+serialPath)
	if s.Failed() {
		parts = append(parts, "the harness's logs (QEMU, swtpm, noded) are kept in "+harnessLogs)
	}
	scr.say("%s", strings.Join(parts, "; "))
	if end.err != nil || powerOff.failed || s.Failed() {
		return 1
	}
	return 0
}

// ending is why the demo stops: why says it in a few words for the operator; err is set when the demo
// did not do what it should (the box never got ready, or was not attested); ready tells whether the box
// got ready.
type ending struct {
	why   string
	err   error
	ready bool
}

// demo is the running demo: the lab, the box, and the screen they are shown on.
type demo struct {
	opts     options
	scr      *screen
	lab      *harness.Lab
	node     *serverNode
	box      *harness.VM
	keyboard bool // the terminal is raw: typed keys reach the box, and Ctrl-] leaves
}

// waitForEnd waits for the box to be ready and announces it, then for the operator to leave (or, with
// -until-ready, stops once the announcement is done). It returns when the demo should stop; keys says when
// typing ended.
func (d *demo) waitForEnd(ctx context.Context, keys <-chan error) ending {
	opts, box := d.opts, d.box
	ready := make(chan error, 1)
	go func() {
		_, err := box.Console.Expect(ctx, readyPattern, opts.timeout)
		ready <- err
	}()
	// The announcement runs beside this loop, so that Ctrl-] and the signals still end the demo while it
	// waits for the box's attestation; shown carries its result, and is nil when it is not running. It is
	// stopped and waited for on the way out, so that its lines come before the summary.
	var shown chan error
	announce, stopAnnounce := context.WithCancel(ctx)
	defer func() {
		stopAnnounce()
		if shown != nil {
			<-shown
		}
	}()
	// notReady turns a failed wait for the ready line into an ending. The console was on the screen all
	// along, so the copy of its last lines in Expect's error is left out.
	notReady := func(err error) ending {
		if errors.Is(err, context.DeadlineExceeded) {
			return ending{why: "giving up", err: fmt.Errorf("the box did not print %q within %s (-timeout); its console is above", "onecloud: ready", opts.timeout)}
		}
		return ending{why: "the box is off", err: fmt.Errorf("the box powered off (QEMU exited) before it printed %q; its console is above", "onecloud: ready")}
	}
	interrupted := func() ending {
		e := ending{why: context.Cause(ctx).Error(), ready: ready == nil} // "interrupt signal received"
		switch {
		case opts.untilReady && ready != nil:
			e.err = errors.New("interrupted before the box was ready")
		case opts.untilReady && shown != nil:
			e.err = errors.New("interrupted before the box's attestation was shown")
		}
		return e
	}
	for {
		select {
		case err := <-ready:
			switch {
			case ctx.Err() != nil:
				return interrupted()
			case err != nil:
				return notReady(err)
			}
			ready = nil // from now on the box is ready, and a nil channel never fires
			shown = make(chan error, 1)
			go func() { shown <- d.announceReady(announce) }()
		case err := <-shown:
			if ctx.Err() != nil {
				e := interrupted()
				shown = nil
				return e
			}
			shown = nil
			if opts.untilReady {
				// A box that is ready but not approved in its role or not attested, or a cluster that
				// cannot be asked, is not what the demo is there to show.
				return ending{why: "the box is ready (-until-ready)", err: err, ready: true}
			}
		case err := <-keys:
			if err == nil {
				return ending{why: "you pressed Ctrl-]", ready: ready == nil}
			}
			return ending{why: fmt.Sprintf("the terminal went away (%v)", err), ready: ready == nil}
		case <-ctx.Done():
			return interrupted()
		case <-d.scr.lost:
			return ending{why: "the output went away (the terminal or pipe closed)", ready: ready == nil}
		case <-box.Done():
			if ready != nil {
				return notReady(<-ready) // the console has closed, so Expect returns at once
			}
			return ending{why: "the box powered off by itself", ready: true}
		}
	}
}

// announceReady prints, on the host side, what the box's console says about it (address, id, role), then
// waits for the cluster's verdict on its attestation, checks that the cluster has it Ready in its role,
// prints `occtl nodes` and `occtl machines`, and says how to run occtl and leave. It returns an error when
// the console does not show the box approved in its role within factsWait, nor its attestation accepted
// within attestWait, or the cluster does not have it Ready, or cannot be asked; each is said on the screen
// too.
func (d *demo) announceReady(ctx context.Context) error {
	facts, err := d.waitForFacts(ctx)
	if err != nil {
		d.scr.say("the box is ready, but %v", err)
	} else {
		d.scr.say("the box is ready: address %s (bridge %s in namespace %s), id %s, enrolment %s, role %s",
			facts.addr, bridgeName, d.lab.Name(), facts.id, facts.state, facts.role)
		if installed("ping") {
			d.scr.say("reach it from another terminal: ip netns exec %s ping %s", d.lab.Name(), facts.addr)
		}
		d.scr.say("waiting up to %s for the cluster's verdict on its attestation (its firmware runs noded attest against %s)", attestWait, apiURL())
		if facts, err = d.waitForAttestation(ctx); err != nil {
			d.scr.say("the box is not attested: %v", err)
		} else {
			d.scr.say("the cluster accepted the box's attestation: its TPM proved what it runs (%s)", facts.attestation)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err() // the demo is leaving: no tables
	}
	id := facts.id
	if id == "" {
		id = machineID(boxMAC)
	}
	var verdict error
	if out, lerr := d.node.occtl(ctx, "nodes", "-json"); lerr != nil {
		verdict = lerr
	} else {
		verdict = nodeVerdict([]byte(out), id)
	}
	if verdict != nil && err == nil {
		d.scr.say("the cluster does not show the box Ready: %v", verdict)
	}
	errs := []error{err, verdict}
	for _, args := range [][]string{{"nodes"}, {"machines"}} {
		table, lerr := d.node.occtl(ctx, args...)
		if lerr != nil {
			d.scr.say("the cluster cannot be asked: %v", lerr)
			errs = append(errs, lerr)
			continue
		}
		d.scr.say("the cluster, as `occtl %s` shows it:", strings.Join(args, " "))
		d.scr.sayLines(table)
	}
	d.scr.say("run occtl from another terminal while the demo runs, as root: %s", d.node.occtlLine(d.lab.Name(), "nodes"))
	if !d.opts.untilReady {
		d.scr.say("(or machines, machines show %s, approve, reject, release list: `%s help` says how); noded's log: %s", id, d.node.occtlBin, d.node.d.LogPath())
	}
	switch {
	case d.opts.untilReady:
	case d.keyboard:
		d.scr.say("leave with Ctrl-] (the box is then powered off and the lab removed)")
	default:
		d.scr.say("the box keeps running; stop the demo with Ctrl-C or SIGTERM (the box is then powered off and the lab removed)")
	}
	return errors.Join(errs...)
}

// errBoxOff is watchConsole's error when QEMU has exited.
var errBoxOff = errors.New("the box powered off")

// watchConsole reads the box's console every consolePoll, for up to within, until settled says the facts
// are what is awaited (true) or never will be (an error). On time out it returns context.DeadlineExceeded,
// when the box powers off errBoxOff, and the latest facts with either.
func (d *demo) watchConsole(ctx context.Context, within time.Duration, settled func(boxFacts) (bool, error)) (boxFacts, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(consolePoll)
	defer tick.Stop()
	for {
		f := parseBoxFacts(d.box.Console.Output())
		if ok, err := settled(f); ok || err != nil {
			return f, err
		}
		select {
		case <-ctx.Done():
			return f, ctx.Err()
		case <-d.box.Done():
			return f, errBoxOff
		case <-tick.C:
		}
	}
}

// waitForFacts waits up to factsWait for the box's console to show its address, and its approval and
// role, which the firmware prints before or after the ready line.
func (d *demo) waitForFacts(ctx context.Context) (boxFacts, error) {
	f, err := d.watchConsole(ctx, factsWait, func(f boxFacts) (bool, error) { return f.complete(), nil })
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return f, fmt.Errorf("its console has not shown %s within %s of it (it was declared as role %s: is it in `occtl machines`?)",
			f.missing(), factsWait, demoRole)
	case errors.Is(err, errBoxOff):
		return f, fmt.Errorf("it powered off before its console showed %s", f.missing())
	}
	return f, err
}

// waitForAttestation waits up to attestWait for the box's console to show the cluster's verdict on its
// attestation: nil when accepted, an error with the reason when refused (the firmware asks again only
// minutes later), or when nothing came.
func (d *demo) waitForAttestation(ctx context.Context) (boxFacts, error) {
	f, err := d.watchConsole(ctx, attestWait, func(f boxFacts) (bool, error) {
		if f.refused() {
			return false, fmt.Errorf("the cluster refused it: %s (`occtl machines show %s` says more)", f.attestation, f.id)
		}
		return f.attested(), nil
	})
	last := ""
	if f.attestation != "" {
		last = fmt.Sprintf("; its last word: %q", "onecloud: attestation "+f.attestation)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return f, fmt.Errorf("its console has not shown %q within %s%s", "onecloud: attestation accepted", attestWait, last)
	case errors.Is(err, errBoxOff):
		return f, fmt.Errorf("it powered off before its attestation was accepted%s", last)
	}
	return f, err
}

// powerOff is how the box went off: summary for the operator, failed if not in order.
type powerOff struct {
	summary string
	failed  bool
}

// stopBox switches the box off and says how. A box that got ready gets the ACPI power button and
// stopGrace to power off in order, then QEMU is killed; a second SIGINT or SIGTERM (the first one may be
// what ended the demo) cuts the power at once. A box that never got ready has its power cut at once: its
// firmware may not listen to the button yet, and there is nothing to keep, its disk and TPM being scratch.
func stopBox(scr *screen, box *harness.VM, end ending) powerOff {
	// Not SIGHUP: a terminal that hangs up is not an operator in a hurry, and its hang-up is usually
	// what ended the demo already (run still catches it, so it cannot kill the demo either).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	select {
	case <-box.Done():
		if err := box.Wait(ctx); err != nil {
			return powerOff{summary: fmt.Sprintf("the box is off, but: %v", err), failed: true}
		}
		return powerOff{summary: "box off"}
	default:
	}
	if !end.ready {
		scr.say("%s: the box is not ready, so its power is cut", end.why)
		if err := box.Kill(ctx); err != nil {
			return powerOff{summary: fmt.Sprintf("the box's power could not be cut: %v", err), failed: true}
		}
		return powerOff{summary: "box switched off"}
	}
	scr.say("%s: pressing the box's ACPI power button (its power is cut after %s, or at once on Ctrl-C)", end.why, stopGrace)
	err := box.Stop(ctx)
	inOrder := strings.Contains(box.Console.Output(), powerOffLine)
	switch {
	case errors.Is(err, harness.ErrForcedStop):
		return powerOff{summary: fmt.Sprintf("the box did not power off within %s, so its power was cut", stopGrace), failed: true}
	case ctx.Err() != nil:
		// Asked for by a second signal, or the stop took longer than stopTimeout.
		return powerOff{summary: "the box's power was cut (" + context.Cause(ctx).Error() + ")", failed: !errors.Is(context.Cause(ctx), context.Canceled)}
	case err != nil:
		return powerOff{summary: fmt.Sprintf("the box is off, but: %v", err), failed: true}
	case !inOrder:
		return powerOff{summary: fmt.Sprintf("the box is off, but without printing %q", powerOffLine), failed: true}
	}
	return powerOff{summary: "box powered off"}
}

// printBanner says what is about to happen, before the box's console takes over the terminal.
func printBanner(scr *screen, opts options, keyboard bool) {
	scr.say("the zero-touch path on the cluster: a server node (noded server), the cluster of one, which also serves")
	scr.say("network boot, and one blank terminal that boots from it over the network and attests with its TPM, in QEMU")
	scr.say("(software emulation: about 60 to 80 s from power-on to ready, then its attestation)")
	scr.say("  server: noded server %s on lab bridge %s %s: the cluster API on port %d, DHCP (pool .100-.199), TFTP, HTTP;", nodeName, bridgeName, labCIDR, apiPort)
	scr.say("          it serves the image %s, which the technician releases (occtl release add -image)", opts.image)
	scr.say("  box:    declared from its label (occtl declare): MAC %s, serial %s, role %s, school %s;", boxMAC, boxSerial, demoRole, demoSchool)
	scr.say("          SeaBIOS + the iPXE ROM of an e1000 NIC, software TPM 2.0 (swtpm) with an EK certificate from a")
	scr.say("          test manufacturer CA, blank 64 MiB qcow2 disk; watch iPXE fetch the script, kernel and initramfs,")
	scr.say("          then our firmware enrol, and attest to the cluster (\"onecloud: attestation accepted\")")
	switch {
	case opts.untilReady:
		scr.say("-until-ready: the box is powered off and the lab removed once it is ready and attested (or after %s)", opts.timeout)
	case keyboard:
		scr.say("the box's serial console is this terminal and what you type goes to it; leave with Ctrl-]")
	default:
		scr.say("stdin is not a terminal, so the console is shown but not typed into; stop with Ctrl-C or SIGTERM")
	}
}

// boxQEMUArgs are the box's own QEMU arguments. SeaBIOS and iPXE write to the VGA screen, which nobody sees
// here; told that the machine has no graphics, SeaBIOS copies that text to the serial port too (its
// "sercon"), so the console shows iPXE fetching the script, kernel and initramfs from the server node (QEMU
// merges this -machine with the harness's own). The board's serial number, in SMBIOS, is the one on the
// box's label that the technician declared: the firmware reads it and attests with it.
func boxQEMUArgs() []string {
	return []string{"-machine", "graphics=off", "-smbios", "type=1,serial=" + boxSerial}
}

// options are the demo's command-line flags.
type options struct {
	image      string        // folder with vmlinuz and initramfs.cpio.gz
	untilReady bool          // stop once the box is ready
	timeout    time.Duration // bound on the boot to ready; 0 waits forever
	logDir     string        // where the serial log is kept
}

// parseArgs reads the flags. It reports every problem (and -h's usage) on stderr itself, so the caller
// only has to pick the exit status: flag.ErrHelp for -h, another error for a usage mistake.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.image, "image", "out/image", "the built image: a folder with vmlinuz and initramfs.cpio.gz, as make image builds it")
	fs.BoolVar(&o.untilReady, "until-ready", false, "stop once the box is ready (power it off, remove the lab), without touching the terminal; to test the demo itself")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "give up if the box is not ready within this long; 0 waits forever")
	fs.StringVar(&o.logDir, "logs", "", "folder to keep the box's serial log in (default: demo/ beside the image folder, so out/demo)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./qemu-tests/cmd/demo [flags]\n\n"+
			"Boots one onecloud box in QEMU with its serial console on this terminal; leave with Ctrl-].\n"+
			"Run it as root; `make demo` installs what it needs, builds the image and runs it.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err // flag has printed the problem and the usage
	}
	var err error
	switch {
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q: the demo takes only flags", fs.Arg(0))
	case o.image == "":
		err = errors.New("-image is empty: give the folder the image was built into (out/image)")
	case o.timeout < 0:
		err = fmt.Errorf("-timeout %s is negative: give a duration such as 5m, or 0 to wait forever", o.timeout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v (see -h)\n", err)
		return o, err
	}
	if o.logDir == "" {
		o.logDir = filepath.Join(filepath.Dir(filepath.Clean(o.image)), "demo")
	}
	return o, nil
}

// tool is a program the demo runs and the Debian package that has it.
type tool struct{ name, pkg string }

// need is a file the demo uses and the Debian package that has it.
type need struct{ path, pkg string }

// preflight checks, before anything is made, what the demo needs and what the harness, noded or swtpm
// would otherwise report one at a time: root, the built image and its release file, Go, the Debian
// packages, a -logs folder that swtpm can use and a socket path short enough. The error lists every
// problem with what to run.
func preflight(o options, node *serverNode) error {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "the demo needs root, to make the box's lab network (a network namespace, a bridge and a tap) and serve DHCP on it: run `sudo make demo`")
	}
	// release.json is what `occtl release add -image` releases; image-builder writes it beside the image.
	for _, f := range []string{"vmlinuz", "initramfs.cpio.gz", "release.json"} {
		if p := filepath.Join(o.image, f); !isFile(p) {
			problems = append(problems, fmt.Sprintf("no built image: %s is missing: run `make image` (or `make demo`, which builds it first)", p))
			break
		}
	}
	if !installed("go") {
		problems = append(problems, "go is not on the PATH: the demo builds noded, occtl and bootstrapd with it; run `make demo`, which puts /usr/local/go/bin on the PATH")
	}
	var missing []string
	for _, t := range []tool{
		{"qemu-system-x86_64", "qemu-system-x86"}, {"qemu-img", "qemu-utils"}, {"swtpm", "swtpm"},
		// swtpm_setup and swtpm_localca manufacture the box's TPM with an EK certificate.
		{"swtpm_setup", "swtpm-tools"}, {"swtpm_localca", "swtpm-tools"},
		{"ip", "iproute2"}, {"nsenter", "util-linux"},
	} {
		if !installed(t.name) {
			missing = append(missing, t.pkg)
		}
	}
	// The boot server serves iPXE's binaries (Debian's ipxe); the box's NIC boots QEMU's iPXE ROM (ipxe-qemu).
	for _, n := range []need{{"/usr/lib/ipxe/undionly.kpxe", "ipxe"}, {"/usr/lib/ipxe/qemu/pxe-e1000.rom", "ipxe-qemu"}} {
		if !isFile(n.path) {
			missing = append(missing, n.pkg)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("Debian packages missing: %s: run `make demo`, which installs them (or `apt-get install %s`)",
			strings.Join(missing, ", "), strings.Join(missing, " ")))
	}
	if len(node.socket) > maxSocketPath {
		problems = append(problems, fmt.Sprintf("the boot server's admin socket %s would be %d bytes long, too long for a unix socket (the demo allows %d): give a shorter -logs folder",
			node.socket, len(node.socket), maxSocketPath))
	}
	if strings.Contains(o.logDir, ",") {
		// swtpm takes its state folder inside an option list, which has no escape for a comma.
		problems = append(problems, fmt.Sprintf("the -logs folder %s has a comma, which swtpm cannot take in the box's TPM state folder: give another -logs folder", o.logDir))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("  - " + strings.Join(problems, "\n  - "))
}

// absolute makes the image and log folders absolute: noded, bootstrapd and occtl get them on their command
// lines, and the paths are shown for use from another terminal.
func absolute(o options) (options, error) {
	var err error
	if o.image, err = filepath.Abs(o.image); err != nil {
		return o, fmt.Errorf("-image %s: %w", o.image, err)
	}
	if o.logDir, err = filepath.Abs(o.logDir); err != nil {
		return o, fmt.Errorf("-logs %s: %w", o.logDir, err)
	}
	return o, nil
}

// installed reports whether a program is on the PATH or in the sbin folders a non-login root PATH may
// miss (ip lives in /usr/sbin on some systems); the harness looks in the same places.
func installed(name string) bool {
	if _, err := exec.LookPath(name); err == nil {
		return true
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// createFile creates (or empties) a file, making its folder first.
func createFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.Create(path)
}

// namespaceExists reports whether `ip netns` still lists the named namespace.
func namespaceExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// rawTerminal puts the terminal f in raw mode, so that every key, Ctrl-C included, goes to the box, and
// returns the function that restores it (safe to call more than once).
func rawTerminal(f *os.File, scr *screen) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	scr.setRaw(true)
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = term.Restore(fd, old)
			scr.setRaw(false)
		})
	}, nil
}
