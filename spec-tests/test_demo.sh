#!/usr/bin/env bash
# tsm-demo runs the whole lifecycle of a DSM with two VFs given to two TVMs and removes
# everything it created (port file, tsmd's socket, the guests' private keys and their
# sequence files, its directory).
#
# test_demo.sh BUILD_DIR
set -euo pipefail
tmp="$(mktemp -d /tmp/vtsm-demo-test-XXXXXX)"
trap 'rm -rf "$tmp" "$tmp.out"' EXIT
rc=0
TMPDIR="$tmp" timeout 50 "$1/bin/tsm-demo" >"$tmp.out" 2>&1 || rc=$?
out="$(cat "$tmp.out")"
rm -f "$tmp.out"
if [ "$rc" != 0 ]; then
  echo "$out"
  echo "test_demo: tsm-demo exited $rc" >&2
  exit 1
fi
# need REGEX WHAT: some line of the output matches REGEX (grep -E)
need() {
  grep -Eq -- "$1" <<<"$out" || {
    echo "$out"
    echo "test_demo: $2" >&2
    exit 1
  }
}
# count REGEX: how many lines match
count() { grep -Ec -- "$1" <<<"$out" || true; }

need '^\[4\] connect: ' "the device did not connect"
need 'TDIs the host declared \(tdis\).*0000:01:02\.[01] CONFIG_UNLOCKED, 0000:01:02\.[01] CONFIG_UNLOCKED$' \
  "the TSM does not list the two declared VFs, unlocked"
need '^\[5\] link   : .*device PASS, device -> root port PASS' "the IDE link check did not pass"
# two TVMs, each VF bound to its own one
need '^\[7\] assign : VF1 0000:01:02\.0 -> TVM 1 by the host: CONFIG_UNLOCKED' "VF1 not assigned to TVM 1"
need '^\[7\] assign : VF2 0000:01:02\.1 -> TVM 2 by the host: CONFIG_UNLOCKED' "VF2 not assigned to TVM 2"
need '^\[7\] lock   : guest 1 locked VF1: CONFIG_LOCKED .*\(3 MMIO ranges\)' "guest 1 did not lock VF1"
need '^\[7\] lock   : guest 2 locked VF2: CONFIG_LOCKED .*\(3 MMIO ranges\)' "guest 2 did not lock VF2"
# each guest verified its evidence, with its own fresh nonce
need '^\[8\] guest 1: INFO of VF1 .*VERIFIED for TVM 1; CONFIG_LOCKED' "guest 1 did not verify its token"
need '^\[8\] guest 2: INFO of VF2 .*VERIFIED for TVM 2; CONFIG_LOCKED' "guest 2 did not verify its token"
[ "$(count 'report digest [0-9a-f]{16}\.\., measurements digest [0-9a-f]{16}\.\. match the token')" = 2 ] || {
  echo "$out"
  echo "test_demo: the two INFO results do not show their digests" >&2
  exit 1
}
# MMIO mapped by the host, validated range by range by each guest, then DMA
need "^\[9\] mmio 1 : the host mapped VF1's 3 MMIO ranges .* of TVM 1; guest 1 validated each \(2 shared: MSI-X\), DMA enabled$" \
  "guest 1 did not validate its MMIO and enable DMA"
need "^\[9\] mmio 2 : the host mapped VF2's 3 MMIO ranges .* of TVM 2; guest 2 validated each \(2 shared: MSI-X\), DMA enabled$" \
  "guest 2 did not validate its MMIO and enable DMA"
# guest 1 can neither read nor accept guest 2's VF: refused by the TSM with the rule
need '^\[10\] isolate: guest 1 \(TVM 1\) on VF2 of TVM 2: INFO refused \(not_owner, rule TDI\.6\), ACCEPT refused \(not_owner, rule TDI\.5\)$' \
  "the cross-guest requests were not refused with their rules"
# both VFs reach RUN, each under its own TVM
need '^\[11\] accept: guest 1 accepted VF1 0000:01:02\.0 under TVM 1 .*: RUN, MMIO enabled, DMA enabled$' \
  "VF1 did not reach RUN under TVM 1"
need '^\[11\] accept: guest 2 accepted VF2 0000:01:02\.1 under TVM 2 .*: RUN, MMIO enabled, DMA enabled$' \
  "VF2 did not reach RUN under TVM 2"
[ "$(count '^\[12\] unbind: .* is CONFIG_UNLOCKED')" = 2 ] || {
  echo "$out"
  echo "test_demo: both VFs were not unbound" >&2
  exit 1
}
need '^\[13\] tvm   : TVM 1 and TVM 2 destroyed' "the TVMs were not destroyed"
need '^\[14\] reclaim: .* acknowledged .* 0000:01:00\.0 is unconnected$' "the DSM was not reclaimed"
need '^\[15\] done' "the demo did not finish"
# it worked in $TMPDIR (so what it leaves would be seen here)
need "tsmd on $tmp/vtsm-demo-" "tsm-demo did not work under TMPDIR ($tmp)"
left="$(ls -A "$tmp")"
[ -z "$left" ] || {
  echo "test_demo: tsm-demo left behind: $(cd "$tmp" && find . -mindepth 1)" >&2
  exit 1
}
echo "test_demo: ok"
