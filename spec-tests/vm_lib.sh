# shellcheck shell=bash
# The VM plumbing shared by the tests that boot Debian unstable's kernel under QEMU
# (spec-tests/kernel/kernel_boot.sh, spec-tests/qemu/qemu_spdm.sh): the chroot of
# scripts/kernel-env.sh, a work directory inside it, tsm-devemu instances on free
# loopback ports (reaped at exit), an initramfs with programs and their libraries, the
# boot, and the checks on the VM's report. Sourced after `src` and `bin` are set.
#
#   vm_skip WHY / vm_fail WHY   exit 77 (ctest: skipped) / exit 1 with the logs' tails
#   vm_env                      vm_chroot (root) + vm_debian_kernel (kver, kdir,
#                               kconfig, kimage of the chroot's kernel)
#   vm_work NAME                work (host path), cwork (as seen in the chroot)
#   vm_devemu NAME ARGS...      start tsm-devemu, its port in $vm_port, log work/NAME.log
#   vm_initramfs                work/initramfs with busybox, ready for vm_add_bin
#   vm_add_bin FILE...          copy programs and their libraries into the initramfs
#   vm_pack                     work/initramfs + work/init -> work/initrd.cpio
#   vm_boot SECONDS ARGS...     boot kimage with the initrd, extra QEMU ARGS; console in
#                               work/console.log, then work/console.txt (no CRs)
#   vm_out RE / check WHAT CMD  grep the VM's "VTSM-TEST: " lines / one named check

vm_pids=()
vm_logs=()
failed=0

vm_skip() {
  echo "SKIPPED: $*"
  exit 77
}

vm_fail() {
  local l
  echo "FAIL: $*"
  [ -n "${work:-}" ] && [ -f "$work/console.log" ] && {
    echo "--- console"
    tail -80 "$work/console.log"
  }
  for l in "${vm_logs[@]}"; do
    [ -f "$l" ] && {
      echo "--- ${l##*/}"
      tail -20 "$l"
    }
  done
  exit 1
}

vm_ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

# The chroot (QEMU, busybox) on a host that can use it; skips (77) otherwise.
vm_chroot() {
  root=$("$src/scripts/kernel-env.sh" --print 2>/dev/null) ||
    vm_skip "no kernel environment: run scripts/kernel-env.sh first (as root)"
  [ "$(id -u)" = 0 ] || vm_skip "needs root (chroot, mount namespace)"
  local tool
  for tool in unshare chroot; do
    command -v "$tool" >/dev/null || vm_skip "no $tool on this host"
  done
  # Sanitizer builds: a report inside the VM would reach neither the test's exit status
  # nor the sanitizer log directory, so such a run proves nothing.
  if ldd "$bin/tsm-devemu" | grep -qE 'lib(asan|tsan|ubsan)'; then
    vm_skip "sanitizer build: run this label on a plain build"
  fi
}

# The chroot's Debian kernel: kver, kdir (headers, as seen in the chroot), kconfig, kimage.
vm_debian_kernel() {
  local hdr
  hdr=$(cd "$root/usr/src" && compgen -G 'linux-headers-*-amd64' | sort -V | tail -1)
  [ -n "$hdr" ] || vm_skip "the chroot has no linux-headers-*-amd64"
  kver="${hdr#linux-headers-}"
  kdir="/usr/src/$hdr"
  kconfig="$root/usr/src/$hdr/.config"
  kimage=$(compgen -G "$root/opt/kernel/usr/lib/modules/$kver/vmlinuz" ||
    compgen -G "$root/opt/kernel/boot/vmlinuz-$kver") || vm_skip "no kernel image for $kver"
}

vm_env() {
  vm_chroot
  vm_debian_kernel
}

vm_work() {
  work=$(mktemp -d "$root/tmp/vtsm-$1.XXXXXX") || vm_fail "mktemp"
  cwork="/tmp/${work##*/}"
  trap vm_cleanup EXIT
}

vm_cleanup() {
  local p
  for p in "${vm_pids[@]}"; do
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  if [ "${VTSM_VM_KEEP:-${VTSM_KERNEL_KEEP:-0}}" = 1 ]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}

vm_devemu() {
  local name="$1"
  shift
  "$bin/tsm-devemu" --port 0 --port-file "$work/$name.port" "$@" >"$work/$name.log" 2>&1 &
  vm_pids+=($!)
  vm_logs+=("$work/$name.log")
  local _
  for _ in $(seq 100); do
    [ -s "$work/$name.port" ] && break
    sleep 0.05
  done
  [ -s "$work/$name.port" ] || vm_fail "tsm-devemu $name did not start"
  vm_port=$(cat "$work/$name.port")
}

vm_initramfs() {
  ir="$work/initramfs"
  mkdir -p "$ir"/{bin,sbin,lib,lib64,proc,sys,dev,tmp,etc}
  cp "$root/usr/bin/busybox" "$ir/bin/busybox"
}

vm_add_bin() {
  local b lib
  for b in "$@"; do
    cp "$b" "$ir/bin/"
    ldd "$b" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
      mkdir -p "$ir$(dirname "$lib")"
      cp -L "$lib" "$ir$lib"
    done
  done
}

vm_pack() {
  chmod +x "$ir/init"
  "$src/scripts/kernel-env.sh" --run sh -c \
    "cd $cwork/initramfs && find . | cpio -o -H newc --quiet > $cwork/initrd.cpio" ||
    vm_fail "initramfs"
}

vm_boot() {
  local secs="$1"
  shift
  cp "$kimage" "$work/kernel.img"
  timeout "$secs" "$src/scripts/kernel-env.sh" --run qemu-system-x86_64 -M q35 -accel tcg \
    -m 512 -smp 1 -nographic -nodefaults -no-reboot -monitor none -serial stdio \
    -kernel "$cwork/kernel.img" -initrd "$cwork/initrd.cpio" \
    -append "console=ttyS0 panic=-1 quiet pci=noaer" "$@" \
    </dev/null >"$work/console.log" 2>&1
  vm_rc=$?
  tr -d '\r' <"$work/console.log" >"$work/console.txt"
}

vm_out() { grep -a -E "VTSM-TEST: $1" "$work/console.txt"; }

check() {
  local what="$1"
  shift
  if "$@" >/dev/null; then
    echo "ok   $what"
  else
    echo "FAIL $what"
    failed=1
  fi
}
