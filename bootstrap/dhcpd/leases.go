package dhcpd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/onecloud-edu/onecloud/internal/atomicfile"
	"hash/crc32"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Lease is what the server knows of one address: who has (or last had) it and until when. A declined
// address has no MAC and is quarantined until Expiry.
type Lease struct {
	Addr     netip.Addr `json:"addr"`
	MAC      string     `json:"mac,omitempty"`
	Hostname string     `json:"host,omitempty"`
	Expiry   time.Time  `json:"exp"`
	Declined bool       `json:"declined,omitempty"`
}

// Active reports whether the lease still binds its address at now.
func (l Lease) Active(now time.Time) bool { return now.Before(l.Expiry) }

// ErrAddrTaken is returned when an address is bound to, or held for, another machine.
var ErrAddrTaken = errors.New("address is in use by another machine")

// ErrLeasesClosed is returned by changes after Close.
var ErrLeasesClosed = errors.New("lease store is closed")

const (
	// offerHold is how long an offered address stays held for the client that was offered it: long
	// enough for a slow client to send its REQUEST, short enough that an abandoned offer does not
	// shrink the pool for long.
	offerHold = 60 * time.Second
	// keepExpired is how long an expired lease is kept in the journal, so that a machine coming back
	// after a weekend still gets its old address.
	keepExpired = 14 * 24 * time.Hour
	// compactMinRecords and compactFactor decide when the journal is rewritten: once it holds more
	// than compactMinRecords records and compactFactor times as many records as live entries.
	compactMinRecords = 4096
	compactFactor     = 4
)

// Leases is the lease database of full mode: every address ever handed out, held in memory and
// persisted in an append-only journal of one JSON record per line, each prefixed with its CRC-32.
// A record is the whole state of one address, so replaying the journal is "last record per address
// wins", and the journal is compacted by writing the live state to a new file that atomically replaces
// the old one (at open, and when it has grown to several times the live state).
//
// Every change that a client will be told about (Bind, and Release and Decline for symmetry) returns only
// once its record is on disk: written and fsynced. Changes arriving while a write is in flight are
// gathered into the next one (group commit), so a storm of 1,000 clients costs a handful of fsyncs
// rather than 1,000 in a row, and no ACK ever names an address a restarted server does not know is
// taken.
type Leases struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	byAddr  map[netip.Addr]Lease
	byMAC   map[string]netip.Addr // the address a MAC has, or last had
	holds   map[netip.Addr]hold   // addresses offered and not yet requested
	holdMAC map[string]netip.Addr
	cursor  map[netip.Addr]netip.Addr // per pool (keyed by its first address): where the next scan starts

	// Group commit, under mu: records queue in pending; one flusher goroutine at a time writes them.
	file     *os.File
	pending  *batch
	flushing bool
	records  int // records in the journal file
	syncs    int // fsyncs of appended batches, for tests of group commit
	// compactMin is compactMinRecords, lowered by tests.
	compactMin int
	closed     bool
	idle       *sync.Cond // signalled when the flusher stops
}

type hold struct {
	mac   string
	until time.Time
}

// batch is one group commit: the records of every change made while the previous write was in flight.
type batch struct {
	buf  []byte
	done chan struct{}
	err  error
}

// OpenLeases loads the journal at path (creating it if missing), ignores a torn record at its end (a
// power cut during a write: that change was never acknowledged to anyone), compacts it, and keeps it
// open for appending.
func OpenLeases(path string, log *slog.Logger) (*Leases, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Leases{
		path:    path,
		log:     log,
		byAddr:  map[netip.Addr]Lease{},
		byMAC:   map[string]netip.Addr{},
		holds:   map[netip.Addr]hold{},
		holdMAC: map[string]netip.Addr{},
		cursor:  map[netip.Addr]netip.Addr{},

		compactMin: compactMinRecords,
	}
	l.idle = sync.NewCond(&l.mu)
	// The folder is the operator's (bootstrapd's -state): a missing one is a
	// mistake to report, not a folder to make.
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("lease journal %s: its folder is missing or not a folder (%v): create the state folder first", path, err)
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.compactLocked(time.Now()); err != nil {
		return nil, err
	}
	return l, nil
}

