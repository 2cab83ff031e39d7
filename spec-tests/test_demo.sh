#!/usr/bin/env bash
# tsm-demo runs the whole lifecycle and removes everything it created (port file,
# tsmd's socket, the guest's private key and its sequence file, its directory).
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
grep -q '^\[9\] accept : .*: RUN,' <<<"$out" || {
  echo "$out"
  echo "test_demo: no TDI reached RUN" >&2
  exit 1
}
grep -q '^\[8b\] mmio  : .*validated each.*DMA enabled' <<<"$out" || {
  echo "$out"
  echo "test_demo: the guest did not validate its MMIO and enable DMA" >&2
  exit 1
}
grep -q '^\[12\] done' <<<"$out" || {
  echo "$out"
  echo "test_demo: the demo did not finish" >&2
  exit 1
}
# it worked in $TMPDIR (so what it leaves would be seen here)
grep -q "tsmd on $tmp/vtsm-demo-" <<<"$out" || {
  echo "$out"
  echo "test_demo: tsm-demo did not work under TMPDIR ($tmp)" >&2
  exit 1
}
left="$(ls -A "$tmp")"
[ -z "$left" ] || {
  echo "test_demo: tsm-demo left behind: $(cd "$tmp" && find . -mindepth 1)" >&2
  exit 1
}
echo "test_demo: ok"
