package modload

import "testing"

func TestAddedModalias(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want string
		ok   bool
	}{
		{
			// As the kernel sent it when virtio_pci found a network device.
			msg:  "add@/devices/pci0000:00/0000:00:04.0/virtio0\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:04.0/virtio0\x00SUBSYSTEM=virtio\x00MODALIAS=virtio:d00000001v00001AF4\x00SEQNUM=1042\x00",
			want: "virtio:d00000001v00001AF4", ok: true,
		},
		{msg: "bind@/devices/pci0000:00/0000:00:04.0/virtio0\x00ACTION=bind\x00MODALIAS=virtio:d00000001v00001AF4\x00"},
		{msg: "add@/devices/virtual/net/lo\x00ACTION=add\x00SUBSYSTEM=net\x00INTERFACE=lo\x00"},
		{msg: "add@/x\x00MODALIAS=\x00"},
		{msg: "libudev\x00\xfe\xed\xca\xfe"}, // udev's own re-broadcasts, when a udevd runs
		{msg: ""},
	} {
		got, ok := addedModalias([]byte(tc.msg))
		if got != tc.want || ok != tc.ok {
			t.Errorf("addedModalias(%q) = %q, %v; want %q, %v", tc.msg, got, ok, tc.want, tc.ok)
		}
	}
}
