// Package power turns a press of the box's power button into an orderly
// power-off, and holds the two ways the firmware ends a boot: Off and Reboot
// (a box approved in a new role reboots to take it).
//
// On a PC the button is an ACPI event that the kernel's "button" driver
// reports as KEY_POWER on an input device. Nothing else in the firmware
// listens for it, and a technician (or the QEMU harness, through
// system_powerdown) expects the box to shut down cleanly instead of waiting
// to have its power cut.
package power

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// keyPower is KEY_POWER in linux/input-event-codes.h; evKey is EV_KEY.
const (
	keyPower = 116
	evKey    = 1
)

// eventSize is sizeof(struct input_event) on 64-bit Linux: a timeval (two
// 64-bit words), then type, code (16 bits each) and value (32 bits).
const eventSize = 24

// Buttons returns the event devices (/dev/input/eventN) whose key
// capabilities include KEY_POWER, read from sysDir/class/input.
func Buttons(sysDir, devDir string) ([]string, error) {
	caps, err := filepath.Glob(filepath.Join(sysDir, "class", "input", "event*", "device", "capabilities", "key"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range caps {
		b, err := os.ReadFile(c)
		if err != nil {
			continue // the device went away
		}
		if hasKey(strings.TrimSpace(string(b)), keyPower) {
			event := filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(c))))
			out = append(out, filepath.Join(devDir, "input", event))
		}
	}
	return out, nil
}

// hasKey reads the kernel's capability bitmap: hexadecimal words of
// BITS_PER_LONG bits, most significant word first, separated by spaces.
func hasKey(bitmap string, key int) bool {
	words := strings.Fields(bitmap)
	const bits = 64
	i := len(words) - 1 - key/bits
	if i < 0 || i >= len(words) {
		return false
	}
	w, err := strconv.ParseUint(words[i], 16, 64)
	if err != nil {
		return false
	}
	return w&(1<<(key%bits)) != 0
}

// WaitPress returns when a KEY_POWER press arrives on r, or with an error
// when r fails. Close r (or let ctx end) to stop it.
func WaitPress(ctx context.Context, r io.Reader) error {
	buf := make([]byte, eventSize)
	for ctx.Err() == nil {
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read input events: %w", err)
		}
		typ := binary.LittleEndian.Uint16(buf[16:])
		code := binary.LittleEndian.Uint16(buf[18:])
		value := int32(binary.LittleEndian.Uint32(buf[20:]))
		if typ == evKey && code == keyPower && value == 1 {
			return nil
		}
	}
	return ctx.Err()
}

// Watch calls onPress once when any power button is pressed. It returns
// after ctx ends, or at once when the box has no power button device.
// watching is called with the devices it listens on.
func Watch(ctx context.Context, sysDir, devDir string, watching func([]string), onPress func()) error {
	devs, err := Buttons(sysDir, devDir)
	if err != nil {
		return err
	}
	if len(devs) == 0 {
		return errors.New("no power button found (the ACPI button driver may be missing)")
	}
	watching(devs)
	pressed := make(chan struct{}, len(devs))
	for _, d := range devs {
		f, err := os.Open(d)
		if err != nil {
			return fmt.Errorf("open power button %s: %w", d, err)
		}
		go func() {
			<-ctx.Done()
			f.Close()
		}()
		go func() {
			if WaitPress(ctx, f) == nil {
				pressed <- struct{}{}
			}
		}()
	}
	select {
	case <-pressed:
		onPress()
	case <-ctx.Done():
	}
	return nil
}
