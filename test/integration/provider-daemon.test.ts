/**
 * The provider daemon under the real `terraform` binary and a real agent: one warm process serves every launch,
 * sessions never see each other's environment, new code on disk or a killed daemon leads to a fresh one, a daemon
 * lost in the middle of a plan fails that plan instead of hanging it, hostile bytes on its socket are refused, and
 * it leaves when idle. (The launcher's side of the protocol: provider-launcher.test.ts.)
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess, makeDisk } from '../helpers/agent';
import { TerraformDir, TfResult, expectOk, installProvider, providerDaemons, terraformBinary } from '../helpers/terraform';

const root = path.resolve(__dirname, '..', '..');
const launcher = path.join(root, 'provider', 'launcher', 'build', 'mayastor-provider-launcher');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mayastor-daemon-it-'));
const runtimeDir = path.join(work, 'run');
const daemonDir = path.join(runtimeDir, 'mayastor-provider');
const rc = path.join(work, 'terraformrc');
const agent = new AgentProcess({ node: 'a', dataDir: path.join(work, 'agent') });
let tfd: TerraformDir;
function tfEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...tfd.env(), XDG_RUNTIME_DIR: runtimeDir, MAYASTOR_PROVIDER_DAEMON_IDLE_SECONDS: '60', ...extra };
}
function tf(extra: NodeJS.ProcessEnv, ...args: string[]): TfResult {
  const r = spawnSync(terraformBinary, args, { cwd: tfd.dir, env: tfEnv(extra), encoding: 'utf8', timeout: 300_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, out: `${r.stdout}\n${r.stderr}` };
}
function tfAsync(extra: NodeJS.ProcessEnv, ...args: string[]): Promise<TfResult> {
  return new Promise((resolve) => {
    const p = spawn(terraformBinary, args, { cwd: tfd.dir, env: tfEnv(extra) });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      out += d;
    });
    p.on('exit', (code) => resolve({ code: code ?? -1, out }));
  });
}
const plan = (extra: NodeJS.ProcessEnv = {}) => tf(extra, 'plan', '-no-color', '-input=false', '-detailed-exitcode');

/** The daemon's JSON log events (its stderr goes to DIR/KEY.log). */
function events(name?: string): Array<Record<string, unknown>> {
  if (!fs.existsSync(daemonDir)) return [];
  const out: Array<Record<string, unknown>> = [];
  for (const f of fs.readdirSync(daemonDir).filter((n) => n.endsWith('.log'))) {
    for (const line of fs.readFileSync(path.join(daemonDir, f), 'utf8').split('\n')) {
      try {
        const e = JSON.parse(line);
        if (!name || e.event === name) out.push(e);
      } catch {
        /* a partial line */
      }
    }
  }
  return out;
}
const socketFiles = () => (fs.existsSync(daemonDir) ? fs.readdirSync(daemonDir).filter((n) => n.endsWith('.sock')) : []);
const daemonPids = () => providerDaemons(daemonDir);
const killDaemons = () => providerDaemons(daemonDir, true);
async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  if (!fs.existsSync(launcher)) throw new Error(`${launcher} is missing: run npm run build`);
  installProvider(work, rc, false);
  fs.mkdirSync(runtimeDir, { mode: 0o700 });
  const disk = makeDisk(path.join(work, 'agent', 'disks', 'd0.img'), 64 * 1024 * 1024);
  await agent.start();
  tfd = new TerraformDir(path.join(work, 'tf'), rc, agent.token);
  fs.mkdirSync(tfd.dir);
  fs.writeFileSync(
    path.join(tfd.dir, 'main.tf'),
    `
terraform {
  required_providers {
    mayastor = { source = "mayastor/mayastor" }
  }
}
provider "mayastor" {
  nodes                   = { a = "${agent.url}" }
  request_timeout_seconds = 5
  retries                 = 0
}
resource "mayastor_pool" "p" {
  node  = "a"
  name  = "daemon"
  disks = ["${disk}"]
}
resource "mayastor_replica" "r" {
  node       = "a"
  pool       = mayastor_pool.p.name
  uuid       = "0d0d0d0d-0000-4000-8000-000000000001"
  size_bytes = 4194304
  thin       = true
}
`,
  );
  expectOk(tf({}, 'init', '-no-color', '-input=false'));
  expectOk(tf({}, 'apply', '-no-color', '-input=false', '-auto-approve'));
}, 180_000);

afterAll(async () => {
  killDaemons();
  await agent.kill9();
  fs.rmSync(work, { recursive: true, force: true });
});

test('one daemon serves every launch of every plan', () => {
  const before = events('session.start').length;
  expect(plan().code).toBe(0);
  expect(plan().code).toBe(0);
  expect(events('daemon.listening')).toHaveLength(1);
  expect(daemonPids()).toHaveLength(1);
  // schema, validate and plan: three sessions per plan, all in the one daemon
  expect(events('session.start').length - before).toBeGreaterThanOrEqual(6);
  expect(socketFiles()).toHaveLength(1);
  expect(fs.statSync(daemonDir).mode & 0o777).toBe(0o700);
  expect(fs.statSync(path.join(daemonDir, socketFiles()[0])).mode & 0o777).toBe(0o600);
});

