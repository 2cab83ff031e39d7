#!/usr/bin/env bash
# Install dependencies, build, and run the demo (no configuration needed).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec ./build/bin/tsm-demo
