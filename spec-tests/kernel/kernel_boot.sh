#!/usr/bin/env bash
# The kernel bridge end to end: boot Debian unstable's kernel under QEMU (TCG) with an
# nvme device whose SPDM responder (spdm_port=, spdm_trans=doe) is tsm-devemu on this
# host; inside the VM load vtsm_bridge.ko, run tsmd and vtsm-kbridge, connect the nvme
# function through the PCI TSM core's sysfs (tsm/connect), bind and unbind a TDI
# through the core (test hook), disconnect and unload. Outside, check the VM's report
# (sysfs, dmesg, tsmd's STATUS) and tsm-devemu's log.
#
#   kernel_boot.sh SOURCE_DIR BIN_DIR
#
# Exit 77 (counted as skipped by ctest) when the chroot from scripts/kernel-env.sh is
# absent or its kernel lacks the PCI TSM core; never passes without running.
# VTSM_KERNEL_KEEP=1 keeps the work directory (console log, initramfs).
# VTSM_KERNEL_BUILD=DIR (and VTSM_KERNEL_IMAGE=FILE, default DIR/arch/x86/boot/bzImage)
# test a kernel build tree of your own instead of Debian's (docs/kernel.md).
set -uo pipefail
src="${1:?source dir}"
bin="${2:?bin dir}"

# shellcheck source=spec-tests/vm_lib.sh
. "$src/spec-tests/vm_lib.sh"

t_start=$(date +%s%N)
vm_chroot
if [ -n "${VTSM_KERNEL_BUILD:-}" ]; then
  # A kernel developer's own build tree (docs/kernel.md): the module is built on this
  # host against it and QEMU boots its image; the chroot still provides QEMU.
  kdir="$VTSM_KERNEL_BUILD"
  kconfig="$kdir/.config"
  kimage="${VTSM_KERNEL_IMAGE:-$kdir/arch/x86/boot/bzImage}"
  kver="$(cat "$kdir/include/config/kernel.release" 2>/dev/null || echo "$kdir")"
  [ -f "$kconfig" ] || vm_fail "VTSM_KERNEL_BUILD=$kdir has no .config"
  [ -f "$kimage" ] || vm_fail "no kernel image $kimage (set VTSM_KERNEL_IMAGE)"
else
  vm_debian_kernel
  compgen -G "$root/usr/src/linux-headers-*-common/include/linux/pci-tsm.h" >/dev/null ||
    vm_skip "kernel $kver headers lack linux/pci-tsm.h"
fi
for opt in CONFIG_PCI_TSM CONFIG_PCI_DOE CONFIG_TSM CONFIG_DEVTMPFS CONFIG_BLK_DEV_INITRD; do
  grep -q "^$opt=y" "$kconfig" && continue
  # Debian's kernel losing the option is the archive's doing: skip. A kernel of
  # one's own that lacks it is a configuration error: fail.
  [ -n "${VTSM_KERNEL_BUILD:-}" ] && vm_fail "kernel $kver is built without $opt=y"
  vm_skip "kernel $kver is built without $opt=y"
done
for b in tsmd tsm-devemu tsm-host tsm-guest vtsm-kbridge vtsm-kguest; do
  [ -x "$bin/$b" ] || vm_fail "missing $bin/$b"
done

vm_work kernel

