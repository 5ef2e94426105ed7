package httpboot

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/bootstrap/images"
)

// Retry waits: after failed attempt n a box sleeps a random time in
// [d/2, d], d = retryBase·2^n capped at retryCap. The random half spreads
// boxes that failed together; the growth keeps a broken server from being
// hammered. A bad request (which will not fix itself soon) waits the cap.
const (
	retryBase  = 4 * time.Second
	retryCap   = 128 * time.Second
	maxAttempt = 30 // beyond this the cap applies anyway; bounds the number
	// rejectedPause lets a technician read why a box was rejected before it
	// leaves network boot.
	rejectedPause = 10 * time.Second
)

// stage1 is the same for every box: it names the box by the NIC iPXE runs
// on (netX is the last one opened, i.e. the one that booted) and by its
// SMBIOS identity, and chains to the box's own script. --replace keeps
// retries from nesting scripts; the settings are expanded by iPXE, with
// :uristring percent-encoding the free-text ones.
func (h *Handler) stage1(w http.ResponseWriter, r *http.Request) {
	machineURL := h.base + "/ipxe/machine?mac=${netX/mac}&serial=${serial:uristring}" +
		"&manufacturer=${manufacturer:uristring}&product=${product:uristring}" +
		"&uuid=${uuid}&platform=${platform}&buildarch=${buildarch}"
	wait := h.retrySeconds(0)
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	b.WriteString("# onecloud stage 1: ask the boot server for this box's own script\n")
	b.WriteString(":start\n")
	fmt.Fprintf(&b, "chain --replace --autofree %s || goto retry\n", machineURL)
	b.WriteString(":retry\n")
	fmt.Fprintf(&b, "echo onecloud: the boot server did not answer, trying again in %d s\n", wait)
	fmt.Fprintf(&b, "sleep %d ||\n", wait)
	b.WriteString("goto start\n")
	h.writeScript(w, b.String())
	h.log.Debug("stage 1 script", h.who(r)...)
}

// machineQuery is the validated query of /ipxe/machine.
type machineQuery struct {
	BootRequest
	Attempt int
}

var (
	uuidRe  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	archRe  = regexp.MustCompile(`^[a-z0-9_]{0,16}$`)
	tokenRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// parseMachineQuery validates what iPXE sent. The MAC must be an Ethernet
// address; UUID, platform and buildarch must look like what iPXE expands
// them to. Serial, manufacturer and product are free text from SMBIOS (often
// junk such as "To Be Filled By O.E.M."): they are cleaned, never refused.
//
// iPXE's :uristring leaves '+' as it is, so the query is parsed with '+'
// taken literally (not as a space), and retry URLs encode spaces as %20.
func parseMachineQuery(rawQuery string) (machineQuery, error) {
	var m machineQuery
	q, err := url.ParseQuery(strings.ReplaceAll(rawQuery, "+", "%2B"))
	if err != nil {
		return m, fmt.Errorf("the query is not URL-encoded: %w", err)
	}
	raw := q.Get("mac")
	hw, err := net.ParseMAC(raw)
	if err != nil || len(hw) != 6 {
		return m, fmt.Errorf("mac %q is not an Ethernet MAC address", clip(raw, 40))
	}
	m.MAC = hw.String()
	m.UUID = strings.ToLower(q.Get("uuid"))
	if m.UUID != "" && !uuidRe.MatchString(m.UUID) {
		return m, fmt.Errorf("uuid %q is not a UUID", clip(m.UUID, 40))
	}
	m.Platform, m.BuildArch = q.Get("platform"), q.Get("buildarch")
	if !archRe.MatchString(m.Platform) || !archRe.MatchString(m.BuildArch) {
		return m, fmt.Errorf("platform %q or buildarch %q is not an iPXE value", clip(m.Platform, 20), clip(m.BuildArch, 20))
	}
	if a := q.Get("attempt"); a != "" {
		if m.Attempt, err = strconv.Atoi(a); err != nil || m.Attempt < 0 {
			return m, fmt.Errorf("attempt %q is not a count", clip(a, 20))
		}
		m.Attempt = min(m.Attempt, maxAttempt)
	}
	m.Serial = cleanText(q.Get("serial"), 128)
	m.Manufacturer = cleanText(q.Get("manufacturer"), 128)
	m.Product = cleanText(q.Get("product"), 128)
	return m, nil
}

// cleanText keeps the printable characters of s, trimmed, at most n bytes.
func cleanText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return -1
		}
		return r
	}, s)
	return clip(strings.TrimSpace(s), n)
}

