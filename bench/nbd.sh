#!/bin/bash
# bench/nbd.sh - our NBD target (dp-nbd-serve) against qemu-nbd and nbdkit (file plugin)
# on the same backing files (tmpfs and disk), same fio jobs, one run. Prints a ratio table.
#
#   bench/nbd.sh                      # defaults: RUNTIME=6 RAMP=1 REPS=3
#   REPS=1 RUNTIME=3 bench/nbd.sh     # quick
# Env: BUILD (agent/native/$BUILD/dp-nbd-serve, default build) or DP_NBD_SERVE, BENCH_DIR
# (/tmp/bench: the "disk" file; /dev/shm holds the tmpfs one), SIZE_MB (1024),
# BACKINGS ("shm disk disk-buffered"), PORT (10899), OUT (results dir), REACTORS (1).
# Client: fio --ioengine=nbd (libnbd), one connection, iodepth 32, as in the reference baselines.
#
# Cache modes (the table says which each row used):
#   shm            ours: tmpfs, I/O inline on the reactor (cache mode is moot on tmpfs);
#                  qemu-nbd --cache=none --aio=native (as in the reference baselines); nbdkit file.
#   disk           ours: uring://FILE (default cache=direct, O_DIRECT);
#                  qemu-nbd --cache=none --aio=native (O_DIRECT, like for like);
#                  nbdkit file (page cache: it has no O_DIRECT option).
#   disk-buffered  ours: uring://FILE?cache=buffered; qemu-nbd --cache=writeback --aio=threads;
#                  nbdkit file: all three through the page cache.
# "vs qemu-nbd" compares with qemu-nbd in the same cache mode. The page cache is synced
# (sync) after every server so one server's dirty pages do not slow down the next.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVE=${DP_NBD_SERVE:-$ROOT/agent/native/${BUILD:-build}/dp-nbd-serve}
BENCH_DIR=${BENCH_DIR:-/tmp/bench}
SIZE_MB=${SIZE_MB:-1024}
RUNTIME=${RUNTIME:-6}
RAMP=${RAMP:-1}
REPS=${REPS:-3}
PORT=${PORT:-10899}
REACTORS=${REACTORS:-1}
BACKINGS=${BACKINGS:-"shm disk disk-buffered"}
OUT=${OUT:-$(mktemp -d /tmp/nbd-bench.XXXXXX)}
mkdir -p "$OUT"
JOBS="randread:4k randwrite:4k read:128k write:128k"
SERVERS="ours qemu-nbd nbdkit"

[ -x "$SERVE" ] || { echo "missing $SERVE: run 'make -C agent/native BUILD=${BUILD:-build}'" >&2; exit 1; }
for t in fio qemu-nbd nbdkit python3; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done

mkdir -p "$BENCH_DIR"
file_for() { [ "$1" = shm ] && echo /dev/shm/nbd-bench.img || echo "$BENCH_DIR/nbd-bench.img"; }
for b in $BACKINGS; do
  case $b in shm|disk|disk-buffered) ;; *) echo "unknown backing '$b' (shm, disk, disk-buffered)" >&2; exit 2;; esac
  f=$(file_for $b)
  if [ ! -f "$f" ] || [ "$(stat -c %s "$f")" -ne $((SIZE_MB << 20)) ]; then
    echo "creating $f ($SIZE_MB MiB of random data)" >&2
    dd if=/dev/urandom of="$f" bs=1M count="$SIZE_MB" status=none
  fi
done
sync

wait_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 not up" >&2; return 1
}

PID=
stop_server() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; fi; }
trap stop_server EXIT

