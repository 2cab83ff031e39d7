#!/usr/bin/env bash
# SPDM through QEMU's spdm-socket backend, both of its nvme transports: boot Debian
# unstable's kernel under QEMU (TCG) with two nvme functions whose SPDM responders are
# tsm-devemu on this host, the first with spdm_trans=doe, the second with
# spdm_trans=nvme. Inside the VM vtsm-qguest runs the TSM's SPDM requester through each:
# the DOE mailbox (driven through configuration space: discovery, VCA, DIGESTS,
# CERTIFICATE, signed MEASUREMENTS, a secure session with MEASUREMENTS inside it,
# END_SESSION; then tsmd's whole DEVICE_CONNECT with IDE_KM and DEVICE_RECLAIM through
# the same mailbox, served to it as an spdm-emu DOE target) and NVMe Security
# Send/Receive through the kernel's nvme driver (VCA, DIGESTS, CERTIFICATE, signed
# MEASUREMENTS). Outside, check the guest's report and
# each tsm-devemu's log: every exchange the guest made reached the device and was
# answered. Prints the per-exchange time through QEMU (medians).
#
#   qemu_spdm.sh SOURCE_DIR BIN_DIR
#
# Exit 77 (counted as skipped by ctest) when the chroot from scripts/kernel-env.sh or
# its nvme modules are absent; never passes without running. VTSM_VM_KEEP=1 keeps the
# work directory (console log, tsm-devemu logs, initramfs).
set -uo pipefail
src="${1:?source dir}"
bin="${2:?bin dir}"
# shellcheck source=spec-tests/vm_lib.sh
. "$src/spec-tests/vm_lib.sh"

t_start=$(date +%s%N)
vm_env
moddir="$root/opt/kernel/usr/lib/modules/$kver/nvme"
mods=(nvme-keyring nvme-auth nvme-core nvme)
for m in "${mods[@]}"; do
  [ -f "$moddir/$m.ko" ] || vm_skip "no $m module in the chroot: run scripts/kernel-env.sh (as root)"
done
grep -q '^CONFIG_PCI_DOE=y' "$kconfig" || vm_skip "kernel $kver is built without CONFIG_PCI_DOE=y"
for b in tsm-devemu vtsm-qguest tsmd tsm-host; do
  [ -x "$bin/$b" ] || vm_fail "missing $bin/$b"
done

vm_work qemu
vm_devemu doe --verbose
port_doe=$vm_port
vm_devemu nvme --verbose
port_nvme=$vm_port

t=$(date +%s%N)
vm_initramfs
vm_add_bin "$bin/vtsm-qguest" "$bin/tsmd" "$bin/tsm-host"
for m in "${mods[@]}"; do
  cp "$moddir/$m.ko" "$ir/"
