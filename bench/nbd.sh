#!/bin/bash
# bench/nbd.sh - our NBD target (dp-nbd-serve) against qemu-nbd and nbdkit (file plugin)
# on the same backing files (tmpfs and disk), same fio jobs, one run. Prints a ratio table.
#
#   bench/nbd.sh                      # defaults: RUNTIME=6 RAMP=1 REPS=3
#   REPS=1 RUNTIME=3 bench/nbd.sh     # quick
# Env: DP_NBD_SERVE (default agent/native/build/dp-nbd-serve), BENCH_DIR (/tmp/bench: the
# "disk" file; /dev/shm holds the tmpfs one), SIZE_MB (1024), BACKINGS ("shm disk"),
# PORT (10899), OUT (results dir), REACTORS (1).
# Client: fio --ioengine=nbd (libnbd), one connection, iodepth 32, as in the reference baselines.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVE=${DP_NBD_SERVE:-$ROOT/agent/native/build/dp-nbd-serve}
BENCH_DIR=${BENCH_DIR:-/tmp/bench}
SIZE_MB=${SIZE_MB:-1024}
RUNTIME=${RUNTIME:-6}
RAMP=${RAMP:-1}
REPS=${REPS:-3}
PORT=${PORT:-10899}
REACTORS=${REACTORS:-1}
BACKINGS=${BACKINGS:-"shm disk"}
OUT=${OUT:-$(mktemp -d /tmp/nbd-bench.XXXXXX)}
JOBS="randread:4k randwrite:4k read:128k write:128k"
SERVERS="ours qemu-nbd nbdkit"

[ -x "$SERVE" ] || { echo "missing $SERVE: run 'make -C agent/native'" >&2; exit 1; }
for t in fio qemu-nbd nbdkit python3; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done

mkdir -p "$BENCH_DIR"
file_for() { [ "$1" = shm ] && echo /dev/shm/nbd-bench.img || echo "$BENCH_DIR/nbd-bench.img"; }
for b in $BACKINGS; do
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
stop_server() { [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }; }
trap stop_server EXIT

start_server() { # name file -> sets PID, URI
  case $1 in
    ours) "$SERVE" --listen 127.0.0.1:$PORT --export disk --reactors "$REACTORS" "uring://$2" >"$OUT/ours.log" 2>&1 &
          PID=$!; URI=nbd://127.0.0.1:$PORT/disk ;;
    # as in the reference baselines: O_DIRECT + native AIO
    qemu-nbd) qemu-nbd -f raw -x disk -b 127.0.0.1 -p $PORT --persistent --shared=8 --cache=none --aio=native "$2" &
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
      start_server $s "$f"
      for j in $JOBS; do
        rw=${j%%:*}; bs=${j##*:}
        fio --name="$rw-$bs" --ioengine=nbd --uri="$URI" --rw="$rw" --bs="$bs" --iodepth=32 --numjobs=1 \
            --time_based --runtime="$RUNTIME" --ramp_time="$RAMP" --randrepeat=0 --norandommap \
            --output-format=json >"$OUT/$b.$s.$rw-$bs.$rep.json" 2>"$OUT/$b.$s.$rw-$bs.$rep.err" \
          || echo "fio failed: $b $s $rw-$bs rep $rep (see $OUT)" >&2
      done
      stop_server
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
print(f"| backing | job | ours | qemu-nbd | nbdkit | ratio | target | met |")
print(f"|---|---|---|---|---|---|---|---|")
allmet = True
for b in backings:
    for j in jobs:
        o, q, n = (val(b, s, j) for s in ("ours", "qemu-nbd", "nbdkit"))
        best = max(q, n)
        ratio = o / best if best else 0.0
        tgt = 1.3 if j.endswith("4k") else 1.0
        met = ratio >= tgt
        allmet &= met
        print(f"| {b} | {j} | {o:,.0f} | {q:,.0f} | {n:,.0f} | {ratio:.2f}x | {tgt}x | {'yes' if met else 'NO'} |")
print("\nall targets met" if allmet else "\nsome targets missed")
PY
