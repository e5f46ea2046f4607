#!/usr/bin/env node
/**
 * `npm run bench`: every benchmark in sequence with short defaults, each printing its table.
 * BENCH_FULL=1 uses the long settings the targets are stated for (30 s idle windows, 3 reps, both
 * backings); any variable a bench reads can still be set by hand and wins over both.
 *
 *   npm run bench                                  # all, short (about 4 minutes)
 *   BENCH_FULL=1 npm run bench                     # all, long
 *   BENCH_ONLY=nexus-write,nexus-rebuild npm run bench
 *
 * Needs: dist/ (built here with tsc when missing), the native library (MAYASTOR_DATAPATH_LIB or
 * agent/native/build/libdatapath.so), fio, qemu-nbd, nbdkit, terraform (for provider-plan).
 * A bench that fails is reported and the others still run; the exit code is 1 if any failed.
 */
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const full = process.env.BENCH_FULL === '1';
const lib = process.env.MAYASTOR_DATAPATH_LIB || path.join(root, 'agent/native/build/libdatapath.so');
const libDir = path.dirname(lib);

/** name -> command, args, env defaults (short / full) */
const BENCHES = [
  {
    name: 'agent-idle',
    what: 'idle agent with 2 pools + 20 replicas: CPU < 1% of a core, RSS < 150 MiB',
    cmd: [process.execPath, 'dist/bench/agent-idle.js'],
    env: { BENCH_IDLE_SECONDS: full ? '30' : '10' },
  },
  {
    name: 'nbd',
    what: 'our NBD export vs qemu-nbd vs nbdkit: 4k IOPS >= 1.3x, 128k >= 1.0x',
    cmd: ['bash', 'bench/nbd.sh'],
    env: full
      ? { REPS: '3', RUNTIME: '6', BACKINGS: 'shm disk', DP_NBD_SERVE: path.join(libDir, 'dp-nbd-serve') }
      : { REPS: '1', RUNTIME: '3', BACKINGS: 'shm', SIZE_MB: '256', DP_NBD_SERVE: path.join(libDir, 'dp-nbd-serve') },
  },
  {
    name: 'nexus-write',
    what: '3-child nexus vs single-replica NBD export, write IOPS/throughput >= 0.6x',
    cmd: [process.execPath, 'dist/bench/nexus-write.js'],
    env: full ? { BENCH_REPS: '3', BENCH_RUNTIME: '6', BENCH_BACKINGS: 'shm disk' } : { BENCH_REPS: '1', BENCH_RUNTIME: '3' },
  },
  {
    name: 'nexus-rebuild',
    what: 'rebuild throughput vs dd of the same bytes >= 0.7x',
    cmd: [process.execPath, 'dist/bench/nexus-rebuild.js'],
    env: full ? { BENCH_REPS: '3', BENCH_BACKINGS: 'shm disk', BENCH_REBUILD_MB: '1024' } : { BENCH_REPS: '1', BENCH_REBUILD_MB: '256' },
  },
  {
    name: 'nexus-idle',
    what: '10 NBD-shared nexuses over 2 replicas each: CPU < 1% of a core',
    cmd: [process.execPath, 'dist/bench/nexus-idle.js'],
    env: { BENCH_IDLE_SECONDS: full ? '30' : '10' },
  },
  {
    name: 'nvmf',
    what: 'same device over our NVMe/TCP (our initiator) vs our NBD target (fio nbd): 4k and 128k QD32, >= 1.0x',
    cmd: [process.execPath, 'dist/bench/nvmf.js'],
    env: full ? { BENCH_REPS: '3', BENCH_RUNTIME: '6', BENCH_BACKINGS: 'shm disk' } : { BENCH_REPS: '1', BENCH_RUNTIME: '3' },
  },
  {
    name: 'provider-startup',
    what: 'provider spawn -> go-plugin handshake line (direct, and launcher + warm daemon) vs bare node: median < 300 ms',
    cmd: [process.execPath, 'bench/provider-startup.js', full ? '30' : '10'],
    env: {},
  },
  {
    name: 'provider-plan',
    what: 'terraform plan of 100 mayastor resources vs 100 terraform_data (warm daemon, fresh daemon, no daemon): <= 3x',
    cmd: [process.execPath, 'bench/provider-plan.js', full ? '5' : '2'],
    env: {},
  },
];

function ensureBuilt() {
  if (!fs.existsSync(lib)) {
    console.error(`run.js: the native library ${lib} is missing: run 'npm run build' (or set MAYASTOR_DATAPATH_LIB)`);
    process.exit(1);
  }
  const need = ['dist/bench/agent-idle.js', 'dist/bench/nexus-write.js', 'dist/provider/protocol/cert.js'];
  if (need.some((f) => !fs.existsSync(path.join(root, f)))) {
    console.error('run.js: dist/ is not built; compiling with tsc');
    const r = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) process.exit(1);
  }
}

/** A TCP port that was free a moment ago (nbd.sh's fixed default may be taken by a parallel run). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = require('node:net').createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(String(port)));
    });
  });
}

async function runOne(b) {
  if (b.name === 'nbd' && process.env.PORT === undefined) b.env.PORT = await freePort();
  return new Promise((resolve) => {
    const env = { ...process.env, MAYASTOR_DATAPATH_LIB: lib };
    for (const [k, v] of Object.entries(b.env)) if (process.env[k] === undefined) env[k] = v; // the caller's settings win
    const shown = Object.entries(b.env)
      .map(([k]) => `${k}=${env[k]}`)
      .join(' ');
    process.stdout.write(`\n=== ${b.name}: ${b.what}\n$ ${shown} ${b.cmd.map((c) => (c === process.execPath ? 'node' : c)).join(' ')}\n`);
    const t0 = Date.now();
    const p = spawn(b.cmd[0], b.cmd.slice(1), { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let buf = '';
    p.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.startsWith('{"bench"')) process.stdout.write(line + '\n'); // machine-readable lines stay out of the tables
      }
    });
    p.stderr.setEncoding('utf8').on('data', (d) => {
      err += d;
      if (process.env.BENCH_VERBOSE === '1') process.stderr.write(d);
    });
    p.on('close', (code, sig) => {
      if (buf) process.stdout.write(buf + '\n');
      const secs = ((Date.now() - t0) / 1000).toFixed(0);
      if (code !== 0) process.stdout.write(`!!! ${b.name} failed (${code ?? sig}) after ${secs} s:\n${err.split('\n').slice(-15).join('\n')}\n`);
      resolve({ name: b.name, ok: code === 0, secs });
    });
  });
}

(async () => {
  ensureBuilt();
  const only = (process.env.BENCH_ONLY || '').split(/[\s,]+/).filter(Boolean);
  for (const o of only)
    if (!BENCHES.some((b) => b.name === o)) {
      console.error(`run.js: BENCH_ONLY names '${o}'; the benches are ${BENCHES.map((b) => b.name).join(', ')}`);
      process.exit(2);
    }
  const results = [];
  for (const b of BENCHES) if (!only.length || only.includes(b.name)) results.push(await runOne(b));
  process.stdout.write('\n=== summary\n');
  for (const r of results) process.stdout.write(`${r.ok ? 'ran   ' : 'FAILED'} ${r.name} (${r.secs} s)\n`);
  process.exit(results.every((r) => r.ok) ? 0 : 1);
})();
