package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

// bench runs the measurements, each against ours (bootstrapd) and then the peer.
type bench struct {
	cli    *harness.Lab
	ours   server
	peer   server
	img    imageFiles
	plan   plan
	exe    string // bootbench itself, run as the load client
	log    *slog.Logger
	stderr io.Writer
}

// The targets: bootstrapd's best DHCP rate at least 1.5x dnsmasq's, its HTTP throughput at
// least 0.9x nginx's, its storm time at most 1.2x that of dnsmasq + nginx.
const (
	dhcpTarget  = 1.5
	httpTarget  = 0.9
	stormTarget = 1.2
)

// both runs f against ours and then the peer, with the given services started fresh for each and
// stopped after.
func (b *bench) both(ctx context.Context, need services, f func(s server) error) error {
	for _, s := range []server{b.ours, b.peer} {
		t0 := time.Now()
		if err := s.start(ctx, need); err != nil {
			return err
		}
		b.log.Info("started", "server", s.label(need), "took", time.Since(t0).Round(time.Millisecond))
		err := f(s)
		s.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", s.label(need), err)
		}
	}
	return nil
}

// dhcp sweeps the offered rates with perfdhcp. Each rate runs against a freshly started server (no
// leases), so that no step inherits the previous step's lease database.
func (b *bench) dhcp(ctx context.Context) (section, error) {
	p := b.plan
	need := services{dhcp: true}
	sec := section{title: "DHCP, against " + b.peer.label(need),
		how: fmt.Sprintf("DHCP: perfdhcp -4 -r RATE -R %s -p %d from the client namespace, once per offered rate against a freshly "+
			"started server (no leases); figures are perfdhcp's completed DORA exchanges per second and, in brackets, the share "+
			"of exchanges started (DISCOVERs) that got no ACK. Both servers: pool of %s addresses, lease 1h; dnsmasq with "+
			"--no-ping --quiet-dhcp; bootstrapd in full mode.",
			thousands(int64(p.dhcpClients)), int(p.dhcpPeriod/time.Second), thousands(poolSize))}
	var bestOurs, bestPeer float64
	for _, rate := range p.dhcpRates {
		var res [2]perfResult
		i := 0
		err := b.both(ctx, need, func(s server) error {
			t0 := time.Now()
			args := perfdhcpArgs(s.side().clientIface, rate, p.dhcpClients, p.dhcpPeriod)
			r, _, err := runPerfdhcp(ctx, b.cli, args, p.dhcpPeriod)
			if err != nil {
				return err
			}
			res[i] = r
			i++
			b.log.Info("dhcp", "server", s.label(need), "offered/s", rate, "achieved/s", fmt.Sprintf("%.0f", r.Rate),
				"dropped", fmt.Sprintf("%.1f%%", r.DropPercent()), "took", time.Since(t0).Round(time.Millisecond))
			return nil
		})
		if err != nil {
			return sec, err
		}
		bestOurs, bestPeer = max(bestOurs, res[0].Rate), max(bestPeer, res[1].Rate)
		sec.rows = append(sec.rows, row{
			label: fmt.Sprintf("offered %s/s: achieved (not completed)", thousands(int64(rate))),
			ours:  dhcpCell(res[0]), peer: dhcpCell(res[1]), ratio: ratio(res[0].Rate, res[1].Rate),
		})
	}
	sec.rows = append(sec.rows, row{label: "best achieved over the sweep",
		ours: thousands(int64(bestOurs+0.5)) + "/s", peer: thousands(int64(bestPeer+0.5)) + "/s",
		ratio: ratio(bestOurs, bestPeer), target: &target{atLeast: true, x: dhcpTarget}})
	return sec, nil
}

func dhcpCell(r perfResult) string {
	return fmt.Sprintf("%s/s (%.1f%%)", thousands(int64(r.Rate+0.5)), r.DropPercent())
}

