#!/usr/bin/env bash
# The installed tree, used as an outside project would:
#   cmake --install into a temporary prefix; check the files (headers, libraries with
#   soname and only the public API exported, pkg-config, CMake package, programs, man
#   pages, systemd units, LICENSE); build a C and a C++ program against it through
#   pkg-config and through find_package(vtsm) (shared, and static with
#   VTSM_USE_STATIC_LIBS), and run them against the installed tsmd.
#
# test_install.sh BUILD_DIR SOURCE_DIR   (ctest passes these; environment:
#   VTSM_CC, VTSM_CXX compilers; VTSM_SANFLAGS the build's -fsanitize flags;
#   VTSM_HAVE_MAN 1 if the build made man pages)
set -euo pipefail
build="$1"
src="$2"
cc="${VTSM_CC:-cc}"
cxx="${VTSM_CXX:-c++}"
san="${VTSM_SANFLAGS:-}"

tmp="$(mktemp -d /tmp/vtsm-install-XXXXXX)"
tsmd_pid=""
cleanup() {
  if [ -n "$tsmd_pid" ]; then
    kill -TERM "$tsmd_pid" 2>/dev/null || true
    wait "$tsmd_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "test_install: $*" >&2
  exit 1
}
step() { echo "--- $*"; }

prefix="$tmp/prefix"
step "cmake --install --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || {
  cat "$tmp/install.log"
  fail "cmake --install failed"
}

step "installed files"
libdir="$(sed -n 's/^libdir=\${prefix}\///p' "$build/pkgconfig/vtsm-host.pc")"
[ -n "$libdir" ] || fail "no libdir in vtsm-host.pc"
for f in include/vtsm/vtsm_host.h include/vtsm/vtsm_guest.h include/vtsm/vtsm_status.h \
  include/vtsm/vtsm_version.h "$libdir/libvtsm-host.a" "$libdir/libvtsm-guest.a" \
  "$libdir/pkgconfig/vtsm-host.pc" "$libdir/pkgconfig/vtsm-guest.pc" \
  "$libdir/cmake/vtsm/vtsmConfig.cmake" "$libdir/cmake/vtsm/vtsmConfigVersion.cmake" \
  bin/tsmd bin/tsm-devemu bin/tsm-host bin/tsm-guest bin/tsm-demo \
  lib/systemd/system/tsmd.service lib/systemd/system/tsmd.socket share/doc/vtsm/LICENSE; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
if [ "${VTSM_HAVE_MAN:-0}" = 1 ]; then
  for p in tsmd tsm-devemu tsm-host tsm-guest; do
    [ -s "$prefix/share/man/man1/$p.1" ] || fail "no man page $p.1"
  done
  grep -qi "exit status" "$prefix/share/man/man1/tsmd.1" || fail "tsmd.1 lacks the exit codes"
else
  echo "help2man was not found at configure time: man pages not checked"
fi
grep -q "^Type=notify" "$prefix/lib/systemd/system/tsmd.service" || fail "tsmd.service: Type"
grep -q "^ExecStart=/.*/tsmd" "$prefix/lib/systemd/system/tsmd.service" || fail "ExecStart"
# the public headers stand alone: nothing from the build or source tree, no libcbor
if grep -El '#include <cbor|cbor_item_t' "$prefix"/include/vtsm/*.h; then
  fail "an installed header uses libcbor"
fi
for inc in $(sed -n 's/^#include "\(.*\)"/\1/p' "$prefix"/include/vtsm/*.h | sort -u); do
  [ -e "$prefix/include/vtsm/$inc" ] || fail "an installed header includes $inc, not installed"
done
version="$(sed -n 's/^#define VTSM_VERSION_STRING "\(.*\)"$/\1/p' "$prefix/include/vtsm/vtsm_version.h")"
[ -n "$version" ] || fail "no VTSM_VERSION_STRING in vtsm_version.h"
major="${version%%.*}"
for part in host guest; do
  so="$prefix/$libdir/libvtsm-$part.so"
  [ -L "$so" ] && [ -e "$so.$major" ] && [ -e "$so.$version" ] || fail "libvtsm-$part.so links"
  soname="$(readelf -d "$so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
  [ "$soname" = "libvtsm-$part.so.$major" ] || fail "libvtsm-$part soname '$soname'"
  # only the public API: vtsm_ names of the public families, and the internals are hidden
  nm -D --defined-only "$so.$version" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sed 's/@.*//' \
    >"$tmp/$part.syms"
  bad="$(grep -Ev '^(vtsm_host_|vtsm_doe_tcp_|vtsm_result_|vtsm_op_(name|parse)$|vtsm_guest_|vtsm_version$|vtsm_status_|vtsm_source_name$|vtsm_rule_|vtsm_err_(detail|status|rule|clear)$)' \
    "$tmp/$part.syms" || true)"
  [ -z "$bad" ] || fail "libvtsm-$part exports internal symbols: $bad"
  for internal in vtsm_fail vtsm_buf_append vtsm_hash; do
    ! grep -qx "$internal" "$tmp/$part.syms" || fail "libvtsm-$part exports $internal"
  done
  grep -qx vtsm_version "$tmp/$part.syms" || fail "libvtsm-$part does not export vtsm_version"
  grep -qx vtsm_host_open "$tmp/$part.syms" || fail "libvtsm-$part lacks vtsm_host_open"
