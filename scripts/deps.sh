#!/usr/bin/env bash
# Install the build dependencies from Debian's packages (only what is missing).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libssl-dev libcbor-dev libcmocka-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
