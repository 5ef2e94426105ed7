package dhcpd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func openTestLeases(t *testing.T, path string) *Leases {
	t.Helper()
	l, err := OpenLeases(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func testRange(first, last string) addrRange {
	return addrRange{first: netip.MustParseAddr(first), last: netip.MustParseAddr(last),
		skip: func(netip.Addr, string) bool { return false }}
}

func TestLeasesSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases")
	l := openTestLeases(t, path)
	now := time.Now()
	r := testRange("10.0.0.10", "10.0.0.20")
	var bound []Lease
	for i := range 5 {
		mac := fmt.Sprintf("52:54:00:00:00:%02x", i)
		a := l.Offer(mac, r, netip.Addr{}, netip.Addr{}, now)
		lease, err := l.Bind(t.Context(), mac, a, "box", now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		bound = append(bound, lease)
	}
	if err := l.Release(t.Context(), bound[4].MAC, bound[4].Addr, now); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l2 := openTestLeases(t, path)
	for i, want := range bound {
		got, ok := l2.Get(want.Addr)
		if !ok || got.MAC != want.MAC || got.Hostname != "box" {
			t.Errorf("after restart %v = %+v, %v; want %s's", want.Addr, got, ok, want.MAC)
		}
		if active := got.Active(now); active != (i != 4) {
			t.Errorf("after restart %v active = %v", want.Addr, active)
		}
	}
	// A new machine never gets an address that is still leased; the released one it may get.
	for i := range 6 {
		a := l2.Offer(fmt.Sprintf("52:54:00:00:01:%02x", i), r, netip.Addr{}, netip.Addr{}, now)
		for _, b := range bound[:4] {
			if a == b.Addr {
				t.Errorf("leased address %v offered to another machine after restart", a)
			}
		}
	}
	// The old owner comes back to its address.
	if a := l2.Offer(bound[1].MAC, r, netip.Addr{}, netip.Addr{}, now); a != bound[1].Addr {
		t.Errorf("returning machine offered %v, want its %v", a, bound[1].Addr)
	}
}

// TestThousandClients runs 1,000 machines through DISCOVER and REQUEST at once: every one gets an
// address of its own, every ACKed lease is on disk when the store is reopened, and the fsyncs were
// shared.
func TestThousandClients(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases")
	leases, err := OpenLeases(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(Full)
	cfg.Pools = []Pool{{Subnet: netip.MustParsePrefix("10.80.0.0/16"), First: netip.MustParseAddr("10.80.1.0"),
		Last: netip.MustParseAddr("10.80.4.255"), Router: netip.MustParseAddr("10.80.0.1")}}
	cfg.ServerIP = netip.MustParseAddr("10.80.0.1")
	cfg.Reservations = nil
	h, err := NewHandler(cfg, leases)
	if err != nil {
		t.Fatal(err)
	}
	sid := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(cfg.ServerIP.AsSlice()))
	const n = 1000
	var mu sync.Mutex
	acked := map[string]string{} // address -> MAC
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			mac := fmt.Sprintf("52:54:01:00:%02x:%02x", i/256, i%256)
			offer, err := h.Handle(context.Background(), request(t, mac, dhcpv4.MessageTypeDiscover, kindBIOS), 67)
			if err != nil || offer == nil {
				t.Errorf("%s: no offer: %v", mac, err)
				return
			}
			ack, err := h.Handle(context.Background(), request(t, mac, dhcpv4.MessageTypeRequest, kindBIOS, sid,
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))), 67)
			if err != nil || ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
				t.Errorf("%s: no ack: %v %v", mac, ack, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			a := ack.YourIPAddr.String()
			if prev, dup := acked[a]; dup {
				t.Errorf("address %s acked to %s and %s", a, prev, mac)
			}
			acked[a] = mac
		})
	}
	wg.Wait()
	leases.mu.Lock()
	syncs := leases.syncs
	leases.mu.Unlock()
	t.Logf("%d ACKs, %d fsyncs", len(acked), syncs)
	if len(acked) != n {
		t.Fatalf("%d ACKs, want %d", len(acked), n)
	}
	if syncs >= n/2 {
		t.Errorf("%d fsyncs for %d ACKs: concurrent ACKs did not share their fsyncs", syncs, n)
	}
	if err := leases.Close(); err != nil {
		t.Fatal(err)
	}
	reopened := openTestLeases(t, path)
	for a, mac := range acked {
		if l, ok := reopened.Get(netip.MustParseAddr(a)); !ok || l.MAC != mac || !l.Active(time.Now()) {
			t.Errorf("after restart %s = %+v %v, want %s's lease", a, l, ok, mac)
		}
	}
}

