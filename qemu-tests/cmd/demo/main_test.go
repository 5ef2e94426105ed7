package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

func TestBeforeEscape(t *testing.T) {
	for _, c := range []struct {
		in, keys string
		leave    bool
	}{
		{"", "", false},
		{"ls\r", "ls\r", false},
		{"\x1b[A\x03", "\x1b[A\x03", false}, // an arrow key and Ctrl-C go to the box
		{"héllo", "héllo", false},
		{"\x1d", "", true},
		{"ab\x1dcd", "ab", true}, // what follows Ctrl-] is dropped
		{"\x1d\x1d", "", true},
	} {
		keys, leave := beforeEscape([]byte(c.in))
		if string(keys) != c.keys || leave != c.leave {
			t.Errorf("beforeEscape(%q) = %q, %v; want %q, %v", c.in, keys, leave, c.keys, c.leave)
		}
	}
}

// recorder is a fake Console.Send.
type recorder struct {
	sent []string
	err  error
}

func (r *recorder) send(_ context.Context, s string) error {
	r.sent = append(r.sent, s)
	return r.err
}

func TestForwardKeysStopsAtCtrlBracket(t *testing.T) {
	// One byte per read, as a person types, then a read holding Ctrl-] in its middle.
	in := io.MultiReader(iotest.OneByteReader(strings.NewReader("hi")), strings.NewReader("\r\x1dnot sent"), strings.NewReader("nor this"))
	var r recorder
	if err := forwardKeys(t.Context(), in, r.send); err != nil {
		t.Fatalf("forwardKeys = %v, want nil after Ctrl-]", err)
	}
	if got := strings.Join(r.sent, ""); got != "hi\r" {
		t.Errorf("sent %q, want %q", got, "hi\r")
	}
	if len(r.sent) != 3 {
		t.Errorf("sent %q: want one send per read, and none for the read that held only Ctrl-]", r.sent)
	}
}

func TestForwardKeysEndOfInput(t *testing.T) {
	var r recorder
	err := forwardKeys(t.Context(), strings.NewReader("abc"), r.send)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("forwardKeys = %v, want io.EOF when the terminal goes away", err)
	}
	if strings.Join(r.sent, "") != "abc" {
		t.Errorf("sent %q, want abc", r.sent)
	}
}

func TestForwardKeysSendFails(t *testing.T) {
	r := recorder{err: errors.New("QEMU has exited")}
	err := forwardKeys(t.Context(), strings.NewReader("abc\x1d"), r.send)
	if err == nil || !strings.Contains(err.Error(), "QEMU has exited") {
		t.Fatalf("forwardKeys = %v, want the send error", err)
	}
}

func TestScreenCookedMode(t *testing.T) {
	var out, errs bytes.Buffer
	s := newScreen(&out, &errs)
	s.say("booting %d box", 1)
	_, _ = s.guest().Write([]byte("login: "))
	s.say("ready") // the guest's line is unfinished: the host line starts on a new one
	_, _ = s.guest().Write([]byte("onecloud: ready\r\n"))
	s.say("leave")
	_, _ = io.WriteString(s.diagnostics(), "level=INFO msg=x\n")
	want := "demo: booting 1 box\nlogin: \ndemo: ready\nonecloud: ready\r\ndemo: leave\n"
	if out.String() != want {
		t.Errorf("stdout = %q, want %q", out.String(), want)
	}
	if errs.String() != "level=INFO msg=x\n" {
		t.Errorf("stderr = %q", errs.String())
	}
}

func TestScreenRawMode(t *testing.T) {
	var out, errs bytes.Buffer
	s := newScreen(&out, &errs)
	s.setRaw(true)
	_, _ = s.guest().Write([]byte("a\nb")) // the guest's bytes are never changed
	s.say("ready")
	_, _ = io.WriteString(s.diagnostics(), "one\ntwo\n")
	s.setRaw(false)
	s.say("done")
	if want := "a\nb\r\ndemo: ready\r\n"; out.String() != want+"demo: done\n" {
		t.Errorf("stdout = %q, want %q", out.String(), want+"demo: done\n")
	}
	if errs.String() != "one\r\ntwo\r\n" {
		t.Errorf("stderr = %q, want %q", errs.String(), "one\r\ntwo\r\n")
	}
}

