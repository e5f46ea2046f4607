/**
 * Idle cost of an agent (issue 2): start a real mayastor-agent with 2 pools and 20 replicas, let it
 * sit idle for 30 s (BENCH_IDLE_SECONDS), and print its CPU use (utime+stime from /proc) as a share
 * of one core and its RSS. Targets: < 1% of one core, < 150 MiB RSS.
 *   npm run build && node dist/bench/agent-idle.js
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentProcess } from '../scripts/lib/agent-process';

const TICK = 100; // USER_HZ on Linux

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_IDLE_SECONDS ?? 30);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mayastor-bench-'));
  const disks = path.join(dir, 'disks');
  fs.mkdirSync(disks, { recursive: true });
  const files = ['a', 'b', 'c'].map((n) => {
    const f = path.join(disks, `${n}.img`);
    fs.writeFileSync(f, '');
    fs.truncateSync(f, 1024 * 1024 * 1024);
    return f;
  });
  const agent = await new AgentProcess({ node: 'bench', dataDir: dir }).start();
  const pid = agent.pid!;
  try {
    const c = agent.client();
    await c.putPool('pool-1', { disks: [files[0]] });
    await c.putPool('pool-2', { disks: [files[1], files[2]] });
    for (let i = 0; i < 20; i++) {
      const uuid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      await c.putReplica(uuid, { pool: i % 2 ? 'pool-2' : 'pool-1', sizeBytes: 32 * 1024 * 1024, thin: i % 3 === 0 });
    }
    await new Promise((r) => setTimeout(r, 2000)); // settle
    const t0 = cpuTicks(pid);
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpuSec = (cpuTicks(pid) - t0) / TICK;
    const wall = (Date.now() - w0) / 1000;
    const rss = rssBytes(pid);
    const pct = (100 * cpuSec) / wall;
    process.stdout.write(
      `agent idle with 2 pools and 20 replicas over ${wall.toFixed(1)} s: CPU ${pct.toFixed(3)}% of one core (target < 1%), ` +
        `RSS ${(rss / 1048576).toFixed(1)} MiB (target < 150 MiB)\n`,
    );
    process.stdout.write(JSON.stringify({ bench: 'agent-idle', seconds: wall, cpuPercent: pct, rssBytes: rss }) + '\n');
  } finally {
    await agent.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`agent-idle: ${(e as Error).message}\n`);
  process.exit(1);
});
