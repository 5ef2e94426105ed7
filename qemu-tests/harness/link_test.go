package harness

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// TestConnectForward cables two labs to a bridge in a third, reaches a server in one from the test
// process through Forward into the other, and pulls and replugs the cable.
func TestConnectForward(t *testing.T) {
	t.Parallel()
	hub := NewLab(t)
	br := hub.Bridge(t, "br0", "")
	client, server := NewLab(t), NewLab(t)
	link := br.Connect(t, client, "eth0", "10.79.0.1/24")
	br.Connect(t, server, "eth0", "10.79.0.2/24")

	var ln net.Listener
	if err := server.Do(func() (err error) {
		ln, err = net.Listen("tcp", "10.79.0.2:7000")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()

	addr := client.Forward(t, "10.79.0.2:7000")
	echo := func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * forwardDialTimeout))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line != "ping\n" {
			t.Errorf("echo through the bridge: got %q, want %q", line, "ping\n")
		}
		return err
	}
	if err := echo(); err != nil {
		t.Fatalf("echo across the bridge: %v", err)
	}
	if err := link.SetUp(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if err := echo(); err == nil {
		t.Error("echo across the bridge worked with the client's cable pulled")
	}
	if err := link.SetUp(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	// The neighbour entry that failed while the cable was out is retried, so the way back may take a
	// moment.
	deadline := time.Now().Add(10 * time.Second)
	for err := echo(); err != nil; err = echo() {
		if time.Now().After(deadline) {
			t.Fatalf("echo across the bridge after replugging the cable: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
