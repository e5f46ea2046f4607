#!/usr/bin/env bash
# Build the throwaway NVMe/TCP test guest: a Debian 6.1 kernel (uncompressed vmlinux, booted by QEMU's
# PVH entry point, ~5 s faster than the bzImage under TCG) and a busybox initramfs with the nvme-tcp
# host, nvmet/nvmet-tcp target, brd, ext4 and virtio-net modules, nvme-cli and e2fsprogs.
# The init (scripts/guest/init) runs the script that scripts/guest/boot.sh (or test/helpers/guest.ts)
# appends as a second cpio archive.
#
# Output: $GUEST_DIR/{vmlinux,initramfs.cpio.gz,stamp}; GUEST_DIR defaults to <repo>/.tmp/guest.
# Cached: rebuilt only when this script, the init, the kernel version or the package versions change.
# Needs (Debian 12): qemu-system-x86 busybox-static nvme-cli e2fsprogs cpio python3, and apt lists
# (apt-get update) for `apt-get download linux-image-6.1.0-N-amd64`.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
GUEST_DIR=${GUEST_DIR:-$HERE/../../.tmp/guest}
mkdir -p "$GUEST_DIR/dl"
GUEST_DIR=$(cd "$GUEST_DIR" && pwd)
# One build at a time per cache directory (parallel test runs share it).
exec 9>"$GUEST_DIR/.lock"
flock 9
log() { echo "guest-build: $*" >&2; }
die() { log "error: $*"; exit 1; }

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

newest_kernel() {
  apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null | cut -d' ' -f1 |
    sed 's/^linux-image-//' | sort -V | tail -1
}

