#!/usr/bin/env bash
# Install the build dependencies from Debian's packages (only what is missing).
#   scripts/deps.sh            compiler, CMake, OpenSSL, libcbor, cmocka (build and tests)
#   scripts/deps.sh format     ... and clang-format (the formatting check)
#   scripts/deps.sh fuzz       ... and clang with its libFuzzer/sanitizer runtimes
#   scripts/deps.sh man        ... and help2man (man pages; without it the build skips them)
#   scripts/deps.sh ci         all of the above (what .ci/run needs)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libssl-dev libcbor-dev libcmocka-dev)
for group in "$@"; do
  case "$group" in
    format) pkgs+=(clang-format) ;;
    fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
    man) pkgs+=(help2man) ;;
    ci) pkgs+=(clang-format clang libclang-rt-14-dev help2man) ;;
    *) echo "deps.sh: unknown group '$group' (format, fuzz, man, ci)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  # dpkg -s succeeds for removed-but-configured packages too: ask for the install state.
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "deps.sh: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
