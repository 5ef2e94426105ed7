package kmod

import "testing"

func TestDepmodFiles(t *testing.T) {
	s, err := scanTestKernel(t).Resolve([]string{"virtio_pci", "virtio_net", "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		got  []byte
		want string
	}{
		{
			file: "modules.dep",
			got:  s.DepFile(""),
			want: `kernel/crypto/crc32c_generic.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko
kernel/fs/ext4/ext4.ko: kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/net/core/failover.ko:
`,
		},
		{
			file: "modules.dep, compressed modules",
			got:  s.DepFile(".zst")[:len("kernel/crypto/crc32c_generic.ko.zst:\nkernel/drivers/net/net_failover.ko.zst: kernel/net/core/failover.ko.zst\n")],
			want: "kernel/crypto/crc32c_generic.ko.zst:\nkernel/drivers/net/net_failover.ko.zst: kernel/net/core/failover.ko.zst\n",
		},
		{
			file: "modules.alias",
			got:  s.AliasFile(),
			want: `# Aliases extracted from modules themselves.
alias crypto-crc32c-generic crc32c_generic
alias crypto-crc32c crc32c_generic
alias fs-ext4 ext4
alias ext3 ext4
alias fs-ext3 ext4
alias virtio:d00000001v* virtio_net
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
`,
		},
		{
			file: "modules.softdep",
			got:  s.SoftdepFile(),
			want: `# Soft dependencies extracted from modules themselves.
softdep ext4 pre: crypto-crc32c
softdep jbd2 pre: crypto-crc32c
`,
		},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("%s =\n%s\nwant\n%s", tc.file, tc.got, tc.want)
		}
	}
}
