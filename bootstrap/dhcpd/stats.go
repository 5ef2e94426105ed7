package dhcpd

import (
	"sync/atomic"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/onecloud-edu/onecloud/bootstrap/classify"
)

// Stats are the server's counters since it started, for bootstrapd's admin API.
type Stats struct {
	// Requests counts the packets handled, by the class of their sender.
	Requests map[classify.Class]uint64
	Offers   uint64
	Acks     uint64
	Naks     uint64
	// Ignored counts packets that got no answer on purpose: not a boot client in proxy mode, another
	// server chosen, a RELEASE or DECLINE, no pool, an exhausted pool.
	Ignored uint64
	// Errors counts requests that deserved an answer but got none, because the lease could not be saved.
	Errors uint64
	// Malformed counts packets that are not DHCP at all.
	Malformed uint64
	// Dropped counts packets dropped unread because every worker was busy and the queue full.
	Dropped uint64
	// SendErrors counts answers the socket refused to send.
	SendErrors uint64
}

type counters struct {
	requests                            map[classify.Class]*atomic.Uint64
	offers, acks, naks, ignored, errors atomic.Uint64
	malformed, dropped, sendErrors      atomic.Uint64
}

func newCounters() *counters {
	c := &counters{requests: map[classify.Class]*atomic.Uint64{}}
	for _, cl := range classify.Classes() {
		c.requests[cl] = new(atomic.Uint64)
	}
	return c
}

// request counts one request; the map is never written after newCounters, so reads need no lock.
func (c *counters) request(cl classify.Class) {
	if n, ok := c.requests[cl]; ok {
		n.Add(1)
	}
}

func (c *counters) reply(mt dhcpv4.MessageType) {
	switch mt {
	case dhcpv4.MessageTypeOffer:
		c.offers.Add(1)
	case dhcpv4.MessageTypeAck:
		c.acks.Add(1)
	case dhcpv4.MessageTypeNak:
		c.naks.Add(1)
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Requests: map[classify.Class]uint64{},
		Offers:   c.offers.Load(), Acks: c.acks.Load(), Naks: c.naks.Load(),
		Ignored: c.ignored.Load(), Errors: c.errors.Load(),
		Malformed: c.malformed.Load(), Dropped: c.dropped.Load(), SendErrors: c.sendErrors.Load(),
	}
	for cl, n := range c.requests {
		s.Requests[cl] = n.Load()
	}
	return s
}
