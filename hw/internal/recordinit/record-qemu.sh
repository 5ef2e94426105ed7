#!/bin/sh
# record-qemu.sh records hw/testdata trees from QEMU guests running the
# pinned Debian kernel. Run it from the repository root, as root:
#
#   hw/internal/recordinit/record-qemu.sh KERNEL_ROOT [NAME...]
#
# KERNEL_ROOT is the unpacked kernel package (boot/vmlinuz-*, lib/modules/*).
# NAMEs are the scenarios below (default: all). Each scenario boots a guest
# whose /init is recordinit, which writes the recording to the second serial
# port; hwrecord unpacks it into hw/testdata/NAME/{sys,proc}. Then, for the
# hardware QEMU cannot emulate, the scenario edits the tree (after its boot);
# hw/testdata/README.md lists those edits. Re-record, then refresh the
# goldens with: go test ./hw -update
#
# KEEP=1 keeps the work directory (console.log, qemu.log) for a look.
#
# Only loopback and QEMU's restricted user network are used: no traffic
# leaves the machine.
set -eu

kroot=${1:?usage: $0 KERNEL_ROOT [NAME...]}
shift
[ $# -gt 0 ] || set -- qemu-guest thin-client server-2nic-tpm pc-tpm12
vmlinuz=$(ls "$kroot"/boot/vmlinuz-* | head -n1)
moddir=$(ls -d "$kroot"/lib/modules/* | head -n1)
testdata=hw/testdata
work=$(mktemp -d /tmp/hwrecord.XXXXXX)
swtpm_pid=
cleanup() {
	if [ -n "$swtpm_pid" ]; then kill "$swtpm_pid" 2>/dev/null || true; fi
	if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

CGO_ENABLED=0 go build -o "$work/init" ./hw/internal/recordinit
go build -o "$work/hwrecord" ./hw/cmd/hwrecord

# modules NAME... copies the named modules and everything they depend on
# (the depends= entry of each .modinfo) into the initramfs tree.
modules() {
	for m in "$@"; do
		# Module names use _ where file names may use -.
		f=$(find "$moddir" -name "$m.ko" -o -name "$(echo "$m" | tr _ -).ko" | head -n1)
		[ -n "$f" ] || { echo "module $m not found in $moddir" >&2; exit 1; }
		[ -e "$work/root/lib/modules/$(basename "$f")" ] && continue
		cp "$f" "$work/root/lib/modules/"
		deps=$(strings "$f" | sed -n 's/^depends=//p' | tr ',' ' ')
		[ -z "$deps" ] || modules $deps
	done
}

# start_swtpm 1.2|2.0 starts a software TPM for the guest.
start_swtpm() {
	mkdir -p "$work/tpm"
	v=--tpm2
	[ "$1" = 2.0 ] || v=
	swtpm socket $v --tpmstate dir="$work/tpm" --ctrl type=unixio,path="$work/tpm.sock" &
	swtpm_pid=$!
	for _ in 1 2 3 4 5 6 7 8 9 10; do [ -S "$work/tpm.sock" ] && return; sleep 0.2; done
	echo "swtpm did not start (apt-get install swtpm)" >&2
	exit 1
}
tpm_args() {
	echo "-chardev socket,id=chrtpm,path=$work/tpm.sock -tpmdev emulator,id=tpm0,chardev=chrtpm -device $1,tpmdev=tpm0"
}

# boot NAME APPEND QEMU-ARGS... boots the guest and unpacks its recording.
boot() {
	name=$1 append=$2
	shift 2
	(cd "$work/root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$work/initrd"
	: >"$work/record.log"
	# Monitor commands in $monitor (such as set_link) run before the guest
	# gets far; QEMU goes on when its monitor input ends.
	printf '%s' "${monitor:-}" | qemu-system-x86_64 -accel tcg -display none -no-reboot -monitor stdio \
		-kernel "$vmlinuz" -initrd "$work/initrd" \
		-append "console=ttyS0 panic=-1 $append" \
		-serial "file:$work/console.log" -serial "file:$work/record.log" \
		"$@" >"$work/qemu.log" 2>&1 || { cat "$work/qemu.log" >&2; exit 1; }
	monitor=
	if ! grep -q 'END HWRECORD' "$work/record.log"; then
		echo "no recording from $name; console:" >&2
		tail -n 30 "$work/console.log" >&2
		exit 1
	fi
	rm -rf "$testdata/$name/sys" "$testdata/$name/proc"
	"$work/hwrecord" -from "$work/record.log" -o "$testdata/$name"
}

# newroot starts a fresh initramfs tree with recordinit as /init.
newroot() {
	rm -rf "$work/root"
	mkdir -p "$work/root/lib/modules"
	cp "$work/init" "$work/root/init"
}

# Replace the driver link of interface $2 in tree $1 by driver $3.
set_driver() {
	link=$(readlink -f "$testdata/$1/sys/class/net/$2/device")/driver
	old=$(readlink "$link")
	ln -sfn "$(dirname "$old")/$3" "$link"
}

record_qemu_guest() {
	# What the lab's QEMU tests boot: i440fx, e1000, virtio disk, TPM 2.0 TIS.
	newroot
	modules e1000 virtio_pci virtio_blk
	truncate -s 64M "$work/disk.img"
	start_swtpm 2.0
	boot qemu-guest "hwrecord.disks=vda" -machine pc -m 1G -smp 2 \
		-uuid 6b0c2a4e-5d1f-4c53-9a7e-0e2f7f3d9a11 \
		-netdev user,id=n0,restrict=on -device e1000,netdev=n0,mac=52:54:00:12:34:56 \
		-drive if=none,id=d0,file="$work/disk.img",format=raw -device virtio-blk-pci,drive=d0 \
		$(tpm_args tpm-tis)
}

record_thin_client() {
	# A diskless 5 W terminal. QEMU has no r8169, so the guest gets an
	# rtl8139 on a PCIe port, and the tree is edited to the r8169 driver
	# and a gigabit link.
	newroot
	modules 8139cp
	boot thin-client "" -machine q35 -m 4G -smp 4,cores=4 \
		-cpu 'Denverton,model-id=Intel(R) Celeron(R) J4125 CPU @ 2.00GHz' \
		-uuid 03000200-0400-0500-0006-000700080009 \
		-smbios 'type=0,vendor=American Megatrends Inc.,version=5.16' \
		-smbios 'type=1,manufacturer=Zhongke Terminal,product=ZT-J4125,serial=ZT2309A0417' \
		-smbios 'type=2,manufacturer=Zhongke Terminal,product=J4125-ITX' \
		-device pcie-root-port,id=rp1,chassis=1,slot=1 \
		-netdev user,id=n0,restrict=on -device rtl8139,netdev=n0,bus=rp1,mac=00:e0:4c:68:1a:2b
	t=thin-client
	set_driver $t eth0 r8169
	echo 1000 >"$testdata/$t/sys/class/net/eth0/speed"
	echo 35 >"$testdata/$t/sys/class/dmi/id/chassis_type"
	sed -i 's/ hypervisor//' "$testdata/$t/proc/cpuinfo"
}

record_server_2nic_tpm() {
	# A two-socket rack server: NVMe and a SATA hard disk, two NICs, TPM 2.0.
	# QEMU has neither ixgbe nor igb nor VT-x under TCG, so the guest gets
	# two e1000e on PCIe ports (the second without link), and the tree is
	# edited to the ixgbe and igb drivers, a 10G link and the vmx flag.
	newroot
	modules e1000e nvme ahci sd_mod
	truncate -s 64M "$work/nvme.img" "$work/hdd.img"
	start_swtpm 2.0
	monitor='set_link n1 off
'
	boot server-2nic-tpm "hwrecord.disks=nvme0n1,sda" -machine q35 -m 8G -smp 8,sockets=2,cores=2,threads=2 \
		-cpu 'Skylake-Server,model-id=Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz' \
		-uuid 4c4c4544-0042-3910-8052-b7c04f4b5a32 \
		-smbios 'type=0,vendor=Dell Inc.,version=2.19.1' \
		-smbios 'type=1,manufacturer=Dell Inc.,product=PowerEdge R740,serial=7XKQ2Z2' \
		-smbios 'type=2,manufacturer=Dell Inc.,product=0WRPXK' \
		-device pcie-root-port,id=rp1,chassis=1,slot=1 \
		-device pcie-root-port,id=rp2,chassis=2,slot=2 \
		-device pcie-root-port,id=rp3,chassis=3,slot=3 \
		-netdev user,id=n0,restrict=on -device e1000e,netdev=n0,bus=rp1,mac=b4:96:91:5a:10:20 \
		-netdev user,id=n1,restrict=on -device e1000e,netdev=n1,bus=rp2,mac=b4:96:91:5a:10:21 \
		-drive if=none,id=nv,file="$work/nvme.img",format=raw -device nvme,drive=nv,serial=S4YNNE0N800123,bus=rp3 \
		-drive if=none,id=hd,file="$work/hdd.img",format=raw -device ide-hd,drive=hd,bus=ide.0,model=ST4000NM0035-1V4107,serial=ZC18ABCD \
		$(tpm_args tpm-tis)
	t=server-2nic-tpm
	set_driver $t eth0 ixgbe
	set_driver $t eth1 igb
	echo 10000 >"$testdata/$t/sys/class/net/eth0/speed"
	echo 23 >"$testdata/$t/sys/class/dmi/id/chassis_type"
	sed -i 's/ hypervisor//; s/^flags\(.*\)$/flags\1 vmx/' "$testdata/$t/proc/cpuinfo"
}

record_pc_tpm12() {
	# One of the bureau's existing PCs, reused for TCI: i440fx, IDE hard
	# disk, a USB stick, a Realtek 100 Mbit NIC left down (its carrier is
	# unknown) and a TPM 1.2. Recorded as is
	# except for the chassis type.
	newroot
	modules 8139cp ata_piix sd_mod ehci_pci usb_storage
	truncate -s 64M "$work/hdd.img" "$work/usb.img"
	start_swtpm 1.2
	boot pc-tpm12 "hwrecord.disks=sda,sdb hwrecord.down=eth0" -machine pc -m 2G -smp 2 \
		-cpu 'Haswell,model-id=Intel(R) Core(TM) i5-4590 CPU @ 3.30GHz' \
		-uuid 2f6b3f3e-8a5c-11e4-b4a9-0800200c9a66 \
		-smbios 'type=0,vendor=LENOVO,version=FBKTD8AUS' \
		-smbios 'type=1,manufacturer=LENOVO,product=10AGS00G00,serial=PC0A1B2C' \
		-smbios 'type=2,manufacturer=LENOVO,product=SHARKBAY' \
		-netdev user,id=n0,restrict=on -device rtl8139,netdev=n0,mac=00:e0:4c:3a:55:01 \
		-drive if=none,id=hd,file="$work/hdd.img",format=raw -device ide-hd,drive=hd,bus=ide.0,'model=WDC WD5000AAKX-08U6AA0',serial=WCC2EUV12345 \
		-device usb-ehci,id=ehci \
		-drive if=none,id=usb,file="$work/usb.img",format=raw -device usb-storage,drive=usb,bus=ehci.0,removable=on \
		$(tpm_args tpm-tis)
	echo 3 >"$testdata/pc-tpm12/sys/class/dmi/id/chassis_type"
	sed -i 's/ hypervisor//' "$testdata/pc-tpm12/proc/cpuinfo"
}

for name in "$@"; do
	echo "recording $name"
	case $name in
	qemu-guest) record_qemu_guest ;;
	thin-client) record_thin_client ;;
	server-2nic-tpm) record_server_2nic_tpm ;;
	pc-tpm12) record_pc_tpm12 ;;
	*) echo "unknown scenario $name" >&2; exit 2 ;;
	esac
	if [ -n "$swtpm_pid" ]; then kill "$swtpm_pid" 2>/dev/null || true; wait "$swtpm_pid" 2>/dev/null || true; swtpm_pid=; fi
	rm -rf "$work/tpm" "$work/tpm.sock"
done
