package netup

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNetns runs fn on a thread moved into a fresh network namespace, so that
// the real Kernel can be tried without touching the machine's own links.
func inNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root for a network namespace: run the tests as root (make test does)")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("no network namespaces here: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("cannot make a network namespace: %v", err)
	}
	defer func() {
		ns.Close()
		if err := netns.Set(orig); err != nil {
			t.Errorf("cannot return to the original namespace: %v", err)
			return // the thread stays locked and dies with the test goroutine
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

func TestKernelVLANLinks(t *testing.T) {
	inNetns(t, func() {
		k := Kernel{}
		// veth pairs stand in for NICs: every kernel here has them.
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nic0"}, PeerName: "peer0"}); err != nil {
			t.Fatalf("no veth links in this kernel: %v", err)
		}
		// A link by the VLAN's name that is something else is never taken
		// over nor deleted.
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nic0.7"}, PeerName: "peer1"}); err != nil {
			t.Fatal(err)
		}
		if err := k.AddVLAN("nic0", "nic0.7", 7); err == nil || !strings.Contains(err.Error(), "is not VLAN 7 on nic0") {
			t.Errorf("AddVLAN over a veth = %v", err)
		}
		if err := k.DelLink("nic0.7"); err == nil || !strings.Contains(err.Error(), "not a VLAN") {
			t.Errorf("DelLink of a veth = %v", err)
		}
		if err := k.DelLink("gone0"); err != nil {
			t.Errorf("DelLink of a missing link = %v, want nil", err)
		}
		if err := k.AddVLAN("nosuch0", "nosuch0.7", 7); err == nil {
			t.Error("AddVLAN on a missing parent succeeded")
		}

		err := k.AddVLAN("nic0", "nic0.42", 42)
		if _, noVLAN := os.Stat("/proc/net/vlan"); noVLAN != nil {
			// A kernel without 802.1Q (this host's, some CI machines'):
			// the technician is told so instead of a bare errno.
			if err == nil || !strings.Contains(err.Error(), "no 802.1Q VLAN support") {
				t.Fatalf("AddVLAN on a kernel without 8021q = %v, want an error that says so", err)
			}
			t.Logf("this kernel has no 8021q: checked the error only (%v)", err)
			return
		}
		if err != nil {
			t.Fatalf("AddVLAN: %v", err)
		}
		if err := k.AddVLAN("nic0", "nic0.42", 42); err != nil {
			t.Errorf("AddVLAN again = %v, want the link kept", err)
		}
		l, err := netlink.LinkByName("nic0.42")
		if v, ok := l.(*netlink.Vlan); err != nil || !ok || v.VlanId != 42 {
			t.Fatalf("nic0.42 = %#v, %v", l, err)
		}
		if err := k.DelLink("nic0.42"); err != nil {
			t.Errorf("DelLink: %v", err)
		}
		if _, err := netlink.LinkByName("nic0.42"); err == nil {
			t.Error("nic0.42 still there after DelLink")
		}
	})
}
