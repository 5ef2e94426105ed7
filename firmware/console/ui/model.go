// Package ui is the node console's screens and menus, in Chinese and
// English, as a pure model: the console process feeds it key presses,
// status updates and clock ticks (Update), carries out the Actions it
// returns, and draws it into a cells.Frame (Draw) for the box's own screen
// and for the serial console, each with its own Model.
//
// The model does no I/O, starts no goroutine and reads no clock, so that
// every screen can be tested as state in, text out (testdata/*.golden).
//
// What a technician gets: a live status screen with a QR code of the
// serial number and MACs; behind a PIN set from the cluster, an admin menu
// to change the network (tested, and reverted by the console process unless
// confirmed), the boot server and cluster address, re-enrol, request a role,
// run diagnostics, read the log, roll back to the previous slot, reboot,
// power off and factory reset. Every destructive action asks to confirm.
package ui

import (
	"time"

	"github.com/onecloud-edu/onecloud/firmware/console/cells"
	"github.com/onecloud-edu/onecloud/firmware/console/input"
)

// IdleLock is how long the admin session stays open without a key.
const IdleLock = 5 * time.Minute

// RevertAfter is how long a network change stays without confirmation
// before the console process reverts it.
const RevertAfter = 60 * time.Second

// Options configure a Model.
type Options struct {
	// Lang is the language to start in (from the cluster or the command
	// line); empty is English.
	Lang Lang
	// Cols and Rows are the screen size; zero is 80x25. Draw uses the
	// frame's own size, these size pages (log scrolling).
	Cols, Rows int
	// PIN checks the console PIN; nil means none is set.
	PIN PINChecker
	// Lock keeps the PIN lockout across consoles; nil keeps it in memory.
	Lock LockStore
	// ASCIIOnly is for a terminal that cannot draw CJK or box drawing:
	// English only, ASCII lines, no QR code.
	ASCIIOnly bool
}

// Event is what Update takes: KeyPress, StatusUpdate or Tick.
type Event interface{ event() }

// KeyPress is a key from the screen's keyboard or the serial console.
type KeyPress struct{ Key input.Key }

// StatusUpdate is a fresh Status.
type StatusUpdate struct{ Status Status }

// Tick is the clock: send one every second for the countdowns and the
// idle lock.
type Tick struct{ Now time.Time }

func (KeyPress) event()     {}
func (StatusUpdate) event() {}
func (Tick) event()         {}

// Action is what Update asks the console process to do.
type Action interface{ action() }

// ApplyNetwork applies Config under test: if the cluster is unreachable
// afterwards and nobody sends ConfirmNetwork, revert after RevertAfter
// (and show it in Status.Network).
type ApplyNetwork struct {
	Config      NetConfig
	RevertAfter time.Duration
}

// ConfirmNetwork keeps the network change under test.
type ConfirmNetwork struct{}

// RevertNetwork reverts the network change under test now.
type RevertNetwork struct{}

// SetServers sets the boot server and the cluster address; an empty one
// means learn it again (DHCP, the enrolment answer).
type SetServers struct{ Boot, Cluster string }

// Reenrol forgets the enrolment and enrols again.
type Reenrol struct{}

// RequestRole asks the cluster to give the box another role.
type RequestRole struct{ Role string }

// RunDiagnostics runs the diagnostics; results come back in Status.Diagnostics.
type RunDiagnostics struct{}

// Rollback boots the previous slot.
type Rollback struct{ Slot string }

// Reboot reboots the box.
type Reboot struct{}

// PowerOff powers the box off.
type PowerOff struct{}

// FactoryReset wipes the box's local state and enrolment; the technician
// typed the serial number to confirm.
type FactoryReset struct{}

// SetLang says the technician switched language, for the console process
// to remember.
type SetLang struct{ Lang Lang }

func (ApplyNetwork) action()   {}
func (ConfirmNetwork) action() {}
func (RevertNetwork) action()  {}
func (SetServers) action()     {}
func (Reenrol) action()        {}
func (RequestRole) action()    {}
func (RunDiagnostics) action() {}
func (Rollback) action()       {}
func (Reboot) action()         {}
func (PowerOff) action()       {}
func (FactoryReset) action()   {}
func (SetLang) action()        {}

type screen int

const (
	scrStatus screen = iota
	scrPIN
	scrMenu
	scrNetwork
	scrPending
	scrServers
	scrRole
	scrDiag
	scrLog
	scrSlots
	scrReset
)

