#!/usr/bin/env bash
# Create, idempotently, the Debian unstable chroot that the kernel test runs in:
# QEMU (nvme with spdm_port=), the kernel image and its headers (CONFIG_PCI_TSM=y),
# a compiler and make for the out-of-tree module, busybox-static, cpio and kmod for the
# initramfs; the kernel's nvme driver modules (for the QEMU test's NVMe Security
# Send/Receive, docs/qemu.md), added to an existing chroot when missing. It lives in a
# cache directory outside the source tree and never touches the host's own packages
# beyond debootstrap (from the host's stable release).
#
#   scripts/kernel-env.sh            create or reuse ${VTSM_CACHE_DIR:-/var/cache/vtsm}/sid
#   scripts/kernel-env.sh --print    print the chroot path if it is complete, else exit 1
#   scripts/kernel-env.sh --remove   delete the chroot
#   scripts/kernel-env.sh --run CMD...  run CMD in the chroot, with /proc and /dev
#                                    mounted in a private mount namespace (gone at exit)
#
# VTSM_DEBIAN_MIRROR overrides the archive (default: the host's Debian mirror).
set -euo pipefail

cache="${VTSM_CACHE_DIR:-/var/cache/vtsm}"
root="$cache/sid"
stamp="$root/.vtsm-kernel-env"
# Bump when the package set changes so that old chroots are rebuilt.
recipe=1
pkgs=(qemu-system-x86 linux-headers-amd64 busybox-static make cpio kmod gcc libc6-dev)

say() { echo "kernel-env: $*"; }
# The kernel image unpacked from the package: /usr/lib/modules/<version>/vmlinuz in
# current packages, /boot/vmlinuz-<version> in older ones.
vmlinuz() {
  compgen -G "$1/opt/kernel/usr/lib/modules/*/vmlinuz" | head -1 ||
    compgen -G "$1/opt/kernel/boot/vmlinuz-*" | head -1 || true
}

complete() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "recipe=$recipe" ] &&
    [ -n "$(vmlinuz "$root")" ]
}

# The nvme driver and the modules it needs, in load order, uncompressed (busybox insmod
# takes them as they are), under /opt/kernel/usr/lib/modules/<version>/nvme/.
nvme_mods=(nvme-keyring nvme-auth nvme-core nvme)
have_nvme() {
  local m d
  d=$(compgen -G "$1/opt/kernel/usr/lib/modules/*/nvme" | head -1) || return 1
  for m in "${nvme_mods[@]}"; do
    [ -f "$d/$m.ko" ] || return 1
  done
}
# add_nvme ROOT KVER: fetch linux-modules-KVER in ROOT and keep only the nvme modules.
add_nvme() {
  local r="$1" kv="$2" t1 deb m f dst
  t1=$(date +%s)
  dst="$r/opt/kernel/usr/lib/modules/$kv/nvme"
  rm -rf "$r/var/tmp/vtsm-mod" && mkdir -p "$r/var/tmp/vtsm-mod" "$dst"
  chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c \
    "cd /var/tmp/vtsm-mod && apt-get download -qq -o APT::Sandbox::User=root linux-modules-$kv" || {
    echo "kernel-env: cannot download linux-modules-$kv" >&2
    return 1
  }
  deb=$(compgen -G "$r/var/tmp/vtsm-mod/*.deb" | head -1)
  mkdir -p "$r/var/tmp/vtsm-mod/x"
  dpkg-deb -x "$deb" "$r/var/tmp/vtsm-mod/x"
  for m in "${nvme_mods[@]}"; do
    f=$(find "$r/var/tmp/vtsm-mod/x" -name "$m.ko*" | head -1)
    [ -n "$f" ] || {
      echo "kernel-env: linux-modules-$kv has no $m module" >&2
      return 1
    }
    case "$f" in
      *.xz)
        command -v xz >/dev/null || {
          echo "kernel-env: xz (xz-utils) is needed to unpack $m" >&2
          return 1
        }
        xz -dc "$f" >"$dst/$m.ko"
        ;;
      *.zst) zstd -qdc "$f" >"$dst/$m.ko" ;;
      *) cp "$f" "$dst/$m.ko" ;;
    esac || return 1
  done
  rm -rf "$r/var/tmp/vtsm-mod"
  say "nvme modules (${nvme_mods[*]}) from linux-modules-$kv: $(($(date +%s) - t1)) s"
}

case "${1:-}" in
  --print)
    complete || exit 1
    echo "$root"
    exit 0
    ;;
  --run)
    shift
    complete || {
      echo "kernel-env: no chroot at $root: run $0 first" >&2
      exit 1
    }
    exec unshare --mount --propagation private -- sh -c '
      root=$1; shift
      mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" &&
        exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"' \
      sh "$root" "$@"
    ;;
  --remove)
    rm -rf --one-file-system "$root" "$root.new"
    say "removed $root"
    exit 0
    ;;
  "") ;;
  *)
    echo "usage: $0 [--print|--remove|--run CMD...]" >&2
    exit 2
    ;;
