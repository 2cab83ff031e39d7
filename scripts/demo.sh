#!/usr/bin/env bash
# Install dependencies, build only what the demo needs (tsm-demo, tsmd, tsm-devemu) with
# the build's progress shown, and run the demo (no configuration needed). The demo
# removes everything it creates.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
echo "demo.sh: configuring build/"
cmake -S . -B build >/dev/null
echo "demo.sh: building tsm-demo, tsmd and tsm-devemu"
cmake --build build -j"$(nproc)" --target tsm-demo tsmd tsm-devemu
echo "demo.sh: running build/bin/tsm-demo"
echo
exec ./build/bin/tsm-demo
