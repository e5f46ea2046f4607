#!/usr/bin/env node
/**
 * `terraform plan` (with refresh) of a 100-resource mayastor configuration (1 pool + 99 thin replicas on a real
 * agent) against the same number of built-in `terraform_data` resources, in the same run. Target (issue 14): <= 3x cold, warm <= 2.26x.
 * Three ways of running the provider, each timed against terraform_data:
 *   daemon        the default: the launcher hands each of Terraform's launches to the warm provider daemon
 *   daemon-cold   the same, but the daemon is killed before every plan (a one-shot CI job, or the first plan after
 *                 its idle timeout): the cold case
 *   direct        MAYASTOR_PROVIDER_DAEMON=off: Terraform's three launches each start node
 *   floor-*       FLOOR=1 only: the same daemon and gRPC server on tsc's output, with handlers that do no work (validate
 *                 and configure answer nothing, upgrade/read/plan echo what Terraform sent): the lowest a Node.js provider
 *                 on grpc-js reaches here, against the same cases with the real handlers (*-tsc)
 * Cold starts run the bundle with its build-trained code cache (provider/launcher/bundle.js, `npm run build:ts`);
 * the table's first line says whether they do (the loader's MAYASTOR_PROVIDER_LOADER_TRACE). The *-tsc modes run
 * the same cold cases on tsc's output (MAYASTOR_PROVIDER_BUNDLE=off), as before the bundle: before/after in one run.
 *
 *   npm run build && node bench/provider-plan.js [RUNS=5]
 *   BREAKDOWN=1 node bench/provider-plan.js    # also: life time and CPU of each provider process in direct mode
 *   FLOOR=1 node bench/provider-plan.js        # also: the floor modes (see above)
 * Needs terraform on PATH and the native library (agent/native/build/libdatapath.so or MAYASTOR_DATAPATH_LIB).
 */
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');

const root = path.resolve(__dirname, '..');
const runs = Number(process.argv[2] || 5);
const N = 100;
const terraform = process.env.TERRAFORM_BINARY_NAME || 'terraform';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mayastor-bench-plan-'));
const rc = path.join(work, 'terraformrc');
const token = crypto.randomBytes(16).toString('hex');
fs.writeFileSync(path.join(work, 'token'), token + '\n', { mode: 0o600 });

