#!/bin/bash
# Integration test of the NBD target and the nbd:// child bdev with Debian's real clients
# (nbdinfo, qemu-io, qemu-img, fio's nbd engine) against agent/native's dp-nbd-serve.
#   test/integration/nbd-target.sh            (BUILD=agent/native/build by default)
# Needs: make -C agent/native all $BUILD/dp-nbd-serve-asan
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/agent/native/build}
SERVE=$BUILD/dp-nbd-serve
SERVE_ASAN=$BUILD/dp-nbd-serve-asan
T=$(mktemp -d /tmp/nbd-it.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log; do echo "--- $f"; cat "$f"; done >&2; exit 1; }
pass() { echo "ok    $*"; }

# start NAME ARGS... : runs a server with --port-file, sets PORT_<NAME> and PID_<NAME>
start() {
  local name=$1 bin=$2; shift 2
  "$bin" --listen 127.0.0.1:0 --port-file "$T/$name.port" "$@" >"$T/$name.log" 2>&1 &
  local pid=$!; PIDS+=("$pid"); eval "PID_$name=$pid"
  for _ in $(seq 100); do [ -s "$T/$name.port" ] && break; kill -0 $pid 2>/dev/null || fail "$name did not start"; sleep 0.05; done
  eval "PORT_$name=$(cat "$T/$name.port")"
}

# 1. a 64 MiB file-backed export (ASan build: every path below runs under the sanitizer)
truncate -s 64M "$T/disk.img"
start a "$SERVE_ASAN" --export disk "uring://$T/disk.img"
U=nbd://127.0.0.1:$PORT_a/disk

out=$(nbdinfo --json "$U")
echo "$out" | python3 -c '
import json,sys; e=json.load(sys.stdin)["exports"][0]
assert e["export-size"] == 64<<20, e
for k in ("can_flush","can_fua","can_trim","can_zero","can_multi_conn","can_df"): assert e[k] is True, k
assert e["is_read_only"] is False and e["block_size_preferred"] == 4096 and e["block_size_maximum"] == 32<<20, e
assert "base:allocation" in e.get("contexts", []), e' || fail "nbdinfo size/flags: $out"
pass "nbdinfo: size 64 MiB, flush/fua/trim/zero/multi-conn/df, block sizes, base:allocation"
nbdinfo --list "nbd://127.0.0.1:$PORT_a" | grep -q 'export="disk"' || fail "nbdinfo --list"
pass "nbdinfo --list shows the export"

qemu-io -f raw -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 1M 64k' -c 'write -P 0x11 60M 4M' -c flush \
  -c 'read -P 0xab 0 1M' -c 'read -P 0xcd 1M 64k' -c 'read -P 0x11 60M 4M' -c 'read -P 0 2M 4k' \
  -c 'write -z 1M 64k' -c 'read -P 0 1M 64k' -c 'discard 0 64k' -c 'read -P 0 0 64k' "$U" >"$T/qemu-io.out" 2>&1 \
  || fail "qemu-io: $(cat "$T/qemu-io.out")"
! grep -qi "fail\|error" "$T/qemu-io.out" || fail "qemu-io: $(cat "$T/qemu-io.out")"
pass "qemu-io: patterns written and read back, write-zeroes, discard"

head -c 64M /dev/urandom > "$T/in.raw"
qemu-img convert -n -f raw -O raw "$T/in.raw" "$U"
qemu-img convert -f raw -O raw "$U" "$T/out.raw"
cmp "$T/in.raw" "$T/out.raw" || fail "qemu-img convert in/out differ"
cmp "$T/in.raw" "$T/disk.img" || fail "backing file differs from what was written"
pass "qemu-img convert in and out: byte-identical (and the backing file holds it)"

fio --name=verify --ioengine=nbd --uri="$U" --rw=randwrite --bs=4k --iodepth=32 --size=64M \
    --verify=crc32c --verify_state_save=0 --do_verify=1 --output="$T/fio.out" >/dev/null 2>&1 || fail "fio verify: $(cat "$T/fio.out")"
