package tftp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"
)

// blockWindow is the sender's bookkeeping, kept apart from sockets so that
// block number rollover and duplicate ACKs are tested as pure logic.
//
// Blocks are numbered by a 64-bit sequence (1, 2, ...) internally; on the
// wire the number is that sequence modulo 65536, so after block 65535 comes
// block 0 (the rollover a file above 32 MiB hits at 512-byte blocks).
type blockWindow struct {
	last  uint64 // sequence number of the final block (the short one, maybe empty)
	width uint64 // blocks sent before waiting for an ACK (RFC 7440 windowsize)
	acked uint64 // highest block the client acknowledged; 0 before the first
}

func newBlockWindow(size int64, blksize, width int) blockWindow {
	// A file whose size is a multiple of blksize ends with an empty block:
	// a block shorter than blksize is what tells the client it's done.
	return blockWindow{last: uint64(size)/uint64(blksize) + 1, width: uint64(width)}
}

// pending is the range of blocks to send now: the window after the last
// acknowledged block. After a timeout the same range is sent again.
func (w *blockWindow) pending() (first, end uint64) {
	return w.acked + 1, min(w.acked+w.width, w.last)
}

func (w *blockWindow) done() bool { return w.acked == w.last }

type ackKind int

const (
	ackAdvanced  ackKind = iota // new blocks acknowledged: send the next window
	ackDuplicate                // the same block again: ignore it
	ackStale                    // outside the window (old or bogus): ignore it
)

// ack records an ACK carrying wire block number wire. Only an ACK that
// acknowledges something new moves the window; a duplicate never causes a
// resend (only the timer does), which is what keeps the Sorcerer's
// Apprentice bug (RFC 1123 4.2.3.1) from doubling every packet.
//
// An ACK for a block inside the window but before its end means the client
// lost the rest (RFC 7440): the next window starts right after it.
func (w *blockWindow) ack(wire uint16) ackKind {
	_, end := w.pending()
	// The distance from the last acknowledged block, modulo 65536, is
	// unique because a window is at most 65535 blocks wide.
	delta := uint64(wire - uint16(w.acked))
	switch {
	case delta == 0:
		return ackDuplicate
	case delta <= end-w.acked:
		w.acked += delta
		return ackAdvanced
	default:
		return ackStale
	}
}

// transfer sends one file to one client from its own socket.
type transfer struct {
	conn    *net.UDPConn
	peer    netip.AddrPort
	file    io.ReaderAt
	size    int64
	p       params
	retries int

	retransmits uint64 // packets sent again after a timeout
	malformed   uint64 // unparseable packets from the client
}

// errClientAbort reports that the client ended the transfer with an ERROR.
type errClientAbort struct {
	code uint16
	msg  string
}

func (e errClientAbort) Error() string {
	return fmt.Sprintf("client ended the transfer with error %d %q", e.code, e.msg)
}

// run sends the file. It returns nil once the client acknowledged the final
// block.
func (t *transfer) run(ctx context.Context) error {
	// A cancelled context unblocks the read at once; run checks ctx after
	// every deadline it sets, so the cancellation can't be overwritten.
	stop := context.AfterFunc(ctx, func() { t.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	pkt := make([]byte, 4+t.p.blksize)
	rbuf := make([]byte, 1024) // ACKs are 4 bytes; error messages are only logged
	win := newBlockWindow(t.size, t.p.blksize, t.p.window)
	oackPending := len(t.p.oack) > 0

	send := func() error {
		if oackPending {
			t.write(appendOACK(pkt[:0], t.p.oack))
			return nil
		}
		first, end := win.pending()
		for seq := first; seq <= end; seq++ {
			if err := t.writeBlock(pkt, seq); err != nil {
				return err
			}
		}
		return nil
	}
	if err := send(); err != nil {
		return err
	}
	deadline := time.Now().Add(t.p.timeout)
	tries := 0
	for {
		if err := t.conn.SetReadDeadline(deadline); err != nil {
			return fmt.Errorf("setting the read deadline: %w", err)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		n, from, err := t.conn.ReadFromUDPAddrPort(rbuf)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("reading from the client: %w", err)
			}
			tries++
			if tries > t.retries {
				t.write(appendError(pkt[:0], errUndefined, "timed out waiting for ACK"))
				return fmt.Errorf("no ACK after %d retransmissions %v apart", t.retries, t.p.timeout)
			}
			first, end := win.pending()
			if oackPending {
				t.retransmits++
			} else {
				t.retransmits += end - first + 1
			}
			if err := send(); err != nil {
				return err
			}
			deadline = time.Now().Add(t.p.timeout)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if from != t.peer {
			// RFC 1350: a packet from another TID gets an error and
			// doesn't disturb the transfer.
			t.conn.WriteToUDPAddrPort(appendError(nil, errUnknownTID, "unknown transfer ID"), from)
			continue
		}
		r, err := parseReply(rbuf[:n])
		if err != nil {
			t.malformed++
			continue
		}
		if r.op == opERROR {
			return errClientAbort{code: r.code, msg: r.msg}
		}
		if oackPending {
			if r.block != 0 {
				continue // not the ACK of the OACK; the timer resends
			}
			oackPending = false
		} else if win.ack(r.block) != ackAdvanced {
			continue
		}
		if win.done() {
			return nil
		}
		tries = 0
		if err := send(); err != nil {
			return err
		}
		deadline = time.Now().Add(t.p.timeout)
	}
}

// writeBlock sends block seq.
func (t *transfer) writeBlock(pkt []byte, seq uint64) error {
	b, err := t.encodeBlock(pkt, seq)
	if err != nil {
		t.write(appendError(pkt[:0], errUndefined, "server could not read the file"))
		return err
	}
	t.write(b)
	return nil
}

// encodeBlock builds the DATA packet of block seq in pkt, reading the file at
// the block's offset.
func (t *transfer) encodeBlock(pkt []byte, seq uint64) ([]byte, error) {
	off := int64(seq-1) * int64(t.p.blksize)
	n := int(max(0, min(int64(t.p.blksize), t.size-off)))
	pkt = pkt[:4+n]
	binary.BigEndian.PutUint16(pkt[0:], opDATA)
	binary.BigEndian.PutUint16(pkt[2:], uint16(seq)) // wraps to 0 after 65535
	if n > 0 {
		got, err := t.file.ReadAt(pkt[4:], off)
		if got < n {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading %d bytes at offset %d: %w (was the file truncated while served?)", n, off, err)
		}
	}
	return pkt, nil
}

// write sends a packet to the client. A failed send (a full socket buffer
// in a boot storm) is left to the retransmission timer rather than failing
// the transfer.
func (t *transfer) write(b []byte) {
	t.conn.WriteToUDPAddrPort(b, t.peer)
}
