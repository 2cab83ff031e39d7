#!/usr/bin/env bash
# The README's manual session, exactly as written (build/bin/ becomes this build's bin
# directory), run twice in a row: every command must succeed, the TDI must reach RUN,
# and each run must leave nothing behind (no process, no file, no socket).
#
# test_readme_session.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$(realpath "$1")"
src="$2"

tmp="$(mktemp -d /tmp/vtsm-readme-XXXXXX)"
pgid=""
cleanup() {
  [ -z "$pgid" ] || kill -KILL -- "-$pgid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "test_readme_session: $*" >&2
  exit 1
}

# The block after "A manual session", up to its closing fence.
awk '/^A manual session/ {found = 1} found && /^```sh$/ {inblock = 1; next}
     inblock && /^```$/ {exit} inblock {print}' "$src/README.md" >"$tmp/session.sh"
grep -q "tsm-host connect" "$tmp/session.sh" || fail "no manual session found in README.md"
sed -i "s|build/bin/|$build/bin/|g" "$tmp/session.sh"

mkdir -p "$tmp/tmp" "$tmp/run"
for round in 1 2; do
  # its own session and process group, so whatever it leaves running can be found
  TMPDIR="$tmp/tmp" VTSM_SOCKET="$tmp/run/tsmd.sock" \
    setsid bash -euo pipefail "$tmp/session.sh" >"$tmp/out.$round" 2>&1 </dev/null &
  pgid=$!
  rc=0
  for _ in $(seq 400); do
    kill -0 "$pgid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pgid" 2>/dev/null; then
    cat "$tmp/out.$round"
    fail "round $round did not finish in 40 s"
  fi
  wait "$pgid" || rc=$?
  if [ "$rc" != 0 ]; then
    cat "$tmp/out.$round"
    fail "round $round failed (exit $rc)"
  fi
  left="$(ps -o pid=,args= -g "$pgid" || true)"
  [ -z "$left" ] || fail "round $round left processes running: $left"
  pgid=""
  grep -q '"state":"RUN"' "$tmp/out.$round" || {
    cat "$tmp/out.$round"
    fail "round $round: the status shows no TDI in RUN"
  }
  [ -z "$(ls -A "$tmp/tmp")" ] || fail "round $round left files: $(ls -A "$tmp/tmp")"
  [ -z "$(ls -A "$tmp/run")" ] || fail "round $round left $(ls -A "$tmp/run") (tsmd's socket)"
done
echo "test_readme_session: ok (2 rounds)"
