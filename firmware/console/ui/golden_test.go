package ui

import (
	"flag"
	"github.com/onecloud-edu/onecloud/internal/pinhash"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/firmware/console/cells"
	"github.com/onecloud-edu/onecloud/firmware/console/input"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const testPIN = "2468"

// The PIN hash is slow on purpose; make it once, with the fewest
// iterations the format allows.
var testHash = sync.OnceValue(func() string {
	h, err := pinhash.HashWith(testPIN, 1000)
	if err != nil {
		panic(err)
	}
	return h
})

func checker(t *testing.T) PINChecker {
	t.Helper()
	c, err := NewPBKDF2Checker(testHash())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newModel is a model at 80x25 showing st.
func newModel(t *testing.T, st Status, lang Lang) *Model {
	t.Helper()
	m := New(Options{Lang: lang, PIN: checker(t), Lock: &MemoryLockStore{}})
	m.Update(Tick{Now: st.Now})
	m.Update(StatusUpdate{Status: st})
	return m
}

// keys presses keys: a string is typed rune by rune, an input.Code or
// input.Key is pressed as is.
func keys(m *Model, ks ...any) []Action {
	var out []Action
	for _, k := range ks {
		switch k := k.(type) {
		case string:
			for _, r := range k {
				out = append(out, m.Update(KeyPress{Key: input.Of(r)})...)
			}
		case input.Code:
			out = append(out, m.Update(KeyPress{Key: input.Key{Code: k}})...)
		case input.Key:
			out = append(out, m.Update(KeyPress{Key: k})...)
		default:
			panic("keys: not a key")
		}
	}
	return out
}

// login opens the admin menu.
func login(m *Model) { keys(m, input.Enter, testPIN, input.Enter) }

func render(m *Model, cols, rows int) (string, []string) {
	f := cells.New(cols, rows)
	over := m.draw(f)
	return f.Text(), over
}

// screens are the golden cases: a fixture, and the keys that reach the screen.
var screens = []struct {
	name string
	st   func() Status
	keys []any
}{
	{"status-vdi-pxe", vdiPXE, nil},
	{"status-server-slot-b", serverB, nil},
	{"status-no-network", noNetwork, nil},
	{"status-refused", refused, nil},
	{"pin", vdiPXE, []any{input.Enter, "12"}},
	{"pin-wrong", vdiPXE, []any{input.Enter, "1111", input.Enter}},
	{"pin-locked", vdiPXE, []any{input.Enter, "1111", input.Enter, "1112", input.Enter, "1113", input.Enter, "1114", input.Enter, "1115", input.Enter}},
	{"menu", serverB, []any{login, input.Down, input.Down}},
	{"menu-pxe", noNetwork, []any{login}},
	{"network-form", vdiPXE, []any{login, "1"}},
	{"network-form-static", vdiPXE, []any{login, "1", input.Down, input.Right, input.Down}},
	{"network-form-error", vdiPXE, []any{login, "1", input.Down, input.Right, input.Down, input.Down, input.Down, bs(9), "10.30.0.1", input.Enter}},
	{"network-confirm", noNetwork, []any{login, "1", input.Down, input.Right, input.Down, "10.20.1.50", input.Down, "255.255.255.0", input.Down, "10.20.1.1", input.Down, "10.20.0.53", input.Down, "30", input.Enter}},
	{"network-pending", serverB, []any{login, "1"}},
	{"network-keep-unreachable", serverB, []any{login, "1", input.Enter}},
	{"network-reverted", serverB, []any{login, "1", func(m *Model) {
		st := serverB()
		st.Now = t0.Add(45 * time.Second)
		st.Network.Reverted, st.Network.Reason = true, "the cluster did not answer within 60 s"
		m.Update(StatusUpdate{Status: st})
	}}},
	{"servers-form", serverB, []any{login, "2"}},
	{"servers-error", serverB, []any{login, "2", "x y", input.Enter}},
	{"reenrol-confirm", vdiPXE, []any{login, "3"}},
	{"role-form", serverB, []any{login, "4"}},
	{"role-confirm", serverB, []any{login, "4", input.Enter}},
	{"diagnostics", serverB, []any{login, "5"}},
	{"diagnostics-none", vdiPXE, []any{login, "5"}},
	{"log", serverB, []any{login, "6"}},
	{"slots", serverB, []any{login, "7"}},
	{"slots-pxe", vdiPXE, []any{login, "7"}},
	{"rollback-confirm", serverB, []any{login, "7", "r"}},
	{"reboot-confirm", vdiPXE, []any{login, "8"}},
	{"poweroff-confirm", vdiPXE, []any{login, "9", input.Right}},
	{"reset", vdiPXE, []any{login, "0", "PF2"}},
	{"reset-wrong", vdiPXE, []any{login, "0", "PF2ABCDF", input.Enter}},
}

func screenKeys(name string) []any {
	for _, sc := range screens {
		if sc.name == name {
			return sc.keys
		}
	}
	panic("no screen " + name)
}

func drive(m *Model, ks []any) {
	for _, k := range ks {
		if f, ok := k.(func(*Model)); ok {
			f(m)
			continue
		}
		if more, ok := k.([]any); ok {
			drive(m, more)
			continue
		}
		keys(m, k)
	}
}

func TestGolden(t *testing.T) {
	for _, sc := range screens {
		for _, lang := range []Lang{English, Chinese} {
			name := sc.name + "." + string(lang)
			t.Run(name, func(t *testing.T) {
				m := newModel(t, sc.st(), lang)
				drive(m, sc.keys)
				got, over := render(m, 80, 25)
				// Every screen fits 80 columns in both languages: nothing
				// was cut by the frame's edge.
				for _, o := range over {
					t.Errorf("does not fit 80x25: %s", o)
				}
				golden(t, name, got)
			})
		}
	}
}

// TestASCIIOnly draws screens for a terminal without CJK or box drawing.
func TestASCIIOnly(t *testing.T) {
	for _, sc := range []struct {
		name string
		st   func() Status
		keys []any
	}{
		{"status-server-slot-b", serverB, nil},
		{"network-confirm", noNetwork, screenKeys("network-confirm")},
		{"menu", serverB, []any{login}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			m := New(Options{Lang: Chinese, ASCIIOnly: true, PIN: checker(t)})
			m.Update(StatusUpdate{Status: sc.st()})
			if m.Lang() != English {
				t.Errorf("ASCIIOnly shows %q, want English", m.Lang())
			}
			if a := keys(m, input.F2); len(a) != 0 || m.Lang() != English {
				t.Errorf("F2 in ASCIIOnly: actions %v, language %q", a, m.Lang())
			}
			drive(m, sc.keys)
			got, over := render(m, 80, 25)
			for _, o := range over {
				t.Errorf("does not fit: %s", o)
			}
			for i, r := range got {
				if r > 0x7e {
					t.Fatalf("non-ASCII %q at byte %d:\n%s", r, i, got)
				}
			}
			golden(t, sc.name+".ascii", got)
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./firmware/console/ui -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./firmware/console/ui -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestOtherSizes: other sizes draw without panicking, and a
// larger screen is not cut.
func TestOtherSizes(t *testing.T) {
	for _, size := range [][2]int{{100, 40}, {132, 43}, {40, 10}} {
		for _, sc := range screens {
			m := newModel(t, sc.st(), Chinese)
			drive(m, sc.keys)
			got, over := render(m, size[0], size[1])
			if size[0] >= 80 && len(over) > 0 {
				t.Errorf("%s at %dx%d: does not fit: %v", sc.name, size[0], size[1], over)
			}
			if strings.Count(got, "\n") != size[1] {
				t.Errorf("%s at %dx%d: %d lines", sc.name, size[0], size[1], strings.Count(got, "\n"))
			}
		}
	}
}

// bs is n backspaces.
func bs(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = input.Backspace
	}
	return out
}
