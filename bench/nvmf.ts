/**
 * bench/nvmf.ts - the same device over our NVMe/TCP (dp-nvmf-serve, driven by our own initiator, the
 * nvmf:// child, through dp-nexus-bench --uri on the descriptor API) against our NBD target
 * (dp-nbd-serve, driven by fio --ioengine=nbd), one server at a time on the same preallocated file:
 * 4k randread/randwrite and 128k read/write at QD32. Prints the table and the ratio nvmf/nbd per row.
 * Figures only: no thresholds (the target is nvmf >= 1.0x nbd on every row).
 *
 * Env: BENCH_BACKINGS ("shm"), BENCH_SIZE_MB (256), BENCH_RUNTIME (3 s), BENCH_REPS (1, medians),
 * BENCH_REACTORS (1), MAYASTOR_DATAPATH_LIB (the tools are taken from its directory).
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { MiB, ROOT, allocFile, envList, envNum, fio, fmt, have, median, mkBenchDir, runMain, sh, sleep, table } from './nexus-lib';

const libDir = path.dirname(process.env.MAYASTOR_DATAPATH_LIB ?? path.join(ROOT, 'agent/native/build/libdatapath.so'));
const tool = (name: string): string => path.join(libDir, name);
const NQN = 'nqn.2019-05.io.openebs:6f1e9a3c-1d2b-4c5e-8f70-0123456789ab';

const JOBS: Array<{ rw: string; bs: number; seq: boolean; read: boolean }> = [
  { rw: 'randread', bs: 4096, seq: false, read: true },
  { rw: 'randwrite', bs: 4096, seq: false, read: false },
  { rw: 'read', bs: 131072, seq: true, read: true },
  { rw: 'write', bs: 131072, seq: true, read: false },
];

/** Start a server that writes its port to a file; resolve with the port. */
async function serve(cmd: string, args: string[], dir: string): Promise<{ p: ChildProcess; port: number }> {
  const portFile = path.join(dir, 'port');
  fs.rmSync(portFile, { force: true });
  const p = spawn(cmd, [...args, '--port-file', portFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 100; i++) {
    if (fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim()) return { p, port: Number(fs.readFileSync(portFile, 'utf8').trim()) };
    if (p.exitCode !== null) break;
    await sleep(50);
  }
  p.kill('SIGKILL');
  throw new Error(`${cmd} did not come up: ${err}`);
}

async function stop(p: ChildProcess): Promise<void> {
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await done;
}

/** dp-nexus-bench --uri: our initiator on the descriptor API; returns IOPS and MiB/s. */
function ours(uri: string, job: (typeof JOBS)[number], secs: number, sizeMb: number, reactors: number): { iops: number; mibs: number } {
  const args = [
    '--uri',
    uri,
    '--bs',
    String(job.bs),
    '--qd',
    '32',
    '--secs',
    String(secs),
    '--reps',
    '1',
    '--size-mb',
    String(sizeMb),
    '--reactors',
    String(reactors),
  ];
  if (job.seq) args.push('--seq');
  if (job.read) args.push('--read');
  const line = sh(tool('dp-nexus-bench'), args)
    .split('\n')
    .find((l) => l.startsWith('uri '));
  if (!line) throw new Error('dp-nexus-bench printed no result');
  const f = line.trim().split(/\s+/);
  return { iops: Number(f[1]), mibs: Number(f[2]) };
}

async function main(): Promise<void> {
  for (const t of ['fio', 'fallocate']) if (!have(t)) throw new Error(`missing ${t}`);
  for (const t of ['dp-nvmf-serve', 'dp-nbd-serve', 'dp-nexus-bench']) if (!fs.existsSync(tool(t))) throw new Error(`missing ${tool(t)} (npm run build)`);
  const sizeMb = envNum('BENCH_SIZE_MB', 256);
  const secs = envNum('BENCH_RUNTIME', 3);
  const reps = envNum('BENCH_REPS', 1);
  const reactors = envNum('BENCH_REACTORS', 1);
  for (const backing of envList('BENCH_BACKINGS', 'shm')) {
    const dir = mkBenchDir(backing, 'nvmf');
    try {
      const file = allocFile(path.join(dir, 'disk.img'), sizeMb * MiB);
      const dev = `uring://${file}`;
      const res: Record<string, { nvmf: number[]; nbd: number[]; unit: string }> = {};
      for (const j of JOBS) res[j.rw] = { nvmf: [], nbd: [], unit: j.bs === 4096 ? 'IOPS' : 'MiB/s' };
      for (let rep = 0; rep < reps; rep++) {
        const nv = await serve(tool('dp-nvmf-serve'), ['--listen', '127.0.0.1:0', '--nqn', NQN, '--reactors', String(reactors), dev], dir);
        try {
          for (const j of JOBS) {
            const r = ours(`nvmf://127.0.0.1:${nv.port}/${NQN}`, j, secs, sizeMb, reactors);
            res[j.rw].nvmf.push(j.bs === 4096 ? r.iops : r.mibs);
          }
        } finally {
          await stop(nv.p);
        }
        const nb = await serve(tool('dp-nbd-serve'), ['--listen', '127.0.0.1:0', '--export', 'disk', '--reactors', String(reactors), dev], dir);
        try {
          for (const j of JOBS) {
            const r = fio(`nbd://127.0.0.1:${nb.port}/disk`, j.rw, String(j.bs), { runtime: secs, ramp: 1, size: `${sizeMb}M` });
            res[j.rw].nbd.push(j.bs === 4096 ? r.iops : r.mibs);
          }
        } finally {
          await stop(nb.p);
        }
      }
      const rows = JOBS.map((j) => {
        const r = res[j.rw];
        const a = median(r.nvmf);
        const b = median(r.nbd);
        return [`${j.rw} ${j.bs / 1024}k QD32`, r.unit, fmt(a), fmt(b), fmt(a / b, 2)];
      });
      process.stdout.write(
        `\nNVMe/TCP (our initiator -> dp-nvmf-serve) vs NBD (fio nbd -> dp-nbd-serve), ${backing}, ${sizeMb} MiB, ${secs} s, median of ${reps}\n`,
      );
      process.stdout.write(table(['job', 'unit', 'nvmf', 'nbd', 'nvmf/nbd (target >= 1.0)'], rows));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

runMain('nvmf', main);