// http has every client fetch the kernel and the initramfs once, in rounds that alternate the servers
// (bootstrapd, peer, bootstrapd, peer, ...) so that both see the same machine; the figures add up the
// rounds.
func (b *bench) http(ctx context.Context) (section, error) {
	p := b.plan
	need := services{http: true}
	sec := section{title: "HTTP, against " + b.peer.label(need),
		how: fmt.Sprintf("HTTP: %s clients (goroutines of bootbench in the client namespace) start at once; each GETs the "+
			"kernel (%s) then the initramfs (%s) and checks its size; keep-alive off, so every request opens a new "+
			"connection, as iPXE's kernel and initrd commands do. A 503 is waited out for its Retry-After and counted as a "+
			"retry, not a failure. Throughput: all bytes over the time from the start to the last byte; latency per file: "+
			"first try to last byte, waits included. %d round(s) per server, alternating; figures over all rounds.",
			thousands(int64(p.httpClients)), mib(b.img.kernelSize), mib(b.img.initrdSize), p.httpRounds)}
	servers := []server{b.ours, b.peer}
	for _, s := range servers {
		if err := s.start(ctx, need); err != nil {
			return sec, err
		}
		defer s.stop()
	}
	var res [2]httpResult
	var lat [2][]float64
	for round := range p.httpRounds {
		for i, s := range servers {
			f := s.files()
			job := httpJob{Clients: p.httpClients, URLs: []string{f.kernel, f.initrd},
				Sizes: []int64{b.img.kernelSize, b.img.initrdSize}, Timeout: 5 * time.Minute}
			out, err := runClient(ctx, b.cli, b.exe, clientJob{HTTP: &job}, job.Timeout+time.Minute, b.stderr)
			if err != nil {
				return sec, fmt.Errorf("%s: %w", s.label(need), err)
			}
			r := *out.HTTP
			b.log.Info("http", "server", s.label(need), "round", round+1, "MB/s", fmt.Sprintf("%.0f", r.MBps()),
				"p99", secs(r.Latency.P99), "retries", r.Retries, "failures", r.Failures, "first error", r.FirstError, "took", secs(r.Seconds))
			res[i] = addHTTP(res[i], r)
			lat[i] = append(lat[i], r.Latencies...)
		}
	}
	for i := range res {
		res[i].Latency = summarize(lat[i])
	}
	o, q := res[0], res[1]
	noFail := o.Failures == 0
	sec.rows = []row{
		{label: "throughput (MB/s, 10^6 bytes)", ours: fmt.Sprintf("%.0f MB/s", o.MBps()), peer: fmt.Sprintf("%.0f MB/s", q.MBps()),
			ratio: ratio(o.MBps(), q.MBps()), target: &target{atLeast: true, x: httpTarget}, extraOK: &noFail, extraNote: "no failed request"},
		{label: "latency per file, p99", ours: secs(o.Latency.P99), peer: secs(q.Latency.P99), ratio: ratio(o.Latency.P99, q.Latency.P99)},
		{label: "latency per file, p50", ours: secs(o.Latency.P50), peer: secs(q.Latency.P50), ratio: ratio(o.Latency.P50, q.Latency.P50)},
		{label: "retries (503 + Retry-After)", ours: thousands(int64(o.Retries)), peer: thousands(int64(q.Retries))},
		{label: "failed requests", ours: failures(o.Failures, o.Requests), peer: failures(q.Failures, q.Requests)},
	}
	return sec, nil
}

// addHTTP adds up two rounds' counts, bytes and times.
func addHTTP(a, b httpResult) httpResult {
	a.Requests += b.Requests
	a.Failures += b.Failures
	a.Retries += b.Retries
	a.Bytes += b.Bytes
	a.Seconds += b.Seconds
	if a.FirstError == "" {
		a.FirstError = b.FirstError
	}
	return a
}