// note is the one-line message above the help line.
type note struct {
	key  msg
	args []any
	bad  bool
}

// confirmation is a yes/no dialog over the current screen.
type confirmation struct {
	title msg
	body  []note
	do    Action
	next  screen // where to go on yes
	done  note   // what to say on yes
	yes   bool   // the selected button; No by default
}

// Model is one console's state. Use New; not safe for concurrent use.
type Model struct {
	opt  Options
	lang Lang
	st   Status
	now  time.Time

	scr     screen
	admin   bool
	lastKey time.Time
	note    *note
	confirm *confirmation

	menu     int
	pin      string
	lock     LockState
	form     *form
	applied  bool // an ApplyNetwork went out and Status.Network may not show it yet
	logBack  int  // lines scrolled back from the newest
	resetIn  string
	qrText   string
	qrLines  []string
	qrFailed bool
}

// New is a model on the status screen.
func New(o Options) *Model {
	if o.Cols <= 0 {
		o.Cols = 80
	}
	if o.Rows <= 0 {
		o.Rows = 25
	}
	m := &Model{opt: o, lang: o.Lang}
	if o.ASCIIOnly || m.lang != Chinese {
		m.lang = English
	}
	return m
}

// Lang is the language shown.
func (m *Model) Lang() Lang { return m.lang }

// Update handles one event and returns what to do, in order.
func (m *Model) Update(ev Event) []Action {
	switch e := ev.(type) {
	case Tick:
		m.setNow(e.Now)
		m.idle()
	case StatusUpdate:
		m.st = e.Status
		m.setNow(e.Status.Now)
		if m.st.Network != nil {
			m.applied = false
		}
		m.idle()
	case KeyPress:
		if m.idle() {
			return nil // the key that wakes a locked console only wakes it
		}
		m.lastKey = m.now
		return m.key(e.Key)
	}
	return nil
}

func (m *Model) setNow(t time.Time) {
	if !t.IsZero() {
		m.now = t
	}
}

// idle closes the admin session (and an unfinished PIN entry) after
// IdleLock without a key, and says whether it did.
func (m *Model) idle() bool {
	if m.scr == scrStatus || m.now.Sub(m.lastKey) < IdleLock {
		return false
	}
	m.leave()
	m.note = &note{key: mIdleLocked, args: []any{int(IdleLock.Minutes())}}
	return true
}

// leave closes the admin session and goes back to the status screen.
func (m *Model) leave() {
	m.admin = false
	m.scr = scrStatus
	m.pin, m.resetIn = "", ""
	m.form, m.confirm, m.note = nil, nil, nil
}

func (m *Model) key(k input.Key) []Action {
	if k.Code == input.F2 {
		return m.toggleLang()
	}
	if k.Code == input.CtrlL {
		return nil
	}
	if m.confirm != nil {
		return m.confirmKey(k)
	}
	m.note = nil
	switch m.scr {
	case scrStatus:
		switch {
		case k.Code == input.Rune && (k.R == 'l' || k.R == 'L'):
			return m.toggleLang()
		case k.Code == input.Enter || (k.Code == input.Rune && (k.R == 'm' || k.R == 'M')):
			m.scr, m.pin = scrPIN, ""
			m.loadLock()
		}
	case scrPIN:
		m.pinKey(k)
	case scrMenu:
		return m.menuKey(k)
	case scrNetwork, scrServers, scrRole:
		return m.formKey(k)
	case scrPending:
		return m.pendingKey(k)
	case scrDiag:
		switch {
		case k.Code == input.Esc:
			m.scr = scrMenu
		case k.Code == input.Enter || isRune(k, 'r'):
			m.note = &note{key: mDiagStarted}
			return []Action{RunDiagnostics{}}
		}
	case scrLog:
		m.logKey(k)
	case scrSlots:
		switch {
		case k.Code == input.Esc:
			m.scr = scrMenu
		case isRune(k, 'r'):
			if m.st.Slots == nil || m.st.Slots.Previous == "" {
				m.note = &note{key: mNoRollback, bad: true}
				return nil
			}
			p := m.st.Slots.Previous
			m.ask(mRollbackTitle, []note{{key: mRollbackBody, args: []any{p, m.slotVersion(p)}}}, Rollback{Slot: p}, scrSlots, note{key: mRollbackDone, args: []any{p}})
		}
	case scrReset:
		return m.resetKey(k)
	}
	return nil
}