grep -q "err= 0" "$T/fio.out" || fail "fio: $(cat "$T/fio.out")"
fio --name=verify2 --ioengine=nbd --uri="$U" --rw=write --bs=128k --iodepth=32 --size=64M \
    --verify=crc32c --verify_state_save=0 --do_verify=1 --output="$T/fio2.out" >/dev/null 2>&1 || fail "fio verify 128k: $(cat "$T/fio2.out")"
pass "fio --ioengine=nbd --verify=crc32c on 64 MiB (4k random QD32, 128k sequential)"

# 2. hostile frames; the server keeps serving
python3 "$ROOT/test/integration/nbd_hostile.py" "$PORT_a" disk >"$T/hostile.out" 2>&1 || fail "hostile: $(cat "$T/hostile.out")"
nbdinfo --size "$U" | grep -qx 67108864 || fail "server stopped serving after hostile input"
pass "hostile frames ($(grep -c '^ok' "$T/hostile.out") cases): error or close, server keeps serving"

# 3. flushed data survives kill -9 of the server
qemu-io -f raw -c 'write -P 0x77 8M 1M' -c flush "$U" >/dev/null
kill -9 "$PID_a"; wait "$PID_a" 2>/dev/null || true
start a2 "$SERVE" --export disk "uring://$T/disk.img"
qemu-io -f raw -c 'read -P 0x77 8M 1M' "nbd://127.0.0.1:$PORT_a2/disk" | grep -q "read 1048576" || fail "data lost after kill -9"
pass "flushed data survives kill -9 and restart"

# 4. allowed hosts
start p "$SERVE" --export locked --allowed 10.9.9.9,192.168.0.0/16 "malloc:///lk?size_mb=8"
if nbdinfo "nbd://127.0.0.1:$PORT_p/locked" >"$T/policy.out" 2>&1; then fail "disallowed peer got in"; fi
python3 - "$PORT_p" <<'PY' || fail "expected NBD_REP_ERR_POLICY"
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.recv(18); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, 12) + struct.pack(">I", 6) + b"locked" + struct.pack(">H", 0))
b = b""
while len(b) < 20: b += s.recv(20 - len(b))
assert struct.unpack(">QIII", b)[2] == 0x80000002, b
PY
nbdinfo --list "nbd://127.0.0.1:$PORT_p" 2>&1 | grep -q locked && fail "LIST shows a forbidden export"
pass "allowedHosts: a peer not on the list is refused (NBD_REP_ERR_POLICY)"
kill "$PID_p"

# 5. thin replica: holes in nbdinfo --map, discard returns space
if start th "$SERVE" --export thin --thin-replica 64 "uring://$(truncate -s 256M "$T/pool.img"; echo "$T/pool.img")" 2>/dev/null; then
  TU=nbd://127.0.0.1:$PORT_th/thin
  [ "$(nbdinfo --map "$TU" | awk '{print $3}')" = 3 ] || fail "fresh thin replica not a hole: $(nbdinfo --map "$TU")"
  qemu-io -f raw -c 'write -P 1 8M 1M' "$TU" >/dev/null
  nbdinfo --map "$TU" | grep -q "data" || fail "no data extent after a write"
  nbdinfo --map "$TU" | grep -q "hole,zero" || fail "no hole around the written range"
  kill -USR1 "$PID_th"; sleep 0.3
  before=$(grep allocated_bytes "$T/th.log" | tail -1 | cut -d= -f2)
  qemu-io -f raw -c 'discard 0 64M' "$TU" >/dev/null
  kill -USR1 "$PID_th"; sleep 0.3
  after=$(grep allocated_bytes "$T/th.log" | tail -1 | cut -d= -f2)
  [ "$before" -gt 0 ] && [ "$after" -lt "$before" ] || fail "discard did not free space ($before -> $after)"
  qemu-img map -f raw --output=json "$TU" | grep -q '"data": false' || fail "qemu-img map sees no hole"
  pass "thin replica: nbdinfo --map shows holes; discard frees space (allocated $before -> $after)"
  kill "$PID_th"
fi

