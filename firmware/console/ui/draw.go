package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/console/cells"
	"github.com/onecloud-edu/onecloud/firmware/console/qr"
	"github.com/onecloud-edu/onecloud/internal/units"
)

type style struct {
	fg, bg cells.Color
	bold   bool
}

// The palette. Meaning is never in colour alone: every coloured state
// also has its word (OK/FAIL, 正常/故障).
var (
	plain    = style{cells.White, cells.Black, false}
	strong   = style{cells.BrightWhite, cells.Black, true}
	dim      = style{cells.BrightBlack, cells.Black, false}
	title    = style{cells.BrightCyan, cells.Black, true}
	header   = style{cells.BrightWhite, cells.Blue, true}
	helpBar  = style{cells.Black, cells.White, false}
	good     = style{cells.BrightGreen, cells.Black, true}
	fail     = style{cells.BrightRed, cells.Black, true}
	warn     = style{cells.BrightYellow, cells.Black, true}
	selected = style{cells.Black, cells.Cyan, true}
	entry    = style{cells.BrightWhite, cells.Blue, false}
	dialog   = style{cells.BrightWhite, cells.Blue, false}
	qrStyle  = style{cells.Black, cells.BrightWhite, false}
)

// canvas draws into a frame and remembers any text that did not fit, so
// that tests can check every screen fits in both languages.
type canvas struct {
	f        *cells.Frame
	ascii    bool
	overflow []string
}

func (c *canvas) put(x, y int, s string, st style) int {
	w := cells.StringWidth(s)
	if y < 0 || y >= c.f.Rows || x < 0 || x+w > c.f.Cols {
		c.overflow = append(c.overflow, fmt.Sprintf("row %d col %d: %q", y, x, s))
	}
	c.unsplit(x, y)
	c.unsplit(x+w, y)
	return c.f.Put(x, y, s, st.fg, st.bg, st.bold)
}

func (c *canvas) fill(x, y, w, h int, st style) {
	for row := y; row < y+h; row++ {
		c.unsplit(x, row)
		c.unsplit(x+w, row)
	}
	c.f.Fill(x, y, w, h, ' ', st.fg, st.bg)
}

// unsplit blanks a wide character that drawing from column x would cut
// in half (a dialog over Chinese text): half a character would shift the
// rest of the line on a terminal.
func (c *canvas) unsplit(x, y int) {
	if x <= 0 || x >= c.f.Cols || y < 0 || y >= c.f.Rows {
		return
	}
	i := y*c.f.Cols + x
	if c.f.Cells[i].Continuation {
		left := &c.f.Cells[i-1]
		left.R, left.Wide = ' ', false
		c.f.Cells[i].Continuation = false
	}
}

// rule draws a horizontal line with an optional label.
func (c *canvas) rule(y int, label string) {
	line := "─"
	if c.ascii {
		line = "-"
	}
	x := 0
	if label != "" {
		x = c.put(0, y, line+" ", dim)
		x = c.put(x, y, label, title) + 1
	}
	if n := c.f.Cols - x; n > 0 {
		c.put(x, y, strings.Repeat(line, n), dim)
	}
}

// fit cuts s to w cells, marking the cut.
func (c *canvas) fit(s string, w int) string {
	if cells.StringWidth(s) <= w {
		return s
	}
	if w <= 0 {
		return ""
	}
	mark := "…"
	if c.ascii {
		mark = "~"
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		rw := cells.Width(r)
		if n+rw > w-1 {
			break
		}
		b.WriteRune(r)
		n += rw
	}
	return b.String() + mark
}

// wrap breaks s into lines of at most w cells: at spaces, or between wide
// characters (Chinese has no spaces), or anywhere in a word too long.
func wrap(s string, w int) []string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		r := []rune(para)
		for len(r) > 0 {
			n, cut, brk := 0, len(r), -1
			for i, ch := range r {
				rw := cells.Width(ch)
				if n+rw > w {
					cut = i
					break
				}
				n += rw
				if ch == ' ' || rw == 2 {
					brk = i + 1
				} else if i+1 < len(r) && cells.Width(r[i+1]) == 2 {
					brk = i + 1
				}
			}
			if cut < len(r) && brk > 0 && r[cut] != ' ' {
				cut = brk
			}
			// A line never starts with closing punctuation: take the
			// character before it along.
			if cut > 1 && cut < len(r) && strings.ContainsRune("，。、；：？！）」』”", r[cut]) {
				cut--
			}
			if cut == 0 {
				cut = 1
			}
			lines = append(lines, strings.TrimRight(string(r[:cut]), " "))
			r = []rune(strings.TrimLeft(string(r[cut:]), " "))
		}
		if len(para) == 0 {
			lines = append(lines, "")
		}
	}
	return lines
}