done
cat >"$ir/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "VTSM-TEST: \$*"; }
ms() { read -r up _ </proc/uptime; echo \$(( \${up%.*}\${up#*.}0 )); }
# The nvme functions in slot order: DOE first, NVMe storage binding second.
set -- \$(for d in /sys/bus/pci/devices/*; do [ "\$(cat \$d/class)" = 0x010802 ] && echo \${d##*/}; done)
echo # the firmware's output ends without a newline
say "nvme \$1 \$2"
say "init reached at \$(ms) ms of guest uptime"
vtsm-qguest doe \$1 2>&1 | sed 's/^/VTSM-TEST: doe: /'
# A whole DEVICE_CONNECT and DEVICE_RECLAIM by tsmd through the same mailbox:
# vtsm-qguest serves it as an spdm-emu socket DOE target on the guest's loopback.
ip link set lo up
/bin/tsmd --socket /tmp/tsmd.sock >/tmp/tsmd.log 2>&1 &
vtsm-qguest serve \$1 /tmp/proxy.port >/tmp/proxy.log 2>&1 &
i=0
while [ \$i -lt 100 ] && { [ ! -S /tmp/tsmd.sock ] || [ ! -s /tmp/proxy.port ]; }; do sleep 0.1; i=\$((i + 1)); done
doe="--doe tcp:127.0.0.1:\$(cat /tmp/proxy.port)"
status() {
  tsm-host --socket /tmp/tsmd.sock --json status \$1 >/tmp/status.json 2>&1
  say "status-\$2 \$(grep -o -E '"(state|trusted|count|stream_id)":("[A-Za-z_]*"|[a-z0-9]*)' /tmp/status.json | tr '\n' ' ')"
}
t0=\$(ms)
tsm-host --socket /tmp/tsmd.sock connect \$1 \$doe --ide-streams 1 >/tmp/connect.out 2>&1 &&
  say "connect ok \$((\$(ms) - t0)) ms" || say "connect failed: \$(cat /tmp/connect.out)"
status \$1 connected
t0=\$(ms)
tsm-host --socket /tmp/tsmd.sock reclaim \$1 \$doe >/tmp/reclaim.out 2>&1 &&
  say "reclaim ok \$((\$(ms) - t0)) ms" || say "reclaim failed: \$(cat /tmp/reclaim.out)"
status \$1 reclaimed
kill \$(pidof vtsm-qguest) \$(pidof tsmd)
sleep 0.3
sed 's/^/VTSM-TEST: proxy: /' /tmp/proxy.log
for m in ${mods[*]}; do insmod /\$m.ko || say "insmod \$m failed"; done
ctrl=""
i=0
while [ -z "\$ctrl" ] && [ \$i -lt 100 ]; do
  for c in /sys/class/nvme/nvme*; do
    case "\$(readlink \$c/device)" in *\$2) [ -c /dev/\${c##*/} ] && ctrl=\${c##*/} ;; esac
  done
  [ -n "\$ctrl" ] || sleep 0.1
  i=\$((i + 1))
done
say "nvme controller \$ctrl after \$i polls"
[ -n "\$ctrl" ] && vtsm-qguest nvme /dev/\$ctrl 2>&1 | sed 's/^/VTSM-TEST: nvme: /'
dmesg | grep -E 'BUG|WARNING|Oops|Call Trace' >/dev/null && say "kernel-warnings"
say "done at \$(ms) ms of guest uptime"
poweroff -f
EOF
vm_pack
echo "initramfs built in $(vm_ms "$t") ms ($(du -k "$work/initrd.cpio" | cut -f1) KiB)"

t=$(date +%s%N)
vm_boot 50 -device "nvme,serial=vtsmdoe,spdm_port=$port_doe,spdm_trans=doe" \
  -device "nvme,serial=vtsmnvme,spdm_port=$port_nvme,spdm_trans=nvme"
echo "VM ran $(vm_ms "$t") ms (qemu exit $vm_rc)"
vm_out 'done' >/dev/null || vm_fail "the VM did not finish its script (qemu exit $vm_rc)"

# The guest's report: every step of each run.
for s in find-doe doe-discovery requester vca digests certificate measurements key-exchange \
  measurements-in-session end-session; do
  check "doe: $s" vm_out "doe: step $s: ok"
done
check "doe: DOE discovery lists CMA/SPDM and secured CMA/SPDM" \
  bash -c "[ \$(grep -a -c -E 'doe: doe protocol vendor 0x0001 type (1|2)$' '$work/console.txt') = 2 ]"
check "doe: result PASS" vm_out 'doe: result PASS'
check "doe: tsmd's DEVICE_CONNECT through the mailbox" vm_out 'connect ok'
check "doe: tsmd: device connected" vm_out 'status-connected "state":"connected"'
check "doe: tsmd: chain trusted" vm_out 'status-connected .*"trusted":true'
check "doe: tsmd: 4 measurement blocks" vm_out 'status-connected .*"count":4'
check "doe: tsmd: IDE stream 0 active" vm_out 'status-connected .*"stream_id":0 "state":"active"'
check "doe: tsmd's DEVICE_RECLAIM through the mailbox" vm_out 'reclaim ok'
check "doe: tsmd: device unconnected after reclaim" vm_out 'status-reclaimed "state":"unconnected" *$'
check "doe: the mailbox server relayed every exchange" bash -c "! grep -q 'proxy: serve: exchange failed' '$work/console.txt'"
check "nvme: controller bound by the kernel's nvme driver" vm_out 'nvme controller nvme[0-9]+ '
for s in requester vca digests certificate measurements refusals digests-after-refusals; do
  check "nvme: $s" vm_out "nvme: step $s: ok"
done
check "nvme: result PASS" vm_out 'nvme: result PASS'
check "no kernel warnings" bash -c "! grep -q 'VTSM-TEST: kernel-warnings' '$work/console.txt'"

# tsm-devemu's side: each request the guest sent was received and answered, as many
# times as the guest counted (--verbose names each request by its SPDM code).
for tp in doe nvme; do
  dlog="$work/$tp.log"
  for req in 0x84:GET_VERSION 0xe1:GET_CAPABILITIES 0xe3:NEGOTIATE_ALGORITHMS \
    0x81:GET_DIGESTS 0x82:GET_CERTIFICATE 0xe0:GET_MEASUREMENTS; do
    code="${req%%:*}"
    name="${req#*:}"
    # The DOE device also served tsmd's connect and reclaim (the "proxy" lines).
    guest=$(grep -a -c -E "VTSM-TEST: ($tp|${tp/doe/proxy}): xchg [0-9]+ $name " "$work/console.txt")
    dev=$(grep -c -F "request $code answered" "$dlog")
    check "$tp: tsm-devemu answered $name $dev time(s), the guest exchanged it $guest time(s)" \
      test "$guest" -gt 0 -a "$guest" = "$dev"
  done
done
for req in "0xe4:KEY_EXCHANGE" "0xe5 (secured):FINISH (secured)" \
  "0xe0 (secured):GET_MEASUREMENTS (secured)" "0xec (secured):END_SESSION (secured)"; do
  check "doe: tsm-devemu answered ${req#*:}" grep -qF "request ${req%%:*} answered" "$work/doe.log"
done
# The storage binding carries SPDM messages unframed: the guest tells a response's
# length from its fields. Each must be the length tsm-devemu sent, in order.
vm_out 'nvme: xchg ' | awk '{print $9}' >"$work/nvme.guest-sizes"
sed -n 's/.*request 0x.. answered with 0x.. (\([0-9]*\) bytes)$/\1/p' "$work/nvme.log" >"$work/nvme.dev-sizes"
check "nvme: every response length the guest found is the one tsm-devemu sent ($(wc -l <"$work/nvme.dev-sizes") responses)" \
  cmp -s "$work/nvme.guest-sizes" "$work/nvme.dev-sizes"
check "doe: tsm-devemu: two sessions established and ended (vtsm-qguest's, tsmd's)" \
  bash -c "[ \$(grep -c 'session 0x[0-9a-f]* established' '$work/doe.log') = 2 ] && [ \$(grep -c 'session 0x[0-9a-f]* ended' '$work/doe.log') = 2 ]"
check "doe: tsm-devemu: IDE_KM KEY_PROG and K_SET_GO (tsmd's connect)" grep -q 'K_SET_GO: stream 0' "$work/doe.log"
check "doe: tsm-devemu: IDE_KM K_SET_STOP (tsmd's reclaim)" grep -q 'K_SET_STOP: stream 0' "$work/doe.log"
# The two refusals the guest provoked, and no other.
check "nvme: tsm-devemu refused the Security Receive with nothing waiting" \
  grep -q 'storage IF_RECV with no response waiting' "$work/nvme.log"
check "nvme: tsm-devemu refused the secured-message operation" \
  grep -q 'storage frame: security protocol 0xe8, SPSP 0x0018 not supported' "$work/nvme.log"
check "nvme: tsm-devemu refused nothing else" \
  test "$(grep -c -E 'storage|not served' "$work/nvme.log")" = 2

vm_out '(doe|nvme|proxy): median' | sed 's/.*VTSM-TEST: /  /'
vm_out '(connect|reclaim) ok' | sed 's/.*VTSM-TEST: /  tsmd through QEMU'"'"'s DOE: /'
vm_out '(doe|nvme): (negotiated|chain|measurements|exchanges)' | sed 's/.*VTSM-TEST: /  /'
vm_out '(init reached|done at)' | sed 's/.*VTSM-TEST: /  guest: /'
echo "total $(vm_ms "$t_start") ms"
[ "$failed" = 0 ] || vm_fail "some checks failed"
echo "PASS"