start_server() { # name file backing -> sets PID, URI
  local q="" qcache="--cache=none --aio=native"
  if [ "$3" = disk-buffered ]; then q="?cache=buffered"; qcache="--cache=writeback --aio=threads"; fi
  case $1 in
    ours) "$SERVE" --listen 127.0.0.1:$PORT --export disk --reactors "$REACTORS" "uring://$2$q" >"$OUT/ours.log" 2>&1 &
          PID=$!; URI=nbd://127.0.0.1:$PORT/disk ;;
    # shm, disk: as in the reference baselines, O_DIRECT + native AIO
    qemu-nbd) qemu-nbd -f raw -x disk -b 127.0.0.1 -p $PORT --persistent --shared=8 $qcache "$2" &
          PID=$!; URI=nbd://127.0.0.1:$PORT/disk ;;
    # nbdkit 1.32's file plugin has no O_DIRECT option: page cache
    nbdkit) nbdkit -f -i 127.0.0.1 -p $PORT file file="$2" &
          PID=$!; URI=nbd://127.0.0.1:$PORT/ ;;
  esac
  wait_port $PORT
}

for b in $BACKINGS; do
  f=$(file_for $b)
  for rep in $(seq 1 "$REPS"); do
    for s in $SERVERS; do
      start_server $s "$f" $b
      for j in $JOBS; do
        rw=${j%%:*}; bs=${j##*:}
        fio --name="$rw-$bs" --ioengine=nbd --uri="$URI" --rw="$rw" --bs="$bs" --iodepth=32 --numjobs=1 \
            --time_based --runtime="$RUNTIME" --ramp_time="$RAMP" --randrepeat=0 --norandommap \
            --output-format=json >"$OUT/$b.$s.$rw-$bs.$rep.json" 2>"$OUT/$b.$s.$rw-$bs.$rep.err" \
          || echo "fio failed: $b $s $rw-$bs rep $rep (see $OUT)" >&2
      done
      stop_server
      sync
    done
  done
done

python3 - "$OUT" "$BACKINGS" "$REPS" <<'PY'
import json, sys, statistics, os
out, backings, reps = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
jobs = ["randread-4k", "randwrite-4k", "read-128k", "write-128k"]
def val(b, s, j):
    v = []
    for r in range(1, reps + 1):
        p = f"{out}/{b}.{s}.{j}.{r}.json"
        try:
            t = open(p).read()  # fio's nbd engine prints a line before the JSON
            d = json.loads(t[t.index("{"):])["jobs"][0]
            x = d["read"] if d["read"]["io_bytes"] > 0 else d["write"]
            v.append(x["iops"] if j.endswith("4k") else x["bw"] / 1024)
        except Exception:
            pass
    return statistics.median(v) if v else 0.0
print(f"\nNBD benchmark: fio --ioengine=nbd, iodepth 32, 1 connection, median of {reps} run(s); results in {out}")
print("4k jobs in IOPS, 128k jobs in MiB/s; ratio = ours / better peer; target 4k >= 1.3x, 128k >= 1.0x\n")
modes = {"shm": "tmpfs inline / none+native / page cache",
         "disk": "direct / none+native / page cache",
         "disk-buffered": "buffered / writeback+threads / page cache"}
print(f"| backing | cache: ours / qemu-nbd / nbdkit | job | ours | qemu-nbd | nbdkit | ratio vs better | target | met | vs qemu-nbd (same mode) |")
print(f"|---|---|---|---|---|---|---|---|---|---|")
allmet = True
for b in backings:
    for j in jobs:
        o, q, n = (val(b, s, j) for s in ("ours", "qemu-nbd", "nbdkit"))
        best = max(q, n)
        ratio = o / best if best else 0.0
        tgt = 1.3 if j.endswith("4k") else 1.0
        met = ratio >= tgt
        allmet &= met
        vq = o / q if q else 0.0
        print(f"| {b} | {modes[b]} | {j} | {o:,.0f} | {q:,.0f} | {n:,.0f} | {ratio:.2f}x | {tgt}x | {'yes' if met else 'NO'} | {vq:.2f}x |")
print("\nall targets met" if allmet else "\nsome targets missed")
PY