// load replays the journal into memory.
func (l *Leases) load() error {
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open the lease journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var offset int64
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if err == io.EOF && len(line) == 0 {
			return nil
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read the lease journal %s: %w", l.path, err)
		}
		lease, perr := parseRecord(line)
		if perr != nil {
			// A power cut in the middle of a write leaves a torn record, possibly followed by
			// garbage: everything from here on was never acknowledged, so it is dropped.
			rest, _ := io.Copy(io.Discard, r)
			l.log.Warn("lease journal: ignoring a damaged record and what follows it (an interrupted write)",
				"path", l.path, "line", n, "offset", offset, "bytes", int64(len(line))+rest, "err", perr)
			return nil
		}
		offset += int64(len(line))
		l.apply(lease)
		if err == io.EOF {
			return nil
		}
	}
}

// parseRecord decodes one journal line: 8 hex digits of CRC-32 (IEEE) of the JSON, a space, the JSON,
// a newline.
func parseRecord(line []byte) (Lease, error) {
	var lease Lease
	if len(line) < 10 || line[len(line)-1] != '\n' || line[8] != ' ' {
		return lease, errors.New("truncated record")
	}
	var sum uint32
	if _, err := fmt.Sscanf(string(line[:8]), "%08x", &sum); err != nil {
		return lease, fmt.Errorf("bad checksum field: %w", err)
	}
	body := line[9 : len(line)-1]
	if crc32.ChecksumIEEE(body) != sum {
		return lease, errors.New("checksum mismatch")
	}
	if err := json.Unmarshal(body, &lease); err != nil {
		return lease, err
	}
	if !lease.Addr.Is4() {
		return lease, fmt.Errorf("record without an IPv4 address")
	}
	return lease, nil
}

func appendRecord(buf []byte, lease Lease) []byte {
	body, err := json.Marshal(lease)
	if err != nil {
		panic(err) // Lease has only marshalable fields
	}
	buf = fmt.Appendf(buf, "%08x ", crc32.ChecksumIEEE(body))
	buf = append(buf, body...)
	return append(buf, '\n')
}

// apply sets the state of one address, under mu (or before the store is shared).
func (l *Leases) apply(lease Lease) {
	if old, ok := l.byAddr[lease.Addr]; ok && old.MAC != "" && l.byMAC[old.MAC] == lease.Addr && old.MAC != lease.MAC {
		delete(l.byMAC, old.MAC)
	}
	l.byAddr[lease.Addr] = lease
	if lease.MAC != "" {
		l.byMAC[lease.MAC] = lease.Addr
	}
}