// para draws wrapped text from row y and returns the row after it.
func (c *canvas) para(x, y, w int, s string, st style, maxRows int) int {
	for i, l := range wrap(s, w) {
		if i >= maxRows {
			break
		}
		c.put(x, y, l, st)
		y++
	}
	return y
}

// badge kinds.
type badge int

const (
	bOK badge = iota
	bFail
	bWarn
	bUnknown
	bUp
	bDown
	bRunning
)

func (m *Model) badge(c *canvas, x, y int, b badge) int {
	switch b {
	case bOK:
		return c.put(x, y, m.t(mOK), good) + 1
	case bFail:
		return c.put(x, y, m.t(mFail), fail) + 1
	case bWarn:
		return c.put(x, y, m.t(mWarn), warn) + 1
	case bUp:
		return c.put(x, y, m.t(mUp), good) + 1
	case bDown:
		return c.put(x, y, m.t(mDown), fail) + 1
	case bRunning:
		return c.put(x, y, m.t(mRunning), warn) + 1
	}
	return c.put(x, y, m.t(mUnknown), dim) + 1
}

func (m *Model) draw(f *cells.Frame) []string {
	c := &canvas{f: f, ascii: m.opt.ASCIIOnly}
	c.fill(0, 0, f.Cols, f.Rows, plain)
	m.drawHeader(c)
	switch m.scr {
	case scrStatus:
		m.drawStatus(c)
	case scrPIN:
		m.drawPIN(c)
	case scrMenu:
		m.drawMenu(c)
	case scrNetwork, scrServers, scrRole:
		m.drawForm(c)
	case scrPending:
		m.drawPending(c)
	case scrDiag:
		m.drawDiag(c)
	case scrLog:
		m.drawLog(c)
	case scrSlots:
		m.drawSlots(c)
	case scrReset:
		m.drawReset(c)
	}
	m.drawNote(c)
	m.drawHelp(c)
	if m.confirm != nil {
		m.drawConfirm(c)
	}
	return c.overflow
}

func (m *Model) drawHeader(c *canvas) {
	c.fill(0, 0, c.f.Cols, 1, header)
	left := " " + orDash(m.st.Product)
	if m.st.Version != "" {
		left += " " + m.st.Version
	}
	left += " " + c.sep() + " " + m.bootText()
	right := ""
	if !m.now.IsZero() {
		right = m.now.Format("2006-01-02 15:04:05") + " "
	}
	if m.admin {
		right = m.t(mAdminMode) + "  " + right
	}
	c.put(0, 0, c.fit(left, c.f.Cols-cells.StringWidth(right)-1), header)
	c.put(c.f.Cols-cells.StringWidth(right), 0, right, header)
}

func (c *canvas) sep() string {
	if c.ascii {
		return "|"
	}
	return "·"
}

func (m *Model) bootText() string {
	switch m.st.Boot {
	case BootPXE:
		return m.t(mBootPXE)
	case BootSlotA:
		return m.tf(mBootSlot, "A")
	case BootSlotB:
		return m.tf(mBootSlot, "B")
	case "":
		return m.t(mUnknown)
	}
	return m.st.Boot
}

// screenTitle draws the title of an admin screen on row 1.
func (m *Model) screenTitle(c *canvas, key msg, extra string) {
	s := " " + m.t(key)
	if extra != "" {
		s += "  " + extra
	}
	c.put(0, 1, c.fit(s, c.f.Cols), title)
}

// QRText is what the status screen's QR code holds: the serial number,
// then each MAC as 12 hex digits, separated by spaces, in upper case:
// "PF2ABCDE 525400123456 525400123457". Upper case without colons keeps
// the code in QR alphanumeric mode and small (a serial and two MACs fit a
// version 2 code, 29 columns by 15 lines with the quiet zone).
func QRText(s Status) string {
	parts := []string{orDash(s.Serial)}
	for _, n := range s.NICs {
		if n.MAC != "" {
			parts = append(parts, strings.ToUpper(strings.NewReplacer(":", "", "-", "").Replace(n.MAC)))
		}
	}
	return strings.Join(parts, " ")
}

