package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const unifont = "/usr/share/unifont/unifont.hex"

// TestGlyphsUpToDate regenerates glyphs.bin with the arguments of the
// //go:generate line in font.go and compares it with the committed one.
func TestGlyphsUpToDate(t *testing.T) {
	if _, err := os.Stat(unifont); err != nil {
		t.Fatalf("%s: install the Debian package unifont (make deps): %v", unifont, err)
	}
	args := generateArgs(t)
	t.Chdir("..") // go generate runs in the package's folder
	out := filepath.Join(t.TempDir(), "glyphs.bin")
	var stderr bytes.Buffer
	if err := run(append(args, "-o", out), &stderr); err != nil {
		t.Fatalf("gen %q: %v\n%s", args, err, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("glyphs.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, committed) {
		t.Errorf("glyphs.bin is stale (%d bytes, regenerated %d): run `go generate ./firmware/console/font` and commit it", len(committed), len(got))
	}
}

// generateArgs is the arguments of gen on the //go:generate line in font.go.
func generateArgs(t *testing.T) []string {
	src, err := os.ReadFile("../font.go")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "//go:generate go run ./gen "
	for line := range strings.Lines(string(src)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			return splitArgs(t, rest)
		}
	}
	t.Fatalf("font.go has no %q line", prefix)
	return nil
}

// splitArgs splits a go:generate line as go generate does: on spaces, with
// double-quoted Go strings as one argument.
func splitArgs(t *testing.T, s string) []string {
	var args []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] != '"' {
			arg, rest, _ := strings.Cut(s, " ")
			args, s = append(args, arg), rest
			continue
		}
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			t.Fatalf("go:generate line: %v", err)
		}
		arg, _ := strconv.Unquote(q)
		args, s = append(args, arg), s[len(q):]
	}
	return args
}

// writeHex writes a small .hex file for the tests below.
func writeHex(t *testing.T, lines ...string) string {
	p := filepath.Join(t.TempDir(), "test.hex")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLiteralRunes(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a.go":              "package ui\nconst title = \"状态 ok\"\nvar r = '网'\nvar raw = `络`\nvar esc = \"\\u8bbe\"\n",
		"a_test.go":         "package ui\nvar x = \"测试\"\n",
		"sub/b.go":          "package sub\nvar s = \"置\"\n",
		"testdata/c.go":     "package x\nvar s = \"数据\"\n",
		"notes.txt":         "文件",
		"sub/.hidden/d.go":  "package d\nvar s = \"隐\"\n",
		"sub/_skipped/e.go": "package e\nvar s = \"跳\"\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := literalRunes(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []rune("状态网络设置")
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("literalRunes = %q, want %q", string(got), string(want))
	}

	if got, err := literalRunes(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("missing folder: %q, %v; want none and no error", string(got), err)
	}
	if got, err := literalRunes(t.TempDir()); err != nil || len(got) != 0 {
		t.Errorf("empty folder: %q, %v; want none and no error", string(got), err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "x.go"), []byte("package ui\nvar = \"状\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := literalRunes(bad); err == nil {
		t.Error("a syntax error in the screens was not reported")
	}
}

func TestRun(t *testing.T) {
	hex := writeHex(t,
		"0041:0000000018242442427E424242420000",
		"72B6:084008480844484428402FFE08400840184028A0C8A00890091009080A040C02",
		"72B7:0000000000000000000000000000000000000000000000000000000000000000", // not wanted
	)
	ui := t.TempDir()
	if err := os.WriteFile(filepath.Join(ui, "s.go"), []byte("package ui\nvar s = \"状\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "g.bin")
	var stderr bytes.Buffer
	if err := run([]string{"-hex", hex, "-ui", ui, "-runes", "态", "-o", out}, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "U+6001") {
		t.Errorf("no warning about the missing 态: %q", stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// magic, count 2, two entries, 16 + 32 bytes of bitmaps.
	if len(b) != 12+2*8+16+32 || string(b[:8]) != magic || binary.LittleEndian.Uint32(b[8:]) != 2 {
		t.Fatalf("output % x", b)
	}
	le := binary.LittleEndian
	if r, off := le.Uint32(b[12:]), le.Uint32(b[16:]); r != 'A' || off != 28 {
		t.Errorf("entry 0 = %#x at %d, want 'A' at 28", r, off)
	}
	if r, off := le.Uint32(b[20:]), le.Uint32(b[24:]); r != 0x72b6|1<<31 || off != 44 {
		t.Errorf("entry 1 = %#x at %d, want wide U+72B6 at 44", r, off)
	}
	if b[44] != 0x08 || b[45] != 0x40 || b[len(b)-1] != 0x02 {
		t.Errorf("bitmap of 状 = % x", b[44:])
	}

	for _, tc := range []struct {
		name string
		hex  string
	}{
		{"missing file", filepath.Join(t.TempDir(), "none.hex")},
		{"bad length", writeHex(t, "0041:00FF")},
		{"bad digits", writeHex(t, "0041:0000000018242442427E4242424200ZZ")},
		{"no wanted glyph", writeHex(t, "E000:0000000018242442427E424242420000")},
	} {
		if err := run([]string{"-hex", tc.hex, "-ui", ui, "-o", out}, io.Discard); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if err := run([]string{"-hex", filepath.Join(t.TempDir(), "none.hex")}, io.Discard); err == nil || !strings.Contains(err.Error(), "install the Debian package unifont") {
		t.Errorf("missing unifont.hex: %v, want a hint to install unifont", err)
	}
}
