// Package tcptpm talks to a TPM 2.0 that serves raw TPM commands over TCP,
// as swtpm does with `--server type=tcp`: a command is written as it is,
// and one response is read by the size in its header. go-tpm's tcp
// transport speaks the Microsoft simulator's framing instead, which swtpm's
// --server channel does not.
//
// It lets `noded server -tpm tcp:HOST:PORT` attest with a software TPM in
// the lab, where a box would use /dev/tpmrm0.
package tcptpm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Scheme prefixes a TPM address given as a path: "tcp:127.0.0.1:2321".
const Scheme = "tcp:"

// commandTimeout bounds one command; RSA key generation in swtpm takes
// well under it, and a TPM that hangs must not hang its caller.
const commandTimeout = 60 * time.Second

// maxResponse bounds a response; the largest TPM 2.0 responses are a few
// kilobytes, so anything near this is a broken peer.
const maxResponse = 1 << 20

// Conn is a raw TPM 2.0 command stream over TCP. It implements go-tpm's
// transport.TPMCloser and is safe for concurrent use (one command at a
// time).
type Conn struct {
	mu   sync.Mutex
	c    net.Conn
	addr string
}

// Dial connects to the TPM at addr (HOST:PORT, or "tcp:HOST:PORT").
func Dial(ctx context.Context, addr string) (*Conn, error) {
	addr = strings.TrimPrefix(addr, Scheme)
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("TPM address %q: want tcp:HOST:PORT: %w", addr, err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the TPM at %s (is swtpm running with --server type=tcp?): %w", addr, err)
	}
	return &Conn{c: c, addr: addr}, nil
}

// New wraps a connection that is already open to a TPM (a test that made
// the loopback connection itself and handed swtpm its end).
func New(c net.Conn) *Conn { return &Conn{c: c, addr: c.RemoteAddr().String()} }

// Send sends one command and returns the TPM's whole response.
func (c *Conn) Send(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.c.SetDeadline(time.Now().Add(commandTimeout)); err != nil {
		return nil, fmt.Errorf("TPM at %s: %w", c.addr, err)
	}
	if _, err := c.c.Write(cmd); err != nil {
		return nil, fmt.Errorf("send to the TPM at %s: %w", c.addr, err)
	}
	hdr := make([]byte, 10) // tag, size, response code
	if _, err := io.ReadFull(c.c, hdr); err != nil {
		return nil, fmt.Errorf("read from the TPM at %s: %w", c.addr, err)
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < uint32(len(hdr)) || size > maxResponse {
		return nil, fmt.Errorf("the TPM at %s announced a response of %d bytes: not a raw TPM 2.0 stream", c.addr, size)
	}
	rsp := make([]byte, size)
	copy(rsp, hdr)
	if _, err := io.ReadFull(c.c, rsp[len(hdr):]); err != nil {
		return nil, fmt.Errorf("read from the TPM at %s: %w", c.addr, err)
	}
	return rsp, nil
}

// Close closes the connection; swtpm then serves its next client.
func (c *Conn) Close() error {
	if err := c.c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