esac

t0=$(date +%s)
if complete && have_nvme "$root"; then
  say "cached: $root (recipe $recipe) in $(($(date +%s) - t0)) s"
  exit 0
fi

[ "$(id -u)" = 0 ] || {
  echo "kernel-env: creating the chroot needs root (debootstrap, chroot)" >&2
  exit 1
}
mkdir -p "$cache"
# One creator at a time (CI stages, several worktrees); a second one waits, then finds
# the chroot made.
exec 9>"$cache/.lock"
flock 9
if complete && ! have_nvme "$root"; then
  # A chroot made before the nvme modules were part of it: add them in place.
  kv=$(cd "$root/usr/src" && compgen -G 'linux-headers-*-amd64' | sort -V | tail -1)
  add_nvme "$root" "${kv#linux-headers-}" || exit 1
fi
if complete && have_nvme "$root"; then
  say "ready: $root in $(($(date +%s) - t0)) s"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap on the host"
  apt-get update -qq
  apt-get install -y -qq debootstrap >/dev/null
fi

mirror="${VTSM_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  # The host's own Debian archive: the first deb.debian.org-style URI in its sources.
  mirror=$(grep -hoE '(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | head -1 |
    awk '{print $2}') || true
  mirror="${mirror:-http://deb.debian.org/debian}"
fi

rm -rf --one-file-system "$root.new"
say "debootstrap sid from $mirror into $root.new"
t1=$(date +%s)
debootstrap --variant=minbase sid "$root.new" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
  tail -20 "$cache/debootstrap.log" >&2
  echo "kernel-env: debootstrap failed (log: $cache/debootstrap.log)" >&2
  exit 1
}
say "debootstrap: $(($(date +%s) - t1)) s"

# The archive may be a frozen snapshot whose Release file has expired.
echo 'Acquire::Check-Valid-Until "false";' >"$root.new/etc/apt/apt.conf.d/99vtsm-snapshot"
# Keep the chroot small: no documentation, no recommends.
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
  >"$root.new/etc/apt/apt.conf.d/99vtsm-norecommends"

in_root() { chroot "$root.new" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
t1=$(date +%s)
in_root apt-get update -qq
in_root apt-get install -y -qq "${pkgs[@]}" >"$cache/apt.log" 2>&1 || {
  tail -20 "$cache/apt.log" >&2
  echo "kernel-env: apt-get install failed (log: $cache/apt.log)" >&2
  exit 1
}
say "packages (${pkgs[*]}): $(($(date +%s) - t1)) s"

# The kernel image matching the headers, from linux-binary-<version>: the
# linux-image metapackage would pull in an initramfs generator we do not need.
hdr=$(cd "$root.new/usr/src" && compgen -G 'linux-headers-*-amd64' | sort -V | tail -1) || true
[ -n "$hdr" ] || {
  echo "kernel-env: no linux-headers-*-amd64 in the chroot" >&2
  exit 1
}
kver="${hdr#linux-headers-}"
binpkg=$(in_root apt-cache search --names-only "^linux-binary-${kver//+/\\+}\$" | awk '{print $1}' | head -1)
if [ -z "$binpkg" ]; then
  # Fall back to the image package itself (unpacked, not installed).
  binpkg=$(in_root apt-cache search --names-only "^linux-image-${kver//+/\\+}\$" | awk '{print $1}' | head -1)
fi
[ -n "$binpkg" ] || {
  echo "kernel-env: no kernel package for $kver in the archive" >&2
  exit 1
}
t1=$(date +%s)
mkdir -p "$root.new/opt/kernel" "$root.new/var/tmp/vtsm-deb"
(cd "$root.new/var/tmp/vtsm-deb" && in_root sh -c "cd /var/tmp/vtsm-deb && apt-get download -qq -o APT::Sandbox::User=root $binpkg")
deb=$(compgen -G "$root.new/var/tmp/vtsm-deb/*.deb" | head -1)
dpkg-deb -x "$deb" "$root.new/opt/kernel"
rm -rf "$root.new/var/tmp/vtsm-deb"
[ -n "$(vmlinuz "$root.new")" ] || {
  echo "kernel-env: $binpkg has no vmlinuz" >&2
  exit 1
}
say "kernel $binpkg: $(($(date +%s) - t1)) s"
add_nvme "$root.new" "$kver" || exit 1
in_root apt-get clean

echo "recipe=$recipe" >"$root.new/.vtsm-kernel-env"
rm -rf --one-file-system "$root"
mv "$root.new" "$root"
say "created $root (kernel $kver, $(du -sm "$root" | cut -f1) MB) in $(($(date +%s) - t0)) s"