// the provider daemon's socket lives in this run's own directory, so the bench neither uses nor disturbs another one
const runtimeDir = path.join(work, 'run');
fs.mkdirSync(runtimeDir, { mode: 0o700 });
const env = { ...process.env, TF_CLI_CONFIG_FILE: rc, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1', MAYASTOR_TOKEN: token, XDG_RUNTIME_DIR: runtimeDir };
delete env.TF_LOG;
delete env.TF_PLUGIN_CACHE_DIR;
delete env.MAYASTOR_PROVIDER_DAEMON;
const killDaemon = () => spawnSync('pkill', ['-KILL', '-f', `[-]-daemon ${runtimeDir}/`]);

// BREAKDOWN=1: every provider process appends "<ms alive> <ms cpu>" at exit (Terraform passes NODE_OPTIONS on)
const breakdownLog = path.join(work, 'breakdown.log');
const hook = path.join(work, 'breakdown-hook.js');
fs.writeFileSync(
  hook,
  `process.on('exit', () => { const u = process.cpuUsage(); require('fs').appendFileSync(${JSON.stringify(breakdownLog)}, ` +
    '`${performance.now().toFixed(1)} ${((u.user + u.system) / 1000).toFixed(1)}\\n`); });\n',
);
function tf(dir, extraEnv, ...args) {
  const r = spawnSync(terraform, args, { cwd: dir, env: { ...env, ...extraEnv }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`terraform ${args.join(' ')} failed in ${dir}:\n${r.stdout}\n${r.stderr}`);
}
function timePlan(dir, extraEnv = {}) {
  const t0 = process.hrtime.bigint();
  tf(dir, extraEnv, 'plan', '-input=false', '-no-color', '-detailed-exitcode');
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

(async () => {
  let agent;
  let loader;
  try {
    const inst = spawnSync(
      process.execPath,
      [path.join(root, 'scripts', 'install-provider.js'), '--no-build', '--mirror', path.join(work, 'mirror'), '--cli-config', rc],
      { encoding: 'utf8' },
    );
    if (inst.status !== 0) throw new Error(inst.stderr);
    // Run a copy of the build as it is now, so that a rebuild during the bench (tsc in another shell) changes nothing:
    // the loader, tsc output and the bundle with its cache, node_modules linked; the shim points at the copy.
    const snap = path.join(work, 'build');
    fs.mkdirSync(path.join(snap, 'bin'), { recursive: true });
    fs.copyFileSync(path.join(root, 'bin', 'terraform-provider-mayastor'), path.join(snap, 'bin', 'terraform-provider-mayastor'));
    for (const d of ['provider', path.join('agent', 'api')]) {
      fs.cpSync(path.join(root, 'dist', d), path.join(snap, 'dist', d), { recursive: true, preserveTimestamps: true });
    }
    for (const f of fs.readdirSync(path.join(root, 'dist')).filter((n) => n.startsWith('provider.bundle.'))) {
      fs.copyFileSync(path.join(root, 'dist', f), path.join(snap, 'dist', f));
    }
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(snap, 'node_modules'));
    loader = path.join(snap, 'bin', 'terraform-provider-mayastor');
    const shim = /^installed (.*)$/m.exec(inst.stdout)[1];
    const launcher = path.join(root, 'provider', 'launcher', 'build', 'mayastor-provider-launcher');
    // the floor: tsc's output with ProviderService's handlers replaced before main.js runs (a separate daemon: the
    // launcher keys daemons by entry script); MAYASTOR_BENCH_ENTRY picks it for one plan
    const floorEntry = path.join(snap, 'bin', 'provider-floor.js');
    fs.writeFileSync(
      floorEntry,
      "'use strict';\n" +
        "const P = require('../dist/provider/protocol/framework.js').ProviderService.prototype;\n" +
        'P.validateProviderConfig = P.validateResourceConfig = () => ({});\n' +
        'P.configureProvider = async () => ({});\n' +
        'P.upgradeResourceState = (r) => ({ upgraded_state: { json: r.raw_state.json } });\n' +
        'P.readResource = async (r) => ({ new_state: r.current_state, private: r.private });\n' +
        'P.planResourceChange = async (r) => ({ planned_state: r.proposed_new_state, planned_private: r.prior_private });\n' +
        "require('../dist/provider/main.js');\n",
    );
    fs.writeFileSync(shim, `#!/bin/sh\nexec ${JSON.stringify(launcher)} ${JSON.stringify(process.execPath)} "\${MAYASTOR_BENCH_ENTRY:-${loader}}" "$@"\n`, {
      mode: 0o755,
    });
    const dataDir = path.join(work, 'agent');
    fs.mkdirSync(path.join(dataDir, 'disks'), { recursive: true });
    const disk = path.join(dataDir, 'disks', 'd0.img');
    fs.writeFileSync(disk, '');
    fs.truncateSync(disk, 1024 * 1024 * 1024);
    agent = spawn(
      path.join(root, 'bin', 'mayastor-agent'),
      ['--node', 'a', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--token-file', path.join(work, 'token'), '--nbd-listen', '127.0.0.1:0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const url = await new Promise((resolve, reject) => {
      let log = '';
      const on = (d) => {
        log += d;
        const m = /"event":"agent\.listening".*?"url":"([^"]+)"/.exec(log);
        if (m) resolve(m[1]);
      };
      agent.stdout.on('data', on);
      agent.stderr.on('data', on);
      agent.on('exit', (c) => reject(new Error(`agent exited ${c}: ${log}`)));
    });

    const mdir = path.join(work, 'mayastor');
    fs.mkdirSync(mdir);
    let hcl =
      `terraform {\n  required_providers {\n    mayastor = { source = "mayastor/mayastor" }\n  }\n}\nprovider "mayastor" {\n  nodes = { a = "${url}" }\n}\n` +
      `resource "mayastor_pool" "p" {\n  node  = "a"\n  name  = "bench"\n  disks = ["${disk}"]\n}\n`;
    for (let i = 1; i < N; i++) {
      const uuid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      hcl += `resource "mayastor_replica" "r${i}" {\n  node       = "a"\n  pool       = mayastor_pool.p.name\n  uuid       = "${uuid}"\n  size_bytes = 1048576\n  thin       = true\n}\n`;
    }
    fs.writeFileSync(path.join(mdir, 'main.tf'), hcl);
    const ddir = path.join(work, 'terraform_data');
    fs.mkdirSync(ddir);
    let dhcl = '';
    for (let i = 0; i < N; i++) dhcl += `resource "terraform_data" "d${i}" {\n  input = { size_bytes = 1048576, index = ${i} }\n}\n`;
    fs.writeFileSync(path.join(ddir, 'main.tf'), dhcl);

    for (const d of [mdir, ddir]) {
      tf(d, {}, 'init', '-input=false', '-no-color');
      tf(d, {}, 'apply', '-input=false', '-no-color', '-auto-approve');
    }
    const direct = { MAYASTOR_PROVIDER_DAEMON: 'off', ...(process.env.BREAKDOWN ? { NODE_OPTIONS: `--require ${hook}` } : {}) };
    const modes = [
      ['daemon', 'warm provider daemon (default)', () => ({})],
      [
        'daemon-cold',
        'daemon started by this plan',
        () => {
          killDaemon();
          return {};
        },
      ],
      ['direct', 'no daemon (MAYASTOR_PROVIDER_DAEMON=off)', () => direct],
      // the same cold cases on tsc's output (how the provider started before the bundle): before/after, same machine
      [
        'daemon-cold-tsc',
        'daemon started by this plan, tsc output',
        () => {
          killDaemon();
          return { MAYASTOR_PROVIDER_BUNDLE: 'off' };
        },
      ],
      ['direct-tsc', 'no daemon, tsc output', () => ({ ...direct, MAYASTOR_PROVIDER_BUNDLE: 'off' })],
      ...(process.env.FLOOR
        ? [
            ['floor-daemon', 'FLOOR: warm daemon, tsc', () => ({ MAYASTOR_BENCH_ENTRY: floorEntry })],
            [
              'floor-daemon-cold',
              'FLOOR: daemon started by this plan, tsc',
              () => {
                killDaemon();
                return { MAYASTOR_BENCH_ENTRY: floorEntry };
              },
            ],
          ]
        : []),
    ];
    const times = Object.fromEntries(modes.map(([k]) => [k, []]));
    const b = [];
    const block = (k) => (k === 'daemon' || k === 'floor-daemon' ? 'warm' : 'cold');
    const warmModes = modes.filter(([k]) => block(k) === 'warm');
    const coldModes = modes.filter(([k]) => block(k) === 'cold');
    const near = { warm: [], cold: [] };
    const procs = Object.fromEntries(modes.map(([k]) => [k, []]));
    const once = ([k, , prep]) => {
      const extra = prep();
      fs.rmSync(breakdownLog, { force: true });
      times[k].push(timePlan(mdir, extra));
      if (k.startsWith('direct') && process.env.BREAKDOWN && fs.existsSync(breakdownLog))
        procs[k].push(
          fs
            .readFileSync(breakdownLog, 'utf8')
            .trim()
            .split('\n')
            .map((l) => l.split(' ').map(Number)),
        );
      // every run followed by a terraform_data plan so both see the same machine: a mode's ratio is against the
      // terraform_data runs of its own block (warm runs, cold rounds): the load of a shared machine drifts
      const d = timePlan(ddir);
      b.push(d);
      near[block(k)].push(d);
    };
    timePlan(ddir);
    // the warm daemon's runs back to back (it has served the plans before them, as in a work session); then the
    // cold modes in rounds, one run of each a round, so that before and after see the same machine load
    for (const m of warmModes) {
      timePlan(mdir, m[2]());
      timePlan(mdir, m[2]());
      for (let i = 0; i < runs; i++) once(m);
    }
    for (const [, , prep] of coldModes) timePlan(mdir, prep()); // page cache, terraform's own warm-up
    for (let i = 0; i < runs; i++) for (const m of coldModes) once(m);
    const bm = median(b);
    const loaded = spawnSync(process.execPath, [loader], {
      env: { ...process.env, MAYASTOR_PROVIDER_LOADER_TRACE: '1' },
      encoding: 'utf8',
    });
    console.log(`terraform plan, ${N} resources with refresh (median of ${runs} a mode; mayastor: 1 pool + ${N - 1} replicas on a real agent):`);
    console.log(`  provider: ${/running (.*)/.exec(loaded.stderr)?.[1] ?? '?'}`);
    console.log(`  terraform_data x ${N}: ${bm.toFixed(0)} ms (median of ${b.length}, interleaved)`);
    for (const [k, label] of modes) {
      const mm = median(times[k]);
      const target = block(k) === 'warm' ? 2.26 : 3;
      const nm = median(near[block(k)]);
      const verdict = `  (target <= ${target}x: ${mm / nm <= target ? 'met' : 'NOT met'})`;
      console.log(
        `  mayastor, ${label.padEnd(41)} ${mm.toFixed(0).padStart(5)} ms  ratio ${(mm / nm).toFixed(2)}x vs its terraform_data runs (${nm.toFixed(0)} ms)${verdict}`,
      );
    }
    for (const [k, ps] of Object.entries(procs)) {
      if (!ps.length) continue;
      const names = ['schema', 'validate', 'plan'];
      const n = Math.min(...ps.map((p) => p.length));
      for (let j = 0; j < n; j++) {
        console.log(
          `  ${k}: provider process ${j + 1} (${names[j] ?? '?'}): alive ${median(ps.map((p) => p[j][0])).toFixed(0)} ms, cpu ${median(ps.map((p) => p[j][1])).toFixed(0)} ms (all threads)`,
        );
      }
    }
    if (!process.env.KEEP) tf(mdir, {}, 'destroy', '-input=false', '-no-color', '-auto-approve');
    else console.log(work);
  } finally {
    if (!process.env.KEEP) killDaemon();
    if (agent && agent.exitCode === null && !process.env.KEEP) agent.kill('SIGTERM');
    if (!process.env.KEEP) fs.rmSync(work, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