func (m *Model) qr() []string {
	t := QRText(m.st)
	if t != m.qrText {
		m.qrText = t
		lines, err := qr.Lines(t)
		m.qrLines, m.qrFailed = lines, err != nil
	}
	return m.qrLines
}

// row is one label: value line of the status screen.
type row struct {
	label msg
	badge badge
	has   bool // whether badge is set
	text  string
	st    style
}

func (m *Model) drawStatus(c *canvas) {
	s := m.st
	cols, rows := c.f.Cols, c.f.Rows
	var code []string
	if !c.ascii {
		code = m.qr()
	}
	qrW := 0
	if len(code) > 0 {
		qrW = cells.StringWidth(code[0])
	}
	// The QR code goes top right when it leaves room for the text and
	// the network lines below it.
	if qrW > 0 && (cols-qrW-1 < 44 || len(code) > rows-8) {
		code, qrW = nil, 0
	}
	paneW := cols - 1
	if qrW > 0 {
		paneW = cols - qrW - 2
		for i, l := range code {
			c.put(cols-qrW-1, 1+i, l, qrStyle)
		}
	}

	lines := []row{
		{label: mHost, text: orDash(s.Hostname), st: strong},
		{label: mRole, text: orDash(s.Role), st: strong},
		{label: mSchool, text: orDash(s.School)},
		{label: mSerial, text: orDash(s.Serial)},
		m.enrolRow(),
		m.attestRow(),
		m.certRow(),
		m.clockRow(),
		{label: mUptime, text: m.dur(s.Uptime)},
		{label: mCPU, text: m.tf(mCPUText, s.CPUs, int(s.CPUPercent+0.5))},
		{label: mMemory, text: m.usage(s.Memory)},
		m.diskRow(),
		m.reachRow(mGateway, s.Gateway),
		m.reachRow(mCluster, s.Cluster),
	}
	const lw = 13
	y := 1
	for _, r := range lines {
		c.put(1, y, c.fit(m.t(r.label), lw-2), dim)
		x := lw
		if r.has {
			x = m.badge(c, x, y, r.badge)
		}
		st := r.st
		if st == (style{}) {
			st = plain
		}
		c.put(x, y, c.fit(r.text, paneW-x), st)
		y++
	}
	y = max(y, 1+len(code))
	if len(code) == 0 && qrW == 0 && !c.ascii && m.qrFailed {
		c.put(1, y, c.fit(m.t(mQRFailed), cols-2), warn)
		y++
	}

	// The network, full width.
	c.rule(y, m.t(mNetwork))
	y++
	if len(s.NICs) == 0 {
		c.put(1, y, c.fit(m.t(mNoNIC), cols-2), fail)
		y++
	}
	for _, n := range s.NICs {
		if y >= rows-3 {
			break
		}
		x := c.put(1, y, c.fit(n.Name, 9), strong)
		x = max(x+1, 11)
		x = c.put(x, y, n.MAC, plain) + 2
		if n.Up {
			x = m.badge(c, x, y, bUp)
		} else {
			x = m.badge(c, x, y, bDown)
		}
		var parts []string
		if n.Up && n.SpeedMbs > 0 {
			parts = append(parts, speed(n.SpeedMbs))
		}
		parts = append(parts, n.Addrs...)
		if len(n.Addrs) > 0 {
			if n.DHCP {
				parts = append(parts, m.t(mModeDHCP))
			} else {
				parts = append(parts, m.t(mModeStatic))
			}
		} else if n.Up {
			parts = append(parts, m.t(mNoAddress))
		}
		if n.VLAN > 0 {
			parts = append(parts, "VLAN "+strconv.Itoa(n.VLAN))
		}
		c.put(x, y, c.fit(strings.Join(parts, "  "), cols-x-1), plain)
		y++
	}
	// What the cluster or the boot server said, in full: the row above
	// has only room for its gist.
	var why []string
	if a := s.Attestation; (a.State == AttestRefused || a.State == AttestError) && a.Detail != "" {
		why = append(why, m.tf(mAttestWhy, a.Detail))
	}
	if e := s.Enrolment; (e.State == EnrolRejected || e.State == EnrolError) && e.Detail != "" {
		why = append(why, m.tf(mEnrolWhy, e.Detail))
	}
	for _, w := range why {
		if y >= rows-3 {
			break
		}
		c.put(1, y, c.fit("! "+w, cols-2), fail)
		y++
	}
	for _, n := range s.Notes {
		if y >= rows-3 {
			break
		}
		c.put(1, y, c.fit("! "+n, cols-2), warn)
		y++
	}

	// The last log lines fill what is left.
	if y < rows-3 {
		c.rule(y, m.t(mLog))
		y++
		n := rows - 2 - y
		logs := s.Log
		if len(logs) > n {
			logs = logs[len(logs)-n:]
		}
		for _, l := range logs {
			m.logLine(c, y, l, false)
			y++
		}
	}
}

