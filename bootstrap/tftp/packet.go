package tftp

// This file holds the wire format: pure functions that parse and build TFTP
// packets and negotiate options. Nothing here touches a socket or a file, so
// all of it is table-tested and fuzzed.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Opcodes (RFC 1350 section 5, RFC 2347 for OACK).
const (
	opRRQ   uint16 = 1
	opWRQ   uint16 = 2
	opDATA  uint16 = 3
	opACK   uint16 = 4
	opERROR uint16 = 5
	opOACK  uint16 = 6
)

// Error codes (RFC 1350 appendix, RFC 2347 for code 8).
const (
	errUndefined     uint16 = 0
	errNotFound      uint16 = 1
	errAccess        uint16 = 2
	errIllegalOp     uint16 = 4
	errUnknownTID    uint16 = 5
	errOptionRefused uint16 = 8
)

// Protocol limits.
const (
	defaultBlksize = 512   // RFC 1350: without the blksize option
	minBlksize     = 8     // RFC 2348
	maxBlksize     = 65464 // RFC 2348: largest block that fits a UDP datagram over IPv4
	maxWindowsize  = 65535 // RFC 7440
)

// maxClientTimeout is the longest timeout option accepted; a longer one is
// declined (left out of the OACK, as RFC 2349 allows). A client that asks
// 255 s and vanishes would otherwise hold an admission slot for
// 255 s x (Retries+1), about 25 minutes with the defaults.
const maxClientTimeout = 10

// option is one name/value pair of a request or an OACK. Names are kept
// lower-case because RFC 2347 makes them case-insensitive.
type option struct {
	name, value string
}

// request is a parsed RRQ or WRQ.
type request struct {
	op       uint16
	filename string // as sent; see cleanName for what is opened
	mode     string // lower-case: "octet", "netascii" or "mail"
	options  []option
}

// parseRequest parses an RRQ or WRQ: opcode, filename NUL, mode NUL, then
// name NUL value NUL pairs (RFC 2347). It never panics on any input.
func parseRequest(b []byte) (request, error) {
	if len(b) < 2 {
		return request{}, errors.New("packet shorter than its 2-byte opcode")
	}
	op := binary.BigEndian.Uint16(b)
	if op != opRRQ && op != opWRQ {
		return request{}, fmt.Errorf("opcode %d is not a request (RRQ=1, WRQ=2)", op)
	}
	body := string(b[2:])
	if !strings.HasSuffix(body, "\x00") {
		return request{}, errors.New("request does not end with a NUL byte")
	}
	fields := strings.Split(body[:len(body)-1], "\x00")
	if len(fields) < 2 {
		return request{}, errors.New("request lacks the mode field")
	}
	req := request{op: op, filename: fields[0], mode: strings.ToLower(fields[1])}
	if req.filename == "" {
		return request{}, errors.New("request names no file")
	}
	if req.mode == "" {
		return request{}, errors.New("request has an empty mode")
	}
	rest := fields[2:]
	// Some PXE ROMs pad the request with extra NUL bytes: that reads as
	// options with empty names, which are skipped. A final name without a
	// value can't be negotiated and is ignored like an unknown option.
	for i := 0; i+1 < len(rest); i += 2 {
		name := strings.ToLower(rest[i])
		if name == "" || req.hasOption(name) {
			// RFC 2347 doesn't say what a repeated option means; the
			// first one wins so the answer is deterministic.
			continue
		}
		req.options = append(req.options, option{name: name, value: rest[i+1]})
	}
	return req, nil
}

func (r request) hasOption(name string) bool {
	for _, o := range r.options {
		if o.name == name {
			return true
		}
	}
	return false
}

// appendRequest encodes a request; the tests' client uses it, and the fuzz
// target checks that parsing what it builds gives back the same request.
func appendRequest(b []byte, r request) []byte {
	b = binary.BigEndian.AppendUint16(b, r.op)
	b = append(append(b, r.filename...), 0)
	b = append(append(b, r.mode...), 0)
	for _, o := range r.options {
		b = append(append(b, o.name...), 0)
		b = append(append(b, o.value...), 0)
	}
	return b
}

// limits are the server's side of option negotiation.
type limits struct {
	maxBlksize int
	maxWindow  int
	timeout    time.Duration // retransmission timeout when the client sends none
}

// params are the negotiated parameters of one transfer.
type params struct {
	blksize int
	window  int
	timeout time.Duration
	// oack lists the accepted options in the order the client sent them.
	// Empty means no OACK: the transfer starts with DATA 1 (RFC 2347).
	oack []option
}

