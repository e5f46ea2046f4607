#!/usr/bin/env bash
# Boot the test guest (scripts/guest/build.sh) under QEMU TCG and run SCRIPT in it; the console goes
# to stdout, the exit status is the script's (125 when the guest never reported one).
#   scripts/guest/boot.sh SCRIPT [HOSTPORT:GUESTPORT ...]
# Each HOSTPORT:GUESTPORT forwards host 127.0.0.1:HOSTPORT to the guest's 10.0.2.15:GUESTPORT.
# The guest reaches the host's 127.0.0.1 as 10.0.2.2. Env: GUEST_DIR, GUEST_MEM (MiB, default 512),
# GUEST_TIMEOUT (s, default 300). test/helpers/guest.ts does the same from the tests.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
GUEST_DIR=${GUEST_DIR:-$HERE/../../.tmp/guest}
[ $# -ge 1 ] && [ -f "$1" ] || {
  echo "usage: $0 SCRIPT [HOSTPORT:GUESTPORT ...]" >&2
  exit 2
}
script=$1
shift
bash "$HERE/build.sh"
fwd=""
for p in "$@"; do fwd="$fwd,hostfwd=tcp:127.0.0.1:${p%%:*}-10.0.2.15:${p##*:}"; done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The kernel unpacks concatenated cpio archives in order: the image, then the one holding /test.sh
# (an uncompressed archive must start 4-byte aligned; the zeros between them are skipped).
mkdir "$tmp/s"
cp "$script" "$tmp/s/test.sh"
(cd "$tmp/s" && echo test.sh | cpio -o -H newc --quiet) >"$tmp/script.cpio"
size=$(stat -c %s "$GUEST_DIR/initramfs.cpio.gz")
{
  cat "$GUEST_DIR/initramfs.cpio.gz"
  head -c $(((4 - size % 4) % 4)) /dev/zero
  cat "$tmp/script.cpio"
} >"$tmp/initrd"

timeout -k 5 "${GUEST_TIMEOUT:-300}" qemu-system-x86_64 -accel tcg -cpu max -machine q35 -m "${GUEST_MEM:-512}" -smp 1 \
  -nographic -no-reboot -vga none -kernel "$GUEST_DIR/vmlinux" -initrd "$tmp/initrd" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3" \
  -netdev "user,id=n0,restrict=off$fwd" -device virtio-net-pci,netdev=n0,romfile= </dev/null | tee "$tmp/console"
rc=$(tr -d '\r' <"$tmp/console" | sed -n 's/^@@GUEST exit=\([0-9]*\)@@$/\1/p' | tail -1)
exit "${rc:-125}"