func (m *Model) logLine(c *canvas, y int, l LogLine, date bool) {
	ts := l.Time.Format("15:04:05")
	if date {
		ts = l.Time.Format("01-02 15:04:05")
	}
	x := c.put(1, y, ts, dim) + 1
	switch l.Level {
	case LevelError:
		x = c.put(x, y, m.t(mLevelError), fail)
	case LevelWarn:
		x = c.put(x, y, m.t(mLevelWarn), warn)
	default:
		x = c.put(x, y, m.t(mLevelInfo), dim)
	}
	x = max(x+1, 1+len(ts)+1+7)
	c.put(x, y, c.fit(l.Text, c.f.Cols-x-1), plain)
}

func (m *Model) enrolRow() row {
	e := m.st.Enrolment
	r := row{label: mEnrolment}
	detail := func(key msg) string {
		if e.Detail != "" {
			return m.tf(mWithDetail, m.t(key), e.Detail)
		}
		return m.t(key)
	}
	switch e.State {
	case EnrolNone:
		r.text = m.t(mEnrolNone)
	case EnrolNoServer:
		r.badge, r.has, r.text = bFail, true, m.t(mEnrolNoServer)
	case EnrolContacting:
		r.text = m.t(mEnrolContacting)
	case EnrolPending:
		r.badge, r.has, r.text = bWarn, true, m.t(mEnrolPending)
		if e.ID != "" {
			r.text = m.tf(mEnrolPendingID, e.ID)
		}
	case EnrolApproved:
		r.badge, r.has, r.text = bOK, true, m.t(mEnrolApproved)
	case EnrolRejected:
		r.badge, r.has, r.text = bFail, true, detail(mEnrolRejected)
	case EnrolError:
		r.badge, r.has, r.text = bFail, true, detail(mEnrolError)
	default:
		r.text = e.State
	}
	return r
}

func (m *Model) attestRow() row {
	a := m.st.Attestation
	r := row{label: mAttestation}
	why := a.Reason // the detail has its own line below the network
	if why == "" {
		why = a.Detail
	}
	switch a.State {
	case AttestNone:
		r.text = m.t(mAttestNone)
	case AttestAttesting:
		r.text = m.t(mAttestAttesting)
	case AttestAccepted:
		r.badge, r.has, r.text = bOK, true, m.t(mAttestAccepted)
	case AttestRefused:
		r.badge, r.has, r.text = bFail, true, m.tf(mAttestRefused, orDash(why))
	case AttestError:
		r.badge, r.has, r.text = bFail, true, m.tf(mAttestError, orDash(why))
	default:
		r.text = a.State
	}
	return r
}

func (m *Model) certRow() row {
	r := row{label: mCert}
	exp := m.st.CertExpires
	switch {
	case exp.IsZero():
		r.text = m.t(mNone)
	case !m.now.Before(exp):
		r.badge, r.has, r.text = bFail, true, m.tf(mCertExpired, exp.Format("2006-01-02"))
	case exp.Sub(m.now) < 7*24*time.Hour:
		r.badge, r.has, r.text = bWarn, true, m.tf(mCertIn, exp.Format("2006-01-02"), m.dur(exp.Sub(m.now)))
	default:
		r.badge, r.has, r.text = bOK, true, m.tf(mCertIn, exp.Format("2006-01-02"), m.dur(exp.Sub(m.now)))
	}
	return r
}

func (m *Model) clockRow() row {
	k := m.st.Clock
	if !k.Synced {
		return row{label: mClock, badge: bWarn, has: true, text: m.t(mClockNotSynced)}
	}
	return row{label: mClock, badge: bOK, has: true, text: m.tf(mClockSynced, orDash(k.Source), millis(k.Offset))}
}

