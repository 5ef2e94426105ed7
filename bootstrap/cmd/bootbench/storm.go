package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// stormJob is the boot storm: Boxes simulated BIOS boxes power on together (within PowerOn) and each
// walks the whole network boot path as a real one does, on its own, without waiting for the others:
//
//  1. DHCP as its PXE ROM (DORA, with iPXE's retransmission timing);
//  2. TFTP of the boot file (undionly.kpxe);
//  3. DHCP again as iPXE (user class "iPXE");
//  4. HTTP GET of the stage-1 script, then of its per-machine script (?mac=...);
//  5. HTTP GET of the kernel and the initramfs named in that script.
//
// A box fails when a step fails for good: DHCP unanswered past StepTimeout, a TFTP transfer that a PXE
// ROM would abandon, or an HTTP answer other than 200 with the whole file (a 503 with Retry-After is
// waited out, as our iPXE scripts do).
type stormJob struct {
	Boxes       int            `json:"boxes"`
	Iface       string         `json:"iface"`    // the client namespace's interface towards the server
	MACBase     [6]byte        `json:"mac_base"` // box i gets MACBase + i in its last two bytes
	TFTP        netip.AddrPort `json:"tftp"`
	TFTPFile    string         `json:"tftp_file"`
	TFTPSize    int64          `json:"tftp_size"`
	BlkSize     int            `json:"blksize"`
	BootScript  string         `json:"boot_script"`    // http://S:P/boot.ipxe
	MachineURL  string         `json:"machine_script"` // http://S:P/ipxe/machine (?mac=&serial= added)
	Kernel      string         `json:"kernel"`         // used when a script names no kernel line
	Initrd      string         `json:"initrd"`
	KernelSize  int64          `json:"kernel_size"`
	InitrdSize  int64          `json:"initrd_size"`
	StepTimeout time.Duration  `json:"step_timeout"`
	// PowerOn spreads the boxes' first DISCOVER uniformly over this long after the storm starts: the
	// time their firmware takes to get there varies a little from box to box even when the power
	// comes back for all of them at once.
	PowerOn time.Duration `json:"power_on"`
	Timeout time.Duration `json:"timeout"`
}

// stormResult is the whole storm. Seconds runs from power-on to the end of the last box that booted: a
// failed box ends early, and counting it would make a server that fails boxes look fast; failures are
// counted on their own. Wall is power-on to the last box's end, booted or failed.
type stormResult struct {
	Boxes         int       `json:"boxes"`
	Failed        int       `json:"failed"`
	Seconds       float64   `json:"seconds"`
	Wall          float64   `json:"wall_seconds"`
	Boot          latencies `json:"boot"` // per booted box
	DHCPRetrans   int       `json:"dhcp_retransmits"`
	NAKs          int       `json:"dhcp_naks"`
	TFTPRetrans   int       `json:"tftp_retransmits"`
	HTTPRetries   int       `json:"http_retries"`
	Malformed     int64     `json:"malformed_dhcp"`
	ScriptsParsed int       `json:"scripts_with_kernel"` // per-machine scripts that named kernel and initrd
	FirstError    string    `json:"first_error,omitempty"`
	Steps         stepTimes `json:"steps"` // median time of each step, booted boxes
	// FailedAt counts failed boxes by the step they failed in (stepNames).
	FailedAt map[string]int `json:"failed_at,omitempty"`
}

// stepNames name the steps of a box's boot, in order.
func stepNames() [5]string {
	return [5]string{"DHCP (PXE ROM)", "TFTP", "DHCP (iPXE)", "scripts", "kernel+initramfs"}
}

// stepTimes are medians per step, in seconds.
type stepTimes struct {
	DHCP1, TFTP, DHCP2, Scripts, Files float64
}

// boxRun is one box's story.
type boxRun struct {
	steps                  [5]float64
	dhcpRe, tftpRe, httpRe int
	naks                   int
	parsed                 bool
	err                    error
	failedAt               int       // the step err came from
	end                    time.Time // when the box finished, booted or failed
	total                  float64
}