# 1. The module, built in the chroot against the unstable kernel's headers.
t=$(date +%s%N)
mkdir -p "$work/mod"
cp "$src"/kernel/Kbuild "$src"/kernel/Makefile "$src"/kernel/*.c "$src"/kernel/*.h "$work/mod/"
if [ -n "${VTSM_KERNEL_BUILD:-}" ]; then
  make -s -C "$work/mod" KDIR="$kdir" >"$work/mod.log" 2>&1
else
  "$src/scripts/kernel-env.sh" --run make -s -C "$cwork/mod" KDIR="$kdir" >"$work/mod.log" 2>&1
fi || {
  cat "$work/mod.log"
  vm_fail "module build"
}
grep -E 'warning|error' "$work/mod.log" && vm_fail "module build has warnings"
echo "module built in $(vm_ms "$t") ms"

# 2. The device: tsm-devemu on a free loopback port.
# A second device whose certificate chain is not under the trust anchors: its connect
# must fail and leave the function unconnected.
vm_devemu devemu --verbose
port=$vm_port
vm_devemu devemu2 --fault untrusted-chain
port2=$vm_port

# 3. A guest key for the TVM the bind registers (the private half stays here).
gkey=$("$bin/tsm-guest" --key "$work/tvm.key" keygen | tail -1)
[ ${#gkey} = 130 ] || vm_fail "tsm-guest keygen: '$gkey'"

# 4. The initramfs: busybox, the module, tsmd, the bridge, tsm-host and their libraries.
t=$(date +%s%N)
vm_initramfs
cp "$work/mod/vtsm_bridge.ko" "$ir/"
cp "$work/tvm.key" "$work/tvm.key.seq" "$ir/"
vm_add_bin "$bin/tsmd" "$bin/vtsm-kbridge" "$bin/tsm-host" "$bin/vtsm-kguest"
cat >"$ir/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "VTSM-TEST: \$*"; }
ms() { read -r up _ </proc/uptime; echo \$(( \${up%.*}\${up#*.}0 )); }
# The nvme functions in slot order: the first is served by the good device, the
# second by the one with the untrusted chain.
set -- \$(for d in /sys/bus/pci/devices/*; do [ "\$(cat \$d/class)" = 0x010802 ] && echo \${d##*/}; done)
bdf=\$1
bad=\$2
echo # the firmware's output ends without a newline
say "nvme \$bdf bad \$bad"
say "init reached at \$(ms) ms of guest uptime"
D=/sys/bus/pci/devices/\$bdf
# tsmd's STATUS of the device, reduced to the fields the checks read.
status() {
  tsm-host --socket /tmp/tsmd.sock --json status \$bdf >/tmp/status.json 2>&1
  say "status-\$1 \$(grep -o -E '"(state|trusted|count|tvm|stream_id)":("[A-Za-z_]*"|[a-z0-9]*)' /tmp/status.json | tr '\n' ' ')"
}
/bin/tsmd --socket /tmp/tsmd.sock >/tmp/tsmd.log 2>&1 &
# wait_for FILE PATTERN: up to 20 s (TCG on a loaded machine is slow).
wait_for() {
  i=0
  while [ \$i -lt 100 ]; do grep -q "\$2" "\$1" 2>/dev/null && return 0; sleep 0.2; i=\$((i + 1)); done
  say "timeout waiting for \$2 in \$1"; return 1
}
i=0; while [ \$i -lt 100 ] && [ ! -S /tmp/tsmd.sock ]; do sleep 0.2; i=\$((i + 1)); done
insmod /vtsm_bridge.ko emulate_tee=\$bdf,\$bad test_hooks=1 && say "insmod ok"
# No daemon yet: the core's connect must fail at once and leave the function alone.
echo tsm0 > \$D/tsm/connect 2>/tmp/nodaemon.err && say "nodaemon-connect accepted" ||
  say "nodaemon-connect refused \$(cat /tmp/nodaemon.err)"