// compactLocked writes the live state to a new journal and renames it over the old one, under mu with no
// flusher running or from the flusher itself. Leases expired for longer than keepExpired and finished
// quarantines are dropped.
func (l *Leases) compactLocked(now time.Time) error {
	addrs := make([]netip.Addr, 0, len(l.byAddr))
	for a, lease := range l.byAddr {
		if now.Sub(lease.Expiry) > keepExpired || (lease.Declined && !lease.Active(now)) {
			delete(l.byAddr, a)
			if lease.MAC != "" && l.byMAC[lease.MAC] == a {
				delete(l.byMAC, lease.MAC)
			}
			continue
		}
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	var buf []byte
	for _, a := range addrs {
		buf = appendRecord(buf, l.byAddr[a])
	}
	if err := atomicfile.WriteFileDurable(l.path, buf, 0o600); err != nil {
		return fmt.Errorf("compact the lease journal: %w; check that %s is writable and not full", err, filepath.Dir(l.path))
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("reopen the lease journal: %w", err)
	}
	if l.file != nil {
		l.file.Close()
	}
	l.file = f
	l.records = len(addrs)
	return nil
}

// recordLocked applies lease and queues its record for the next group commit; the caller waits on the
// returned batch after unlocking mu.
func (l *Leases) recordLocked(lease Lease) (*batch, error) {
	if l.closed {
		return nil, ErrLeasesClosed
	}
	l.apply(lease)
	if l.pending == nil {
		l.pending = &batch{done: make(chan struct{})}
	}
	b := l.pending
	b.buf = appendRecord(b.buf, lease)
	if !l.flushing {
		l.flushing = true
		go l.flush()
	}
	return b, nil
}

// flush writes queued batches, one write and one fsync each, until none is left.
func (l *Leases) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.pending != nil {
		b := l.pending
		l.pending = nil
		f := l.file
		l.mu.Unlock()
		_, err := f.Write(b.buf)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			err = fmt.Errorf("save leases to %s: %w; no address is confirmed until the disk accepts writes again", l.path, err)
		}
		b.err = err
		close(b.done)
		l.mu.Lock()
		l.syncs++
		l.records += bytes.Count(b.buf, []byte{'\n'})
		if l.records > l.compactMin && l.records > compactFactor*len(l.byAddr) {
			if err := l.compactLocked(time.Now()); err != nil {
				l.log.Error("lease journal compaction failed; the journal keeps growing", "err", err)
			}
		}
	}
	l.flushing = false
	l.idle.Broadcast()
}

// wait waits for b to be on disk.
func wait(ctx context.Context, b *batch) error {
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the lease to be saved: %w", ctx.Err())
	}
}

// Close waits for queued records to reach the disk and closes the journal.
func (l *Leases) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for l.flushing {
		l.idle.Wait()
	}
	return l.file.Close()
}

// Get returns the state of addr.
func (l *Leases) Get(addr netip.Addr) (Lease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lease, ok := l.byAddr[addr]
	return lease, ok
}

// All returns every known address state, sorted by address (for the admin API and tests).
func (l *Leases) All() []Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Lease, 0, len(l.byAddr))
	for _, lease := range l.byAddr {
		out = append(out, lease)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

// addrRange is a pool's range of addresses for allocation; skip says which addresses in it are never
// handed out (the server itself, the router, addresses reserved for other machines).
type addrRange struct {
	first, last netip.Addr
	skip        func(addr netip.Addr, mac string) bool
}

func (r addrRange) contains(a netip.Addr) bool {
	return a.Is4() && r.first.Compare(a) <= 0 && a.Compare(r.last) <= 0
}

// freeForLocked reports whether addr may be given to mac at now: not bound to another machine, not held
// for another, not quarantined.
func (l *Leases) freeForLocked(addr netip.Addr, mac string, now time.Time) bool {
	if lease, ok := l.byAddr[addr]; ok && lease.Active(now) && (lease.Declined || lease.MAC != mac) {
		return false
	}
	if h, ok := l.holds[addr]; ok && h.mac != mac && now.Before(h.until) {
		return false
	}
	return true
}

// Offer picks an address of r for mac and holds it for offerHold, so that a concurrent DISCOVER never
// gets the same one. In order it tries: fixed (a reservation: only that), the address mac has or had,
// the one already held for it, requested (option 50), an address never handed out, and the address
// whose lease expired longest ago. It returns the zero Addr when the pool is exhausted.
func (l *Leases) Offer(mac string, r addrRange, fixed, requested netip.Addr, now time.Time) netip.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	pick := l.pickLocked(mac, r, fixed, requested, now)
	if pick.IsValid() {
		if old, ok := l.holdMAC[mac]; ok && old != pick {
			delete(l.holds, old)
		}
		l.holds[pick] = hold{mac: mac, until: now.Add(offerHold)}
		l.holdMAC[mac] = pick
	}
	return pick
}

