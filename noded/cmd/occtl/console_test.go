package main

import (
	"context"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/internal/pinhash"
	"github.com/onecloud-edu/onecloud/noded/server/servertest"
)

// The technician sets the console PIN and language for every box; the
// cluster keeps the PIN's hash only, and hands it out with enrolment.
func TestConsoleSettings(t *testing.T) {
	e := servertest.Start(t)
	if out := mustOcctl(t, e, "console", "show"); !strings.Contains(out, "PIN       not set") {
		t.Errorf("console show before anything was set:\n%s", out)
	}
	code, out, errOut := occtlIn(t, e, strings.NewReader("731946\n"), "console", "set-pin", "-pin-stdin")
	if code != 0 || !strings.Contains(out, "console PIN set") {
		t.Fatalf("console set-pin: exit %d, %q, %q", code, out, errOut)
	}
	mustOcctl(t, e, "console", "set-lang", "en")
	show := mustOcctl(t, e, "console", "show")
	if !strings.Contains(show, "PIN       set") || !strings.Contains(show, "language  en") || !strings.Contains(show, "by li") {
		t.Errorf("console show:\n%s", show)
	}
	if strings.Contains(mustOcctl(t, e, "console", "show", "-json"), "731946") {
		t.Error("the PIN itself reached the cluster")
	}
	c, err := e.Server.Console(context.Background())
	if err != nil || c == nil || c.Lang != "en" {
		t.Fatalf("what an approved box is told: %+v, %v", c, err)
	}
	if ok, err := pinhash.Verify(c.PINHash, "731946"); !ok || err != nil {
		t.Errorf("the hash handed to boxes does not check the PIN: %v, %v", ok, err)
	}
	// Setting the language kept the PIN.
	mustOcctl(t, e, "console", "set-lang", "zh")
	if c2, _ := e.Server.Console(context.Background()); c2 == nil || c2.PINHash != c.PINHash || c2.Lang != "zh" {
		t.Errorf("after set-lang zh: %+v", c2)
	}

	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"12\n", []string{"console", "set-pin", "-pin-stdin"}, "4 to 8 digits"},
		{"", []string{"console", "set-pin"}, "-pin-stdin"},
		{"", []string{"console", "set-lang", "fr"}, "want zh or en"},
		{"", []string{"console", "wipe"}, "use show, set-pin or set-lang"},
	} {
		code, _, errOut := occtlIn(t, e, strings.NewReader(tc.stdin), tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("occtl %s: exit %d, %q; want a failure saying %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}
