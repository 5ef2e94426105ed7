// Command gen writes glyphs.bin, the bitmap font package font embeds: the
// few hundred GNU Unifont glyphs the node console can draw, out of the
// 57,000 in unifont.hex, so the firmware carries tens of kilobytes rather
// than megabytes. It is run by `go generate` in package font; see the
// //go:generate line in font.go for its arguments.
//
// The glyphs are taken from GNU Unifont (Debian package unifont), which is
// dual-licensed under the GNU GPL version 2 or later with the GNU font
// embedding exception, and the SIL Open Font License 1.1. The embedding
// exception (and the OFL) let the font be embedded in the firmware without
// the firmware falling under the GPL.
//
// Which runes go in: printable ASCII, Latin-1, general punctuation, arrows,
// box drawing, block elements (the QR code's ▀▄█), geometric shapes, CJK
// and full-width punctuation, U+FFFD, every non-ASCII rune in a string or
// rune literal of the (non-test) Go files under -ui, and the runes of
// -runes. The output depends only on those inputs, byte for byte, so a test
// can regenerate it and compare.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Magic starts glyphs.bin; package font checks it.
const magic = "ocglyph1"

// ranges are always included, whatever the UI's strings hold.
var ranges = [][2]rune{
	{0x0020, 0x007e}, // printable ASCII
	{0x00a0, 0x00ff}, // Latin-1
	{0x2010, 0x2027}, // dashes, quotes, bullet, ellipsis
	{0x2190, 0x21ff}, // arrows
	{0x2500, 0x257f}, // box drawing
	{0x2580, 0x259f}, // block elements
	{0x25a0, 0x25ff}, // geometric shapes
	{0x3000, 0x303f}, // CJK symbols and punctuation
	{0xff01, 0xff60}, // full-width forms
	{0xfffd, 0xfffd}, // replacement character
}

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "font/gen:", err)
		os.Exit(1)
	}
}

// run is main with its arguments, so the test can call it.
func run(args []string, stderr io.Writer) error {
	fl := flag.NewFlagSet("gen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	hexPath := fl.String("hex", "/usr/share/unifont/unifont.hex", "GNU Unifont .hex file (Debian package unifont)")
	uiDir := fl.String("ui", "../ui", "folder of the console's screens, whose string literals name the runes needed; may be missing")
	extra := fl.String("runes", "", "extra runes to include")
	out := fl.String("o", "glyphs.bin", "output file")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}

	want := map[rune]bool{}
	for _, rg := range ranges {
		for r := rg[0]; r <= rg[1]; r++ {
			want[r] = true
		}
	}
	for _, r := range *extra {
		if r > 0x7f && unicode.IsPrint(r) {
			want[r] = true
		}
	}
	uiRunes, err := literalRunes(*uiDir)
	if err != nil {
		return err
	}
	for _, r := range uiRunes {
		want[r] = true
	}

	glyphs, err := readHex(*hexPath, want)
	if err != nil {
		return err
	}
	var missing []string
	for r := range want {
		if _, ok := glyphs[r]; !ok && r > 0x7f && !inRanges(r) {
			missing = append(missing, fmt.Sprintf("%U", r))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		// Not fatal: the console draws a box for these, as for any rune
		// it has no glyph for.
		fmt.Fprintf(stderr, "font/gen: warning: no glyph in %s for %s\n", *hexPath, strings.Join(missing, " "))
	}
	return os.WriteFile(*out, encode(glyphs), 0o644)
}

func inRanges(r rune) bool {
	for _, rg := range ranges {
		if r >= rg[0] && r <= rg[1] {
			return true
		}
	}
	return false
}

// literalRunes is the printable non-ASCII runes in the string and rune
// literals of the Go files under dir, test files and testdata left out.
// A missing dir gives none: the screens may not be written yet.
func literalRunes(dir string) ([]rune, error) {
	set := map[rune]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != dir && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("reading the console's strings (fix the Go syntax error first): %w", err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || (lit.Kind != token.STRING && lit.Kind != token.CHAR) {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, r := range s {
				if r > 0x7f && unicode.IsPrint(r) {
					set[r] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	runes := make([]rune, 0, len(set))
	for r := range set {
		runes = append(runes, r)
	}
	slices.Sort(runes)
	return runes, nil
}

// readHex reads the glyphs of the wanted runes from a Unifont .hex file:
// lines "XXXX:" followed by 32 hex digits (8x16, one byte a row) or 64
// (16x16, two bytes a row), most significant bit leftmost.
func readHex(path string, want map[rune]bool) (map[rune][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: install the Debian package unifont (make deps)", err)
		}
		return nil, err
	}
	defer f.Close()
	glyphs := map[rune][]byte{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		code, bits, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(code, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: bad code point %q", path, line, code)
		}
		r := rune(n)
		if !want[r] {
			continue
		}
		if len(bits) != 32 && len(bits) != 64 {
			return nil, fmt.Errorf("%s:%d: glyph of %U has %d hex digits, want 32 or 64", path, line, r, len(bits))
		}
		b, err := parseHex(bits)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		glyphs[r] = b
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(glyphs) == 0 {
		return nil, fmt.Errorf("%s holds none of the wanted glyphs: is it a Unifont .hex file?", path)
	}
	return glyphs, nil
}

func parseHex(s string) ([]byte, error) {
	b := make([]byte, len(s)/2)
	for i := range b {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("bad hex digits %q", s[2*i:2*i+2])
		}
		b[i] = byte(v)
	}
	return b, nil
}

// encode lays the glyphs out as package font reads them:
//
//	"ocglyph1"                      8 bytes
//	count N                         uint32, little-endian
//	N index entries, by rune:       uint32 rune | 1<<31 if 16 pixels wide,
//	                                uint32 offset of its bitmap in the file
//	bitmaps                         16 bytes (8x16) or 32 bytes (16x16) each
func encode(glyphs map[rune][]byte) []byte {
	runes := make([]rune, 0, len(glyphs))
	for r := range glyphs {
		runes = append(runes, r)
	}
	slices.Sort(runes)
	out := []byte(magic)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(runes)))
	off := len(out) + 8*len(runes)
	for _, r := range runes {
		e := uint32(r)
		if len(glyphs[r]) == 32 {
			e |= 1 << 31
		}
		out = binary.LittleEndian.AppendUint32(out, e)
		out = binary.LittleEndian.AppendUint32(out, uint32(off))
		off += len(glyphs[r])
	}
	for _, r := range runes {
		out = append(out, glyphs[r]...)
	}
	return out
}