done
grep -qx vtsm_guest_open "$tmp/guest.syms" || fail "libvtsm-guest lacks vtsm_guest_open"
# every function the installed headers declare is in libvtsm-guest (which carries both APIs)
for h in "$prefix"/include/vtsm/*.h; do echo "#include \"$h\""; done >"$tmp/all.c"
$cc -E -P "$tmp/all.c" | grep -oE 'vtsm_[A-Za-z0-9_]+[[:space:]]*\(' | sed 's/[[:space:]]*($//' |
  sort -u >"$tmp/declared"
[ "$(wc -l <"$tmp/declared")" -gt 50 ] || fail "too few functions found in the installed headers"
missing="$(sort -u "$tmp/guest.syms" | comm -23 "$tmp/declared" - | tr '\n' ' ')"
[ -z "$missing" ] || fail "declared in the headers but not exported by libvtsm-guest: $missing"
# and nothing else but the verb functions the operation table generates (the in-tree forms
# taking libcbor items, *_cbor, stay inside)
extra="$(sort -u "$tmp/host.syms" "$tmp/guest.syms" | comm -13 "$tmp/declared" - |
  grep -Ev '^vtsm_host_[a-z0-9_]+$' || true)"
[ -z "$extra" ] || fail "exported but not declared in the headers: $extra"
extra="$(sort -u "$tmp/host.syms" "$tmp/guest.syms" | comm -13 "$tmp/declared" - | grep '_cbor$' || true)"
[ -z "$extra" ] || fail "in-tree CBOR forms exported: $extra"

step "build through pkg-config"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
[ "$(pkg-config --modversion vtsm-host)" = "$version" ] || fail "pkg-config version"
[ "$(pkg-config --variable=prefix vtsm-guest | xargs realpath)" = "$(realpath "$prefix")" ] ||
  fail "vtsm-guest.pc does not find its prefix"
mkdir -p "$tmp/pc"
# shellcheck disable=SC2046,SC2086
$cc $san -Wall -Werror -o "$tmp/pc/consumer" "$src/spec-tests/install/consumer.c" \
  $(pkg-config --cflags --libs vtsm-host) -Wl,-rpath,"$prefix/$libdir"
# shellcheck disable=SC2046,SC2086
$cxx $san -Wall -Werror -o "$tmp/pc/consumer-cxx" "$src/spec-tests/install/consumer.cpp" \
  $(pkg-config --cflags --libs vtsm-guest) -Wl,-rpath,"$prefix/$libdir"

step "build through find_package(vtsm), shared and static"
for kind in shared static; do
  static=OFF
  [ "$kind" = static ] && static=ON
  cmake -S "$src/spec-tests/install" -B "$tmp/cm-$kind" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DVTSM_USE_STATIC_LIBS=$static \
    -DCMAKE_C_FLAGS="$san -Wall -Werror" -DCMAKE_CXX_FLAGS="$san -Wall -Werror" \
    -DCMAKE_EXE_LINKER_FLAGS="$san" >"$tmp/cm-$kind.log" 2>&1 || {
    cat "$tmp/cm-$kind.log"
    fail "configuring the find_package project ($kind)"
  }
  cmake --build "$tmp/cm-$kind" >>"$tmp/cm-$kind.log" 2>&1 || {
    cat "$tmp/cm-$kind.log"
    fail "building the find_package project ($kind)"
  }
done
for exe in consumer consumer-cxx; do
  needed="$(readelf -d "$tmp/cm-static/$exe" | grep -c 'NEEDED.*libvtsm' || true)"
  [ "$needed" = 0 ] || fail "static $exe still needs a libvtsm shared library"
  readelf -d "$tmp/cm-shared/$exe" | grep -q 'NEEDED.*libvtsm-' || fail "shared $exe"
  readelf -d "$tmp/pc/$exe" | grep -q 'NEEDED.*libvtsm-' || fail "pkg-config $exe"
done

step "run them against the installed tsmd"
sock="$tmp/tsmd.sock"
# root ports other than the default ones, so STATUS shows this configuration
"$prefix/bin/tsmd" --socket="$sock" --root-port=3:2 --root-port=7:5 >"$tmp/tsmd.out" \
  2>"$tmp/tsmd.err" &
tsmd_pid=$!
for _ in $(seq 100); do
  [ -S "$sock" ] && break
  sleep 0.1
done
[ -S "$sock" ] || fail "installed tsmd did not serve $sock: $(cat "$tmp/tsmd.err")"
n=0
for dir in pc cm-shared cm-static; do
  out="$("$tmp/$dir/consumer" "$sock")" || fail "$dir/consumer failed"
  want="$(printf 'hello: vtsm %s\nroot port 3: 2 streams\nroot port 7: 5 streams' "$version")"
  [ "$out" = "$want" ] || fail "$dir/consumer printed: $out"
  n=$((n + 1))
  out="$("$tmp/$dir/consumer-cxx" "$sock" "$tmp/guest-$dir.key")" || fail "$dir/consumer-cxx failed"
  grep -qx "hello: vtsm $version" <<<"$out" || fail "$dir/consumer-cxx: $out"
  grep -qx "root ports: 2 (in the JSON too)" <<<"$out" || fail "$dir/consumer-cxx: $out"
  grep -qx "guest key: 04\.\.\., 65 bytes" <<<"$out" || fail "$dir/consumer-cxx: $out"
  n=$((n + 1))
done
kill -TERM "$tsmd_pid"
rc=0
wait "$tsmd_pid" || rc=$?
tsmd_pid=""
[ "$rc" = 0 ] || fail "installed tsmd exited $rc: $(cat "$tmp/tsmd.err")"
echo "test_install: ok ($n programs, version $version)"