// clip cuts s to at most n bytes (on a rune boundary) for logs and messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xc0 != 0x80 }

// screenText makes a message safe to put after iPXE's echo: only characters
// that iPXE gives no meaning to (no $ for settings, no || or && operators,
// no quotes), and one line.
func screenText(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		case strings.ContainsRune(" .,:-_/()!?+=@", r):
			return r
		}
		return ' '
	}, s)
	return clip(strings.Join(strings.Fields(s), " "), 200)
}

// retrySeconds is the wait after attempt (random in [d/2, d]).
func (h *Handler) retrySeconds(attempt int) int {
	d := retryCap
	if attempt < 8 {
		d = min(retryBase<<attempt, retryCap)
	}
	secs := int64(d / time.Second)
	return int(secs/2 + h.jitter(secs/2+1))
}

// machine writes a box's own script. iPXE callers (User-Agent iPXE/...)
// always get a script, even for a bad request, since iPXE shows a script's
// echo but not an HTTP error's body; other callers get 400 for a bad
// request.
func (h *Handler) machine(w http.ResponseWriter, r *http.Request) {
	addr := remoteAddr(r)
	q, err := parseMachineQuery(r.URL.RawQuery)
	if err != nil {
		h.bad.Add(1)
		h.log.Warn("bad boot request", "addr", addr, "mac", clip(r.URL.Query().Get("mac"), 40), "err", err)
		if !strings.HasPrefix(r.UserAgent(), "iPXE/") {
			http.Error(w, "bad boot request: "+err.Error(), http.StatusBadRequest)
			return
		}
		h.writeScript(w, h.badRequestScript(err))
		return
	}
	q.Addr = addr
	log := h.log.With("mac", q.MAC, "addr", addr)
	h.remember(addr, q.MAC)

	d, err := h.cfg.Machines.Boot(r.Context(), q.BootRequest)
	if err == nil {
		err = checkDecision(d)
	}
	if err != nil {
		log.Error("boot decision failed; the box will retry", "err", err, "attempt", q.Attempt)
		h.writeScript(w, h.retryOnly(q, "machine "+q.MAC, "the boot server could not decide about this machine"))
		return
	}
	who := fmt.Sprintf("machine %s (%s)", d.ID, q.MAC)
	if d.State == enrolapi.Rejected {
		log.Info("boot script: rejected", "id", d.ID)
		h.writeScript(w, rejectedScript(who, d))
		return
	}
	v, ok := h.cfg.Images.Current()
	if !ok {
		log.Warn("boot script: no image published; the box will retry", "id", d.ID, "state", d.State, "attempt", q.Attempt)
		h.writeScript(w, h.retryOnly(q, who, "no image has been published on the boot server yet"))
		return
	}
	log.Info("boot script", "id", d.ID, "state", d.State, "role", d.Role, "school", d.School,
		"version", v, "platform", q.Platform, "attempt", q.Attempt)
	h.writeScript(w, h.bootScript(q, who, d, v))
}

// checkDecision refuses decisions whose words could not safely go onto a
// kernel command line.
func checkDecision(d BootDecision) error {
	switch d.State {
	case enrolapi.Pending, enrolapi.Approved, enrolapi.Rejected:
	default:
		return fmt.Errorf("backend returned unknown state %q", d.State)
	}
	if !tokenRe.MatchString(d.ID) {
		return fmt.Errorf("backend returned id %q, which is not a plain token", d.ID)
	}
	for _, f := range []struct{ name, v string }{{"role", d.Role}, {"school", d.School}} {
		if f.v != "" && !tokenRe.MatchString(f.v) {
			return fmt.Errorf("backend returned %s %q for %s, which is not a plain token", f.name, f.v, d.ID)
		}
	}
	if d.State == enrolapi.Approved && d.Role == "" {
		return fmt.Errorf("backend approved %s without a role", d.ID)
	}
	return nil
}

