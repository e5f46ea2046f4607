/**
 * Idle cost of nexuses (issue 4): one agent with 10 nexuses, each over 2 replicas and shared over
 * NBD, sits idle for BENCH_IDLE_SECONDS (30); CPU (utime+stime of every thread, /proc/PID/stat) as
 * a share of one core, and RSS. Side by side in the same run: the same agent with the same 20
 * replicas before any nexus exists. Target: < 1% of one core with the nexuses.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/nexus-idle.js
 * Env: BENCH_IDLE_SECONDS (30), BENCH_NEXUSES (10), BENCH_BACKINGS (first one used; "shm").
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  BenchAgent,
  MiB,
  TICK,
  allocFile,
  ctxSwitches,
  envList,
  envNum,
  fmt,
  mkBenchDir,
  rssBytes,
  runMain,
  sleep,
  table,
  threadTicks,
  cpuTicks,
  uuid,
} from './nexus-lib';

const TARGET_PCT = 1;

interface Sample {
  wall: number;
  pct: number;
  rss: number;
  switches: number;
  threads: string;
}

async function measure(pid: number, seconds: number): Promise<Sample> {
  await sleep(2000); // settle
  const t0 = cpuTicks(pid);
  const th0 = threadTicks(pid);
  const s0 = ctxSwitches(pid);
  const w0 = Date.now();
  await sleep(seconds * 1000);
  const cpu = (cpuTicks(pid) - t0) / TICK;
  const wall = (Date.now() - w0) / 1000;
  const th1 = threadTicks(pid);
  const busy = [...th1.entries()]
    .map(([n, v]) => [n, v - (th0.get(n) ?? 0)] as const)
    .filter(([, v]) => v > 0)
    .sort((x, y) => y[1] - x[1])
    .map(([n, v]) => `${n}:${v}`)
    .join(' ');
  return { wall, pct: (100 * cpu) / wall, rss: rssBytes(pid), switches: (ctxSwitches(pid) - s0) / wall, threads: busy || '-' };
}

runMain('nexus-idle', async () => {
  const seconds = envNum('BENCH_IDLE_SECONDS', 30);
  const count = envNum('BENCH_NEXUSES', 10);
  const backing = envList('BENCH_BACKINGS', 'shm')[0];
  const dir = mkBenchDir(backing, 'idle');
  const a = new BenchAgent('bench-idle', path.join(dir, 'a'));
  try {
    await a.start();
    const c = a.client();
    for (const p of ['p1', 'p2']) await c.putPool(p, { disks: [allocFile(path.join(a.dataDir, 'disks', `${p}.img`), (count * 12 + 64) * MiB)] });
    for (let i = 0; i < count; i++) {
      for (const k of [1, 2]) await c.putReplica(uuid(10 + k, i), { pool: `p${k}`, sizeBytes: 8 * MiB, thin: true });
    }
    const before = await measure(a.pid, seconds);
    for (let i = 0; i < count; i++) {
      const nx = await c.putNexus(uuid(20, i), { sizeBytes: 4 * MiB, children: [1, 2].map((k) => `bdev:///${uuid(10 + k, i)}`), share: 'nbd' });
      if (!nx.deviceUri.startsWith('nbd://')) throw new Error(`nexus ${nx.uuid}: deviceUri ${nx.deviceUri} is not nbd://`);
      if (nx.state !== 'online') throw new Error(`nexus ${nx.uuid} is ${nx.state}`);
    }
    const after = await measure(a.pid, seconds);
    const rows = [
      [
        `${count * 2} replicas, no nexus`,
        before.wall.toFixed(1),
        before.pct.toFixed(3),
        fmt(before.rss / MiB, 1),
        fmt(before.switches, 1),
        before.threads,
        '-',
        '-',
      ],
      [
        `${count} nexuses x 2 replicas, NBD-shared`,
        after.wall.toFixed(1),
        after.pct.toFixed(3),
        fmt(after.rss / MiB, 1),
        fmt(after.switches, 1),
        after.threads,
        `< ${TARGET_PCT}%`,
        after.pct < TARGET_PCT ? 'yes' : 'NO',
      ],
    ];
    process.stdout.write(`\nNexus idle benchmark: one agent, CPU = utime+stime over the window / wall, RSS = VmRSS at its end\n\n`);
    process.stdout.write(table(['state', 'window s', 'CPU % of one core', 'RSS MiB', 'ctx switches/s', 'busy threads (ticks)', 'target', 'met'], rows));
    process.stdout.write(JSON.stringify({ bench: 'nexus-idle', before, after }) + '\n');
  } finally {
    await a.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