# The kernel: KVER if given, else the newest Debian 6.1 one the apt lists know (apt-get update once if none).
KVER=${KVER:-$(newest_kernel)}
if [ -z "$KVER" ]; then
  cached=$(ls "$GUEST_DIR"/dl/linux-image-6.1.0-*-amd64_*.deb 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$cached" ]; then
    KVER=$(basename "$cached" | sed 's/^linux-image-\([^_]*\)_.*/\1/')
  else
    log "no linux-image-6.1.0-*-amd64 in the apt lists: apt-get update"
    $SUDO apt-get update -q >&2 || die "apt-get update failed"
    KVER=$(newest_kernel)
    [ -n "$KVER" ] || die "no linux-image-6.1.0-*-amd64 package in the apt lists"
  fi
fi

for tool in busybox nvme mke2fs e2fsck cpio python3; do
  command -v $tool >/dev/null || [ -x /bin/$tool ] || [ -x /sbin/$tool ] || die "missing $tool (see .ci/debian-packages)"
done
[ -x /bin/busybox ] || die "missing /bin/busybox (package busybox-static)"
{ ldd /bin/busybox 2>&1 || true; } | grep -q "not a dynamic" || die "/bin/busybox is not static (install busybox-static)"

pkgver() { dpkg-query -W -f='${Package}=${Version} ' "$@" 2>/dev/null || true; }
key=$(
  {
    echo "$KVER"
    pkgver busybox-static nvme-cli libnvme1 e2fsprogs
    cat "$HERE/build.sh" "$HERE/init"
  } | sha256sum | cut -d' ' -f1
)
if [ -f "$GUEST_DIR/stamp" ] && [ "$(cat "$GUEST_DIR/stamp")" = "$key" ] &&
  [ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/initramfs.cpio.gz" ]; then
  log "up to date ($GUEST_DIR, kernel $KVER)"
  exit 0
fi

# Download with retries; a stale apt list (404) gets one apt-get update.
deb=$(ls "$GUEST_DIR"/dl/linux-image-"${KVER}"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  for attempt in 1 2 3; do
    (cd "$GUEST_DIR/dl" && apt-get download "linux-image-$KVER" >&2) && break
    log "apt-get download linux-image-$KVER failed (attempt $attempt)"
    [ "$attempt" = 3 ] && die "cannot download linux-image-$KVER"
    $SUDO apt-get update -q >&2 || true
    sleep $((attempt * 5))
  done
  deb=$(ls "$GUEST_DIR"/dl/linux-image-"${KVER}"_*.deb | head -1)
  # Older kernels' packages (70 MB each) are not needed any more.
  find "$GUEST_DIR/dl" -name 'linux-image-*.deb' ! -name "linux-image-${KVER}_*" -delete
fi
log "kernel $KVER from $(basename "$deb")"

work=$GUEST_DIR/work
rm -rf "$work"
mkdir -p "$work"
dpkg-deb -x "$deb" "$work/root"
vmlinuz=$work/root/boot/vmlinuz-$KVER
[ -f "$vmlinuz" ] || die "no /boot/vmlinuz-$KVER in $deb"
# Debian's bzImage payload is xz: unpack the ELF vmlinux for the PVH entry point.
python3 - "$vmlinuz" "$work/vmlinux" <<'PY'
import lzma, sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\xfd7zXZ\x00")
if i < 0:
    sys.exit("vmlinuz: no xz payload")
open(sys.argv[2], "wb").write(lzma.LZMADecompressor().decompress(d[i:]))
PY

I=$work/initramfs
mkdir -p "$I"/{bin,sbin,dev,proc,sys,tmp,mnt,run,etc/nvme,lib/modules,lib64,lib/x86_64-linux-gnu}
cp /bin/busybox "$I/bin/busybox"

# Modules in load order (dependencies first); Debian 6.1's .ko files are uncompressed.
MODS="crct10dif_common crct10dif_generic crc-t10dif crc64 crc64_rocksoft_generic crc64-rocksoft t10-pi
      crc32c_generic libcrc32c crc16 mbcache jbd2 ext4 configfs brd
      nvme-common nvme-core nvme-fabrics nvme-tcp nvmet nvmet-tcp
      failover net_failover virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_net"
mdir=$work/root/lib/modules/$KVER
: >"$I/lib/modules/order"
for m in $MODS; do
  f=$(find "$mdir/kernel" -name "$m.ko" | head -1)
  if [ -n "$f" ]; then
    cp "$f" "$I/lib/modules/"
    echo "$m" >>"$I/lib/modules/order"
  elif grep -q "/${m//-/[-_]}\.ko$" "$mdir/modules.builtin" 2>/dev/null; then
    :
  else
    case $m in nvme-common | crc64* | crc-t10dif | crct10dif* | t10-pi) ;; *) die "module $m is neither a .ko nor built in" ;; esac
  fi
done

# Dynamically linked tools and their libraries.
copy_bin() { # $1 = binary, $2 = directory in the image
  cp -L "$1" "$I/$2/"
  for l in $(ldd "$1" | grep -o '/[^ ]*'); do
    mkdir -p "$I$(dirname "$l")"
    cp -L "$l" "$I$l"
  done
}
copy_bin "$(command -v nvme)" sbin
copy_bin "$(command -v mke2fs || echo /sbin/mke2fs)" sbin
copy_bin "$(command -v e2fsck || echo /sbin/e2fsck)" sbin
ln -sf mke2fs "$I/sbin/mkfs.ext4"
ln -sf e2fsck "$I/sbin/fsck.ext4"
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$I/etc/"
echo "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555" >"$I/etc/nvme/hostnqn"
echo "11111111-2222-3333-4444-555555555555" >"$I/etc/nvme/hostid"
cp "$HERE/init" "$I/init"
chmod +x "$I/init"

(cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.cpio.gz"
mv "$work/vmlinux" "$work/initramfs.cpio.gz" "$GUEST_DIR/"
echo "$KVER" >"$GUEST_DIR/kernel-version"
rm -rf "$work"
echo "$key" >"$GUEST_DIR/stamp"
log "built $GUEST_DIR/vmlinux and initramfs.cpio.gz ($(du -h "$GUEST_DIR/initramfs.cpio.gz" | cut -f1)) for $KVER"