// negotiate answers the client's options (RFC 2347/2348/2349/7440). A value
// the server can't honour exactly is lowered to the server's limit; an
// invalid value makes the option ignored rather than the boot fail, which
// RFC 2347 allows and which keeps odd ROMs booting. size is the file's size,
// answered to tsize.
func negotiate(opts []option, size int64, lim limits) params {
	p := params{blksize: defaultBlksize, window: 1, timeout: lim.timeout}
	for _, o := range opts {
		switch o.name {
		case "blksize":
			n, ok := parseNumber(o.value)
			if !ok || n < minBlksize {
				continue
			}
			p.blksize = int(min(n, uint64(lim.maxBlksize)))
			p.oack = append(p.oack, option{o.name, strconv.Itoa(p.blksize)})
		case "tsize":
			// On a RRQ the client sends 0 and the server answers the
			// real size (RFC 2349); PXE ROMs use it to size buffers.
			if _, ok := parseNumber(o.value); !ok {
				continue
			}
			p.oack = append(p.oack, option{o.name, strconv.FormatInt(size, 10)})
		case "timeout":
			n, ok := parseNumber(o.value)
			if !ok || n < 1 || n > maxClientTimeout {
				continue
			}
			// RFC 2349: the server uses the client's value as is or
			// declines the option; it can't answer another value.
			p.timeout = time.Duration(n) * time.Second
			p.oack = append(p.oack, option{o.name, strconv.FormatUint(n, 10)})
		case "windowsize":
			n, ok := parseNumber(o.value)
			if !ok || n < 1 {
				continue
			}
			p.window = int(min(n, uint64(lim.maxWindow)))
			p.oack = append(p.oack, option{o.name, strconv.Itoa(p.window)})
		}
	}
	return p
}

// parseNumber accepts plain decimal digits only (no sign, no spaces). A value
// too large for uint64 is returned as the largest one, since every caller
// clamps it anyway.
func parseNumber(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	switch {
	case err == nil:
		return n, true
	case errors.Is(err, strconv.ErrRange):
		return ^uint64(0), true
	default:
		return 0, false
	}
}

func appendOACK(b []byte, opts []option) []byte {
	b = binary.BigEndian.AppendUint16(b, opOACK)
	for _, o := range opts {
		b = append(append(b, o.name...), 0)
		b = append(append(b, o.value...), 0)
	}
	return b
}

func appendError(b []byte, code uint16, msg string) []byte {
	b = binary.BigEndian.AppendUint16(b, opERROR)
	b = binary.BigEndian.AppendUint16(b, code)
	return append(append(b, msg...), 0)
}

func appendACK(b []byte, block uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, opACK)
	return binary.BigEndian.AppendUint16(b, block)
}

// reply is what a reading client sends to a transfer's socket: an ACK or an
// ERROR.
type reply struct {
	op    uint16 // opACK or opERROR
	block uint16 // ACK: the block acknowledged
	code  uint16 // ERROR: the error code
	msg   string // ERROR: the message
}

// parseReply parses an ACK or ERROR. It never panics on any input.
func parseReply(b []byte) (reply, error) {
	if len(b) < 4 {
		return reply{}, fmt.Errorf("packet of %d bytes is too short for an ACK or ERROR", len(b))
	}
	r := reply{op: binary.BigEndian.Uint16(b)}
	switch r.op {
	case opACK:
		r.block = binary.BigEndian.Uint16(b[2:])
	case opERROR:
		r.code = binary.BigEndian.Uint16(b[2:])
		// Be lenient with a missing final NUL: the client is giving up
		// either way, and its message is only logged.
		r.msg, _, _ = strings.Cut(string(b[4:]), "\x00")
	default:
		return reply{}, fmt.Errorf("opcode %d is neither ACK nor ERROR", r.op)
	}
	return r, nil
}

// cleanName turns a requested filename into a name relative to the served
// tree. A leading "/" is stripped because PXE configurations often write
// "/undionly.kpxe" meaning the TFTP root. ".." is refused outright, even
// where it would stay inside the tree: no boot ROM needs it, and a request
// carrying it is a probe. os.Root still guards against symlinks that leave
// the tree.
func cleanName(name string) (string, error) {
	n := strings.TrimLeft(name, "/")
	if n == "" {
		return "", errors.New("the name is empty or names the root directory")
	}
	for el := range strings.SplitSeq(n, "/") {
		if el == ".." {
			return "", errors.New(`the name contains ".."`)
		}
	}
	return n, nil
}
