package dhcpd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// BenchmarkDORA measures one whole exchange (DISCOVER/OFFER, REQUEST/ACK
// with the lease on disk) as the server runs it: parse, handle, serialize,
// with logging on, from many clients at once. perfdhcp against the real
// server (make bench-boot) is the end-to-end figure; this one finds where
// the time goes (go test -bench DORA -cpuprofile).
func BenchmarkDORA(b *testing.B) {
	h := newTestHandler(b, Full)
	h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	var next atomic.Uint64
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mac := fmt.Sprintf("52:54:00:aa:00:%02x", next.Add(1)%90)
			disc := request(b, mac, dhcpv4.MessageTypeDiscover, kindFirmware).ToBytes()
			offer := roundTrip(b, h, disc)
			if offer == nil {
				continue // pool momentarily held by other offers
			}
			req := request(b, mac, dhcpv4.MessageTypeRequest, kindFirmware,
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(offer.ServerIPAddr))).ToBytes()
			roundTrip(b, h, req)
		}
	})
}

func roundTrip(b *testing.B, h *Handler, raw []byte) *dhcpv4.DHCPv4 {
	p, err := dhcpv4.FromBytes(raw)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := h.Handle(context.Background(), p, ServerPort)
	if err != nil {
		b.Fatal(err)
	}
	if resp != nil {
		_ = resp.ToBytes()
	}
	return resp
}