// bootScript loads kernel and initramfs of version v and boots. initrd= on
// the kernel line is needed under EFI (the kernel finds its initrd by that
// name) and ignored under BIOS.
func (h *Handler) bootScript(q machineQuery, who string, d BootDecision, v images.Version) string {
	dir := h.base + "/images/" + string(v) + "/"
	args := []string{"initrd=" + images.Initramfs}
	if h.cfg.KernelArgs != "" {
		args = append(args, h.cfg.KernelArgs)
	}
	args = append(args, "onecloud.server="+h.base, "onecloud.id="+d.ID)
	status := "waiting for approval, booting without a role"
	if d.State == enrolapi.Approved {
		args = append(args, "onecloud.role="+d.Role)
		if d.School != "" {
			args = append(args, "onecloud.school="+d.School)
		}
		status = "role " + d.Role
		if d.School != "" {
			status += " at " + d.School
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#!ipxe\n# onecloud: %s, %s, image %s\n", who, d.State, v)
	fmt.Fprintf(&b, "echo onecloud: %s, %s, image %s\n", who, status, v)
	if msg := screenText(d.Message); msg != "" {
		fmt.Fprintf(&b, "echo onecloud: %s\n", msg)
	}
	fmt.Fprintf(&b, "kernel %s%s %s || goto retry\n", dir, images.Kernel, strings.Join(args, " "))
	fmt.Fprintf(&b, "initrd %s%s || goto retry\n", dir, images.Initramfs)
	b.WriteString("boot || goto retry\n")
	h.retrySection(&b, q, "downloading or booting the image failed")
	return b.String()
}

// retryOnly is a script that only waits and asks again.
func (h *Handler) retryOnly(q machineQuery, who, reason string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!ipxe\n# onecloud: %s: %s\n", who, reason)
	b.WriteString("goto retry\n")
	h.retrySection(&b, q, reason)
	return b.String()
}

// retrySection writes the retry label: free what was downloaded, wait, and
// ask for a fresh script (which may name a newer image) as the next attempt.
func (h *Handler) retrySection(b *strings.Builder, q machineQuery, reason string) {
	wait := h.retrySeconds(q.Attempt)
	var next strings.Builder
	for i, kv := range [][2]string{
		{"mac", q.MAC}, {"serial", q.Serial}, {"manufacturer", q.Manufacturer}, {"product", q.Product},
		{"uuid", q.UUID}, {"platform", q.Platform}, {"buildarch", q.BuildArch},
		{"attempt", strconv.Itoa(min(q.Attempt+1, maxAttempt))},
	} {
		if i > 0 {
			next.WriteByte('&')
		}
		// QueryEscape percent-encodes every character iPXE would
		// interpret ($, spaces, &&, ||) and '+' itself, so the free-text
		// values are inert; spaces become %20 as parseMachineQuery expects.
		next.WriteString(kv[0] + "=" + strings.ReplaceAll(url.QueryEscape(kv[1]), "+", "%20"))
	}
	b.WriteString(":retry\n")
	fmt.Fprintf(b, "echo onecloud: %s, trying again in %d s (attempt %d)\n", reason, wait, q.Attempt+1)
	b.WriteString("imgfree ||\n")
	fmt.Fprintf(b, "sleep %d ||\n", wait)
	fmt.Fprintf(b, "chain --replace --autofree %s/ipxe/machine?%s || goto retry\n", h.base, next.String())
}

// rejectedScript shows why and leaves network boot: the firmware then tries
// its next boot device, so a box that is not ours (a teacher's laptop that
// happened to PXE boot) goes on to its own disk.
func rejectedScript(who string, d BootDecision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!ipxe\n# onecloud: %s, rejected\n", who)
	msg := screenText(d.Message)
	if msg == "" {
		msg = "no reason given"
	}
	fmt.Fprintf(&b, "echo onecloud: %s was rejected by the boot server: %s\n", who, msg)
	b.WriteString("echo onecloud: leaving network boot, the firmware will try its next boot device\n")
	fmt.Fprintf(&b, "sleep %d ||\n", int(rejectedPause/time.Second))
	b.WriteString("exit 1\n")
	return b.String()
}

// badRequestScript tells why the request was refused and starts over from
// stage 1 after the longest wait (the settings iPXE expands may differ then,
// e.g. another NIC).
func (h *Handler) badRequestScript(err error) string {
	wait := h.retrySeconds(maxAttempt)
	var b strings.Builder
	b.WriteString("#!ipxe\n# onecloud: bad boot request\n")
	fmt.Fprintf(&b, "echo onecloud: the boot server refused this request: %s\n", screenText(err.Error()))
	b.WriteString(":retry\n")
	fmt.Fprintf(&b, "echo onecloud: starting over in %d s\n", wait)
	fmt.Fprintf(&b, "sleep %d ||\n", wait)
	fmt.Fprintf(&b, "chain --replace --autofree %s/boot.ipxe || goto retry\n", h.base)
	return b.String()
}

func (h *Handler) writeScript(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // every answer is fresh: state and image change
	w.Header().Set("Content-Length", strconv.Itoa(len(s)))
	w.Write([]byte(s))
	h.scripts.Add(1)
}
