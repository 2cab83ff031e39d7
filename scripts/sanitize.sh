#!/usr/bin/env bash
# Build with sanitizers (warnings are errors) and run the whole suite, soak included.
#   scripts/sanitize.sh address [ctest args]   ASan + UBSan + LeakSanitizer, in build-asan
#   scripts/sanitize.sh thread  [ctest args]   ThreadSanitizer, in build-tsan
# Any sanitizer report fails the run: each process stops at its first report with a
# status of its own -- 86 ASan/LeakSanitizer, 87 UBSan, 66 TSan -- so the test that ran
# it fails (daemons included: the end-to-end teardown wants status 0 from tsmd and
# tsm-devemu). ASan and TSan reports also go to <build>/sanitizer-logs, which must be
# empty at the end: that catches processes whose status no test looks at. (GCC's UBSan
# ignores log_path and writes to stderr: tsmd's stderr is in the failing test's output,
# a daemon whose stderr is discarded shows as "ended with status 0x5700".)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
case "$mode" in
  address) dir=build-asan; san=address,undefined ;;
  thread) dir=build-tsan; san=thread ;;
  *) echo "usage: scripts/sanitize.sh address|thread [ctest args]" >&2; exit 2 ;;
esac
shift
./scripts/deps.sh
cmake -S . -B "$dir" -DVTSM_WERROR=ON -DVTSM_SANITIZE="$san" >/dev/null
cmake --build "$dir" -j"$(nproc)"

logs="$PWD/$dir/sanitizer-logs"
rm -rf "$logs"
mkdir -p "$logs"
# Ours first, so that options already in the environment win.
export ASAN_OPTIONS="halt_on_error=1:exitcode=86:detect_leaks=1:log_path=$logs/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:exitcode=87:print_stacktrace=1:log_path=$logs/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:log_path=$logs/tsan${TSAN_OPTIONS:+:$TSAN_OPTIONS}"

# GCC 12's TSan cannot map its shadow memory when the kernel randomises more than 28
# bits of the address space (vm.mmap_rnd_bits, raised by newer kernels): run without
# address randomisation there.
run=()
if [ "$mode" = thread ] && [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)" -gt 28 ]; then
  run=(setarch "$(uname -m)" -R)
fi
rc=0
"${run[@]}" ctest --test-dir "$dir" -j"$(nproc)" --output-on-failure -LE fuzz "$@" || rc=$?
reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  echo "sanitize.sh: $(echo "$reports" | wc -l) sanitizer report(s) in $logs:" >&2
  for f in $reports; do
    echo "==== $f" >&2
    cat "$f" >&2
  done
  [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
