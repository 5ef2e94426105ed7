package ui

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/console/cells"
	"github.com/onecloud-edu/onecloud/firmware/console/input"
)

func TestHashPIN(t *testing.T) {
	h := testHash()
	if !regexp.MustCompile(`^pbkdf2-sha256\$1000\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(h) {
		t.Fatalf("hash %q is not pbkdf2-sha256$ITER$SALT_B64$HASH_B64", h)
	}
	c, err := NewPBKDF2Checker(h)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Configured() || !c.Check(testPIN) {
		t.Error("the right PIN is refused")
	}
	for _, wrong := range []string{"", "2469", "24680", " 2468"} {
		if c.Check(wrong) {
			t.Errorf("PIN %q accepted", wrong)
		}
	}
	none, err := NewPBKDF2Checker("")
	if err != nil || none.Configured() || none.Check("") {
		t.Errorf("empty hash: %v, configured %v", err, none.Configured())
	}
	parts := strings.Split(h, "$")
	for _, bad := range []string{
		"pbkdf2-sha1$1000$" + parts[2] + "$" + parts[3],
		"pbkdf2-sha256$10$" + parts[2] + "$" + parts[3],
		"pbkdf2-sha256$99999999999$" + parts[2] + "$" + parts[3],
		"pbkdf2-sha256$1000$!!$" + parts[3],
		"pbkdf2-sha256$1000$" + parts[2] + "$c2hvcnQ",
		"pbkdf2-sha256$1000$" + parts[2],
		h + "$x",
	} {
		if _, err := NewPBKDF2Checker(bad); err == nil || !strings.Contains(err.Error(), "set the console PIN again") {
			t.Errorf("NewPBKDF2Checker(%q) = %v, want an error saying what to do", bad, err)
		}
	}
}

func TestLockFor(t *testing.T) {
	for round, want := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour} {
		if got := lockFor(round); got != want {
			t.Errorf("lockFor(%d) = %v, want %v", round, got, want)
		}
	}
	if got := lockFor(1000); got != LockMax {
		t.Errorf("lockFor(1000) = %v", got)
	}
}

func wrongPINs(m *Model, n int) {
	for i := range n {
		keys(m, fmt.Sprintf("9%03d", i), input.Enter)
	}
}

func TestPINLockout(t *testing.T) {
	store := &MemoryLockStore{}
	m := New(Options{PIN: checker(t), Lock: store})
	now := t0
	m.Update(Tick{Now: now})
	keys(m, input.Enter)

	wrongPINs(m, 4)
	if m.lockedFor() != 0 || store.State.Failures != 4 {
		t.Fatalf("after 4 wrong PINs: locked for %v, store %+v", m.lockedFor(), store.State)
	}
	wrongPINs(m, 1)
	if want := now.Add(30 * time.Second); !store.State.Until.Equal(want) || m.lockedFor() != 30*time.Second {
		t.Fatalf("after 5 wrong PINs: store %+v, locked for %v; want until %v", store.State, m.lockedFor(), want)
	}
	if text, _ := render(m, 80, 25); !strings.Contains(text, "try again in 30s") {
		t.Errorf("the PIN screen does not show the lock:\n%s", text)
	}
	// Locked: even the right PIN does not open the menu.
	keys(m, testPIN, input.Enter)
	if m.scr != scrPIN || m.admin {
		t.Fatal("the right PIN opened the menu while locked")
	}
	now = now.Add(29 * time.Second)
	m.Update(Tick{Now: now})
	if text, _ := render(m, 80, 25); !strings.Contains(text, "try again in 1s") {
		t.Errorf("the lock does not count down:\n%s", text)
	}

	// The next round locks twice as long.
	now = now.Add(time.Second)
	m.Update(Tick{Now: now})
	wrongPINs(m, 5)
	if want := now.Add(60 * time.Second); !store.State.Until.Equal(want) {
		t.Fatalf("second round: until %v, want %v", store.State.Until, want)
	}

	// The serial console's model shares the lock through the store.
	other := New(Options{PIN: checker(t), Lock: store})
	other.Update(Tick{Now: now.Add(10 * time.Second)})
	keys(other, input.Enter, testPIN, input.Enter)
	if other.admin {
		t.Fatal("the other console ignores the shared lock")
	}

	now = now.Add(60 * time.Second)
	m.Update(Tick{Now: now})
	keys(m, testPIN, input.Enter)
	if !m.admin || m.scr != scrMenu {
		t.Fatalf("the right PIN after the lock: admin %v, screen %v", m.admin, m.scr)
	}
	if store.State != (LockState{}) {
		t.Errorf("the right PIN did not reset the lock: %+v", store.State)
	}
}

type brokenStore struct{ MemoryLockStore }

func (b *brokenStore) Load() (LockState, error) { return LockState{}, errors.New("disk full") }

// A lock store that cannot be read must not unlock the console.
func TestPINLockStoreUnreadable(t *testing.T) {
	m := New(Options{PIN: checker(t), Lock: &brokenStore{}})
	m.Update(Tick{Now: t0})
	keys(m, input.Enter)
	wrongPINs(m, 5)
	keys(m, testPIN, input.Enter)
	if m.admin {
		t.Fatal("the console opened although the PIN entry is locked")
	}
	if text, _ := render(m, 80, 25); !strings.Contains(text, "disk full") {
		t.Errorf("the screen does not say the lock state cannot be read:\n%s", text)
	}
}

func TestNoPINSet(t *testing.T) {
	for _, pin := range []PINChecker{nil, &PBKDF2Checker{}} {
		m := New(Options{PIN: pin})
		m.Update(StatusUpdate{Status: vdiPXE()})
		keys(m, input.Enter, "1234", input.Enter)
		if m.admin {
			t.Fatal("the menu opened without a PIN set")
		}
		if text, _ := render(m, 80, 25); !strings.Contains(text, "Set a console PIN from the cluster") {
			t.Errorf("the screen does not say how to set a PIN:\n%s", text)
		}
	}
}

func TestIdleRelock(t *testing.T) {
	m := newModel(t, vdiPXE(), English)
	login(m)
	keys(m, "1")
	m.Update(Tick{Now: t0.Add(IdleLock - time.Second)})
	if !m.admin || m.scr != scrNetwork {
		t.Fatalf("locked before %v idle", IdleLock)
	}
	keys(m, input.Down) // a key restarts the wait
	m.Update(Tick{Now: t0.Add(IdleLock + time.Minute)})
	if !m.admin {
		t.Fatal("locked although a key came less than 5 minutes ago")
	}
	m.Update(Tick{Now: t0.Add(2*IdleLock - time.Second)})
	if m.admin || m.scr != scrStatus || m.form != nil {
		t.Fatalf("not locked after %v idle: admin %v screen %v", IdleLock, m.admin, m.scr)
	}
	if text, _ := render(m, 80, 25); !strings.Contains(text, "locked after 5 minutes") {
		t.Errorf("the screen does not say why it locked:\n%s", text)
	}

	// A key arriving late (no tick in between) locks first and does nothing.
	m2 := newModel(t, serverB(), English)
	login(m2)
	m2.Update(StatusUpdate{Status: withNow(serverB(), t0.Add(IdleLock))})
	if a := keys(m2, "8"); a != nil || m2.admin {
		t.Fatalf("a key after the idle time acted: %v, admin %v", a, m2.admin)
	}
}

func withNow(s Status, now time.Time) Status { s.Now = now; return s }

// TestKeys drives whole flows and checks the actions and where they end.
func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		name   string
		st     func() Status
		keys   []any
		want   []Action
		screen screen
		admin  bool
		note   msg // the note shown at the end, 0 for none
	}{
		{"status: L switches to Chinese", vdiPXE, []any{"L"}, []Action{SetLang{Chinese}}, scrStatus, false, 0},
		{"F2 in the menu switches", vdiPXE, []any{login, input.F2}, []Action{SetLang{Chinese}}, scrMenu, true, 0},
		{"Enter opens the PIN screen", vdiPXE, []any{input.Enter}, nil, scrPIN, false, 0},
		{"Esc leaves the PIN screen", vdiPXE, []any{input.Enter, "12", input.Esc}, nil, scrStatus, false, 0},
		{"the right PIN opens the menu", vdiPXE, []any{login}, nil, scrMenu, true, 0},
		{"a wrong PIN says how many tries are left", vdiPXE, []any{input.Enter, "1357", input.Enter}, nil, scrPIN, false, mPINWrong},
		{"Esc in the menu locks", vdiPXE, []any{login, input.Esc}, nil, scrStatus, false, 0},
		{"arrows and Enter in the menu", vdiPXE, []any{login, input.Up, input.Up, input.Enter}, nil, scrMenu, true, 0}, // power off asks
		{"menu: digits jump", vdiPXE, []any{login, "6"}, nil, scrLog, true, 0},
		{"Esc from a form goes back to the menu", vdiPXE, []any{login, "1", input.Esc}, nil, scrMenu, true, 0},
		{"no NIC, no network form", func() Status { s := vdiPXE(); s.NICs = nil; return s }, []any{login, "1"}, nil, scrMenu, true, mErrNoNIC},
		{"'L' in a form is typed, not a language switch", vdiPXE, []any{login, "2", "L"}, nil, scrServers, true, 0},

		{"apply DHCP with a VLAN, confirmed", vdiPXE, []any{login, "1", bs(0), input.Up, "12", input.Enter, "y"},
			[]Action{ApplyNetwork{Config: NetConfig{NIC: "eth0", DHCP: true, VLAN: 12}, RevertAfter: 60 * time.Second}}, scrPending, true, mApplyDone},
		{"apply static, Enter on the default No cancels", vdiPXE, []any{login, "1", input.Down, input.Right, input.Enter, input.Enter}, nil, scrNetwork, true, mCancelled},
		{"apply static with Right then Enter", vdiPXE, []any{login, "1", input.Down, input.Right, input.Enter, input.Right, input.Enter},
			[]Action{ApplyNetwork{Config: NetConfig{NIC: "eth0", Address: netip.MustParsePrefix("10.20.1.15/24"), Gateway: netip.MustParseAddr("10.20.1.1"), DNS: []netip.Addr{netip.MustParseAddr("10.20.0.53")}}, RevertAfter: RevertAfter}}, scrPending, true, mApplyDone},
		{"bad VLAN", vdiPXE, []any{login, "1", input.Up, "4095", input.Enter}, nil, scrNetwork, true, mErrVLAN},
		{"second NIC chosen with Space", noNetwork, []any{login, "1", " ", input.Enter, "y"},
			[]Action{ApplyNetwork{Config: NetConfig{NIC: "wlan0", DHCP: true}, RevertAfter: RevertAfter}}, scrPending, true, mApplyDone},

		{"pending: Enter keeps when the cluster answers", func() Status { s := serverB(); s.Cluster.State = ReachOK; return s }, []any{login, "1", input.Enter}, []Action{ConfirmNetwork{}}, scrPending, true, mKeepDone},
		{"pending: the cluster is down, keep asks", serverB, []any{login, "1", input.Enter, "y"}, []Action{ConfirmNetwork{}}, scrPending, true, mKeepDone},
		{"pending: the cluster is down, N does not keep", serverB, []any{login, "1", input.Enter, "n"}, nil, scrPending, true, mCancelled},
		{"pending: R reverts now", serverB, []any{login, "1", "r"}, []Action{RevertNetwork{}}, scrPending, true, mRevertDone},

		{"servers: change the cluster address", serverB, []any{login, "2", input.Down, bs(4), "8443", input.Enter, "y"}, []Action{SetServers{Boot: "10.0.0.10", Cluster: "10.0.0.10:8443"}}, scrMenu, true, mServersDone},
		{"servers: empty means automatic", serverB, []any{login, "2", bs(9), input.Enter, "y"}, []Action{SetServers{Cluster: "10.0.0.10:7443"}}, scrMenu, true, mServersDone},
		{"servers: bad port", serverB, []any{login, "2", ":0", input.Enter}, nil, scrServers, true, mErrHost},
		{"re-enrol asks", vdiPXE, []any{login, "3", "y"}, []Action{Reenrol{}}, scrMenu, true, mReenrolDone},
		{"role from the list", serverB, []any{login, "4", input.Right, input.Enter, "y"}, []Action{RequestRole{Role: "vdi-terminal"}}, scrMenu, true, mRoleDone},
		{"role: the box has it already", serverB, []any{login, "4", input.Left, input.Enter}, nil, scrRole, true, mErrRoleSame},
		{"role typed", vdiPXE, []any{login, "4", "classroom-pc", input.Enter, "y"}, []Action{RequestRole{Role: "classroom-pc"}}, scrMenu, true, mRoleDone},
		{"role typed badly", vdiPXE, []any{login, "4", "Lab PC", input.Enter}, nil, scrRole, true, mErrRoleName},
		{"role empty", vdiPXE, []any{login, "4", input.Enter}, nil, scrRole, true, mErrRoleEmpty},
		{"diagnostics run", serverB, []any{login, "5", "r"}, []Action{RunDiagnostics{}}, scrDiag, true, mDiagStarted},
		{"rollback asks", serverB, []any{login, "7", "r", "y"}, []Action{Rollback{Slot: "A"}}, scrSlots, true, mRollbackDone},
		{"no rollback on PXE", vdiPXE, []any{login, "7", "r"}, nil, scrSlots, true, mNoRollback},
		{"reboot: Esc cancels", vdiPXE, []any{login, "8", input.Esc}, nil, scrMenu, true, mCancelled},
		{"reboot: Y", vdiPXE, []any{login, "8", "Y"}, []Action{Reboot{}}, scrMenu, true, mRebootDone},
		{"power off: Tab then Enter", vdiPXE, []any{login, "9", input.Tab, input.Enter}, []Action{PowerOff{}}, scrMenu, true, mPowerOffDone},
		{"factory reset: wrong serial", vdiPXE, []any{login, "0", "pf2abcde", input.Enter}, nil, scrReset, true, mResetMismatch},
		{"factory reset: right serial", vdiPXE, []any{login, "0", "PF2ABCDX", input.Backspace, "E", input.Enter}, []Action{FactoryReset{}}, scrStatus, false, mResetDone},
		{"factory reset: no serial known", func() Status { s := vdiPXE(); s.Serial = ""; return s }, []any{login, "0"}, nil, scrMenu, true, mResetNoSerial},
		{"factory reset: Esc, and back in with the field cleared", vdiPXE, []any{login, "0", "PF2ABCDE", input.Esc, input.Enter, input.Enter}, nil, scrReset, true, mResetMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newModel(t, tc.st(), English)
			var got []Action
			for _, k := range tc.keys {
				if f, ok := k.(func(*Model)); ok {
					f(m)
					continue
				}
				if more, ok := k.([]any); ok {
					got = append(got, keys(m, more...)...)
					continue
				}
				got = append(got, keys(m, k)...)
			}
			if tc.name == "F2 in the menu switches" && m.Lang() != Chinese {
				t.Errorf("language %q", m.Lang())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("actions %#v, want %#v", got, tc.want)
			}
			if m.scr != tc.screen || m.admin != tc.admin {
				t.Errorf("screen %v admin %v, want %v %v", m.scr, m.admin, tc.screen, tc.admin)
			}
			var note msg
			if m.note != nil {
				note = m.note.key
			}
			if note != tc.note {
				t.Errorf("note %q, want %q", catalog[note].en, catalog[tc.note].en)
			}
			if _, over := render(m, 80, 25); len(over) > 0 {
				t.Errorf("does not fit: %v", over)
			}
		})
	}
}

func TestNetworkValidation(t *testing.T) {
	for _, tc := range []struct {
		mode, addr, prefix, gw, dns, vlan string
		want                              *NetConfig
		err                               msg
		field                             int
	}{
		{mode: modeDHCP, addr: "junk", vlan: "", want: &NetConfig{NIC: "eth0", DHCP: true}},
		{mode: modeDHCP, vlan: "0", err: mErrVLAN, field: fVLAN},
		{mode: modeDHCP, vlan: "4094", want: &NetConfig{NIC: "eth0", DHCP: true, VLAN: 4094}},
		{mode: modeDHCP, vlan: "x", err: mErrVLAN, field: fVLAN},
		{mode: modeStatic, addr: "", prefix: "24", err: mErrAddrNeeded, field: fAddr},
		{mode: modeStatic, addr: "10.1.2.300", prefix: "24", err: mErrAddr, field: fAddr},
		{mode: modeStatic, addr: "10.1.2.3", prefix: "33", err: mErrPrefix, field: fPrefix},
		{mode: modeStatic, addr: "10.1.2.3", prefix: "", err: mErrPrefix, field: fPrefix},
		{mode: modeStatic, addr: "10.1.2.3", prefix: "255.255.0.255", err: mErrPrefix, field: fPrefix},
		{mode: modeStatic, addr: "10.1.2.0", prefix: "24", err: mErrAddrUse, field: fAddr},
		{mode: modeStatic, addr: "10.1.2.255", prefix: "24", err: mErrAddrUse, field: fAddr},
		{mode: modeStatic, addr: "127.0.0.2", prefix: "8", err: mErrAddrUse, field: fAddr},
		{mode: modeStatic, addr: "10.1.2.3", prefix: "24", gw: "10.1.3.1", err: mErrGatewayOut, field: fGateway},
		{mode: modeStatic, addr: "10.1.2.3", prefix: "24", gw: "10.1.2.3", err: mErrGatewayOut, field: fGateway},
		{mode: modeStatic, addr: "10.1.2.3", prefix: "24", gw: "fe80::1", err: mErrGatewayKind, field: fGateway},
		{mode: modeStatic, addr: "10.1.2.3", prefix: "24", gw: "gw", err: mErrGateway, field: fGateway},
		{mode: modeStatic, addr: "10.1.2.3", prefix: "24", dns: "1.1.1.1 8.8.8.8 9.9.9.9 1.0.0.1", err: mErrDNSMany, field: fDNS},
		{mode: modeStatic, addr: "10.1.2.3", prefix: "24", dns: "dns.example", err: mErrDNS, field: fDNS},
		{mode: modeStatic, addr: "10.1.2.3", prefix: "255.255.254.0", gw: "10.1.3.254", dns: "10.0.0.53,10.0.1.53", vlan: "7",
			want: &NetConfig{NIC: "eth0", Address: netip.MustParsePrefix("10.1.2.3/23"), Gateway: netip.MustParseAddr("10.1.3.254"), DNS: []netip.Addr{netip.MustParseAddr("10.0.0.53"), netip.MustParseAddr("10.0.1.53")}, VLAN: 7}},
		{mode: modeStatic, addr: "10.1.2.3", prefix: "31", want: &NetConfig{NIC: "eth0", Address: netip.MustParsePrefix("10.1.2.3/31")}},
		{mode: modeStatic, addr: "2001:db8::15", prefix: "64", gw: "2001:db8::1",
			want: &NetConfig{NIC: "eth0", Address: netip.MustParsePrefix("2001:db8::15/64"), Gateway: netip.MustParseAddr("2001:db8::1")}},
		{mode: modeStatic, addr: "2001:db8::15", prefix: "255.255.255.0", err: mErrPrefix, field: fPrefix},
	} {
		name := strings.Join([]string{tc.mode, tc.addr, tc.prefix, tc.gw, tc.dns, tc.vlan}, "|")
		t.Run(name, func(t *testing.T) {
			m := newModel(t, vdiPXE(), English)
			f := m.networkForm()
			for i, v := range map[int]string{fMode: tc.mode, fAddr: tc.addr, fPrefix: tc.prefix, fGateway: tc.gw, fDNS: tc.dns, fVLAN: tc.vlan} {
				f.fields[i].value = v
			}
			c, p := networkConfig(f)
			switch {
			case tc.want != nil && p != nil:
				t.Fatalf("refused: %s", m.tf(p.note.key, p.note.args...))
			case tc.want != nil && !reflect.DeepEqual(c, *tc.want):
				t.Fatalf("config %+v, want %+v", c, *tc.want)
			case tc.want == nil && p == nil:
				t.Fatalf("accepted %+v, want %q", c, catalog[tc.err].en)
			case tc.want == nil && (p.note.key != tc.err || p.field != tc.field):
				t.Fatalf("error %q on field %d, want %q on %d", m.tf(p.note.key, p.note.args...), p.field, catalog[tc.err].en, tc.field)
			}
		})
	}
}

func TestValidHostPort(t *testing.T) {
	for s, want := range map[string]bool{
		"10.0.0.10": true, "10.0.0.10:7443": true, "boot.county.edu.cn": true, "boot:8080": true,
		"[2001:db8::1]:443": true, "2001:db8::1": true, "http://10.0.0.10:8080/": true,
		"x y": false, "host:0": false, "host:65536": false, "-bad.example": false, "a..b": false, ":80": false,
	} {
		if got := validHostPort(s); got != want {
			t.Errorf("validHostPort(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestLogScroll(t *testing.T) {
	st := serverB()
	st.Log = nil
	for i := range 50 {
		st.Log = append(st.Log, LogLine{Time: t0.Add(time.Duration(i) * time.Second), Level: LevelInfo, Text: fmt.Sprintf("line %02d", i)})
	}
	m := newModel(t, st, English)
	login(m)
	keys(m, "6")
	page := m.logPage() // 19 at 25 rows
	first := func() string {
		text, _ := render(m, 80, 25)
		return regexp.MustCompile(`line \d\d`).FindString(text)
	}
	for _, tc := range []struct {
		key  input.Code
		want int // the first line shown
	}{
		{input.End, 50 - page},
		{input.Up, 49 - page},
		{input.PageUp, 49 - 2*page},
		{input.Home, 0},
		{input.Up, 0},
		{input.PageDown, page},
		{input.Down, page + 1},
		{input.End, 50 - page},
		{input.Down, 50 - page},
	} {
		keys(m, tc.key)
		if got, want := first(), fmt.Sprintf("line %02d", tc.want); got != want {
			t.Errorf("after key %d: first line %q, want %q", tc.key, got, want)
		}
	}
}

// TestCatalog: every message has both languages with the same format
// verbs, and the English is readable on a terminal without CJK.
func TestCatalog(t *testing.T) {
	verbs := regexp.MustCompile(`%(\[\d+\])?[-+# 0]*\d*(\.\d+)?[a-zA-Z%]`)
	for k := mNoMsg + 1; k < msgCount; k++ {
		e := catalog[k]
		if e.en == "" || e.zh == "" {
			t.Errorf("message %d (%q/%q) lacks a language", k, e.en, e.zh)
			continue
		}
		ev, zv := verbs.FindAllString(e.en, -1), verbs.FindAllString(e.zh, -1)
		slices.Sort(ev)
		slices.Sort(zv)
		if !slices.Equal(ev, zv) {
			t.Errorf("%q and %q have different format verbs: %v, %v", e.en, e.zh, ev, zv)
		}
		if k != mHelpLang {
			for _, r := range e.en {
				if cells.Width(r) == 2 {
					t.Errorf("English %q has a wide character", e.en)
					break
				}
			}
		}
	}
}

func TestWrap(t *testing.T) {
	for _, s := range []string{catalog[mResetWarn].zh, catalog[mKeepUnreachable].zh, catalog[mPINPolicy].en, "short", "averyveryverylongwordwithoutspaces"} {
		for _, w := range []int{10, 17, 30, 64} {
			lines := wrap(s, w)
			if got := strings.ReplaceAll(strings.Join(lines, ""), " ", ""); got != strings.ReplaceAll(s, " ", "") {
				t.Errorf("wrap(%q, %d) lost text: %q", s, w, lines)
			}
			for _, l := range lines {
				if cells.StringWidth(l) > w {
					t.Errorf("wrap(%q, %d): %q is %d wide", s, w, l, cells.StringWidth(l))
				}
				if strings.IndexAny(l, "，。、；：？！）") == 0 {
					t.Errorf("wrap(%q, %d): line %q starts with punctuation", s, w, l)
				}
			}
		}
	}
}

func TestQRText(t *testing.T) {
	if got, want := QRText(serverB()), "CZ2941077K 3CECEF102201 3CECEF102202"; got != want {
		t.Errorf("QRText = %q, want %q", got, want)
	}
}
