#!/usr/bin/env bash
# Install dependencies, build (warnings are errors) and run the default test suite in
# parallel. Extra arguments go to ctest (e.g. -R e2e). Fuzz and soak runs are labelled
# and excluded here.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DVTSM_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build -j"$(nproc)" --output-on-failure -LE 'fuzz|soak' "$@"