func runStorm(ctx context.Context, job stormJob, progress io.Writer) (stormResult, error) {
	if job.Boxes < 1 || job.Boxes > 65536 {
		return stormResult{}, fmt.Errorf("storm job: boxes %d: want 1 to 65536", job.Boxes)
	}
	ctx, cancel := context.WithTimeout(ctx, job.Timeout)
	defer cancel()
	dc, err := openDHCPConn(job.Iface)
	if err != nil {
		return stormResult{}, err
	}
	readCtx, stopReader := context.WithCancel(context.Background())
	go dc.run(readCtx)
	defer func() { stopReader(); <-dc.done }()

	client := newBootHTTPClient(job.Boxes)
	defer client.CloseIdleConnections()
	runs := make([]boxRun, job.Boxes)
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	for i := range job.Boxes {
		m := job.MACBase
		m[4], m[5] = byte(i>>8), byte(i)
		wg.Go(func() {
			<-startGun
			runs[i] = bootBox(ctx, dc, client, job, net.HardwareAddr(m[:]), i)
		})
	}
	t0 := time.Now()
	close(startGun)
	stopTicker := make(chan struct{})
	go stormProgress(progress, t0, stopTicker)
	wg.Wait()
	close(stopTicker)

	res := stormResult{Boxes: job.Boxes, Wall: time.Since(t0).Seconds(), Malformed: dc.malformed.Load()}
	var totals []float64
	var perStep [5][]float64
	for _, r := range runs {
		res.DHCPRetrans += r.dhcpRe
		res.NAKs += r.naks
		res.TFTPRetrans += r.tftpRe
		res.HTTPRetries += r.httpRe
		if r.parsed {
			res.ScriptsParsed++
		}
		if r.err != nil {
			res.Failed++
			if res.FailedAt == nil {
				res.FailedAt = make(map[string]int)
			}
			res.FailedAt[stepNames()[r.failedAt]]++
			if res.FirstError == "" {
				res.FirstError = r.err.Error()
			}
			continue
		}
		totals = append(totals, r.total)
		res.Seconds = max(res.Seconds, r.end.Sub(t0).Seconds())
		for s := range perStep {
			perStep[s] = append(perStep[s], r.steps[s])
		}
	}
	res.Boot = summarize(totals)
	res.Steps = stepTimes{DHCP1: median(perStep[0]), TFTP: median(perStep[1]), DHCP2: median(perStep[2]),
		Scripts: median(perStep[3]), Files: median(perStep[4])}
	return res, nil
}

// stormProgress says every 5 s that the storm still runs, so a long one does not look hung.
func stormProgress(w io.Writer, t0 time.Time, stop <-chan struct{}) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fmt.Fprintf(w, "bootbench:   storm running for %.0fs\n", time.Since(t0).Seconds())
		}
	}
}