func isRune(k input.Key, lower rune) bool {
	return k.Code == input.Rune && (k.R == lower || k.R == lower-'a'+'A')
}

func (m *Model) toggleLang() []Action {
	if m.opt.ASCIIOnly {
		m.note = &note{key: mASCIIOnly}
		return nil
	}
	if m.lang == English {
		m.lang = Chinese
	} else {
		m.lang = English
	}
	return []Action{SetLang{Lang: m.lang}}
}

// ask opens a confirmation dialog for a.
func (m *Model) ask(title msg, body []note, a Action, next screen, done note) {
	m.confirm = &confirmation{title: title, body: body, do: a, next: next, done: done}
}

func (m *Model) confirmKey(k input.Key) []Action {
	c := m.confirm
	switch {
	case k.Code == input.Left || k.Code == input.Right || k.Code == input.Tab || k.Code == input.BackTab:
		c.yes = !c.yes
		return nil
	case isRune(k, 'y'):
		c.yes = true
	case isRune(k, 'n') || k.Code == input.Esc:
		c.yes = false
	case k.Code == input.Enter:
	default:
		return nil
	}
	m.confirm = nil
	if !c.yes {
		m.note = &note{key: mCancelled}
		return nil
	}
	m.scr, m.form = c.next, nil
	m.note = &c.done
	if _, ok := c.do.(ApplyNetwork); ok {
		m.applied = true
	}
	return []Action{c.do}
}

// loadLock reads the shared lockout; a store that cannot be read keeps
// what this console knows, so a broken file never unlocks the console.
func (m *Model) loadLock() {
	if m.opt.Lock == nil {
		return
	}
	s, err := m.opt.Lock.Load()
	if err != nil {
		m.note = &note{key: mLockLoadErr, args: []any{err.Error()}, bad: true}
		return
	}
	m.lock = s
}

func (m *Model) saveLock() {
	if m.opt.Lock == nil {
		return
	}
	if err := m.opt.Lock.Save(m.lock); err != nil {
		m.note = &note{key: mLockSaveErr, args: []any{err.Error()}, bad: true}
	}
}

func (m *Model) pinConfigured() bool { return m.opt.PIN != nil && m.opt.PIN.Configured() }

// lockedFor is how long PIN entry stays locked, 0 when it is open.
func (m *Model) lockedFor() time.Duration {
	return max(m.lock.Until.Sub(m.now), 0)
}

func (m *Model) pinKey(k input.Key) {
	switch k.Code {
	case input.Esc:
		m.leave()
		return
	case input.Backspace, input.Delete:
		if n := len(m.pin); n > 0 {
			m.pin = m.pin[:n-1]
		}
		return
	case input.Rune:
		if len(m.pin) < MaxPINLength && k.R > ' ' && k.R < 0x7f {
			m.pin += string(k.R)
		}
		return
	case input.Enter:
	default:
		return
	}
	pin := m.pin
	m.pin = ""
	if !m.pinConfigured() || pin == "" {
		return
	}
	m.loadLock()
	if m.lockedFor() > 0 {
		return // the screen shows the lock
	}
	if m.opt.PIN.Check(pin) {
		m.lock = LockState{}
		m.saveLock()
		m.admin, m.scr, m.menu = true, scrMenu, 0
		return
	}
	m.lock = m.lock.afterFailure(m.now)
	m.saveLock()
	if m.lockedFor() > 0 {
		m.note = &note{key: mPINLocked, args: []any{m.dur(m.lockedFor())}, bad: true}
	} else {
		m.note = &note{key: mPINWrong, args: []any{MaxPINTries - m.lock.Failures}, bad: true}
	}
}

// menuItems are the admin menu, in order; the hotkey of item i is i+1,
// and 0 for the tenth.
var menuItems = [...]msg{mMenuNetwork, mMenuServers, mMenuReenrol, mMenuRole, mMenuDiag, mMenuLog, mMenuSlots, mMenuReboot, mMenuPowerOff, mMenuReset}

func (m *Model) menuKey(k input.Key) []Action {
	switch k.Code {
	case input.Esc:
		m.leave()
		return nil
	case input.Up:
		m.menu = (m.menu + len(menuItems) - 1) % len(menuItems)
		return nil
	case input.Down, input.Tab:
		m.menu = (m.menu + 1) % len(menuItems)
		return nil
	case input.Home:
		m.menu = 0
		return nil
	case input.End:
		m.menu = len(menuItems) - 1
		return nil
	case input.Rune:
		switch {
		case k.R >= '1' && k.R <= '9':
			m.menu = int(k.R - '1')
		case k.R == '0':
			m.menu = 9
		default:
			return nil
		}
	case input.Enter:
	default:
		return nil
	}
	return m.open(menuItems[m.menu])
}