func (m *Model) diskRow() row {
	if len(m.st.Disks) == 0 {
		return row{label: mDisk, text: m.t(mNoDisk)}
	}
	var parts []string
	worst := bOK
	for _, d := range m.st.Disks {
		p := d.Name + " " + units.Bytes(d.Size)
		if d.Total > 0 {
			p += " " + m.tf(mDiskUsed, int(100*d.Used/d.Total))
		}
		switch d.Health {
		case HealthFailing:
			p += " " + m.t(mDiskFailing)
			worst = bFail
		case HealthUnknown:
			if worst == bOK {
				worst = bUnknown
			}
		}
		parts = append(parts, p)
	}
	return row{label: mDisk, badge: worst, has: true, text: strings.Join(parts, "; ")}
}

func (m *Model) reachRow(label msg, r Reach) row {
	out := row{label: label, has: true, text: orDash(r.Address)}
	switch r.State {
	case ReachOK:
		out.badge = bOK
		if r.RTT > 0 {
			out.text += m.tf(mRTT, millis(r.RTT))
		}
	case ReachFail:
		out.badge = bFail
		if r.Error != "" {
			out.text = m.tf(mWithDetail, out.text, r.Error)
		}
	default:
		out.badge = bUnknown
	}
	return out
}

func (m *Model) usage(u Usage) string {
	if u.Total == 0 {
		return "-"
	}
	return m.tf(mUsage, units.Bytes(u.Used), units.Bytes(u.Total), int(100*u.Used/u.Total))
}

// millis words a short time in ASCII (Duration.String writes µs).
func millis(d time.Duration) string {
	if d >= time.Second || d <= -time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func speed(mbs int) string {
	if mbs >= 1000 && mbs%1000 == 0 {
		return fmt.Sprintf("%d Gb/s", mbs/1000)
	}
	return fmt.Sprintf("%d Mb/s", mbs)
}

// dur words a duration the way a technician reads it: the two largest units.
func (m *Model) dur(d time.Duration) string {
	d = d.Round(time.Second)
	if d < 0 {
		d = 0
	}
	days, h, mi, s := int(d/(24*time.Hour)), int(d/time.Hour)%24, int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case days > 0:
		return m.tf(mDurDH, days, h)
	case h > 0:
		return m.tf(mDurHM, h, mi)
	case mi > 0:
		return m.tf(mDurMS, mi, s)
	}
	return m.tf(mDurS, s)
}

func (m *Model) drawNote(c *canvas) {
	y := c.f.Rows - 2
	n := m.note
	if n == nil {
		// A network change under test is worth the line on every screen.
		if p := m.st.Network; p != nil && !p.Confirmed && !p.Reverted && m.scr != scrPending {
			c.put(1, y, c.fit(m.tf(mPendingBanner, m.dur(p.Deadline.Sub(m.now))), c.f.Cols-2), warn)
		}
		return
	}
	s := m.tf(n.key, n.args...)
	st := good
	if n.bad {
		s = m.tf(mError, s)
		st = fail
	}
	c.put(1, y, c.fit(s, c.f.Cols-2), st)
}

func (m *Model) drawHelp(c *canvas) {
	y := c.f.Rows - 1
	c.fill(0, y, c.f.Cols, 1, helpBar)
	var key msg
	switch {
	case m.confirm != nil:
		key = mHelpConfirm
	case m.scr == scrStatus:
		key = mHelpStatus
	case m.scr == scrPIN:
		key = mHelpPIN
	case m.scr == scrMenu:
		key = mHelpMenu
	case m.scr == scrNetwork || m.scr == scrServers || m.scr == scrRole:
		key = mHelpForm
	case m.scr == scrPending:
		key = mHelpPending
	case m.scr == scrDiag:
		key = mHelpDiag
	case m.scr == scrLog:
		key = mHelpLog
	case m.scr == scrSlots:
		key = mHelpSlots
	case m.scr == scrReset:
		key = mHelpReset
	}
	s := " " + m.t(key)
	if !c.ascii {
		s += "  " + m.t(mHelpLang)
	}
	if c.ascii {
		s = strings.NewReplacer("↑↓", "Up/Down", "←→", "Left/Right").Replace(s)
	}
	c.put(0, y, c.fit(s, c.f.Cols), helpBar)
}