# 6. remote nbd:// child bdev: B serves A's export through the nbd:// client
start base "$SERVE" --export base "malloc:///base?size_mb=64"
start chain "$SERVE_ASAN" --export chain "nbd://127.0.0.1:$PORT_base/base?io_timeout_ms=2000&connect_timeout_ms=2000"
CU=nbd://127.0.0.1:$PORT_chain/chain
qemu-io -f raw -c 'write -P 0x3c 0 2M' -c flush -c 'read -P 0x3c 0 2M' "$CU" | grep -q "read 2097152" || fail "nbd:// child read/write"
qemu-io -f raw -c 'read -P 0x3c 0 2M' "nbd://127.0.0.1:$PORT_base/base" | grep -q "read 2097152" || fail "data not on the remote"
fio --name=chain --ioengine=nbd --uri="$CU" --rw=randrw --bs=4k --iodepth=32 --size=16M \
    --verify=crc32c --verify_state_save=0 --output="$T/fio3.out" >/dev/null 2>&1 || fail "fio through nbd:// child: $(cat "$T/fio3.out")"
pass "nbd:// child bdev: remote write/read (qemu-io, fio verify) through a second server"

# killed remote: I/O fails with a clear error, no hang
kill -9 "$PID_base"; wait "$PID_base" 2>/dev/null || true
start_t=$(date +%s)
if timeout 20 qemu-io -f raw -c 'read 0 4k' "$CU" >"$T/dead.out" 2>&1; then fail "read succeeded with the remote dead"; fi
[ $(( $(date +%s) - start_t )) -lt 15 ] || fail "I/O hung with the remote dead"
grep -qi "input/output error" "$T/dead.out" || fail "unclear client error: $(cat "$T/dead.out")"
grep -q "nbd://127.0.0.1:$PORT_base/base: connection lost" "$T/chain.log" || fail "error does not name the peer: $(cat "$T/chain.log")"
pass "remote killed: I/O fails with EIO, the log names the peer ($(grep -m1 "connection lost" "$T/chain.log"))"

# hung remote (SIGSTOP): I/O times out (-ETIMEDOUT) instead of hanging
start base2 "$SERVE" --export base "malloc:///b2?size_mb=16"
start chain2 "$SERVE" --export chain "nbd://127.0.0.1:$PORT_base2/base?io_timeout_ms=1000"
qemu-io -f raw -c 'write -P 1 0 4k' "nbd://127.0.0.1:$PORT_chain2/chain" >/dev/null
kill -STOP "$PID_base2"
if timeout 30 qemu-io -f raw -c 'read 0 4k' "nbd://127.0.0.1:$PORT_chain2/chain" >"$T/hung.out" 2>&1; then fail "read succeeded with the remote stopped"; fi
grep -q "timed out" "$T/chain2.log" || fail "no timeout message: $(cat "$T/chain2.log")"
kill -CONT "$PID_base2"
pass "remote hung: I/O fails after io_timeout_ms ($(grep -m1 "timed out" "$T/chain2.log"))"
# and the child reconnects once the remote is back
for _ in $(seq 50); do
  qemu-io -f raw -c 'read -P 1 0 4k' "nbd://127.0.0.1:$PORT_chain2/chain" 2>/dev/null | grep -q "read 4096" && break; sleep 0.2
done
qemu-io -f raw -c 'read -P 1 0 4k' "nbd://127.0.0.1:$PORT_chain2/chain" | grep -q "read 4096" || fail "no reconnect"
pass "nbd:// child reconnects with backoff after the remote recovers"

# ASan servers exit cleanly (no leak/UAF reports) on SIGTERM
for n in a2 chain; do eval "p=\$PID_$n"; kill "$p"; wait "$p" || fail "$n exited with $? ($(tail -5 "$T/$n.log"))"; done
kill "$PID_a2" 2>/dev/null || true
! grep -q "ERROR: AddressSanitizer\|runtime error" "$T"/*.log || fail "sanitizer report"
pass "sanitizer-built servers: no ASan/UBSan/leak reports"
echo "all NBD integration checks passed"
