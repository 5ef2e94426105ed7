package qemutests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/onecloud-edu/onecloud/firmware/console/font"
	"github.com/onecloud-edu/onecloud/internal/pinhash"
	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

// Keys as a VT100 sends them.
const (
	keyEnter     = "\r"
	keyTab       = "\t"
	keyBackspace = "\x7f"
)

// consoleWait bounds one reaction of the console under TCG: a redraw comes
// within a second or two, a PIN check takes a few (PBKDF2 under emulation).
const consoleWait = 45 * time.Second

// TestConsole drives the node console menu on the box's second serial port
// (onecloud.menu=tty1,ttyS1; the first keeps the boot log) as a technician
// at a VT100 would, and looks at the box's own screen.
//
//   - Enter opens the menu: the status screen shows the lab address.
//   - Five wrong PINs lock the admin menu; after the lock the right PIN
//     opens it.
//   - A static address on the lab network is applied, the gateway answers,
//     the change is kept, and the status shows the new address.
//   - A static address on another network cuts the box off: the change
//     reverts by itself after 60 s, and the lab address is back.
//   - The screen (bochs DRM framebuffer) shows the status in Chinese: a
//     screendump has the glyph of 主 (主机名, host name) where the console
//     draws its second row.
func TestConsole(t *testing.T) {
	t.Parallel()
	img := builtImage(t, "image")
	lab := harness.NewLab(t)
	lan := lab.Bridge(t, "lan", "10.77.31.1/24")
	lan.DHCP(t, harness.DHCPConfig{})
	const pin = "2468"
	// The fewest iterations the format allows: the check runs under TCG.
	hash, err := pinhash.HashWith(pin, 1000)
	if err != nil {
		t.Fatal(err)
	}
	vm := harness.Start(t, harness.Config{
		Name: "box", Kernel: img.Kernel, Initrd: img.Initrd,
		Append:       cmdline + " onecloud.menu=tty1,ttyS1 onecloud.lang=zh onecloud.pin=" + hash,
		NICs:         []harness.NIC{{Bridge: lan, MAC: "52:54:00:0c:31:01"}},
		TPM:          &harness.TPM{},
		SecondSerial: true,
		MemoryMB:     768,
	})
	ctx := t.Context()
	if _, err := vm.Console.Expect(ctx, `(?m)^onecloud: ready`, bootTimeout); err != nil {
		t.Fatal(err)
	}
	menu := vm.Serial1
	send := func(keys ...string) {
		t.Helper()
		for _, k := range keys {
			if err := menu.Send(ctx, k); err != nil {
				t.Fatal(err)
			}
			// A technician's pace, and a lone Esc must stand alone for
			// longer than the console waits for the rest of a sequence.
			pause := 150 * time.Millisecond
			if k == "\x1b" {
				pause = time.Second
			}
			time.Sleep(pause)
		}
	}
	// see waits until the screen, as a VT100 would show it now, matches.
	see := func(what, pattern string, timeout time.Duration) string {
		t.Helper()
		re := regexp.MustCompile(pattern)
		deadline := time.Now().Add(timeout)
		for {
			scr := vt100Screen(menu.Output())
			if re.MatchString(scr) {
				return scr
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				t.Fatalf("%s: the console did not show %q within %s; its screen:\n%s", what, pattern, timeout, scr)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	// The menu opens on Enter, in Chinese (onecloud.lang=zh); F2 switches
	// to English, which the rest of the test reads.
	send(keyEnter)
	see("the status screen in Chinese", `主机名`, consoleWait)
	send("\x1bOQ") // F2
	see("the status screen in English, with the lab address", `(?m)^ eth0 .* 10\.77\.31\.1\d\d/24 +DHCP`, consoleWait)

	// Five wrong PINs lock the admin menu.
	send(keyEnter)
	see("the PIN screen", `console PIN`, consoleWait)
	for range 5 {
		send("1111", keyEnter)
	}
	see("the lock after five wrong PINs", `Locked after 5 wrong PINs`, consoleWait)
	send(pin, keyEnter)
	see("the right PIN refused while locked", `try again in`, consoleWait)
	time.Sleep(31 * time.Second)
	send(pin, keyEnter)
	see("the admin menu after the lock", `Network settings`, consoleWait)

	// setStatic fills the network form with a static address and applies it.
	setStatic := func(addr, gateway string) {
		t.Helper()
		send("1") // Network settings
		scr := see("the network form", `(?m)^ +Addressing +◀ (DHCP|static)`, consoleWait)
		send(keyTab)
		if regexp.MustCompile(`(?m)^ +Addressing +◀ DHCP`).MatchString(scr) {
			send(" ") // DHCP -> static
			see("static addressing", `(?m)^▶ Addressing +◀ static address`, consoleWait)
		}
		for _, v := range []string{addr, "24", gateway} {
			send(keyTab)
			send(strings.Repeat(keyBackspace, 20))
			send(v)
		}
		send(keyEnter)
		see("the confirmation", `Apply network settings\?`, consoleWait)
		send("y")
	}

	// A static address on the lab network: the gateway answers, it is
	// kept, and the status shows it.
	setStatic("10.77.31.77", "10.77.31.1")
	see("the change kept once the gateway answered", `(?i)kept`, consoleWait)
	send("\x1b", "\x1b") // back to the status screen
	see("the new address on the status screen", `(?m)^ eth0 .* 10\.77\.31\.77/24 +static`, consoleWait)
	if _, err := vm.Console.Expect(ctx, `Network: connected, 10\.77\.31\.77/24`, consoleWait); err != nil {
		t.Errorf("the firmware's own status does not show the static address: %v", err)
	}

	// A static address on another network cuts the box off: reverted by
	// itself after 60 s, and the address before it is back.
	send(keyEnter)
	see("the PIN screen again", `console PIN`, consoleWait)
	send(pin, keyEnter)
	see("the admin menu again", `Network settings`, consoleWait)
	setStatic("10.99.0.5", "10.99.0.1")
	see("the countdown", `come back by themselves`, consoleWait)
	see("the revert of the change that cut the box off", `(?i)reverted`, 2*time.Minute)
	send("\x1b", "\x1b")
	see("the address before it back on the status screen", `(?m)^ eth0 .* 10\.77\.31\.77/24 +static`, time.Minute)

	// Diagnostics: the lab's gateway and DHCP server answer, the TPM passes
	// its self-test.
	send(keyEnter)
	see("the PIN screen for the diagnostics", `console PIN`, consoleWait)
	send(pin, keyEnter)
	see("the admin menu for the diagnostics", `Network settings`, consoleWait)
	send("5")
	see("the diagnostics screen", `run diagnostics`, consoleWait)
	send("r")
	scr := see("the diagnostics done", `(?m)^ +(OK|FAIL) +TPM self-test`, 2*consoleWait)
	for _, want := range []string{`(?m)^ +OK +ping gateway`, `(?m)^ +OK +DHCP probe +eth0 .*offers 10\.77\.31\.`, `(?m)^ +OK +TPM self-test`} {
		if !regexp.MustCompile(want).MatchString(scr) {
			t.Errorf("diagnostics: no %q in\n%s", want, scr)
		}
	}
	send("\x1b", "\x1b")

	// The box's own screen: Chinese, drawn on the framebuffer. Esc leaves
	// the admin menu; the screen's console shows the status all along.
	checkScreen(t, vm)
}

// vt100Screen is what a VT100 shows after out: cursor addressing (CSI
// row;col H), clear (CSI J) and text, other sequences ignored; a Chinese
// character takes two columns. Enough for the node console, which only
// addresses the cursor and never scrolls.
func vt100Screen(out string) string {
	const cols, rows = 80, 25
	scr := make([][]rune, rows)
	clear := func() {
		for i := range scr {
			scr[i] = []rune(strings.Repeat(" ", cols))
		}
	}
	clear()
	csi := regexp.MustCompile(`^\x1b\[([0-9;?]*)([A-Za-z])`)
	r, c := 0, 0
	for i := 0; i < len(out); {
		if out[i] == 0x1b {
			m := csi.FindStringSubmatch(out[i:])
			if m == nil {
				i++
				continue
			}
			switch m[2] {
			case "H":
				r, c = 0, 0
				if p := strings.Split(m[1], ";"); m[1] != "" {
					fmt.Sscan(p[0], &r)
					if len(p) > 1 {
						fmt.Sscan(p[1], &c)
					}
					r, c = r-1, c-1
				}
			case "J":
				clear()
			}
			i += len(m[0])
			continue
		}
		ch, size := utf8.DecodeRuneInString(out[i:])
		i += size
		if ch == '\r' || ch == '\n' || r < 0 || r >= rows || c < 0 || c >= cols {
			continue
		}
		scr[r][c] = ch
		c++
		if ch >= 0x2e80 && c < cols {
			scr[r][c] = 0 // the second column of a wide character
			c++
		}
	}
	var b strings.Builder
	for _, line := range scr {
		b.WriteString(strings.ReplaceAll(string(line), "\x00", ""))
		b.WriteByte('\n')
	}
	return b.String()
}

// checkScreen takes a screendump of the box's screen and looks for the
// glyph of 主 in the console's second row.
func checkScreen(t *testing.T, vm *harness.VM) {
	t.Helper()
	glyph, wide, ok := font.Glyph('主')
	if !ok || !wide {
		t.Fatal("the console's font has no wide glyph for 主")
	}
	path := filepath.Join(t.TempDir(), "screen.ppm")
	var img *ppm
	deadline := time.Now().Add(consoleWait)
	for {
		err := vm.Monitor.Screendump(t.Context(), path)
		if err == nil {
			img, err = readPPM(path)
		}
		if err != nil {
			t.Fatalf("screendump: %v", err)
		}
		if x, y, found := img.find(glyph); found {
			// The console's grid is at most 100x37 cells of 8x16 pixels,
			// centred; 主 (of 主机名) starts its second row, one cell in.
			cols, rows := max(80, min(img.w/8, 100)), max(25, min(img.h/16, 37))
			wantX, wantY := (img.w-cols*8)/2+8, (img.h-rows*16)/2+16
			t.Logf("主 drawn at pixel %d,%d of a %dx%d screen", x, y, img.w, img.h)
			if x != wantX || y != wantY {
				t.Errorf("主 is drawn at pixel %d,%d, want %d,%d (row 2, column 2 of the console)", x, y, wantX, wantY)
			}
			return
		}
		if time.Now().After(deadline) {
			keep := filepath.Join("..", "out", "qemu-logs", t.Name()+"-screen.ppm")
			os.MkdirAll(filepath.Dir(keep), 0o755)
			os.Rename(path, keep)
			t.Fatalf("the screen shows no 主 (screendump kept in %s)", keep)
		}
		time.Sleep(2 * time.Second)
	}
}

// ppm is a screendump: QEMU writes binary PPM (P6), 8 bits per channel.
type ppm struct {
	w, h int
	pix  []byte // RGB
}

func readPPM(path string) (*ppm, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(bytes.NewReader(b))
	var magic string
	var w, h, maxv int
	if _, err := fmt.Fscan(r, &magic, &w, &h, &maxv); err != nil || magic != "P6" || maxv != 255 {
		return nil, fmt.Errorf("not an 8-bit P6 PPM (%q %d): %v", magic, maxv, err)
	}
	if _, err := r.ReadByte(); err != nil { // the one white space after the header
		return nil, err
	}
	pix := make([]byte, w*h*3)
	if _, err := io.ReadFull(r, pix); err != nil {
		return nil, fmt.Errorf("PPM pixels: %w", err)
	}
	return &ppm{w: w, h: h, pix: pix}, nil
}

// rgb is the colour of the pixel at x, y.
func (p *ppm) rgb(x, y int) [3]byte {
	i := (y*p.w + x) * 3
	return [3]byte{p.pix[i], p.pix[i+1], p.pix[i+2]}
}

// find looks for a 16x16 glyph (2 bytes a row, leftmost pixel in the top
// bit) anywhere on the screen, in any two colours: every pixel of the
// glyph in one colour, every other pixel of its cell in another.
func (p *ppm) find(glyph []byte) (int, int, bool) {
	on := func(row, col int) bool {
		bits := uint16(glyph[2*row])<<8 | uint16(glyph[2*row+1])
		return bits&(0x8000>>col) != 0
	}
	// A pixel of each kind, to take the colours from.
	var fgAt, bgAt [2]int
	for row := range font.Height {
		for col := range 16 {
			if on(row, col) {
				fgAt = [2]int{row, col}
			} else {
				bgAt = [2]int{row, col}
			}
		}
	}
	match := func(x, y int) bool {
		fg, bg := p.rgb(x+fgAt[1], y+fgAt[0]), p.rgb(x+bgAt[1], y+bgAt[0])
		if fg == bg {
			return false
		}
		for row := range font.Height {
			for col := range 16 {
				want := bg
				if on(row, col) {
					want = fg
				}
				if p.rgb(x+col, y+row) != want {
					return false
				}
			}
		}
		return true
	}
	for y := 0; y+font.Height <= p.h; y++ {
		for x := 0; x+16 <= p.w; x++ {
			if match(x, y) {
				return x, y, true
			}
		}
	}
	return 0, 0, false
}