func TestScreenNoticesLostOutput(t *testing.T) {
	var errs bytes.Buffer
	out := &failAfter{n: 1}
	s := newScreen(out, &errs)
	_, _ = s.guest().Write([]byte("one\r\n"))
	select {
	case <-s.lost:
		t.Fatal("lost after a write that worked")
	default:
	}
	if n, err := s.guest().Write([]byte("two\r\n")); n != 5 || err != nil {
		t.Errorf("guest write = %d, %v: want it to succeed for the serial log's sake", n, err)
	}
	s.say("and a host line") // a second failure must not close lost twice
	select {
	case <-s.lost:
	default:
		t.Fatal("a failed write to stdout did not close lost")
	}
}

// failAfter is a stdout whose reader goes away after n writes.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, syscall.EPIPE
	}
	f.n--
	return len(p), nil
}

func TestParseArgs(t *testing.T) {
	o, err := parseArgs(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := options{image: "out/image", timeout: defaultTimeout, logDir: "out/demo"}
	if o != want {
		t.Errorf("defaults = %+v, want %+v", o, want)
	}

	o, err = parseArgs([]string{"-image", "/srv/oc/out/image/", "-until-ready", "-timeout", "90s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want = options{image: "/srv/oc/out/image/", untilReady: true, timeout: 90 * time.Second, logDir: "/srv/oc/out/demo"}
	if o != want {
		t.Errorf("parsed %+v, want %+v", o, want)
	}

	o, err = parseArgs([]string{"-logs", "/tmp/d", "-timeout", "0"}, io.Discard)
	if err != nil || o.logDir != "/tmp/d" || o.timeout != 0 {
		t.Errorf("parsed %+v, %v; want logs /tmp/d and no timeout", o, err)
	}
}

func TestParseArgsRejects(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"out/image"}, `unexpected argument "out/image"`},
		{[]string{"-timeout", "-1s"}, "negative"},
		{[]string{"-timeout", "soon"}, "invalid value"},
		{[]string{"-image", ""}, "-image is empty"},
		{[]string{"-kvm"}, "not defined"},
	} {
		var stderr bytes.Buffer
		if _, err := parseArgs(c.args, &stderr); err == nil {
			t.Errorf("parseArgs(%q) accepted it", c.args)
		}
		if !strings.Contains(stderr.String(), c.says) {
			t.Errorf("parseArgs(%q) said %q, want it to say %q", c.args, stderr.String(), c.says)
		}
	}
	var stderr bytes.Buffer
	if _, err := parseArgs([]string{"-h"}, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "Ctrl-]") {
		t.Errorf("-h: %v, %q; want flag.ErrHelp and a usage that says how to leave", err, stderr.String())
	}
}

func TestPreflightMissingImage(t *testing.T) {
	dir := t.TempDir()
	err := preflight(options{image: filepath.Join(dir, "image")})
	if err == nil || !strings.Contains(err.Error(), "run `make image`") {
		t.Errorf("preflight without an image = %v, want it to say to run `make image`", err)
	}
	if os.Geteuid() != 0 && !strings.Contains(err.Error(), "sudo make demo") {
		t.Errorf("preflight as a user = %v, want it to say to run as root", err)
	}

	img := filepath.Join(dir, "image")
	if err := os.MkdirAll(img, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vmlinuz", "initramfs.cpio.gz"} {
		if err := os.WriteFile(filepath.Join(img, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := preflight(options{image: img}); err != nil && strings.Contains(err.Error(), "make image") {
		t.Errorf("preflight with an image still asks for one: %v", err)
	}
}

func TestInstalled(t *testing.T) {
	if !installed("sh") {
		t.Error(`installed("sh") = false`)
	}
	if installed("no-such-program-onecloud-demo") {
		t.Error("installed finds a program that does not exist")
	}
}
