package tftp

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// Real requests, used as table cases and fuzz seeds.
var (
	// iPXE (src/net/udp/tftp.c tftp_send_rrq): blksize then tsize.
	rrqIPXE = "\x00\x01undionly.kpxe\x00octet\x00blksize\x001432\x00tsize\x000\x00"
	// A PXE ROM's first request asks only the size, then it aborts and asks again.
	rrqPXETsize   = "\x00\x01pxelinux.0\x00octet\x00tsize\x000\x00"
	rrqPXEBlksize = "\x00\x01pxelinux.0\x00octet\x00blksize\x001456\x00"
	// EDK2/OVMF: tsize, blksize and windowsize.
	rrqUEFI = "\x00\x01snponly.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00windowsize\x004\x00"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    request
		wantErr string
	}{
		{"ipxe", rrqIPXE, request{opRRQ, "undionly.kpxe", "octet",
			[]option{{"blksize", "1432"}, {"tsize", "0"}}}, ""},
		{"pxe tsize probe", rrqPXETsize, request{opRRQ, "pxelinux.0", "octet",
			[]option{{"tsize", "0"}}}, ""},
		{"pxe re-request", rrqPXEBlksize, request{opRRQ, "pxelinux.0", "octet",
			[]option{{"blksize", "1456"}}}, ""},
		{"uefi", rrqUEFI, request{opRRQ, "snponly.efi", "octet",
			[]option{{"tsize", "0"}, {"blksize", "1468"}, {"windowsize", "4"}}}, ""},
		{"no options", "\x00\x01a\x00octet\x00", request{opRRQ, "a", "octet", nil}, ""},
		{"mode and names case-insensitive", "\x00\x01A\x00OcTeT\x00BLKSIZE\x00512\x00",
			request{opRRQ, "A", "octet", []option{{"blksize", "512"}}}, ""},
		{"NUL padding", "\x00\x01a\x00octet\x00\x00\x00\x00", request{opRRQ, "a", "octet", nil}, ""},
		{"dangling option name ignored", "\x00\x01a\x00octet\x00tsize\x00",
			request{opRRQ, "a", "octet", nil}, ""},
		{"first duplicate wins", "\x00\x01a\x00octet\x00blksize\x00512\x00BlkSize\x001024\x00",
			request{opRRQ, "a", "octet", []option{{"blksize", "512"}}}, ""},
		{"write request", "\x00\x02up\x00octet\x00", request{opWRQ, "up", "octet", nil}, ""},
		{"netascii parsed", "\x00\x01a\x00netascii\x00", request{opRRQ, "a", "netascii", nil}, ""},
		{"empty", "", request{}, "shorter"},
		{"one byte", "\x00", request{}, "shorter"},
		{"ack is not a request", "\x00\x04\x00\x01", request{}, "not a request"},
		{"no final NUL", "\x00\x01a\x00octet", request{}, "NUL"},
		{"no mode", "\x00\x01a\x00", request{}, "mode"},
		{"empty filename", "\x00\x01\x00octet\x00", request{}, "names no file"},
		{"empty mode", "\x00\x01a\x00\x00", request{}, "mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRequest([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseRequest() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRequest() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseRequest() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	lim := limits{maxBlksize: 1468, maxWindow: 16, timeout: time.Second}
	tests := []struct {
		name string
		opts []option
		want params
	}{
		{"no options: no OACK, RFC 1350 defaults", nil,
			params{blksize: 512, window: 1, timeout: time.Second}},
		{"ipxe", []option{{"blksize", "1432"}, {"tsize", "0"}},
			params{1432, 1, time.Second, []option{{"blksize", "1432"}, {"tsize", "12345"}}}},
		{"blksize capped to the MTU", []option{{"blksize", "65464"}},
			params{1468, 1, time.Second, []option{{"blksize", "1468"}}}},
		{"huge blksize capped", []option{{"blksize", "99999999999999999999999"}},
			params{1468, 1, time.Second, []option{{"blksize", "1468"}}}},
		{"blksize below 8 ignored", []option{{"blksize", "7"}},
			params{blksize: 512, window: 1, timeout: time.Second}},
		{"blksize 8 accepted", []option{{"blksize", "8"}},
			params{8, 1, time.Second, []option{{"blksize", "8"}}}},
		{"non-numeric values ignored", []option{{"blksize", "big"}, {"tsize", "-1"}, {"windowsize", " 4"}, {"timeout", "+3"}},
			params{blksize: 512, window: 1, timeout: time.Second}},
		{"tsize answers the real size", []option{{"tsize", "7"}},
			params{512, 1, time.Second, []option{{"tsize", "12345"}}}},
		{"timeout accepted", []option{{"timeout", "3"}},
			params{512, 1, 3 * time.Second, []option{{"timeout", "3"}}}},
		{"timeout 0 declined", []option{{"timeout", "0"}},
			params{blksize: 512, window: 1, timeout: time.Second}},
		{"timeout 10 accepted", []option{{"timeout", "10"}},
			params{512, 1, 10 * time.Second, []option{{"timeout", "10"}}}},
		{"timeout above 10s declined", []option{{"timeout", "11"}},
			params{blksize: 512, window: 1, timeout: time.Second}},
		{"windowsize capped", []option{{"windowsize", "64"}},
			params{512, 16, time.Second, []option{{"windowsize", "16"}}}},
		{"windowsize 0 ignored", []option{{"windowsize", "0"}},
			params{blksize: 512, window: 1, timeout: time.Second}},
		{"unknown options not acknowledged", []option{{"multicast", ""}, {"tsize", "0"}},
			params{512, 1, time.Second, []option{{"tsize", "12345"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := negotiate(tt.opts, 12345, lim)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("negotiate() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    reply
		wantErr bool
	}{
		{"ack", "\x00\x04\x01\x02", reply{op: opACK, block: 0x0102}, false},
		{"ack 0", "\x00\x04\x00\x00", reply{op: opACK}, false},
		{"error", "\x00\x05\x00\x08tsize only\x00", reply{op: opERROR, code: 8, msg: "tsize only"}, false},
		{"error without NUL", "\x00\x05\x00\x00bye", reply{op: opERROR, msg: "bye"}, false},
		{"short", "\x00\x04\x00", reply{}, true},
		{"data is not a reply", "\x00\x03\x00\x01xx", reply{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseReply([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseReply() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseReply() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"undionly.kpxe", "undionly.kpxe", false},
		{"/undionly.kpxe", "undionly.kpxe", false},
		{"//efi/snponly.efi", "efi/snponly.efi", false},
		{"a..b", "a..b", false},
		{"/", "", true},
		{"..", "", true},
		{"../etc/passwd", "", true},
		{"/../etc/passwd", "", true},
		{"a/../b", "", true},
		{"a/..", "", true},
	}
	for _, tt := range tests {
		got, err := cleanName(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseRequest feeds raw bytes to everything the listener does with a
// request before touching the disk: parse, clean the name, negotiate.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{rrqIPXE, rrqPXETsize, rrqPXEBlksize, rrqUEFI,
		"\x00\x02x\x00octet\x00", "\x00\x01../../etc/passwd\x00netascii\x00", "\x00\x01"} {
		f.Add([]byte(s))
	}
	lim := limits{maxBlksize: 1468, maxWindow: 16, timeout: time.Second}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := parseRequest(b)
		if err != nil {
			return
		}
		if req.op != opRRQ && req.op != opWRQ || req.filename == "" || req.mode == "" {
			t.Fatalf("parseRequest accepted an invalid request: %+v", req)
		}
		// Encoding what was parsed and parsing again gives the same request.
		again, err := parseRequest(appendRequest(nil, req))
		if err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, req)
		}
		if name, err := cleanName(req.filename); err == nil {
			if strings.HasPrefix(name, "/") || name == ".." || strings.HasPrefix(name, "../") ||
				strings.Contains(name, "/../") || strings.HasSuffix(name, "/..") {
				t.Fatalf("cleanName(%q) = %q escapes", req.filename, name)
			}
		}
		p := negotiate(req.options, 1<<20, lim)
		if p.blksize < minBlksize || p.blksize > lim.maxBlksize || p.window < 1 || p.window > lim.maxWindow ||
			p.timeout < time.Second || p.timeout > maxClientTimeout*time.Second {
			t.Fatalf("negotiate(%+v) = %+v is out of bounds", req.options, p)
		}
	})
}

// FuzzParseReply feeds raw bytes to the parser of what clients send a
// transfer.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"\x00\x04\x00\x01", "\x00\x05\x00\x08tsize only\x00", "\x00\x05\x00\x00", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseReply(b)
		if err == nil && r.op != opACK && r.op != opERROR {
			t.Fatalf("parseReply accepted opcode %d", r.op)
		}
	})
}