func (m *Model) open(item msg) []Action {
	switch item {
	case mMenuNetwork:
		if p := m.st.Network; p != nil && !p.Confirmed && !p.Reverted {
			m.scr = scrPending
			return nil
		}
		if len(m.st.NICs) == 0 {
			m.note = &note{key: mErrNoNIC, bad: true}
			return nil
		}
		m.scr, m.form = scrNetwork, m.networkForm()
	case mMenuServers:
		m.scr, m.form = scrServers, m.serversForm()
	case mMenuRole:
		m.scr, m.form = scrRole, m.roleForm()
	case mMenuReenrol:
		m.ask(mReenrolTitle, []note{{key: mReenrolBody}}, Reenrol{}, scrMenu, note{key: mReenrolDone})
	case mMenuDiag:
		m.scr = scrDiag
	case mMenuLog:
		m.scr, m.logBack = scrLog, 0
	case mMenuSlots:
		m.scr = scrSlots
	case mMenuReboot:
		m.ask(mRebootTitle, []note{{key: mRebootBody}}, Reboot{}, scrMenu, note{key: mRebootDone})
	case mMenuPowerOff:
		m.ask(mPowerOffTitle, []note{{key: mPowerOffBody}}, PowerOff{}, scrMenu, note{key: mPowerOffDone})
	case mMenuReset:
		if m.st.Serial == "" {
			m.note = &note{key: mResetNoSerial, bad: true}
			return nil
		}
		m.scr, m.resetIn = scrReset, ""
	}
	return nil
}

func (m *Model) pendingKey(k input.Key) []Action {
	p := m.st.Network
	active := p != nil && !p.Confirmed && !p.Reverted
	switch {
	case k.Code == input.Esc:
		m.scr = scrMenu
	case k.Code == input.Enter && active:
		if m.st.Cluster.State != ReachOK {
			m.ask(mKeepTitle, []note{{key: mKeepUnreachable}}, ConfirmNetwork{}, scrPending, note{key: mKeepDone})
			return nil
		}
		m.note = &note{key: mKeepDone}
		return []Action{ConfirmNetwork{}}
	case isRune(k, 'r') && active:
		m.note = &note{key: mRevertDone}
		return []Action{RevertNetwork{}}
	}
	return nil
}

// logPage is how many log lines the log screen shows.
func (m *Model) logPage() int { return max(m.opt.Rows-6, 1) }

func (m *Model) logKey(k input.Key) {
	maxBack := max(len(m.st.Log)-m.logPage(), 0)
	switch k.Code {
	case input.Esc:
		m.scr = scrMenu
	case input.Up:
		m.logBack++
	case input.Down:
		m.logBack--
	case input.PageUp:
		m.logBack += m.logPage()
	case input.PageDown:
		m.logBack -= m.logPage()
	case input.Home:
		m.logBack = maxBack
	case input.End:
		m.logBack = 0
	}
	m.logBack = min(max(m.logBack, 0), maxBack)
}

func (m *Model) resetKey(k input.Key) []Action {
	switch k.Code {
	case input.Esc:
		m.scr, m.resetIn = scrMenu, ""
	case input.Backspace, input.Delete:
		if r := []rune(m.resetIn); len(r) > 0 {
			m.resetIn = string(r[:len(r)-1])
		}
	case input.Rune:
		if len(m.resetIn) < 64 && k.R >= ' ' && k.R != 0x7f {
			m.resetIn += string(k.R)
		}
	case input.Enter:
		if m.resetIn != m.st.Serial {
			m.note = &note{key: mResetMismatch, bad: true}
			m.resetIn = ""
			return nil
		}
		// Typing the serial number is the confirmation.
		m.leave()
		m.note = &note{key: mResetDone}
		return []Action{FactoryReset{}}
	}
	return nil
}

func (m *Model) slotVersion(name string) string {
	if m.st.Slots == nil {
		return ""
	}
	for _, s := range m.st.Slots.Slots {
		if s.Name == name {
			return s.Version
		}
	}
	return ""
}

// Draw draws the current screen into f, all of it.
func (m *Model) Draw(f *cells.Frame) { m.draw(f) }
