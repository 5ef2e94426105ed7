// Package qr draws a QR code as lines of text with half-block characters,
// so that a technician's phone can read the box's serial number and MACs
// off any text screen: the framebuffer console or a VT100 on the serial
// port.
//
// Each text line holds two module rows: the upper one in the top half of
// the cell, the lower one in the bottom half. A dark module is drawn with
// the foreground colour, so the caller should draw the lines dark on
// light (black on white), as phones read a QR code most reliably that way.
package qr

import (
	"fmt"
	"strings"

	"github.com/skip2/go-qrcode"
)

// QuietZone is the light border around the symbol, in modules. The
// standard asks for 4; 2 is what a phone needs on a screen whose own
// background is light around the code, and it saves four text columns.
const QuietZone = 2

// The half blocks: which halves of the cell are dark.
const (
	upper = '▀'
	lower = '▄'
	full  = '█'
	empty = ' '
)

// Matrix is the QR code of text with medium error correction, without any
// quiet zone: matrix[y][x] is true for a dark module.
func Matrix(text string) ([][]bool, error) {
	code, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("qr: cannot encode %d bytes (a QR code at medium error correction holds at most 2331): %w", len(text), err)
	}
	code.DisableBorder = true
	return code.Bitmap(), nil
}

// Lines is the QR code of text with a QuietZone-module light border, two
// module rows per line. Every line has the same number of cells: the
// module count plus twice the quiet zone.
func Lines(text string) ([]string, error) {
	m, err := Matrix(text)
	if err != nil {
		return nil, err
	}
	size := len(m) + 2*QuietZone
	dark := func(x, y int) bool {
		x, y = x-QuietZone, y-QuietZone
		return y >= 0 && y < len(m) && x >= 0 && x < len(m[y]) && m[y][x]
	}
	lines := make([]string, 0, (size+1)/2)
	for y := 0; y < size; y += 2 {
		var b strings.Builder
		for x := range size {
			top, bottom := dark(x, y), dark(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune(full)
			case top:
				b.WriteRune(upper)
			case bottom:
				b.WriteRune(lower)
			default:
				b.WriteRune(empty)
			}
		}
		lines = append(lines, b.String())
	}
	return lines, nil
}
