#!/usr/bin/env bash
# Build (warnings are errors) and run the whole default test suite in parallel.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DVTSM_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build -j"$(nproc)" --output-on-failure -LE 'fuzz|soak' "$@"