// tftp runs waves of concurrent transfers, alternating the servers wave by wave, both running.
func (b *bench) tftp(ctx context.Context) (section, error) {
	p := b.plan
	need := services{tftp: true}
	sec := section{title: "TFTP, against " + b.peer.label(need),
		how: fmt.Sprintf("TFTP: N transfers of %s (%s) start at once from bootbench's TFTP client in the client namespace: RRQ "+
			"with blksize %d and tsize, an ACK for every block, the last packet sent again after a silence as iPXE does (0.25 s, "+
			"doubling; the transfer fails after about 16 s of silence). Time: the start to the last byte of the last transfer, median of %d "+
			"wave(s) per server, alternating; p99 per transfer likewise. dnsmasq with --enable-tftp --tftp-max=2048.",
			b.img.tftpFile, kib(b.img.tftpSize), p.tftpBlkSize, p.tftpWaves)}
	servers := []server{b.ours, b.peer}
	for _, s := range servers {
		if err := s.start(ctx, need); err != nil {
			return sec, err
		}
		defer s.stop()
	}
	for _, conc := range p.tftpConc {
		var waves [2][]float64
		var p99 [2][]float64
		var fails, total [2]int
		for w := range p.tftpWaves {
			for i, s := range servers {
				job := tftpJob{Server: netip.AddrPortFrom(s.side().addr, 69), File: b.img.tftpFile, Size: b.img.tftpSize,
					BlkSize: p.tftpBlkSize, Concurrency: conc, Timeout: 2 * time.Minute}
				out, err := runClient(ctx, b.cli, b.exe, clientJob{TFTP: &job}, job.Timeout+time.Minute, b.stderr)
				if err != nil {
					return sec, fmt.Errorf("%s: %w", s.label(need), err)
				}
				r := *out.TFTP
				waves[i] = append(waves[i], r.Seconds)
				p99[i] = append(p99[i], r.Latency.P99)
				fails[i] += r.Failures
				total[i] += r.Transfers
				b.log.Info("tftp", "server", s.label(need), "concurrent", conc, "wave", w+1, "took", secs(r.Seconds),
					"p99", secs(r.Latency.P99), "failures", r.Failures, "retransmits", r.Retransmits, "first error", r.FirstError)
			}
		}
		mo, mp := median(waves[0]), median(waves[1])
		sec.rows = append(sec.rows,
			row{label: fmt.Sprintf("%d at once: time for all", conc), ours: secs(mo), peer: secs(mp), ratio: ratio(mo, mp)},
			row{label: fmt.Sprintf("%d at once: p99 per transfer; failures", conc),
				ours: secs(median(p99[0])) + "; " + failures(fails[0], total[0]),
				peer: secs(median(p99[1])) + "; " + failures(fails[1], total[1])},
		)
	}
	return sec, nil
}

// stormPowerOn is the spread of the storm's boxes' first DISCOVERs (stormJob.PowerOn).
const stormPowerOn = time.Second

