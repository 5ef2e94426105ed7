package kmod

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeModule writes a minimal ELF64 relocatable object at root/rel whose
// only content is a .modinfo section holding fields ("name=x", ...), which
// is all of a kernel module that kmod reads. Building it here keeps binary
// files out of testdata and makes each test's modules visible in the test.
func writeModule(t *testing.T, root, rel string, fields ...string) {
	t.Helper()
	var modinfo bytes.Buffer
	for _, f := range fields {
		modinfo.WriteString(f)
		modinfo.WriteByte(0)
	}
	shstrtab := []byte("\x00.modinfo\x00.shstrtab\x00")

	const ehsize, shentsize = 64, 64
	modinfoOff := uint64(ehsize)
	shstrtabOff := modinfoOff + uint64(modinfo.Len())
	shoff := (shstrtabOff + uint64(len(shstrtab)) + 7) &^ 7

	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shoff, Ehsize: ehsize, Shentsize: shentsize, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	sections := []elf.Section64{
		{}, // the null section every ELF file starts with
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: modinfoOff, Size: uint64(modinfo.Len()), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: shstrtabOff, Size: uint64(len(shstrtab)), Addralign: 1},
	}
	must(t, binary.Write(&b, binary.LittleEndian, hdr))
	b.Write(modinfo.Bytes())
	b.Write(shstrtab)
	b.Write(make([]byte, int(shoff)-b.Len()))
	must(t, binary.Write(&b, binary.LittleEndian, sections))

	p := filepath.Join(root, rel)
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, b.Bytes(), 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const testRelease = "6.1.0-99-amd64"

// testKernel writes lib/modules/<release> of a small made-up kernel whose
// module relations copy real ones from Debian's 6.1 (virtio_net, ext4,
// dm-verity), plus a few broken modules, and returns its directory.
func testKernel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	vm := "vermagic=" + testRelease + " SMP preempt mod_unload modversions "
	mod := func(rel, name string, fields ...string) {
		writeModule(t, dir, rel, append([]string{"license=GPL", "name=" + name, vm}, fields...)...)
	}
	mod("kernel/drivers/net/virtio_net.ko", "virtio_net", "depends=virtio_ring,virtio,net_failover", "alias=virtio:d00000001v*")
	mod("kernel/drivers/net/net_failover.ko", "net_failover", "depends=failover")
	mod("kernel/net/core/failover.ko", "failover", "depends=")
	mod("kernel/drivers/virtio/virtio.ko", "virtio", "depends=")
	mod("kernel/drivers/virtio/virtio_ring.ko", "virtio_ring", "depends=virtio")
	mod("kernel/drivers/virtio/virtio_pci.ko", "virtio_pci", "depends=virtio_ring,virtio",
		"alias=pci:v00001AF4d*sv*sd*bc*sc*i*")
	mod("kernel/fs/ext4/ext4.ko", "ext4", "softdep=pre: crypto-crc32c", "depends=jbd2,mbcache,crc16",
		"alias=fs-ext4", "alias=ext3", "alias=fs-ext3")
	mod("kernel/fs/jbd2/jbd2.ko", "jbd2", "depends=", "softdep=pre: crypto-crc32c")
	mod("kernel/fs/mbcache.ko", "mbcache", "depends=")
	mod("kernel/lib/crc16.ko", "crc16", "depends=")
	mod("kernel/crypto/crc32c_generic.ko", "crc32c_generic", "alias=crypto-crc32c-generic", "alias=crypto-crc32c", "depends=")
	mod("kernel/drivers/md/dm-verity.ko", "dm_verity", "depends=reed_solomon,dm-mod")
	mod("kernel/drivers/md/dm-mod.ko", "dm_mod", "depends=")
	mod("kernel/lib/reed_solomon/reed_solomon.ko", "reed_solomon", "depends=")
	mod("kernel/net/x/softy.ko", "softy", "depends=", "softdep=pre: nothing-provides-this post: tpm-alias",
		"softdep=ignored-without-marker")
	mod("kernel/drivers/x/orphan.ko", "orphan", "depends=ghost")
	writeModule(t, dir, "kernel/drivers/x/stale.ko", "name=stale", "vermagic=5.10.0-1-amd64 SMP mod_unload ", "depends=")
	must(t, os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/char/tpm/tpm_tis.ko\nkernel/net/unix/unix.ko\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "modules.builtin.modinfo"), []byte("tpm_tis.license=GPL\x00tpm_tis.alias=tpm-alias\x00"), 0o644))
	return dir
}

func scanTestKernel(t *testing.T) *Index {
	t.Helper()
	ix, err := Scan(testKernel(t), testRelease)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return ix
}

func names(mods []Module) string {
	var n []string
	for _, m := range mods {
		n = append(n, m.Name)
	}
	return strings.Join(n, " ")
}
