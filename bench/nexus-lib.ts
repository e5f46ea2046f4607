/**
 * Shared pieces of the nexus benchmarks (bench/nexus-*.ts): real agent processes on a chosen
 * backing (tmpfs or disk), preallocated disk files, fio runs with the nbd engine, /proc counters.
 * Not a test helper: benches print figures, they never assert timings.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AgentClient } from '../agent/api/client';
import { AgentProcess } from '../scripts/lib/agent-process';

export const ROOT = path.resolve(__dirname, fs.existsSync(path.resolve(__dirname, '../package.json')) ? '..' : '../..');
export const MiB = 1024 * 1024;
export const TICK = 100; // USER_HZ on Linux

export const uuid = (group: number, n: number): string => `${String(group).padStart(8, '0')}-0000-4000-8000-${String(n).padStart(12, '0')}`;

export function envNum(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}='${v}' must be a positive number`);
  return n;
}

export function envList(name: string, dflt: string): string[] {
  return (process.env[name] ?? dflt).split(/[\s,]+/).filter(Boolean);
}

/** Base directory for a backing: "shm" -> /dev/shm, "disk" -> $BENCH_DIR or /var/tmp. */
export function backingBase(backing: string): string {
  if (backing === 'shm') return '/dev/shm';
  if (backing === 'disk') return process.env.BENCH_DIR ?? '/var/tmp';
  throw new Error(`backing '${backing}' must be 'shm' or 'disk'`);
}

export function mkBenchDir(backing: string, name: string): string {
  const base = backingBase(backing);
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, `mayastor-bench-${name}-`));
}

/** A fully allocated file (fallocate), so neither side pays first-touch allocation during a run. */
export function allocFile(file: string, bytes: number): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '');
  const r = spawnSync('fallocate', ['-l', String(bytes), file], { encoding: 'utf8' });
  if (r.status !== 0) fs.truncateSync(file, bytes); // filesystems without fallocate: sparse
  return file;
}

export function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/** A real mayastor-agent process (scripts/lib/agent-process.ts): control calls may take long under load. */
export class BenchAgent extends AgentProcess {
  constructor(node: string, dataDir: string, extra: string[] = []) {
    super({ node, dataDir, extraArgs: extra, stderrLimit: 65536 });
  }

  get dataDir(): string {
    return this.opts.dataDir;
  }

  get node(): string {
    return this.opts.node!;
  }

  override get pid(): number {
    return this.proc!.pid!;
  }

  override client(): AgentClient {
    return super.client({ timeoutMs: 120000 });
  }

  override async stop(): Promise<number | null> {
    return super.stop(10000);
  }
}

export interface FioResult {
  iops: number;
  mibs: number;
  latUsMean: number;
}

/** One fio job with the nbd engine (libnbd), one connection, as bench/nbd.sh runs it. */
export function fio(
  uri: string,
  rw: string,
  bs: string,
  opts: { iodepth?: number; runtime?: number; ramp?: number; size?: string; extra?: string[] } = {},
): FioResult {
  const args = [
    `--name=${rw}-${bs}`,
    '--ioengine=nbd',
    `--uri=${uri}`,
    `--rw=${rw}`,
    `--bs=${bs}`,
    `--iodepth=${opts.iodepth ?? 32}`,
    '--numjobs=1',
    '--randrepeat=0',
    '--norandommap',
    '--output-format=json',
  ];
  if (opts.runtime) args.push('--time_based', `--runtime=${opts.runtime}`, `--ramp_time=${opts.ramp ?? 1}`);
  if (opts.size) args.push(`--size=${opts.size}`);
  args.push(...(opts.extra ?? []));
  const out = sh('fio', args);
  const d = JSON.parse(out.slice(out.indexOf('{'))) as {
    jobs: Array<Record<string, { iops: number; bw: number; io_bytes: number; lat_ns?: { mean: number } }>>;
  };
  const j = d.jobs[0];
  const x = j.write.io_bytes > 0 ? j.write : j.read;
  return { iops: x.iops, mibs: x.bw / 1024, latUsMean: (x.lat_ns?.mean ?? 0) / 1000 };
}

export function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Per-thread CPU ticks (name -> ticks summed over threads of that name). */
export function threadTicks(pid: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      m.set(name, (m.get(name) ?? 0) + Number(f[11]) + Number(f[12]));
    } catch {
      /* thread gone */
    }
  }
  return m;
}

/** Voluntary + involuntary context switches of the whole process (all threads). */
export function ctxSwitches(pid: number): number {
  let n = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      for (const k of ['voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches']) {
        const m = new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s);
        if (m) n += Number(m[1]);
      }
    } catch {
      /* thread gone */
    }
  }
  return n;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Print a markdown table. */
export function table(head: string[], rows: Array<Array<string | number>>): string {
  const line = (r: Array<string | number>) => `| ${r.map(String).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}

export const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

export function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  if (!s.length) return 0;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Run main(), print the error and exit 1 on failure. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((e) => {
    process.stderr.write(`${name}: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
