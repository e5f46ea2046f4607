/**
 * Rebuild throughput (issue 4): a nexus over one child with data written through its NBD export
 * gets a second child (POST /v1/nexuses/{uuid}/children); we time POST -> child "online" by polling
 * GET (every BENCH_POLL_MS), and compare with a raw sequential copy of the same number of bytes
 * between two files of the same backing in the same run (dd bs=1M; O_DIRECT on disk, buffered +
 * fdatasync on tmpfs, which has no O_DIRECT). Target: rebuild >= 0.7x the raw copy.
 *
 * Cases:
 *   thick - thick source and thick new child, BENCH_REBUILD_MB written (the whole volume);
 *   thin  - thin source and thin new child, a volume of 2 x BENCH_REBUILD_MB with every other
 *           4 MiB pool cluster written (BENCH_REBUILD_MB allocated): only allocated ranges are
 *           copied, so the raw copy it is compared with moves BENCH_REBUILD_MB too. The writes are
 *           aligned to the child's clusters: nexus offset x is child offset x + 1 MiB (the label
 *           header), so they start at nexus offset 3 MiB;
 *   thin-nexus-aligned - the same amount written at nexus offsets 0, 8, 16 MiB... as an application
 *           would: each 4 MiB write then straddles two child clusters, so the source allocates
 *           (and the rebuild copies) twice the data. Shown for the allocation columns; its
 *           ratio counts the data written, as a user sees it.
 * The agent runs with --cluster-size 4 MiB (its default) so these offsets hold.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/nexus-rebuild.js
 * Env: BENCH_BACKINGS ("shm"; "shm disk"), BENCH_REBUILD_MB (512), BENCH_CASES ("thick thin thin-nexus-aligned"),
 *      BENCH_POLL_MS (10), BENCH_REPS (1, median), BENCH_DIR (disk backing dir, /var/tmp).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AgentClient } from '../agent/api/client';
import { BenchAgent, MiB, allocFile, envList, envNum, fio, fmt, median, mkBenchDir, runMain, sh, sleep, table, uuid } from './nexus-lib';

const TARGET = 0.7;

async function rebuildOnce(c: AgentClient, nexus: string, child: string, pollMs: number): Promise<{ secs: number; rate: number }> {
  const t0 = process.hrtime.bigint();
  await c.addNexusChild(nexus, child);
  let rate = 0;
  for (;;) {
    const n = await c.getNexus(nexus);
    if (!n) throw new Error(`nexus ${nexus} vanished during the rebuild`);
    const ch = n.children.find((x) => x.uri === child);
    if (!ch) throw new Error(`child ${child} vanished during the rebuild`);
    if (ch.state === 'online') return { secs: Number(process.hrtime.bigint() - t0) / 1e9, rate };
    rate = ch.rebuildRate ?? rate;
    if (ch.state === 'faulted' || ch.state === 'offline') throw new Error(`child ${child} went ${ch.state}: ${ch.reason ?? ''}`);
    await sleep(pollMs);
  }
}

function rawCopy(backing: string, src: string, dst: string, mib: number): number {
  const args = [`if=${src}`, `of=${dst}`, 'bs=1M', `count=${mib}`, 'status=none'];
  if (backing === 'disk') args.push('conv=notrunc', 'iflag=direct', 'oflag=direct');
  else args.push('conv=notrunc,fdatasync');
  const t0 = process.hrtime.bigint();
  sh('dd', args);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

runMain('nexus-rebuild', async () => {
  const backings = envList('BENCH_BACKINGS', 'shm');
  const cases = envList('BENCH_CASES', 'thick thin thin-nexus-aligned');
  const mib = envNum('BENCH_REBUILD_MB', 512);
  const pollMs = envNum('BENCH_POLL_MS', 10);
  const reps = envNum('BENCH_REPS', 1);
  const extra = ['--cluster-size', String(4 * MiB), ...(process.env.BENCH_REACTORS ? ['--reactors', process.env.BENCH_REACTORS] : [])];
  const rows: Array<Array<string | number>> = [];
  let allMet = true;

  for (const backing of backings) {
    for (const kind of cases) {
      const thin = kind.startsWith('thin');
      if (!['thick', 'thin', 'thin-nexus-aligned'].includes(kind)) throw new Error(`BENCH_CASES: unknown case '${kind}'`);
      const volume = (thin ? 2 : 1) * mib * MiB;
      const replicaSize = volume + 4 * MiB;
      const diskSize = replicaSize + 64 * MiB;
      const ours: number[] = [];
      const raw: number[] = [];
      let reported = 0;
      let allocs = '';
      for (let r = 0; r < reps; r++) {
        const dir = mkBenchDir(backing, 'rebuild');
        const a = new BenchAgent('bench-a', path.join(dir, 'a'), extra);
        try {
          await a.start();
          const c = a.client();
          const srcDisk = allocFile(path.join(a.dataDir, 'disks', 'src.img'), diskSize);
          const dstDisk = allocFile(path.join(a.dataDir, 'disks', 'dst.img'), diskSize);
          await c.putPool('src', { disks: [srcDisk] });
          await c.putPool('dst', { disks: [dstDisk] });
          const SRC = uuid(4, 1);
          const DST = uuid(4, 2);
          await c.putReplica(SRC, { pool: 'src', sizeBytes: replicaSize, thin });
          await c.putReplica(DST, { pool: 'dst', sizeBytes: replicaSize, thin });
          const NX = uuid(5, 1);
          const nx = await c.putNexus(NX, { sizeBytes: volume, children: [`bdev:///${SRC}`], share: 'nbd' });
          // fill: thick -> the whole volume; thin -> every other 4 MiB (rw=write:4m skips 4 MiB after each write)
          if (!thin) fio(nx.deviceUri, 'write', '1m', { iodepth: 8, extra: ['--end_fsync=1'] });
          else {
            const start = kind === 'thin' ? 3 : 0; // MiB: child cluster boundary (4 MiB - the 1 MiB header), or nexus 0
            fio(nx.deviceUri, 'write:4m', '4m', { iodepth: 8, extra: ['--end_fsync=1', `--offset=${start}m`, `--size=${2 * mib - 4}m`, `--io_size=${mib}m`] });
          }
          const srcAlloc = (await c.getReplica(SRC))?.allocatedBytes ?? 0;
          // the raw copy: same number of bytes, between two fallocated files on the same backing,
          // timed just before and just after the rebuild (the machine may be shared: both see its load)
          const rs = allocFile(path.join(dir, 'raw-src.img'), mib * MiB);
          const rd = allocFile(path.join(dir, 'raw-dst.img'), mib * MiB);
          sh('dd', ['if=/dev/urandom', `of=${rs}`, 'bs=1M', `count=${mib}`, 'conv=notrunc', 'status=none']);
          raw.push(rawCopy(backing, rs, rd, mib));
          const { secs, rate } = await rebuildOnce(c, NX, `bdev:///${DST}`, pollMs);
          ours.push(secs);
          reported = Math.max(reported, rate);
          allocs = `${fmt(srcAlloc / MiB)} / ${fmt(((await c.getReplica(DST))?.allocatedBytes ?? 0) / MiB)}`;
          raw.push(rawCopy(backing, rs, rd, mib));
        } finally {
          await a.stop().catch(() => undefined);
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
      const t = median(ours);
      const rt = median(raw);
      const ourRate = mib / t;
      const rawRate = mib / rt;
      const ratio = ourRate / rawRate;
      const met = ratio >= TARGET;
      allMet &&= met;
      rows.push([
        backing,
        kind,
        `${fmt(volume / MiB)} MiB`,
        `${fmt(mib)} MiB`,
        allocs,
        t.toFixed(2),
        fmt(ourRate),
        reported ? fmt(reported / MiB) : '-',
        rt.toFixed(2),
        fmt(rawRate),
        `${ratio.toFixed(2)}x`,
        `${TARGET}x`,
        met ? 'yes' : 'NO',
      ]);
      process.stderr.write(`nexus-rebuild: ${backing} ${kind}: rebuild ${t.toFixed(2)} s, raw copy ${rt.toFixed(2)} s\n`);
    }
  }
  process.stdout.write(
    `\nNexus rebuild benchmark: POST child -> child online (GET polled every ${pollMs} ms), median of ${reps}; ` +
      `raw copy = dd bs=1M of the same bytes between two files on the same backing\n` +
      `rate = data bytes / seconds; "agent rate" = the highest rebuildRate GET reported while rebuilding (nexus range processed per s, holes included)\n\n`,
  );
  process.stdout.write(
    table(
      [
        'backing',
        'case',
        'volume',
        'data written',
        'allocated MiB src / new child',
        'rebuild s',
        'rebuild MiB/s',
        'agent rate MiB/s',
        'raw copy s',
        'raw MiB/s',
        'ratio',
        'target',
        'met',
      ],
      rows,
    ),
  );
  process.stdout.write(allMet ? 'all targets met\n' : 'some targets missed\n');
  process.stdout.write(JSON.stringify({ bench: 'nexus-rebuild', rows }) + '\n');
});
