#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs: the Debian packages of
# .ci/debian-packages, the NVMe/TCP test guest (kernel + initramfs, cached under .tmp/guest),
# the npm dependencies, and the native + TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
missing=()
for p in $(cat .ci/debian-packages); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "== test guest (scripts/guest/build.sh)"
bash scripts/guest/build.sh

echo "== npm ci"
npm ci --no-audit --no-fund

echo "== build"
npm run build