func (m *Model) drawPIN(c *canvas) {
	m.screenTitle(c, mPINTitle, "")
	w := c.f.Cols - 4
	if !m.pinConfigured() {
		y := c.para(2, 3, w, m.t(mNoPIN), warn, 3)
		c.para(2, y+1, w, m.t(mNoPINHow), plain, 4)
		return
	}
	y := c.para(2, 3, w, m.t(mPINPrompt), plain, 2) + 1
	x := c.put(2, y, m.t(mPINLabel), strong)
	box := strings.Repeat("*", len(m.pin))
	c.put(x, y, fmt.Sprintf("[%-12s]", box+"_"), entry)
	y += 2
	if d := m.lockedFor(); d > 0 {
		c.para(2, y, w, m.tf(mPINLockedFor, MaxPINTries, m.dur(d)), fail, 2)
		y += 2
	}
	c.para(2, y+1, w, m.tf(mPINPolicy, MaxPINTries, int(LockBase.Seconds())), dim, 3)
}

func (m *Model) drawMenu(c *canvas) {
	m.screenTitle(c, mMenuTitle, m.st.Hostname)
	for i, item := range menuItems {
		y := 3 + i
		key := strconv.Itoa((i + 1) % 10)
		st := plain
		marker := "  "
		if i == m.menu {
			st = selected
			marker = "▶ "
			if c.ascii {
				marker = "> "
			}
			c.fill(2, y, 38, 1, st)
		}
		x := c.put(2, y, marker+key+"  ", st)
		x = c.put(x, y, m.t(item), st)
		extra, est := "", dim
		switch item {
		case mMenuSlots:
			if m.st.Slots == nil {
				extra = m.t(mMenuSlotsNone)
			}
		case mMenuNetwork:
			if p := m.st.Network; p != nil && !p.Confirmed && !p.Reverted {
				extra, est = m.tf(mMenuNetPending, m.dur(p.Deadline.Sub(m.now))), warn
			}
		case mMenuRole:
			extra = m.tf(mMenuRoleNow, orDash(m.st.Role))
		}
		if extra != "" {
			ex := max(x+2, 42)
			c.put(ex, y, c.fit(extra, c.f.Cols-ex-1), est)
		}
	}
}

func (m *Model) drawForm(c *canvas) {
	f := m.form
	switch m.scr {
	case scrNetwork:
		m.screenTitle(c, mNetTitle, "")
	case scrServers:
		m.screenTitle(c, mServersTitle, "")
	case scrRole:
		m.screenTitle(c, mRoleTitle, m.tf(mMenuRoleNow, orDash(m.st.Role)))
	}
	const lx, vx = 2, 22
	vw := c.f.Cols - vx - 2
	y := 3
	for i, fl := range f.fields {
		off := fl.off != nil && fl.off(f)
		lst := plain
		switch {
		case off:
			lst = dim
		case i == f.errAt:
			lst = fail
		case i == f.cur:
			lst = strong
		}
		mark := "  "
		if i == f.cur {
			mark = "▶ "
			if c.ascii {
				mark = "> "
			}
		}
		if i == f.errAt {
			mark = "! "
		}
		c.put(lx-2+0, y, mark, lst)
		c.put(lx, y, c.fit(m.t(fl.label), vx-lx-1), lst)
		val := fl.value
		if len(fl.choices) > 0 {
			for j, ch := range fl.choices {
				if ch == fl.value {
					switch {
					case fl.labels != nil:
						val = m.t(fl.labels[j])
					case fl.names != nil:
						val = fl.names[j]
					}
				}
			}
			l, r := "◀ ", " ▶"
			if c.ascii {
				l, r = "< ", " >"
			}
			st := plain
			if i == f.cur {
				st = entry
			}
			if off {
				st = dim
			}
			c.put(vx, y, c.fit(l+val+r, vw), st)
		} else {
			st := plain
			text := val
			if i == f.cur && !off {
				st = entry
				text += "_"
			}
			if off {
				st = dim
			}
			bw := min(max(fl.max+1, 16), vw)
			shown := text
			if cells.StringWidth(shown) > bw {
				// Show the end of a long value: that is where the cursor is.
				r := []rune(shown)
				for cells.StringWidth(string(r)) > bw {
					r = r[1:]
				}
				shown = string(r)
			}
			c.fill(vx, y, bw, 1, st)
			c.put(vx, y, shown, st)
		}
		y++
	}
	y++
	if h := f.fields[f.cur].hint; h != 0 {
		y = c.para(2, y, c.f.Cols-4, m.t(h), dim, 2)
	}
	y++
	switch m.scr {
	case scrNetwork:
		c.para(2, y, c.f.Cols-4, m.tf(mNetUnderTest, int(RevertAfter.Seconds())), plain, 3)
	case scrServers:
		c.para(2, y, c.f.Cols-4, m.t(mServersNote), plain, 3)
	case scrRole:
		text := m.t(mRoleNote)
		if len(m.st.Roles) > 0 {
			text += "\n" + m.tf(mRoleChoices, strings.Join(m.st.Roles, ", "))
		}
		c.para(2, y, c.f.Cols-4, text, plain, 4)
	}
}

