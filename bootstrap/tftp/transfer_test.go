package tftp

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestBlockWindowCount(t *testing.T) {
	tests := []struct {
		size          int64
		blksize, want int
	}{
		{0, 512, 1},
		{511, 512, 1},
		{512, 512, 2}, // a full last block is followed by an empty one
		{513, 512, 2},
		{1<<20 + 1, 512, 2049},
		{33 << 20, 512, 67585},
	}
	for _, tt := range tests {
		w := newBlockWindow(tt.size, tt.blksize, 1)
		if w.last != uint64(tt.want) {
			t.Errorf("size %d blksize %d: %d blocks, want %d", tt.size, tt.blksize, w.last, tt.want)
		}
	}
}

func TestBlockWindowAck(t *testing.T) {
	type step struct {
		ack        uint16
		want       ackKind
		wantAcked  uint64
		wantFirst  uint64
		wantEnd    uint64
		wantIsDone bool
	}
	tests := []struct {
		name  string
		w     blockWindow
		steps []step
	}{
		{"lock-step, duplicate ACKs never resend", blockWindow{last: 3, width: 1}, []step{
			{1, ackAdvanced, 1, 2, 2, false},
			{1, ackDuplicate, 1, 2, 2, false}, // Sorcerer's Apprentice: no second DATA 2
			{0, ackStale, 1, 2, 2, false},
			{3, ackStale, 1, 2, 2, false}, // beyond what was sent
			{2, ackAdvanced, 2, 3, 3, false},
			{3, ackAdvanced, 3, 4, 3, true},
			{3, ackDuplicate, 3, 4, 3, true},
		}},
		{"window: a mid-window ACK restarts after it", blockWindow{last: 100, width: 8}, []step{
			{8, ackAdvanced, 8, 9, 16, false},
			{12, ackAdvanced, 12, 13, 20, false}, // the client lost 13
			{12, ackDuplicate, 12, 13, 20, false},
			{8, ackStale, 12, 13, 20, false}, // a late ACK of an older window
			{21, ackStale, 12, 13, 20, false},
			{20, ackAdvanced, 20, 21, 28, false},
		}},
		{"window clipped by the last block", blockWindow{last: 10, width: 8}, []step{
			{8, ackAdvanced, 8, 9, 10, false},
			{10, ackAdvanced, 10, 11, 10, true},
		}},
		{"rollover: 65535 is followed by 0", blockWindow{last: 70000, width: 4, acked: 65532}, []step{
			{65535, ackAdvanced, 65535, 65536, 65539, false},
			{0, ackAdvanced, 65536, 65537, 65540, false},
			{65535, ackStale, 65536, 65537, 65540, false},
			{0, ackDuplicate, 65536, 65537, 65540, false},
			{4, ackAdvanced, 65540, 65541, 65544, false},
		}},
		{"widest window stays unambiguous", blockWindow{last: 200000, width: 65535}, []step{
			{65535, ackAdvanced, 65535, 65536, 131070, false},
			{65535, ackDuplicate, 65535, 65536, 131070, false},
			{65534, ackAdvanced, 131070, 131071, 196605, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			for i, s := range tt.steps {
				got := w.ack(s.ack)
				first, end := w.pending()
				if got != s.want || w.acked != s.wantAcked || first != s.wantFirst || end != s.wantEnd || w.done() != s.wantIsDone {
					t.Fatalf("step %d ack(%d) = %v, acked %d, pending %d..%d, done %v; want %v, %d, %d..%d, %v",
						i, s.ack, got, w.acked, first, end, w.done(), s.want, s.wantAcked, s.wantFirst, s.wantEnd, s.wantIsDone)
				}
			}
		})
	}
}

// patternFile is a generated file of any size that needs no disk. Its bytes
// repeat with a prime period, so a block read at the wrong offset (say, at
// offset 0 after the block number wrapped) doesn't match.
type patternFile struct{ table []byte }

func newPatternFile() patternFile {
	t := make([]byte, 4093)
	for i := range t {
		t[i] = byte(i*131 + i>>8)
	}
	return patternFile{t}
}

func (p patternFile) ReadAt(b []byte, off int64) (int, error) {
	for n := 0; n < len(b); {
		n += copy(b[n:], p.table[(off+int64(n))%int64(len(p.table)):])
	}
	return len(b), nil
}

// TestRolloverPureSender drives the sender's window and packet encoding over
// a 33 MiB file at 512-byte blocks (67,585 blocks: the block number wraps
// once) without sockets, losing some packets in both directions, with a
// receiver that tracks block numbers modulo 65536 the way a ROM does. The
// same code runs over loopback in the server tests, just not 67,585 times.
func TestRolloverPureSender(t *testing.T) {
	const size = 33 << 20
	src := newPatternFile()
	for _, width := range []int{1, 16} {
		tr := &transfer{file: src, size: size, p: params{blksize: 512, window: width}}
		w := newBlockWindow(size, 512, width)

		var received int64
		want := make([]byte, 512)
		expect := uint16(1) // the receiver's next wire block number
		sawWrap := false
		pkt := make([]byte, 4+512)
		for round := 1; !w.done(); round++ {
			if round > 2*67585 {
				t.Fatalf("window %d: no progress after %d rounds (acked %d, receiver expects wire block %d)", width, round, w.acked, expect)
			}
			first, end := w.pending()
			ack := expect - 1
			for seq := first; seq <= end; seq++ {
				b, err := tr.encodeBlock(pkt, seq)
				if err != nil {
					t.Fatal(err)
				}
				if round%97 == 0 && seq == end {
					break // a lost DATA packet: the receiver acks what it has
				}
				block := binary.BigEndian.Uint16(b[2:])
				if block != expect {
					break // a resent block the receiver already has
				}
				sawWrap = sawWrap || block == 0
				data := b[4:]
				src.ReadAt(want[:len(data)], received)
				if !bytes.Equal(data, want[:len(data)]) {
					t.Fatalf("window %d: block %d (wire %d) holds the wrong bytes for offset %d", width, seq, block, received)
				}
				received += int64(len(data))
				ack = block
				expect++
				if len(data) < 512 {
					break
				}
			}
			if round%89 == 0 {
				continue // a lost ACK: the timer resends the same window
			}
			w.ack(ack)
			// A duplicate of the same ACK must change nothing.
			if k := w.ack(ack); k == ackAdvanced {
				t.Fatalf("a duplicate ACK %d advanced the window", ack)
			}
		}
		if !sawWrap {
			t.Errorf("window %d: block number never wrapped to 0", width)
		}
		if received != size {
			t.Errorf("window %d: received %d bytes, want %d", width, received, size)
		}
	}
}