func (l *Leases) pickLocked(mac string, r addrRange, fixed, requested netip.Addr, now time.Time) netip.Addr {
	usable := func(a netip.Addr) bool {
		return a.IsValid() && r.contains(a) && !r.skip(a, mac) && l.freeForLocked(a, mac, now)
	}
	if fixed.IsValid() {
		if l.freeForLocked(fixed, mac, now) {
			return fixed
		}
		return netip.Addr{}
	}
	if a, ok := l.byMAC[mac]; ok && usable(a) {
		return a
	}
	if a, ok := l.holdMAC[mac]; ok && usable(a) {
		return a
	}
	if usable(requested) {
		return requested
	}
	// Addresses never handed out, scanning on from where the last scan stopped, then from the start.
	start := l.cursor[r.first]
	if !r.contains(start) {
		start = r.first
	}
	fresh := func(a netip.Addr) bool {
		_, used := l.byAddr[a]
		return !used && usable(a)
	}
	for a := start; a.IsValid() && a.Compare(r.last) <= 0; a = a.Next() {
		if fresh(a) {
			l.cursor[r.first] = a.Next()
			return a
		}
	}
	for a := r.first; a.Compare(start) < 0; a = a.Next() {
		if fresh(a) {
			l.cursor[r.first] = a.Next()
			return a
		}
	}
	// Then the address whose lease expired longest ago.
	var best netip.Addr
	var bestExp time.Time
	for a, lease := range l.byAddr {
		if r.contains(a) && !lease.Active(now) && usable(a) && (!best.IsValid() || lease.Expiry.Before(bestExp)) {
			best, bestExp = a, lease.Expiry
		}
	}
	return best
}

// Bind gives addr to mac until now+d and returns once that is on disk. It fails with ErrAddrTaken if addr
// is bound to or held for another machine, or quarantined.
func (l *Leases) Bind(ctx context.Context, mac string, addr netip.Addr, hostname string, now time.Time, d time.Duration) (Lease, error) {
	l.mu.Lock()
	if !l.freeForLocked(addr, mac, now) {
		l.mu.Unlock()
		return Lease{}, ErrAddrTaken
	}
	lease := Lease{Addr: addr, MAC: mac, Hostname: hostname, Expiry: now.Add(d)}
	if h, ok := l.holdMAC[mac]; ok {
		delete(l.holds, h)
		delete(l.holdMAC, mac)
	}
	b, err := l.recordLocked(lease)
	l.mu.Unlock()
	if err != nil {
		return Lease{}, err
	}
	return lease, wait(ctx, b)
}

// Release ends mac's lease on addr now. The address keeps its owner's MAC, so the same machine gets it
// back first; it is free for others from now on. A release for a lease mac does not hold is ignored.
func (l *Leases) Release(ctx context.Context, mac string, addr netip.Addr, now time.Time) error {
	l.mu.Lock()
	lease, ok := l.byAddr[addr]
	if !ok || lease.MAC != mac || lease.Declined || !lease.Active(now) {
		l.mu.Unlock()
		return nil
	}
	lease.Expiry = now
	b, err := l.recordLocked(lease)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return wait(ctx, b)
}

// Decline quarantines addr until now+d: mac found it in use by something we do not know (RFC 2131
// 3.1.5). Only the machine the address was offered or bound to can decline it.
func (l *Leases) Decline(ctx context.Context, mac string, addr netip.Addr, now time.Time, d time.Duration) error {
	l.mu.Lock()
	lease, bound := l.byAddr[addr]
	h, held := l.holds[addr]
	if !(bound && lease.MAC == mac && !lease.Declined) && !(held && h.mac == mac) {
		l.mu.Unlock()
		return nil
	}
	if held {
		delete(l.holds, addr)
		delete(l.holdMAC, h.mac)
	}
	if l.byMAC[mac] == addr {
		delete(l.byMAC, mac)
	}
	b, err := l.recordLocked(Lease{Addr: addr, Declined: true, Expiry: now.Add(d)})
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return wait(ctx, b)
}

// forgetHold drops the offer held for mac (it chose another server).
func (l *Leases) forgetHold(mac string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.holdMAC[mac]; ok {
		delete(l.holds, a)
		delete(l.holdMAC, mac)
	}
}
