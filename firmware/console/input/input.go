// Package input names the keys the node console understands, whichever
// terminal they come from: a VT100 on the serial port or the keyboard of
// the box's own screen (package vt decodes both, since the Linux console
// sends the same escape sequences).
package input

// Code is a key that is not a printable character, or Rune for one that is.
type Code uint8

// Keys. A plain VT100 has no mouse and may lack function keys, so every
// action has a letter or Enter/Esc as well.
const (
	Rune Code = iota // a printable character: Key.R
	Enter
	Esc
	Tab
	BackTab // Shift-Tab
	Backspace
	Delete
	Up
	Down
	Left
	Right
	Home
	End
	PageUp
	PageDown
	F1
	F2
	F3
	F4
	F5
	F6
	F7
	F8
	F9
	F10
	CtrlC
	CtrlL // redraw
)

// Key is one key press.
type Key struct {
	Code Code
	R    rune // for Rune
}

// Of is the key of a printable character.
func Of(r rune) Key { return Key{Code: Rune, R: r} }
