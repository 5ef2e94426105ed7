package record

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// A recording often has to leave a machine through its serial console, the
// only channel a freshly booted box has. Armoring turns the tar archive into
// base64 lines between two marker lines; Unarmor finds them again in a
// console log, whatever was printed around them.
const (
	armorBegin = "-----BEGIN HWRECORD-----"
	armorEnd   = "-----END HWRECORD-----"
	lineLen    = 76
)

// Armor writes data as base64 lines of 76 characters between marker lines.
func Armor(w io.Writer, data []byte) error {
	var b bytes.Buffer
	b.WriteString("\n" + armorBegin + "\n")
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > lineLen {
		b.WriteString(enc[:lineLen] + "\n")
		enc = enc[lineLen:]
	}
	b.WriteString(enc + "\n" + armorEnd + "\n")
	_, err := w.Write(b.Bytes())
	return err
}

// IsArmored reports whether text holds the start of an armored recording.
func IsArmored(text []byte) bool {
	return bytes.Contains(text, []byte(armorBegin))
}

// Unarmor returns the data of the first armored recording in text. Carriage
// returns (a serial console adds them) and other whitespace are ignored.
func Unarmor(text []byte) ([]byte, error) {
	_, rest, ok := bytes.Cut(text, []byte(armorBegin))
	if !ok {
		return nil, errors.New("no " + armorBegin + " line: is this the console log of a machine that ran hwrecord -armor?")
	}
	body, _, ok := bytes.Cut(rest, []byte(armorEnd))
	if !ok {
		return nil, errors.New("no " + armorEnd + " line after the begin line: the log is cut short; record again")
	}
	clean := bytes.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, body)
	data, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil {
		return nil, fmt.Errorf("armored recording is damaged (was the console noisy?): %w", err)
	}
	return data, nil
}
