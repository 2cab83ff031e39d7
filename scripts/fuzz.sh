#!/usr/bin/env bash
# Build the libFuzzer targets with clang (in build-fuzz, ASan + UBSan) and run each one for
# 30 s, two at a time on two cores.
#   scripts/fuzz.sh [--seconds N] [ctest args]     e.g. scripts/fuzz.sh --seconds 300 -R fuzz_abi
# FUZZ_SECONDS=N in the environment does the same as --seconds N.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
if [ "${1:-}" = "--seconds" ]; then
  [ $# -ge 2 ] || { echo "fuzz.sh: --seconds needs a number" >&2; exit 2; }
  seconds="$2"
  shift 2
fi
./scripts/deps.sh fuzz
command -v clang >/dev/null || { echo "fuzz.sh: clang is missing (scripts/deps.sh fuzz installs it)" >&2; exit 2; }
CC=clang cmake -S . -B build-fuzz -DVTSM_FUZZ=ON -DVTSM_TESTS=ON -DVTSM_WERROR=ON \
  -DVTSM_FUZZ_SECONDS="$seconds" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_seedgen fuzz_proto fuzz_requester fuzz_device fuzz_abi fuzz_parsers fuzz_guest
# A finding makes the target exit non-zero; its input is kept in fuzz_artifacts.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
ctest --test-dir build-fuzz -j"$(nproc)" -L fuzz --output-on-failure "$@"