func (m *Model) drawPending(c *canvas) {
	m.screenTitle(c, mPendingTitle, "")
	w := c.f.Cols - 4
	p := m.st.Network
	y := 3
	switch {
	case p == nil && m.applied:
		c.para(2, y, w, m.t(mPendingApplying), warn, 2)
		return
	case p == nil:
		c.para(2, y, w, m.t(mPendingNone), plain, 2)
		return
	}
	y = c.para(2, y, w, m.tf(mNetSummary, p.Config.NIC, m.netText(p.Config)), strong, 2) + 1
	switch {
	case p.Confirmed:
		x := m.badge(c, 2, y, bOK)
		c.para(x, y, w-x, m.t(mPendingKept), plain, 2)
	case p.Reverted:
		x := m.badge(c, 2, y, bWarn)
		text := m.t(mPendingReverted)
		if p.Reason != "" {
			text = m.tf(mWithDetail, text, p.Reason)
		}
		c.para(x, y, w-x, text, plain, 2)
	default:
		c.para(2, y, w, m.tf(mPendingCountdown, m.dur(p.Deadline.Sub(m.now))), warn, 2)
	}
	y += 3
	for _, r := range []row{m.reachRow(mGateway, m.st.Gateway), m.reachRow(mCluster, m.st.Cluster)} {
		c.put(2, y, c.fit(m.t(r.label), 11), dim)
		x := m.badge(c, 14, y, r.badge)
		c.put(x, y, c.fit(r.text, c.f.Cols-x-1), plain)
		y++
	}
	if !p.Confirmed && !p.Reverted {
		c.para(2, y+1, w, m.t(mPendingHow), plain, 3)
	}
}

func (m *Model) diagName(name string) string {
	switch name {
	case DiagPingGateway:
		return m.t(mDiagPingGateway)
	case DiagPingCluster:
		return m.t(mDiagPingCluster)
	case DiagDNS:
		return m.t(mDiagDNS)
	case DiagDHCP:
		return m.t(mDiagDHCP)
	case DiagDisk:
		return m.t(mDiagDisk)
	case DiagTPM:
		return m.t(mDiagTPM)
	}
	return name
}

func (m *Model) drawDiag(c *canvas) {
	m.screenTitle(c, mDiagTitle, "")
	if len(m.st.Diagnostics) == 0 {
		c.para(2, 3, c.f.Cols-4, m.t(mDiagNone), plain, 2)
		return
	}
	y := 3
	for _, d := range m.st.Diagnostics {
		if y >= c.f.Rows-3 {
			break
		}
		b := bUnknown
		switch d.State {
		case DiagOK:
			b = bOK
		case DiagFail:
			b = bFail
		case DiagRunning:
			b = bRunning
		}
		x := max(m.badge(c, 2, y, b), 10)
		x = c.put(x, y, c.fit(m.diagName(d.Name), 22), strong)
		x = max(x+1, 33)
		text := d.Target
		if d.Detail != "" {
			text = strings.TrimPrefix(text+"  "+d.Detail, "  ")
		}
		c.put(x, y, c.fit(text, c.f.Cols-x-1), plain)
		y++
	}
}

func (m *Model) drawLog(c *canvas) {
	logs := m.st.Log
	page := min(m.logPage(), c.f.Rows-5)
	end := len(logs) - m.logBack
	start := max(end-page, 0)
	extra := ""
	if len(logs) > 0 {
		extra = m.tf(mLogPos, start+1, end, len(logs))
	}
	m.screenTitle(c, mLogTitle, extra)
	if len(logs) == 0 {
		c.put(2, 3, m.t(mLogEmpty), plain)
		return
	}
	for i, l := range logs[start:end] {
		m.logLine(c, 3+i, l, true)
	}
}

