/**
 * Volume snapshots (issue 13): a 3-replica nexus (three bdev:/// replicas, each in its own pool, thin, written
 * full first) exported over NBD; not a test, it prints a table.
 *  - the time of a volume snapshot (PUT /v1/nexuses/{uuid}/snapshots/{s}, HTTP round trip: pause, drain, flush,
 *    three replica snapshots, resume) while fio 4k randwrite QD32 runs, and its effect on that fio run;
 *  - the 4k randwrite QD32 IOPS for BENCH_RUNTIME s before a snapshot and right after one (every cluster then
 *    shared with the snapshot: the first write to each copies it, copy-on-first-write), and a second window after.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/snapshot.js
 * Env: BENCH_BACKINGS ("shm"; "shm disk" for both), BENCH_SIZE_MB (256), BENCH_RUNTIME (5 s a window),
 *      BENCH_CLUSTER (pool cluster size in bytes; default the agent's, 4 MiB), BENCH_SNAPS (5 snapshots under load).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BenchAgent, MiB, allocFile, envList, envNum, fio, fmt, median, mkBenchDir, runMain, sleep, table, uuid } from './nexus-lib';

/** fio in the background (time based), its JSON when it ends. */
function fioAsync(uri: string, runtime: number): Promise<{ iops: number; error: number }> {
  const args = [
    '--name=load',
    '--ioengine=nbd',
    `--uri=${uri}`,
    '--rw=randwrite',
    '--bs=4k',
    '--iodepth=32',
    '--norandommap',
    '--randrepeat=0',
    '--time_based',
    `--runtime=${runtime}`,
    '--output-format=json',
  ];
  const p = spawn('fio', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  return new Promise((resolve, reject) =>
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`fio failed (${code}): ${out}`));
      const j = (JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ error: number; write: { iops: number } }> }).jobs[0];
      resolve({ iops: j.write.iops, error: j.error });
    }),
  );
}

runMain('snapshot', async () => {
  const backings = envList('BENCH_BACKINGS', 'shm');
  const sizeMiB = envNum('BENCH_SIZE_MB', 256);
  const runtime = envNum('BENCH_RUNTIME', 5);
  const nsnaps = envNum('BENCH_SNAPS', 5);
  const cluster = process.env.BENCH_CLUSTER ? ['--cluster-size', process.env.BENCH_CLUSTER] : [];
  const size = sizeMiB * MiB;
  const replicaSize = size + 4 * MiB;
  const rows: Array<Array<string | number>> = [];
  for (const backing of backings) {
    const dir = mkBenchDir(backing, 'snapshot');
    const a = new BenchAgent('bench-a', path.join(dir, 'a'), cluster);
    try {
      await a.start();
      const c = a.client();
      const kids = [1, 2, 3].map((i) => uuid(7, i));
      for (let i = 0; i < 3; i++) {
        // room for the replica and a full copy in snapshots
        const f = allocFile(path.join(a.dataDir, 'disks', `c${i}.img`), 2 * replicaSize + 64 * MiB);
        await c.putPool(`c${i}`, { disks: [f] });
        await c.putReplica(kids[i], { pool: `c${i}`, sizeBytes: replicaSize, thin: true });
      }
      const NX = uuid(7, 100);
      const nx = await c.putNexus(NX, { sizeBytes: size, children: kids.map((k) => `bdev:///${k}`), share: 'nbd' });
      fio(nx.deviceUri, 'write', '1m', { iodepth: 8, size: `${sizeMiB}M` }); // every cluster allocated
      const before = fio(nx.deviceUri, 'randwrite', '4k', { runtime, ramp: 0 });

      // snapshots under load: time each, then delete it (the next one shares every cluster again)
      const times: number[] = [];
      const load = fioAsync(nx.deviceUri, runtime + nsnaps * 2 + 2);
      await sleep(1000);
      for (let i = 0; i < nsnaps; i++) {
        const G = uuid(8, i + 1);
        const t0 = process.hrtime.bigint();
        await c.putNexusSnapshot(NX, G);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        await sleep(1000);
        await c.deleteNexusSnapshot(NX, G);
        await sleep(1000);
      }
      const underLoad = await load;

      // the window right after a snapshot: every cluster is shared, each first write copies it
      const G = uuid(8, 99);
      await c.putNexusSnapshot(NX, G);
      const after1 = fio(nx.deviceUri, 'randwrite', '4k', { runtime, ramp: 0 });
      const after2 = fio(nx.deviceUri, 'randwrite', '4k', { runtime, ramp: 0 });
      await c.deleteNexusSnapshot(NX, G);
      await c.deleteNexus(NX);

      rows.push([
        backing,
        `${sizeMiB} MiB`,
        `${fmt(median(times), 1)} ms (min ${fmt(Math.min(...times), 1)}, max ${fmt(Math.max(...times), 1)}; n=${times.length})`,
        `${fmt(underLoad.iops)} (errors ${underLoad.error})`,
        fmt(before.iops),
        `${fmt(after1.iops)} (${fmt(after1.iops / before.iops, 2)}x)`,
        `${fmt(after2.iops)} (${fmt(after2.iops / before.iops, 2)}x)`,
      ]);
    } finally {
      await a.stop().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(
    table(
      [
        'backing',
        'volume',
        'volume snapshot under 4k randwrite QD32 (median)',
        'IOPS of that fio run',
        `4k randwrite IOPS before (${runtime} s)`,
        `first ${runtime} s after a snapshot`,
        `next ${runtime} s`,
      ],
      rows,
    ),
  );
});
