/**
 * Nexus write cost (issue 4): a 3-child nexus exported over NBD against a single replica exported
 * over NBD by the same agent, same backing, same fio jobs (--ioengine=nbd, one connection):
 * 4k randwrite at QD32 (IOPS) and 128k sequential write at QD32 (MiB/s). Target: nexus >= 0.6x.
 *
 * Layouts:
 *   local  - three bdev:/// replicas on the nexus's agent, each in its own pool (own disk file);
 *   remote - two local bdev:/// replicas + one replica on a second agent reached over nbd://;
 *   nvmf   - the same with the remote replica reached over nvmf:// (our NVMe/TCP initiator and target).
 * Every replica is thick and its disk file fallocated, so no side pays first-touch allocation.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/nexus-write.js
 * Env: BENCH_BACKINGS ("shm"; "shm disk" for both), BENCH_LAYOUTS ("local remote nvmf"),
 *      BENCH_SIZE_MB (256), BENCH_RUNTIME (5 s a job), BENCH_RAMP (1), BENCH_REPS (1, median),
 *      BENCH_REACTORS (agent --reactors, default: the agent's), BENCH_DIR (disk backing dir, /var/tmp),
 *      BENCH_PERF=DIR: while each nexus job runs, `perf record -e cpu-clock -g` the agent(s) into
 *      DIR/<backing>.<layout>.<job>.<agent>.data (read with `perf report -i FILE --no-children`).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BenchAgent, MiB, allocFile, envList, envNum, fio, fmt, median, mkBenchDir, runMain, table, uuid } from './nexus-lib';

const JOBS = [
  { rw: 'randwrite', bs: '4k', unit: 'IOPS' },
  { rw: 'write', bs: '128k', unit: 'MiB/s' },
] as const;
const TARGET = 0.6;

runMain('nexus-write', async () => {
  const backings = envList('BENCH_BACKINGS', 'shm');
  const layouts = envList('BENCH_LAYOUTS', 'local remote nvmf');
  const sizeMiB = envNum('BENCH_SIZE_MB', 256);
  const runtime = envNum('BENCH_RUNTIME', 5);
  const ramp = envNum('BENCH_RAMP', 1);
  const reps = envNum('BENCH_REPS', 1);
  const extra = process.env.BENCH_REACTORS ? ['--reactors', process.env.BENCH_REACTORS] : [];
  const size = sizeMiB * MiB;
  const replicaSize = size + 4 * MiB; // the nexus label header (1 MiB) rounded up to a pool cluster
  const diskSize = replicaSize + 64 * MiB; // pool metadata headroom

  const rows: Array<Array<string | number>> = [];
  let allMet = true;
  for (const backing of backings) {
    const dir = mkBenchDir(backing, 'write');
    const a = new BenchAgent('bench-a', path.join(dir, 'a'), extra);
    const b = new BenchAgent('bench-b', path.join(dir, 'b'), [...extra, '--nvmf-listen', '127.0.0.1:0']);
    try {
      await a.start();
      const ca = a.client();
      const names = ['single', 'c1', 'c2', 'c3'];
      for (const n of names) {
        const f = allocFile(path.join(a.dataDir, 'disks', `${n}.img`), diskSize);
        await ca.putPool(n, { disks: [f] });
      }
      const SINGLE = uuid(1, 0);
      const single = await ca.putReplica(SINGLE, { pool: 'single', sizeBytes: size, thin: false, share: 'nbd' });
      const kids = [1, 2, 3].map((i) => uuid(1, i));
      for (let i = 0; i < 3; i++) await ca.putReplica(kids[i], { pool: `c${i + 1}`, sizeBytes: replicaSize, thin: false });

      const targets: Array<{ layout: string; uri: string }> = [];
      if (layouts.includes('local')) {
        const nx = await ca.putNexus(uuid(2, 1), { sizeBytes: size, children: kids.map((k) => `bdev:///${k}`), share: 'nbd' });
        targets.push({ layout: 'local (3 x bdev)', uri: nx.deviceUri });
      }
      // 2 local bdev:/// children + 1 replica on a second agent, reached over `proto`
      const remoteLayout = async (n: number, proto: 'nbd' | 'nvmf'): Promise<void> => {
        if (!b.proc) await b.start();
        const cb = b.client();
        const f = allocFile(path.join(b.dataDir, 'disks', `r${n}.img`), diskSize);
        await cb.putPool(`r${n}`, { disks: [f] });
        const rem = await cb.putReplica(uuid(3, n), { pool: `r${n}`, sizeBytes: replicaSize, thin: false, share: proto });
        const more = [2 * n + 2, 2 * n + 3].map((i) => uuid(1, i)); // c1..c3 belong to the local nexus
        for (let i = 0; i < 2; i++) {
          const fl = allocFile(path.join(a.dataDir, 'disks', `m${n}-${i}.img`), diskSize);
          await ca.putPool(`m${n}-${i}`, { disks: [fl] });
          await ca.putReplica(more[i], { pool: `m${n}-${i}`, sizeBytes: replicaSize, thin: false });
        }
        const nx = await ca.putNexus(uuid(2, 1 + n), { sizeBytes: size, children: [...more.map((k) => `bdev:///${k}`), rem.uri], share: 'nbd' });
        targets.push({ layout: `${proto === 'nbd' ? 'remote' : 'nvmf'} (2 x bdev + 1 x ${proto})`, uri: nx.deviceUri });
      };
      if (layouts.includes('remote')) await remoteLayout(1, 'nbd');
      if (layouts.includes('nvmf')) await remoteLayout(2, 'nvmf');

      for (const t of targets) {
        for (const j of JOBS) {
          const ours: number[] = [];
          const base: number[] = [];
          for (let r = 0; r < reps; r++) {
            // alternate the order so drift (page cache, thermal) hits both sides alike
            const runOne = (uri: string) => {
              const x = fio(uri, j.rw, j.bs, { runtime, ramp });
              return j.unit === 'IOPS' ? x.iops : x.mibs;
            };
            const perfDir = process.env.BENCH_PERF;
            const runOurs = async () => {
              const perfs =
                perfDir && r === 0
                  ? [a, ...(b.proc ? [b] : [])].map((ag) => {
                      fs.mkdirSync(perfDir, { recursive: true });
                      const out = path.join(perfDir, `${backing}.${t.layout.split(' ')[0]}.${j.rw}-${j.bs}.${ag.node}.data`);
                      const p = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-g', '-p', String(ag.pid), '-o', out, '--', 'sleep', String(runtime)], {
                        stdio: 'ignore',
                      });
                      return new Promise((res) => p.once('close', res));
                    })
                  : [];
              ours.push(runOne(t.uri));
              await Promise.all(perfs);
            };
            if (r % 2 === 0) {
              base.push(runOne(single.uri));
              await runOurs();
            } else {
              await runOurs();
              base.push(runOne(single.uri));
            }
          }
          const o = median(ours);
          const s = median(base);
          const ratio = s ? o / s : 0;
          const met = ratio >= TARGET;
          allMet &&= met;
          rows.push([backing, t.layout, `${j.rw} ${j.bs} QD32`, j.unit, fmt(o), fmt(s), `${ratio.toFixed(2)}x`, `${TARGET}x`, met ? 'yes' : 'NO']);
          process.stderr.write(`nexus-write: ${backing} ${t.layout} ${j.rw}-${j.bs}: nexus ${fmt(o)} single ${fmt(s)} ${j.unit}\n`);
        }
      }
    } finally {
      await a.stop().catch(() => undefined);
      if (b.proc) await b.stop().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(
    `\nNexus write benchmark: fio --ioengine=nbd, 1 connection, iodepth 32, ${runtime} s a job (+${ramp} s ramp), median of ${reps}; ` +
      `${sizeMiB} MiB volumes, thick replicas on fallocated files\nratio = 3-child nexus / single-replica NBD export on the same agent and backing\n\n`,
  );
  process.stdout.write(table(['backing', 'nexus layout', 'job', 'unit', 'nexus', 'single replica', 'ratio', 'target', 'met'], rows));
  process.stdout.write(allMet ? 'all targets met\n' : 'some targets missed\n');
  process.stdout.write(JSON.stringify({ bench: 'nexus-write', rows }) + '\n');
});