func (m *Model) drawSlots(c *canvas) {
	m.screenTitle(c, mSlotsTitle, "")
	w := c.f.Cols - 4
	si := m.st.Slots
	if si == nil {
		c.para(2, 3, w, m.t(mSlotsPXE), plain, 4)
		return
	}
	y := 3
	c.put(2, y, m.tf(mSlotsBooted, orDash(si.Booted)), strong)
	y += 2
	cols := []int{4, 14, 36, 52}
	for i, h := range []msg{mSlotCol, mVersionCol, mStateCol, mInstalledCol} {
		c.put(cols[i], y, m.t(h), dim)
	}
	y++
	for _, s := range si.Slots {
		if s.Name == si.Booted {
			c.put(2, y, "*", strong)
		}
		c.put(cols[0], y, s.Name, strong)
		c.put(cols[1], y, c.fit(orDash(s.Version), cols[2]-cols[1]-1), plain)
		switch s.State {
		case SlotGood:
			m.badge(c, cols[2], y, bOK)
		case SlotBad:
			m.badge(c, cols[2], y, bFail)
		case SlotTrying:
			c.put(cols[2], y, m.t(mSlotTrying), warn)
		default:
			c.put(cols[2], y, m.t(mSlotEmpty), dim)
		}
		if !s.Installed.IsZero() {
			c.put(cols[3], y, s.Installed.Format("2006-01-02 15:04"), plain)
		}
		y++
	}
	y++
	if si.Previous == "" {
		c.para(2, y, w, m.t(mNoRollback), plain, 2)
		return
	}
	c.para(2, y, w, m.tf(mRollbackHow, si.Previous, orDash(m.slotVersion(si.Previous))), plain, 3)
}

func (m *Model) drawReset(c *canvas) {
	m.screenTitle(c, mResetTitle, "")
	w := c.f.Cols - 4
	y := c.para(2, 3, w, m.t(mResetWarn), fail, 4) + 1
	y = c.para(2, y, w, m.tf(mResetPrompt, m.st.Serial), plain, 2) + 1
	c.fill(2, y, 40, 1, entry)
	c.put(2, y, c.fit(m.resetIn+"_", 40), entry)
}

func (m *Model) drawConfirm(c *canvas) {
	d := m.confirm
	w := min(c.f.Cols-8, 66)
	inner := w - 4
	var body []string
	for _, n := range d.body {
		body = append(body, wrap(m.tf(n.key, n.args...), inner)...)
	}
	h := len(body) + 5 // borders, a blank line above and below the body, the buttons
	x0, y0 := (c.f.Cols-w)/2, max((c.f.Rows-h)/2, 1)
	c.fill(x0, y0, w, h, dialog)
	tl, tr, bl, br, hz, vt := "┌", "┐", "└", "┘", "─", "│"
	if c.ascii {
		tl, tr, bl, br, hz, vt = "+", "+", "+", "+", "-", "|"
	}
	c.put(x0, y0, tl+strings.Repeat(hz, w-2)+tr, dialog)
	for y := y0 + 1; y < y0+h-1; y++ {
		c.put(x0, y, vt, dialog)
		c.put(x0+w-1, y, vt, dialog)
	}
	c.put(x0, y0+h-1, bl+strings.Repeat(hz, w-2)+br, dialog)
	t := " " + m.t(d.title) + " "
	c.put(x0+(w-cells.StringWidth(t))/2, y0, t, style{cells.BrightWhite, cells.Blue, true})
	for i, l := range body {
		c.put(x0+2, y0+2+i, l, dialog)
	}
	yes, no := "[ "+m.t(mYes)+" ]", "[ "+m.t(mNo)+" ]"
	yst, nst := dialog, dialog
	if d.yes {
		yst = style{cells.Black, cells.BrightWhite, true}
	} else {
		nst = style{cells.Black, cells.BrightWhite, true}
	}
	by := y0 + h - 2
	bw := cells.StringWidth(yes) + 4 + cells.StringWidth(no)
	bx := x0 + (w-bw)/2
	c.put(bx, by, yes, yst)
	c.put(bx+cells.StringWidth(yes)+4, by, no, nst)
}