// bootBox walks one box through the boot path.
func bootBox(ctx context.Context, dc *dhcpConn, client *http.Client, job stormJob, hw net.HardwareAddr, i int) boxRun {
	var r boxRun
	mac := hw.String()
	t0 := time.Now()
	if job.PowerOn > 0 {
		select {
		case <-time.After(rand.N(job.PowerOn)):
		case <-ctx.Done():
		}
	}
	step := func(n int, f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(ctx, job.StepTimeout)
		defer cancel()
		s := time.Now()
		err := f(ctx)
		r.steps[n] = time.Since(s).Seconds()
		if err != nil {
			r.failedAt = n
		}
		return err
	}
	buf := make([]byte, 64<<10)
	get := func(ctx context.Context, u string, want int64) error {
		_, retries, err := fetch(ctx, client, u, want, buf)
		r.httpRe += retries
		return err
	}
	err := step(0, func(ctx context.Context) error {
		_, re, naks, err := dc.dora(ctx, hw, pxeROM)
		r.dhcpRe, r.naks = r.dhcpRe+re, r.naks+naks
		return err
	})
	if err == nil {
		err = step(1, func(ctx context.Context) error {
			n, re, err := tftpGet(ctx, job.TFTP, job.TFTPFile, job.BlkSize)
			r.tftpRe += re
			if err == nil && job.TFTPSize > 0 && n != job.TFTPSize {
				err = fmt.Errorf("tftp %s: %d bytes, want %d", job.TFTPFile, n, job.TFTPSize)
			}
			return err
		})
	}
	if err == nil {
		err = step(2, func(ctx context.Context) error {
			_, re, naks, err := dc.dora(ctx, hw, ipxeStage)
			r.dhcpRe, r.naks = r.dhcpRe+re, r.naks+naks
			return err
		})
	}
	kernel, initrd := job.Kernel, job.Initrd
	if err == nil {
		err = step(3, func(ctx context.Context) error {
			if err := get(ctx, job.BootScript, 0); err != nil {
				return err
			}
			q := url.Values{"mac": {mac}, "serial": {fmt.Sprintf("BENCH%05d", i)}}
			script, retries, err := getText(ctx, client, job.MachineURL+"?"+q.Encode())
			r.httpRe += retries
			if err != nil {
				return err
			}
			if k, ird, ok := scriptFiles(script, job.MachineURL); ok {
				kernel, initrd, r.parsed = k, ird, true
			}
			return nil
		})
	}
	if err == nil {
		err = step(4, func(ctx context.Context) error {
			if err := get(ctx, kernel, job.KernelSize); err != nil {
				return err
			}
			return get(ctx, initrd, job.InitrdSize)
		})
	}
	r.err = err
	if err != nil {
		r.err = fmt.Errorf("box %s: %w", mac, err)
	}
	r.end = time.Now()
	r.total = r.end.Sub(t0).Seconds()
	return r
}

// maxScript bounds a script body: an iPXE script is a few hundred bytes.
const maxScript = 64 << 10

// getText GETs a small text body (a script), honouring 503 + Retry-After like fetch.
func getText(ctx context.Context, c *http.Client, u string) (string, int, error) {
	retries := 0
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", retries, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return "", retries, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxScript))
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			retries++
			select {
			case <-time.After(retryAfter(resp.Header.Get("Retry-After"), time.Now())):
				continue
			case <-ctx.Done():
				return "", retries, ctx.Err()
			}
		}
		if resp.StatusCode != http.StatusOK {
			return "", retries, fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		if err != nil {
			return "", retries, fmt.Errorf("GET %s: %w", u, err)
		}
		return string(body), retries, nil
	}
}

// scriptFiles finds the kernel and initrd URLs of an iPXE script ("kernel [--opts] URL args",
// "initrd [--opts] URL"), resolved against the script's own URL. ok is false unless both are there.
func scriptFiles(script, base string) (kernel, initrd string, ok bool) {
	b, err := url.Parse(base)
	if err != nil {
		return "", "", false
	}
	sc := bufio.NewScanner(strings.NewReader(script))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		var target *string
		switch f[0] {
		case "kernel":
			target = &kernel
		case "initrd":
			target = &initrd
		}
		if target == nil || *target != "" {
			continue
		}
		args := f[1:]
		for j := 0; j < len(args); j++ {
			arg := args[j]
			if strings.HasPrefix(arg, "-") {
				// iPXE's image options; --name and --timeout take a value unless given with "=".
				if (arg == "--name" || arg == "-n" || arg == "--timeout" || arg == "-t") && j+1 < len(args) {
					j++
				}
				continue
			}
			u, err := url.Parse(arg)
			if err != nil {
				break
			}
			*target = b.ResolveReference(u).String()
			break
		}
	}
	return kernel, initrd, kernel != "" && initrd != ""
}