say "nodaemon-connect-attr \$(cat \$D/tsm/connect)"
/bin/vtsm-kbridge --socket /tmp/tsmd.sock --guest-key $gkey > /tmp/kbridge.log 2>&1 &
wait_for /tmp/kbridge.log 'vtsm-kbridge: ready'
say "tsm-attrs \$(ls \$D/tsm | tr '\n' ' ')"
echo tsm0 > /sys/bus/pci/devices/\$bad/tsm/connect && say "bad-connect accepted" || say "bad-connect refused"
say "bad-connect-attr \$(cat /sys/bus/pci/devices/\$bad/tsm/connect)"
t0=\$(ms)
echo tsm0 > \$D/tsm/connect && say "connect ok \$((\$(ms) - t0)) ms"
say "connect-attr \$(cat \$D/tsm/connect)"
say "authenticated \$(cat \$D/authenticated 2>/dev/null)"
status connected
echo "\$bdf 0" > /sys/class/misc/vtsm_bridge/test_bind && say "bind ok"
status bound
# The TVM's own requests through pci_tsm_guest_req(): INFO (evidence checked by the
# guest shim) and ACCEPT.
tvm=\$(grep -o '"tvm":[0-9]*' /tmp/status.json | head -1 | cut -d: -f2)
vtsm-kguest --key /tvm.key --tvm \$tvm info \$bdf 0 2>&1 | sed 's/^/VTSM-TEST: /'
vtsm-kguest --key /tvm.key --tvm \$tvm accept \$bdf 0 2>&1 | sed 's/^/VTSM-TEST: /'
status run
echo "\$bdf" > /sys/class/misc/vtsm_bridge/test_unbind && say "unbind ok"
echo tsm0 > \$D/tsm/disconnect && say "disconnect ok"
say "connect-attr-after \$(cat \$D/tsm/connect)"
status reclaimed
kill \$(pidof vtsm-kbridge); sleep 0.2
rmmod vtsm_bridge && say "rmmod ok"
say "tsm-dir-after-rmmod \$(ls \$D/tsm 2>/dev/null | tr '\n' ' ')"
sed 's/^/VTSM-TEST: kbridge: /' /tmp/kbridge.log
dmesg | grep -i -E 'vtsm|tsm|doe' | sed 's/^/VTSM-TEST: dmesg: /'
dmesg | grep -E 'BUG|WARNING|Oops|Call Trace' >/dev/null && say "kernel-warnings"
say "done at \$(ms) ms of guest uptime"
poweroff -f
EOF
vm_pack
echo "initramfs built in $(vm_ms "$t") ms ($(du -k "$work/initrd.cpio" | cut -f1) KiB)"

# 5. Boot. The nvme's SPDM responder is tsm-devemu (QEMU connects to it over TCP).
t=$(date +%s%N)
vm_boot 45 -device "nvme,serial=vtsm0,spdm_port=$port,spdm_trans=doe" \
  -device "nvme,serial=vtsm1,spdm_port=$port2,spdm_trans=doe"
rc=$vm_rc
echo "VM ran $(vm_ms "$t") ms (qemu exit $rc)"
grep -q 'VTSM-TEST: done' "$work/console.log" || vm_fail "the VM did not finish its script (qemu exit $rc)"