test('sessions see only their own environment, even at the same time', async () => {
  const [good, bad] = await Promise.all([
    tfAsync({}, 'plan', '-no-color', '-input=false', '-lock=false', '-detailed-exitcode'),
    tfAsync({ MAYASTOR_TOKEN: 'wrong' }, 'plan', '-no-color', '-input=false', '-lock=false'),
  ]);
  expect(good.code).toBe(0);
  expect(bad.code).toBe(1);
  expect(bad.out).toMatch(/Agent on node "a" rejected the token/);
  expect(daemonPids()).toHaveLength(1);
  // the daemon itself never holds a session's secrets
  const environ = fs.readFileSync(`/proc/${daemonPids()[0]}/environ`, 'utf8').split('\0');
  expect(environ.filter((e) => /^(MAYASTOR_TOKEN|PLUGIN_CLIENT_CERT|TF_PLUGIN_MAGIC_COOKIE)=/.test(e))).toEqual([]);
});

test('a session logs to its own Terraform run (TF_LOG), not to the daemon log', () => {
  const r = tf({ TF_LOG_PROVIDER: 'trace', TF_LOG_PATH: path.join(work, 'tf.log') }, 'plan', '-no-color', '-input=false');
  expect(r.code).toBe(0);
  expect(fs.readFileSync(path.join(work, 'tf.log'), 'utf8')).toMatch(/ReadResource received/);
  // the daemon's own log (its stderr) holds none of the session's lines, JSON or not
  const daemonLog = fs
    .readdirSync(daemonDir)
    .filter((n) => n.endsWith('.log'))
    .map((n) => fs.readFileSync(path.join(daemonDir, n), 'utf8'))
    .join('');
  expect(daemonLog).toMatch(/session\.start/);
  expect(daemonLog).not.toMatch(/ReadResource/);
});

test('new code on disk: the old daemon hands over to a fresh one', () => {
  const pidBefore = daemonPids();
  const file = path.join(root, 'dist', 'provider.bundle.js'); // what the daemon runs (bin/terraform-provider-mayastor)
  const st = fs.statSync(file);
  fs.utimesSync(file, st.atime, new Date(st.mtimeMs + 1000));
  try {
    expect(plan().code).toBe(0);
  } finally {
    fs.utimesSync(file, st.atime, st.mtime);
  }
  expect(events('session.retry').length).toBeGreaterThanOrEqual(1);
  const pidAfter = daemonPids();
  expect(pidAfter).toHaveLength(1);
  expect(pidAfter).not.toEqual(pidBefore);
});

test('a daemon killed while idle is replaced on the next launch', () => {
  killDaemons();
  expect(plan().code).toBe(0);
  expect(daemonPids()).toHaveLength(1);
});

test('a daemon lost in the middle of a plan fails that plan, and the next plan works', async () => {
  expect(plan().code).toBe(0); // a daemon is up
  const sessions = events('session.start').length;
  agent.proc!.kill('SIGSTOP'); // the refresh now waits on the agent, inside the plan session
  try {
    const running = tfAsync({}, 'plan', '-no-color', '-input=false');
    await until('the plan session', () => events('session.start').length >= sessions + 3);
    await new Promise((r) => setTimeout(r, 300));
    killDaemons();
    const r = await running;
    expect(r.code).toBe(1);
    // Terraform reports the provider gone (not an agent timeout: the agent is only stopped, 5 s timeout).
    // Which words it uses depends on whether it sees the plugin exit or its gRPC stream break first.
    expect(r.out).toMatch(/Plugin did not respond|plugin exited|lost the provider daemon|ReadResource request was cancelled/);
    expect(r.out).not.toMatch(/timed out/i);
  } finally {
    agent.proc!.kill('SIGCONT');
  }
  expect(plan().code).toBe(0);
});

test('MAYASTOR_PROVIDER_DAEMON=off runs the provider directly', () => {
  killDaemons();
  fs.rmSync(daemonDir, { recursive: true, force: true });
  expect(plan({ MAYASTOR_PROVIDER_DAEMON: 'off' }).code).toBe(0);
  expect(socketFiles()).toEqual([]);
  expect(daemonPids()).toEqual([]);
});

test('hostile bytes on the daemon socket are refused and the daemon keeps serving', async () => {
  expect(plan().code).toBe(0);
  const sock = path.join(daemonDir, socketFiles()[0]);
  const send = (bytes: Buffer) =>
    new Promise<void>((resolve) => {
      const c = net.connect(sock, () => c.end(bytes));
      c.on('error', () => resolve());
      c.on('close', () => resolve());
      c.resume();
    });
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const before = events('session.bad_request').length;
  await send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  await send(Buffer.concat([Buffer.from('MSTRPL1\n'), len(0xffffffff)]));
  await send(Buffer.concat([Buffer.from('MSTRPL1\n'), len(5), Buffer.from('/\0x\0\0')]));
  await send(Buffer.concat([Buffer.from('MSTRPL1\n'), len(4), Buffer.from('/\0')])); // ends early
  const bad = events('session.bad_request')
    .slice(before)
    .map((e) => String(e.error));
  expect(bad).toEqual([
    expect.stringMatching(/launcher magic/),
    expect.stringMatching(/exceeds/),
    expect.stringMatching(/argument count "x"/),
    expect.stringMatching(/connection closed after/),
  ]);
  expect(plan().code).toBe(0);
  expect(daemonPids()).toHaveLength(1);
});

test('the daemon leaves when idle and removes its socket', async () => {
  killDaemons();
  fs.rmSync(daemonDir, { recursive: true, force: true });
  expect(plan({ MAYASTOR_PROVIDER_DAEMON_IDLE_SECONDS: '1' }).code).toBe(0);
  await until('the idle daemon to leave', () => daemonPids().length === 0 && socketFiles().length === 0);
  expect(events('daemon.exit').map((e) => e.why)).toContain('idle');
});
