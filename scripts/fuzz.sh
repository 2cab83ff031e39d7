#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for 30 s (or: scripts/fuzz.sh -R fuzz_abi).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
command -v clang >/dev/null || { echo "fuzz.sh: needs clang and libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
CC=clang cmake -S . -B build-fuzz -DVTSM_FUZZ=ON -DVTSM_TESTS=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_seedgen fuzz_proto fuzz_requester fuzz_device fuzz_abi fuzz_parsers fuzz_guest
ctest --test-dir build-fuzz -L fuzz --output-on-failure "$@"