# 6. Checks.
out() { vm_out "$@"; }
bdf=$(out 'nvme ' | sed -n 's/.*VTSM-TEST: nvme \([^ ]*\) bad \([^ ]*\).*/\1/p')
bad=$(out 'nvme ' | sed -n 's/.*VTSM-TEST: nvme \([^ ]*\) bad \([^ ]*\).*/\2/p')
check "two nvme functions found ($bdf, $bad)" test -n "$bdf" -a -n "$bad"
check "module loaded" out 'insmod ok'
check "core offers tsm/connect and tsm/disconnect" out 'tsm-attrs .*connect .*disconnect'
check "no daemon: connect refused (ENODEV)" out 'nodaemon-connect refused .*No such device'
check "no daemon: tsm/connect stays empty" out 'nodaemon-connect-attr *$'
check "untrusted device: connect refused" out 'bad-connect refused'
check "untrusted device: tsm/connect stays empty" out 'bad-connect-attr *$'
check "untrusted device: tsmd refuses the chain (peer_untrusted)" out "kbridge: .*connect $bad: failed: peer_untrusted"
check "connect through sysfs" out 'connect ok'
check "tsm/connect names tsm0" out 'connect-attr tsm0'
check "authenticated names tsm0" out 'authenticated tsm0'
check "tsmd: device connected" out 'status-connected "state":"connected"'
check "tsmd: chain trusted" out 'status-connected .*"trusted":true'
check "tsmd: 4 measurement blocks" out 'status-connected .*"count":4'
check "tsmd: IDE stream 0 active" out 'status-connected .*"stream_id":0 "state":"active"'
check "bind through pci_tsm_bind()" out 'bind ok'
check "tsmd: TDI 0 CONFIG_LOCKED for the TVM" out 'status-bound .*"state":"CONFIG_LOCKED" "tvm":[1-9]'
check "guest INFO through pci_tsm_guest_req()" out 'vtsm-kguest: info: request .* tsm_code 0 '
check "guest INFO: evidence verified by the guest shim" out 'vtsm-kguest: info: evidence verified'
check "guest ACCEPT through pci_tsm_guest_req()" out 'vtsm-kguest: accept: request .* tsm_code 0 '
check "tsmd: TDI 0 RUN" out 'status-run .*"state":"RUN"'
check "dmesg: guest_req reached the module" out 'dmesg: .*vtsm: guest_req tdi 0 scope 1: 0'
check "unbind through pci_tsm_unbind()" out 'unbind ok'
check "disconnect through sysfs" out 'disconnect ok'
check "tsm/connect empty after disconnect" out 'connect-attr-after *$'
check "tsmd: device reclaimed (unconnected)" out 'status-reclaimed "state":"unconnected" *$'
check "module unloaded" out 'rmmod ok'
check "tsm/ attributes hidden after unload" out 'tsm-dir-after-rmmod *$'
check "dmesg: connect op returned 0" out 'dmesg: .*vtsm: connect: 0'
check "dmesg: disconnect op returned 0" out 'dmesg: .*vtsm: disconnect: 0'
check "no kernel warnings" bash -c "! grep -q 'VTSM-TEST: kernel-warnings' '$work/console.txt'"
check "bridge: connect ok" out 'kbridge: .*connect .*: ok'
# tsm-devemu saw the whole SPDM session, IDE_KM and TDISP through QEMU's DOE mailbox
# (its --verbose log names each request by its SPDM request code).
dlog="$work/devemu.log"
for req in "0x84:GET_VERSION" "0xe1:GET_CAPABILITIES" "0xe3:NEGOTIATE_ALGORITHMS" \
  "0x81:GET_DIGESTS" "0x82:GET_CERTIFICATE" "0xe4:KEY_EXCHANGE" "0xe5 (secured):FINISH" \
  "0xe0 (secured):GET_MEASUREMENTS" "0xec (secured):END_SESSION"; do
  check "tsm-devemu: ${req#*:}" grep -qF "request ${req%%:*} answered" "$dlog"
done
check "tsm-devemu: session established" grep -q 'session 0x[0-9a-f]* established' "$dlog"
check "tsm-devemu: IDE_KM KEY_PROG and K_SET_GO" grep -q 'K_SET_GO: stream 0' "$dlog"
check "tsm-devemu: TDISP LOCK_INTERFACE_REQ" grep -q 'CONFIG_UNLOCKED -> CONFIG_LOCKED' "$dlog"
check "tsm-devemu: TDISP START_INTERFACE_REQ" grep -q 'CONFIG_LOCKED -> RUN' "$dlog"
check "tsm-devemu: TDISP STOP_INTERFACE_REQ" grep -q 'RUN -> CONFIG_UNLOCKED' "$dlog"
check "tsm-devemu: IDE_KM K_SET_STOP" grep -q 'K_SET_STOP: stream 0' "$dlog"
check "tsm-devemu: session ended" grep -q 'session 0x[0-9a-f]* ended' "$dlog"
out 'kbridge: ' | sed 's/.*VTSM-TEST: kbridge: /  bridge: /'
out '(init reached|done at)' | sed 's/.*VTSM-TEST: /  guest: /'
echo "total $(vm_ms "$t_start") ms"
[ "$failed" = 0 ] || vm_fail "some checks failed"
echo "PASS"
