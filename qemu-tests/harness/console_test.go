package harness

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeConsole is a Console fed by the test instead of QEMU. Closing guestOut is QEMU exiting.
type fakeConsole struct {
	*Console
	guestOut *os.File // what the guest "writes"
	guestIn  *os.File // what the guest "reads"
	log      string
}

func newFakeConsole(t *testing.T) *fakeConsole {
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	log := t.TempDir() + "/serial.log"
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeConsole{Console: newConsole(outR, inW, f, f, log), guestOut: outW, guestIn: inR, log: log}
	t.Cleanup(func() {
		outW.Close()
		<-c.readerDone
		outR.Close()
		inR.Close()
		inW.Close()
	})
	return c
}

func (f *fakeConsole) guestSays(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(f.guestOut, s); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleExpect(t *testing.T) {
	t.Parallel()
	c := newFakeConsole(t)
	ctx := t.Context()
	c.guestSays(t, "booting\r\nonecloud: address 10.77.1.100/24\r\nonecloud: ready\r\n")

	m, err := c.Expect(ctx, `(?m)^onecloud: address (\S+)/(\d+)$`, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m[1] != "10.77.1.100" || m[2] != "24" {
		t.Errorf("submatches %q", m)
	}
	if _, err := c.Expect(ctx, `onecloud: ready`, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Expect consumes: the same pattern needs a new occurrence, which may come later.
	done := make(chan error, 1)
	go func() {
		_, err := c.Expect(ctx, `onecloud: ready`, time.Minute)
		done <- err
	}()
	c.guestSays(t, "onecloud: re")
	c.guestSays(t, "ady\r\n")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := c.Output(); strings.Contains(got, "\r") || !strings.HasPrefix(got, "booting\n") {
		t.Errorf("Output() = %q", got)
	}
}

func TestConsoleSeen(t *testing.T) {
	t.Parallel()
	c := newFakeConsole(t)
	ctx := t.Context()
	c.guestSays(t, "onecloud: enrolment approved\r\nonecloud: ready\r\n")
	if _, err := c.Expect(ctx, `onecloud: ready`, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Seen finds a line before what Expect consumed, and consumes nothing:
	// a later Expect still starts after "ready".
	if _, err := c.Seen(ctx, `enrolment approved`, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Seen(ctx, `enrolment approved`, time.Minute); err != nil {
		t.Fatalf("Seen twice: %v", err)
	}
	if _, err := c.Expect(ctx, `enrolment approved`, 200*time.Millisecond); err == nil {
		t.Error("Expect matched a line before its position: Seen moved it back")
	}
	if _, err := c.Seen(ctx, `never printed`, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no match within") {
		t.Errorf("Seen of a missing line: %v", err)
	}
}

func TestConsoleExpectTimeout(t *testing.T) {
	t.Parallel()
	c := newFakeConsole(t)
	for i := range 50 {
		c.guestSays(t, "line "+string(rune('A'+i%26))+"\r\n")
	}
	// Wait for the output to be read, so that the error's tail is complete.
	if _, err := c.Expect(t.Context(), `line X\n(?:.*\n){22}`, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := c.Expect(t.Context(), `never`, 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, c.log) || !strings.Contains(msg, "never") || strings.Count(msg, "\nline ") != tailLines {
		t.Errorf("the error should name the pattern and the log and show %d lines:\n%s", tailLines, msg)
	}
	if _, err := c.Expect(t.Context(), `(`, time.Second); err == nil {
		t.Error("a bad pattern was accepted")
	}
}

func TestConsoleExpectExit(t *testing.T) {
	t.Parallel()
	c := newFakeConsole(t)
	c.guestSays(t, "Kernel panic - not syncing\r\n")
	c.guestOut.Close()
	_, err := c.Expect(t.Context(), `ready`, 0)
	if err == nil || !strings.Contains(err.Error(), "QEMU exited") || !strings.Contains(err.Error(), "Kernel panic") {
		t.Errorf("err = %v, want QEMU's exit with the last output", err)
	}
	b, err := os.ReadFile(c.log)
	if err != nil || string(b) != "Kernel panic - not syncing\r\n" {
		t.Errorf("serial log = %q, %v; want the raw output", b, err)
	}
}

func TestConsoleSend(t *testing.T) {
	t.Parallel()
	c := newFakeConsole(t)
	if err := c.SendLine(t.Context(), "echo hi"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.guestIn.Read(buf)
	if err != nil || string(buf[:n]) != "echo hi\r" {
		t.Errorf("the guest read %q, %v; want a line ended by Enter (\\r)", buf[:n], err)
	}
	if err := c.SendLine(t.Context(), "two\nlines"); err == nil {
		t.Error("SendLine took two lines")
	}
	c.guestIn.Close()
	// A process that a parallel test forks at this moment holds a copy of every descriptor until it
	// execs, so the pipe may keep a reader for a few microseconds more: allow for that, not for more.
	deadline := time.Now().Add(5 * time.Second)
	for c.Send(t.Context(), "x") == nil {
		if time.Now().After(deadline) {
			t.Fatal("Send to a closed console kept succeeding")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
