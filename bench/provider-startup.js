#!/usr/bin/env node
/**
 * Provider start-up to handshake: spawns bin/terraform-provider-mayastor (the bundle with its code cache; and, to
 * compare, on tsc output with MAYASTOR_PROVIDER_BUNDLE=off) as Terraform does (magic cookie,
 * PLUGIN_PROTOCOL_VERSIONS, a fresh AutoMTLS client certificate) and times spawn → first stdout line.
 * Also times bare `node -e 0` in the same run as the floor, and the launcher Terraform really runs
 * (provider/launcher) handing the launch to a warm provider daemon. Target: median < 300 ms.
 *
 *   npm run build && node bench/provider-startup.js [RUNS=30]
 */
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { generateServerCert } = require('../dist/provider/protocol/cert.js');

const root = path.resolve(__dirname, '..');
const runs = Number(process.argv[2] || 30);
const clientCert = generateServerCert().certPem;

function once(cmd, args, env, waitLine) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
    let buf = '';
    let done = false;
    const finish = (line) => {
      if (done) return;
      done = true;
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      p.kill('SIGKILL');
      if (waitLine && !/^1\|6\|tcp\|127\.0\.0\.1:\d+\|grpc\|[A-Za-z0-9+/]+$/.test(line)) reject(new Error(`bad handshake: ${line}`));
      else resolve(ms);
    };
    p.stdout.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) finish(buf.slice(0, i));
    });
    p.on('exit', () => finish(buf));
    p.on('error', reject);
  });
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (a, p) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];

(async () => {
  const env = {
    TF_PLUGIN_MAGIC_COOKIE: 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2',
    PLUGIN_PROTOCOL_VERSIONS: '5,6',
    PLUGIN_MIN_PORT: '10000',
    PLUGIN_MAX_PORT: '25000',
    PLUGIN_CLIENT_CERT: clientCert,
  };
  const provider = [];
  const tscOut = []; // the same on tsc output (MAYASTOR_PROVIDER_BUNDLE=off): before the bundle
  const bare = [];
  const daemon = [];
  const launcher = path.join(root, 'provider', 'launcher', 'build', 'mayastor-provider-launcher');
  const runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mayastor-bench-startup-'));
  const launcherArgs = [process.execPath, path.join(root, 'bin', 'terraform-provider-mayastor')]; // what the installed shim runs
  const daemonEnv = { ...env, XDG_RUNTIME_DIR: runtimeDir, MAYASTOR_PROVIDER_DAEMON: 'on' };
  try {
    await once(path.join(root, 'bin', 'terraform-provider-mayastor'), [], env, true); // warm the page cache
    if (fs.existsSync(launcher)) await once(launcher, launcherArgs, daemonEnv, true); // starts the daemon
    for (let i = 0; i < runs; i++) {
      provider.push(await once(path.join(root, 'bin', 'terraform-provider-mayastor'), [], { ...env, MAYASTOR_PROVIDER_DAEMON: 'off' }, true));
      tscOut.push(await once(path.join(root, 'bin', 'terraform-provider-mayastor'), [], { ...env, MAYASTOR_PROVIDER_BUNDLE: 'off' }, true));
      bare.push(await once(process.execPath, ['-e', 'process.stdout.write("x\\n")'], {}, false));
      if (fs.existsSync(launcher)) daemon.push(await once(launcher, launcherArgs, daemonEnv, true));
    }
  } finally {
    spawnSync('pkill', ['-KILL', '-f', `[-]-daemon ${runtimeDir}/`]);
    fs.rmSync(runtimeDir, { recursive: true, force: true });
  }
  const m = median(provider);
  console.log(
    `provider start-up to handshake (node, direct): median ${m.toFixed(1)} ms, p90 ${pct(provider, 0.9).toFixed(1)} ms, min ${Math.min(...provider).toFixed(1)} ms over ${runs} runs`,
  );
  if (daemon.length)
    console.log(`launcher + warm provider daemon:               median ${median(daemon).toFixed(1)} ms, p90 ${pct(daemon, 0.9).toFixed(1)} ms`);
  else console.log('launcher not built (npm run build:native): daemon start-up not measured');
  console.log(`the same on tsc output (MAYASTOR_PROVIDER_BUNDLE=off): median ${median(tscOut).toFixed(1)} ms`);
  console.log(`bare node start-up (floor):                    median ${median(bare).toFixed(1)} ms`);
  console.log(`target < 300 ms: ${m < 300 ? 'met' : 'NOT met'}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