// storm boots the simulated boxes against each side (see stormJob).
func (b *bench) storm(ctx context.Context) (section, error) {
	p := b.plan
	need := services{dhcp: true, tftp: true, http: true}
	sec := section{title: "Storm, against " + b.peer.label(need),
		how: fmt.Sprintf("Storm: %s simulated BIOS boxes (goroutines of bootbench in the client namespace) power on together, "+
			"their first DISCOVERs spread over %s, and each walks the boot path on its own: DHCP as a PXE ROM (DORA through "+
			"a packet socket with the box's own MAC; sent again after 4, 8, 16, 32 s +-1 s as the PXE specification and RFC "+
			"2131 say, then given up), TFTP of %s (iPXE's "+
			"retransmission: 0.25 s doubling, given up after about 16 s of silence), DHCP again as iPXE (user class iPXE; "+
			"1, 2, 4, 8 s), GET /boot.ipxe, GET /ipxe/machine?mac=..., then GET of the kernel and initramfs that script "+
			"names (new connection each; 503 + Retry-After waited out). A NAK starts DHCP over (RFC 2131). A box fails "+
			"when a step gives up as the real firmware would, or after 2 min in one step. Time: power-on to the end of the "+
			"last box that booted (failed boxes end early, so they are counted apart), against freshly started servers. "+
			"Steps: medians over booted boxes.",
			thousands(int64(p.stormBoxes)), stormPowerOn, b.img.tftpFile)}
	var res [2]stormResult
	i := 0
	err := b.both(ctx, need, func(s server) error {
		f := s.files()
		side := s.side()
		job := stormJob{
			Boxes: p.stormBoxes, Iface: side.clientIface, MACBase: [6]byte{0x52, 0x54, 0x00, 0xbb, 0, 0},
			TFTP: netip.AddrPortFrom(side.addr, 69), TFTPFile: f.tftpFile, TFTPSize: b.img.tftpSize, BlkSize: p.tftpBlkSize,
			BootScript: f.bootScript, MachineURL: f.machineScript, Kernel: f.kernel, Initrd: f.initrd,
			KernelSize: b.img.kernelSize, InitrdSize: b.img.initrdSize,
			StepTimeout: 2 * time.Minute, Timeout: 6 * time.Minute, PowerOn: stormPowerOn,
		}
		out, err := runClient(ctx, b.cli, b.exe, clientJob{Storm: &job}, job.Timeout+time.Minute, b.stderr)
		if err != nil {
			return err
		}
		r := *out.Storm
		res[i] = r
		i++
		b.log.Info("storm", "server", s.label(need), "last boot", secs(r.Seconds), "wall", secs(r.Wall), "failed", r.Failed, "failed at", r.FailedAt,
			"dhcp naks", r.NAKs, "boot p50", secs(r.Boot.P50),
			"boot p99", secs(r.Boot.P99), "dhcp retransmits", r.DHCPRetrans, "tftp retransmits", r.TFTPRetrans,
			"http retries", r.HTTPRetries, "scripts with kernel", r.ScriptsParsed, "malformed dhcp replies", r.Malformed, "first error", r.FirstError)
		return nil
	})
	if err != nil {
		return sec, err
	}
	o, q := res[0], res[1]
	noFail := o.Failed == 0
	steps := func(s stepTimes) string {
		return fmt.Sprintf("%s %s %s %s %s", secs(s.DHCP1), secs(s.TFTP), secs(s.DHCP2), secs(s.Scripts), secs(s.Files))
	}
	sec.rows = []row{
		{label: "whole storm (power-on to last boot)", ours: secs(o.Seconds), peer: secs(q.Seconds), ratio: ratio(o.Seconds, q.Seconds),
			target: &target{atLeast: false, x: stormTarget}, extraOK: &noFail, extraNote: "no failed boot"},
		{label: "failed boots", ours: stormFailures(o), peer: stormFailures(q)},
		{label: "boot time per box, p50 / p99", ours: secs(o.Boot.P50) + " / " + secs(o.Boot.P99), peer: secs(q.Boot.P50) + " / " + secs(q.Boot.P99)},
		{label: "per step: DHCP TFTP DHCP scripts files", ours: steps(o.Steps), peer: steps(q.Steps)},
		{label: "DHCP (NAKs) / TFTP resent, HTTP retries", ours: retransCell(o), peer: retransCell(q)},
	}
	if o.ScriptsParsed < o.Boxes-o.Failed {
		sec.rows = append(sec.rows, row{label: "scripts naming no kernel+initrd",
			ours: thousands(int64(o.Boxes - o.Failed - o.ScriptsParsed)), peer: thousands(int64(q.Boxes - q.Failed - q.ScriptsParsed))})
	}
	return sec, nil
}

// stormFailures is the failed-boots cell: how many, and in which steps.
func stormFailures(r stormResult) string {
	s := failures(r.Failed, r.Boxes)
	var at []string
	for _, name := range stepNames() {
		if n := r.FailedAt[name]; n > 0 {
			at = append(at, fmt.Sprintf("%s %d", name, n))
		}
	}
	if len(at) > 0 {
		s += ": " + strings.Join(at, ", ")
	}
	return s
}

func retransCell(r stormResult) string {
	return fmt.Sprintf("%s (%s NAKs) / %s, %s", thousands(int64(r.DHCPRetrans)), thousands(int64(r.NAKs)),
		thousands(int64(r.TFTPRetrans)), thousands(int64(r.HTTPRetries)))
}