func TestTornJournalTail(t *testing.T) {
	good := appendRecord(nil, Lease{Addr: netip.MustParseAddr("10.0.0.10"), MAC: "52:54:00:00:00:01", Expiry: time.Now().Add(time.Hour)})
	good = appendRecord(good, Lease{Addr: netip.MustParseAddr("10.0.0.11"), MAC: "52:54:00:00:00:02", Expiry: time.Now().Add(time.Hour)})
	torn := appendRecord(nil, Lease{Addr: netip.MustParseAddr("10.0.0.12"), MAC: "52:54:00:00:00:03", Expiry: time.Now().Add(time.Hour)})
	tests := []struct {
		name string
		tail []byte
	}{
		{"half a record", torn[:len(torn)/2]},
		{"record without its newline", torn[:len(torn)-1]},
		{"zeros after a power cut", make([]byte, 512)},
		{"bad checksum", append([]byte("00000000"), torn[8:]...)},
		{"nothing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "leases")
			if err := os.WriteFile(path, append(append([]byte(nil), good...), tt.tail...), 0o600); err != nil {
				t.Fatal(err)
			}
			l := openTestLeases(t, path)
			all := l.All()
			if len(all) != 2 || all[0].MAC != "52:54:00:00:00:01" || all[1].MAC != "52:54:00:00:00:02" {
				t.Fatalf("leases = %+v, want the two good ones", all)
			}
			// The journal was compacted: the damage is gone and new records follow good ones.
			if _, err := l.Bind(t.Context(), "52:54:00:00:00:04", netip.MustParseAddr("10.0.0.13"), "", time.Now(), time.Hour); err != nil {
				t.Fatal(err)
			}
			l.Close()
			if n := len(openTestLeases(t, path).All()); n != 3 {
				t.Errorf("%d leases after another restart, want 3", n)
			}
		})
	}
}

func TestExpiredLeasesReusedOnlyAfterExpiry(t *testing.T) {
	l := openTestLeases(t, filepath.Join(t.TempDir(), "leases"))
	r := testRange("10.0.0.10", "10.0.0.11")
	now := time.Now()
	for i, a := range []string{"10.0.0.10", "10.0.0.11"} {
		if _, err := l.Bind(t.Context(), fmt.Sprintf("52:54:00:00:00:%02x", i), netip.MustParseAddr(a), "", now, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if a := l.Offer("52:54:00:00:00:99", r, netip.Addr{}, netip.Addr{}, now.Add(59*time.Second)); a.IsValid() {
		t.Errorf("offered %v while every lease is active", a)
	}
	if _, err := l.Bind(t.Context(), "52:54:00:00:00:99", netip.MustParseAddr("10.0.0.10"), "", now.Add(59*time.Second), time.Minute); err != ErrAddrTaken {
		t.Errorf("bind of an active lease: %v, want ErrAddrTaken", err)
	}
	if a := l.Offer("52:54:00:00:00:99", r, netip.Addr{}, netip.Addr{}, now.Add(61*time.Second)); !a.IsValid() {
		t.Error("no offer after the leases expired")
	}
}

func TestDeclineQuarantines(t *testing.T) {
	l := openTestLeases(t, filepath.Join(t.TempDir(), "leases"))
	r := testRange("10.0.0.10", "10.0.0.10")
	now := time.Now()
	const mac = "52:54:00:00:00:01"
	a := l.Offer(mac, r, netip.Addr{}, netip.Addr{}, now)
	if err := l.Decline(t.Context(), "52:54:00:00:00:02", a, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Get(a); got.Declined {
		t.Fatal("a stranger could decline an address offered to someone else")
	}
	if err := l.Decline(t.Context(), mac, a, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	if b := l.Offer(mac, r, netip.Addr{}, netip.Addr{}, now.Add(59*time.Minute)); b.IsValid() {
		t.Errorf("quarantined address offered again: %v", b)
	}
	if b := l.Offer(mac, r, netip.Addr{}, netip.Addr{}, now.Add(61*time.Minute)); b != a {
		t.Errorf("after the quarantine got %v, want %v", b, a)
	}
}

func TestJournalCompactsWhenItGrows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases")
	l := openTestLeases(t, path)
	l.mu.Lock()
	l.compactMin = 20
	l.mu.Unlock()
	a := netip.MustParseAddr("10.0.0.10")
	for i := range 200 {
		if _, err := l.Bind(t.Context(), "52:54:00:00:00:01", a, "", time.Now(), time.Duration(i+1)*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines > 25 {
		t.Errorf("journal has %d records for one lease renewed 200 times: it was not compacted", lines)
	}
	l.Close()
	got, ok := openTestLeases(t, path).Get(a)
	if !ok || time.Until(got.Expiry) < 199*time.Minute {
		t.Errorf("after compaction and restart: %+v %v, want the last renewal", got, ok)
	}
}

func TestLeasesClosed(t *testing.T) {
	l := openTestLeases(t, filepath.Join(t.TempDir(), "leases"))
	l.Close()
	if _, err := l.Bind(t.Context(), "52:54:00:00:00:01", netip.MustParseAddr("10.0.0.1"), "", time.Now(), time.Hour); err != ErrLeasesClosed {
		t.Errorf("Bind after Close: %v", err)
	}
}

func TestOpenLeasesErrors(t *testing.T) {
	if _, err := OpenLeases(filepath.Join(t.TempDir(), "missing", "leases"), nil); err == nil {
		t.Error("a journal in a missing folder opened")
	}
}
