package dhcpd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzHandle feeds raw bytes to the handler in both modes and on both ports, seeded with the DISCOVERs
// recorded from real clients (../classify/testdata/packets): nothing may panic, proxy mode never hands
// out an address, and every answer is a reply to the request's transaction.
func FuzzHandle(f *testing.F) {
	files, err := filepath.Glob("../classify/testdata/packets/*.bin")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true, false)
		f.Add(b, false, true)
	}
	for _, k := range []clientKind{kindBIOS, kindHTTP, kindIPXE, kindFirmware} {
		f.Add(request(f, "52:54:00:ff:00:01", dhcpv4.MessageTypeRequest, k).ToBytes(), false, false)
	}
	proxy := newTestHandler(f, Proxy)
	full := newTestHandler(f, Full)
	f.Fuzz(func(t *testing.T, b []byte, proxyMode, pxePort bool) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		h, port := full, ServerPort
		if proxyMode {
			h = proxy
		}
		if pxePort {
			port = PXEPort
		}
		resp, err := h.Handle(t.Context(), req, port)
		if err != nil || resp == nil {
			return
		}
		if resp.TransactionID != req.TransactionID || resp.OpCode != dhcpv4.OpcodeBootReply {
			t.Errorf("reply does not answer the request: %s", resp.Summary())
		}
		if (proxyMode || pxePort) && !resp.YourIPAddr.IsUnspecified() {
			t.Errorf("proxy answer hands out %v", resp.YourIPAddr)
		}
		_ = resp.ToBytes()
	})
}
