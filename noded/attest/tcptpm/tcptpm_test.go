package tcptpm

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
)

// fakeTPM answers the first command it reads (of the size in its header)
// with reply(command) on loopback, then hangs up, so that a short reply
// ends in EOF rather than a deadline.
func fakeTPM(t *testing.T, reply func(cmd []byte) []byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		hdr := make([]byte, 10)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		cmd := make([]byte, binary.BigEndian.Uint32(hdr[2:6]))
		copy(cmd, hdr)
		if _, err := io.ReadFull(c, cmd[10:]); err != nil {
			return
		}
		c.Write(reply(cmd))
	}()
	return l.Addr().String()
}

func response(size uint32, body []byte) []byte {
	b := []byte{0x80, 0x01}
	b = binary.BigEndian.AppendUint32(b, size)
	b = binary.BigEndian.AppendUint32(b, 0) // TPM_RC_SUCCESS
	return append(b, body...)
}

// getRandom is TPM2_GetRandom(8).
var getRandom = []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8}

func TestSend(t *testing.T) {
	body := []byte{0, 8, 1, 2, 3, 4, 5, 6, 7, 8}
	for _, tc := range []struct {
		name    string
		reply   []byte
		want    []byte
		wantErr string
	}{
		{"whole response", response(20, body), response(20, body), ""},
		{"header only", response(10, nil), response(10, nil), ""},
		{"size below the header", response(4, nil), nil, "not a raw TPM 2.0 stream"},
		{"huge size", response(maxResponse+1, nil), nil, "not a raw TPM 2.0 stream"},
		{"cut short", response(20, body[:3]), nil, "read from the TPM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeTPM(t, func(cmd []byte) []byte {
				if !bytes.Equal(cmd, getRandom) {
					return response(10, nil)[:4] // the test then fails on EOF
				}
				return tc.reply
			})
			c, err := Dial(t.Context(), Scheme+addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := c.Send(getRandom)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Send: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Send = %x, %v; want an error with %q", got, err, tc.wantErr)
			case tc.wantErr == "" && !bytes.Equal(got, tc.want):
				t.Fatalf("Send = %x, want %x", got, tc.want)
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	for _, addr := range []string{"tcp:", "tcp:nohost", "/dev/tpmrm0"} {
		if c, err := Dial(t.Context(), addr); err == nil || !strings.Contains(err.Error(), "want tcp:HOST:PORT") {
			if c != nil {
				c.Close()
			}
			t.Errorf("Dial(%q) = %v; want an error naming the form", addr, err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if c, err := Dial(t.Context(), Scheme+addr); err == nil || !strings.Contains(err.Error(), "swtpm") {
		if c != nil {
			c.Close()
		}
		t.Errorf("Dial to a closed port = %v; want an error telling to start swtpm", err)
	}
}
