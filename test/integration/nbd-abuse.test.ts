/**
 * Unauthenticated NBD clients must not be able to exhaust the agent (issue 10, finding 4), against
 * real agent processes, with raw-socket abusers (nbd_abuse.py) and real clients (qemu-io, nbdinfo)
 * checking data by pattern:
 *  - a client trickling its handshake one byte a second is dropped at the whole-handshake deadline
 *    (the old per-receive timeout let it live for as long as it kept trickling);
 *  - connection caps: the (cap+1)th connection is refused (closed without a greeting) while a
 *    connected qemu-io keeps writing and reading; a full export answers GO with
 *    NBD_REP_ERR_POLICY naming --max-connections-per-export while another export serves;
 *  - the fd limit: with RLIMIT_NOFILE lowered (prlimit) a flood of connections is refused inside the
 *    fd headroom, the agent does not spin (its CPU time over two seconds stays far from 100%), HTTP
 *    keeps working (PUT replica 201, state.json written), and NBD serves once the flood is gone;
 *    without headroom accept hits EMFILE and backs off on a timer instead of spinning;
 *  - non-reading clients (reads of 32 MiB, replies never read) pin at most their memory budget;
 *    RSS stays within it and another client's 4 KiB read completes;
 *  - the DoS case: 1,000 trickling and 10 non-reading clients at once; a normal client's latency is
 *    measured and printed (not asserted), RSS stays within a budget derived from the flags, HTTP works.
 * Needs dist/ (`npm run build:ts`), python3, qemu-io, nbdinfo, prlimit.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { AgentProcess, MiB, ROOT, cleanup, makeDisk, tempDir } from '../helpers/agent';
import { metric, mustRun, qemuIoOk, runTool, until } from '../helpers/nbd';

const HELPER = path.join(ROOT, 'test/integration/nbd_abuse.py');
const R1 = 'abab0001-0000-4000-8000-000000000001';
const R2 = 'abab0002-0000-4000-8000-000000000002';

let dir: string;
const agents: AgentProcess[] = [];
const abusers: Abuser[] = [];

afterAll(async () => {
  for (const a of abusers) a.kill();
  for (const a of agents) await a.kill9();
  cleanup(dir);
});

beforeAll(() => {
  dir = tempDir('mayastor-nbdabuse-');
});

/** nbd_abuse.py in one mode: its JSON events; stop() closes its stdin (it closes its sockets and exits). */
class Abuser {
  readonly events: Array<Record<string, unknown>> = [];
  readonly proc: ChildProcess;
  private readonly exited: Promise<number | null>;
  stderr = '';
  constructor(args: string[]) {
    this.proc = spawn('python3', [HELPER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    readline.createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      try {
        this.events.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        /* not an event */
      }
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.proc.stdin!.on('error', () => undefined);
    abusers.push(this);
  }
  event(name: string): Promise<Record<string, unknown>> {
    return until(
      async () => this.events.find((e) => e.event === name) ?? (this.proc.exitCode !== null ? fail(this, name) : undefined),
      `abuser event ${name}`,
      50,
      120_000,
    );
  }
  async stop(): Promise<void> {
    this.proc.stdin!.end();
    await this.exited;
  }
  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

function fail(a: Abuser, name: string): never {
  throw new Error(`nbd_abuse.py exited (${a.proc.exitCode}) before '${name}':\n${a.stderr}`);
}

async function startAgent(name: string, flags: string[]): Promise<{ agent: AgentProcess; port: number; uri: (r: string) => string }> {
  const dataDir = path.join(dir, name);
  makeDisk(path.join(dataDir, 'disks', 'd0.img'), 512 * MiB);
  const agent = new AgentProcess({ node: name, dataDir, extraArgs: flags });
  agents.push(agent);
  await agent.start();
  const c = agent.client();
  await c.putPool('p', { disks: [path.join(dataDir, 'disks', 'd0.img')] });
  for (const r of [R1, R2]) await c.putReplica(r, { pool: 'p', sizeBytes: 128 * MiB, thin: false, share: 'nbd' });
  const port = Number((await c.node()).listeners.nbd.split(':').pop());
  return { agent, port, uri: (r: string) => `nbd://127.0.0.1:${port}/${r}` };
}

/** The agent's pid (AgentProcess spawns node directly). */
const pidOf = (a: AgentProcess) => a.proc!.pid!;

/** Resident set size of a process in bytes (/proc/PID/status VmRSS). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** User + system CPU seconds of a process (/proc/PID/stat fields 14 and 15, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Share of one CPU the process used over `ms` (1.0: one core busy the whole time, a spin). */
async function cpuShare(pid: number, ms: number): Promise<number> {
  const c0 = cpuSeconds(pid);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, ms));
  return (cpuSeconds(pid) - c0) / ((Date.now() - t0) / 1000);
}

async function metrics(a: AgentProcess): Promise<string> {
  return a.client().metrics();
}

const refused = (text: string, reason: string) => metric(text, 'mayastor_target_connections_refused_total', { reason }) ?? 0;

/** qemu-io reading commands from stdin: one connection that stays open between commands. */
class QemuSession {
  private out = '';
  private readonly proc: ChildProcess;
  constructor(uri: string) {
    this.proc = spawn('qemu-io', ['-f', 'raw', uri], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
  }
  /** Wait for the prompt (connected), run one command, return its output. */
  async run(cmd: string, done: RegExp): Promise<string> {
    await until(async () => this.out.includes('qemu-io>'), 'the qemu-io prompt', 50, 60_000);
    const from = this.out.length;
    this.proc.stdin!.write(cmd + '\n');
    await until(async () => done.test(this.out.slice(from)) || /error|failed/i.test(this.out.slice(from)), `qemu-io '${cmd}'`, 50, 60_000);
    const text = this.out.slice(from);
    if (/error|failed|Pattern verification/i.test(text)) throw new Error(`qemu-io '${cmd}' failed:\n${text}`);
    return text;
  }
  close(): void {
    this.proc.stdin!.end('quit\n');
  }
}

test('a client trickling its handshake one byte a second is dropped at the deadline, logged naming its address', async () => {
  const { agent, port } = await startAgent('trickle', ['--handshake-timeout-ms', '2000']);
  // The whole handshake (client flags + GO) is 34 bytes; the client would finish after 34 s.
  const t = new Abuser(['trickle', String(port), R1, '1', '--interval', '1']);
  const closed = await until(async () => t.events.find((e) => e.event === 'closed' || e.event === 'finished'), 'the trickling client to end', 100, 60_000);
  await t.stop();
  expect(closed.event).toBe('closed');
  expect(Number(closed.sent)).toBeLessThan(34);
  expect(agent.stderr).toContain(`nbd: peer ${String(closed.peer)}: handshake not finished within 2000 ms (--handshake-timeout-ms); closing`);
  const m = await metrics(agent);
  expect(metric(m, 'mayastor_target_handshake_timeouts_total', {})).toBeGreaterThanOrEqual(1);
  expect(metric(m, 'mayastor_target_limit_handshake_timeout_seconds', {})).toBe(2);
  await agent.kill9();
}, 90_000);

test('connection caps: the (cap+1)th connection is refused while a connected qemu-io keeps working; a full export says why', async () => {
  const { agent, port, uri } = await startAgent('caps', ['--max-connections', '8', '--max-connections-per-export', '3', '--handshake-timeout-ms', '120000']);
  const q = new QemuSession(uri(R1)); // connection 1 of 8
  await q.run('write -P 0x5c 0 1M', /wrote 1048576/);
  const seven = new Abuser(['hold', String(port), '7']); // connections 2..8
  expect(await seven.event('held')).toMatchObject({ greeted: 7, closed: 0 });
  const extra = new Abuser(['hold', String(port), '1']); // the 9th
  expect(await extra.event('held')).toMatchObject({ greeted: 0, closed: 1 });
  // the cap does not stop the client that is in
  await q.run('write -P 0xc5 1M 1M', /wrote 1048576/);
  await q.run('read -P 0x5c 0 1M', /read 1048576/);
  await q.run('read -P 0xc5 1M 1M', /read 1048576/);
  let m = await metrics(agent);
  expect(refused(m, 'max_connections')).toBeGreaterThanOrEqual(1);
  expect(metric(m, 'mayastor_target_connections', {})).toBe(8);
  expect(agent.stderr).toMatch(/nbd: peer 127\.0\.0\.1:\d+: connection refused: 8 connections are open, the limit of the agent \(--max-connections\); closed/);
  await extra.stop();
  await seven.stop();
  q.close();
  await until(async () => metric(await metrics(agent), 'mayastor_target_connections', {}) === 0, 'the connections to close');

  // per export: 3 clients hold R1; a 4th GO is refused with the reason, R2 still serves
  const three = new Abuser(['noread', String(port), R1, '3', '--reads', '0']);
  await three.event('sent');
  const go = new Abuser(['go', String(port), R1]);
  const reply = await go.event('go');
  expect(reply.reply).toBe(0x80000002); // NBD_REP_ERR_POLICY
  expect(String(reply.message)).toContain('export has reached its limit of 3 connections (--max-connections-per-export)');
  // libnbd shows the server's message with LIBNBD_DEBUG
  const info = await runTool('env', ['LIBNBD_DEBUG=1', 'nbdinfo', uri(R1)], { timeoutMs: 20_000 });
  expect(info.code).not.toBe(0);
  expect(info.stderr).toContain('server error message: export has reached its limit of 3 connections (--max-connections-per-export)');
  await qemuIoOk(uri(R2), ['write -P 0x77 0 64k', 'read -P 0x77 0 64k']);
  m = await metrics(agent);
  expect(refused(m, 'max_connections_per_export')).toBeGreaterThanOrEqual(2);
  await three.stop();
  await until(async () => metric(await metrics(agent), 'mayastor_target_connections', {}) === 0, 'the connections to close');
  await qemuIoOk(uri(R1), ['read -P 0x5c 0 1M', 'read -P 0xc5 1M 1M']);
  await agent.kill9();
}, 120_000);

test('at the fd limit: refusals inside the headroom, no spin, HTTP and state.json keep working, NBD serves after the flood', async () => {
  const { agent, port, uri } = await startAgent('fds', []);
  const pid = pidOf(agent);
  await qemuIoOk(uri(R1), ['write -P 0x3e 0 1M']);
  await mustRun('prlimit', ['--pid', String(pid), '--nofile=256:256']);
  const flood = new Abuser(['hold', String(port), '400']);
  const held = await flood.event('held');
  expect(Number(held.closed)).toBeGreaterThan(0); // refused inside the headroom
  const share = await cpuShare(pid, 2000);
  console.log(`fd flood (RLIMIT_NOFILE 256, 400 connections held: ${JSON.stringify(held)}): agent CPU ${(share * 100).toFixed(1)}% of one core over 2 s`);
  expect(share).toBeLessThan(0.5); // a spinning reactor is 100%
  // the control plane still has its fds: a replica is created and recorded
  const c = agent.client();
  const r3 = 'abab0003-0000-4000-8000-000000000003';
  expect((await c.call('PUT', `/v1/replicas/${r3}`, { pool: 'p', sizeBytes: 16 * MiB, thin: true, share: 'nbd' })).status).toBe(201);
  expect(fs.readFileSync(path.join(agent.opts.dataDir, 'state.json'), 'utf8')).toContain(r3);
  const m = await metrics(agent);
  expect(refused(m, 'fd_headroom')).toBeGreaterThan(0);
  expect(agent.stderr).toMatch(/file descriptors are open; the last 64 are kept for the control plane \(--fd-headroom\)/);
  await flood.stop();
  await until(async () => metric(await metrics(agent), 'mayastor_target_connections', {}) === 0, 'the flood to close');
  await qemuIoOk(uri(R1), ['read -P 0x3e 0 1M']);
  await qemuIoOk(uri(r3), ['write -P 0x3f 0 64k', 'read -P 0x3f 0 64k']);
  await agent.kill9();
}, 120_000);

test('without headroom, accept at EMFILE backs off on a timer (no spin) and accepts again once fds are free', async () => {
  const { agent, port, uri } = await startAgent('emfile', ['--fd-headroom', '0']);
  const pid = pidOf(agent);
  await qemuIoOk(uri(R1), ['write -P 0x4d 0 64k']);
  await mustRun('prlimit', ['--pid', String(pid), '--nofile=256:256']);
  const flood = new Abuser(['hold', String(port), '400']);
  const held = await flood.event('held');
  const share = await cpuShare(pid, 2000);
  console.log(`EMFILE flood (no headroom, 400 connections: ${JSON.stringify(held)}): agent CPU ${(share * 100).toFixed(1)}% of one core over 2 s`);
  expect(Number(held.silent)).toBeGreaterThan(0); // left in the backlog while accepting is paused
  expect(share).toBeLessThan(0.5);
  expect(agent.stderr).toMatch(/nbd: accept: Too many open files; not accepting new connections for \d+ ms/);
  await flood.stop();
  await qemuIoOk(uri(R1), ['read -P 0x4d 0 64k']);
  const m = await metrics(agent);
  expect(metric(m, 'mayastor_target_accept_backoffs_total', {})).toBeGreaterThanOrEqual(1);
  await agent.kill9();
}, 120_000);

test('clients that never read their replies pin at most their budget; another client is served', async () => {
  const { agent, port, uri } = await startAgent('noread', []); // --conn-memory-budget 64MiB
  const pid = pidOf(agent);
  await qemuIoOk(uri(R2), ['write -P 0x2b 0 1M']);
  await qemuIoOk(uri(R1), ['read 0 32M']); // warm: the same kind of reads once
  const before = rss(pid);
  const hogs = new Abuser(['noread', String(port), R1, '3', '--reads', '64', '--size', String(32 * MiB)]);
  await hogs.event('sent');
  await until(async () => (metric(await metrics(agent), 'mayastor_target_memory_waits_total', {}) ?? 0) >= 3, 'the three clients to wait for memory');
  const m = await metrics(agent);
  const held = metric(m, 'mayastor_target_memory_bytes', {})!;
  const after = rss(pid);
  // budget: 3 connections x --conn-memory-budget (64 MiB), plus 64 MiB for everything else
  const budget = 3 * 64 * MiB + 64 * MiB;
  console.log(
    `3 non-reading clients x 64 reads of 32 MiB: RSS ${(before / MiB).toFixed(0)} -> ${(after / MiB).toFixed(0)} MiB (+${((after - before) / MiB).toFixed(0)}, budget +${budget / MiB}); target memory ${(held / MiB).toFixed(1)} MiB`,
  );
  expect(held).toBeLessThanOrEqual(3 * 64 * MiB);
  expect(after - before).toBeLessThanOrEqual(budget);
  const t0 = Date.now();
  await qemuIoOk(uri(R2), ['read -P 0x2b 0 4k']);
  console.log(`another client's 4 KiB read (qemu-io, connect included) meanwhile: ${Date.now() - t0} ms`);
  await hogs.stop();
  await until(async () => metric(await metrics(agent), 'mayastor_target_memory_bytes', {}) === 0, 'the memory to come back');
  await agent.kill9();
}, 120_000);

test('DoS: 1,000 trickling and 10 non-reading clients at once; a normal client is served, RSS within budget, HTTP works', async () => {
  const budgetFlag = 256 * MiB;
  const { agent, port, uri } = await startAgent('dos', ['--memory-budget', String(budgetFlag)]);
  const pid = pidOf(agent);
  const c = agent.client();
  await qemuIoOk(uri(R2), ['write -P 0x6d 0 1M', 'flush']);
  const latency = async (n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await qemuIoOk(uri(R2), [`read -P 0x6d ${(i % 256) * 4096} 4k`]);
      out.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return out;
  };
  /** One connection, 50 reads of 4 KiB in a row, each checked against the pattern: round trips in ms. */
  const roundTrips = async (): Promise<number[]> => {
    const ev = await new Abuser(['latency', String(port), R2, '50', '0x6d']).event('latency');
    expect(ev.ok).toBe(true);
    return (ev.ms as number[]).slice().sort((x, y) => x - y);
  };
  await qemuIoOk(uri(R1), ['read 0 32M']); // warm
  const idle = await latency(5);
  const idleRt = await roundTrips();
  const before = rss(pid);
  const trickle = new Abuser(['trickle', String(port), R1, '1000', '--interval', '1', '--reconnect']);
  await trickle.event('connected');
  const hogs = new Abuser(['noread', String(port), R1, '10', '--reads', '64', '--size', String(32 * MiB)]);
  await hogs.event('sent');
  await until(async () => (metric(await metrics(agent), 'mayastor_target_handshakes', {}) ?? 0) >= 900, 'the trickling clients to be in their handshakes');
  const busy = await latency(5);
  const busyRt = await roundTrips();
  const t0 = Date.now();
  const r4 = 'abab0004-0000-4000-8000-000000000004';
  expect((await c.call('PUT', `/v1/replicas/${r4}`, { pool: 'p', sizeBytes: 16 * MiB, thin: true, share: 'nbd' })).status).toBe(201);
  const putMs = Date.now() - t0;
  const m = await metrics(agent);
  const after = rss(pid);
  const share = await cpuShare(pid, 1000);
  const handshakes = metric(m, 'mayastor_target_handshakes', {})!;
  const conns = metric(m, 'mayastor_target_connections', {})!;
  const held = metric(m, 'mayastor_target_memory_bytes', {})!;
  // budget from the flags: --memory-budget, plus the floor each connection keeps (256 KiB) for the 10,
  // plus the handshake buffers of 1,024 connections (--max-connections) at 96 KiB, plus 128 MiB slack
  const budget = budgetFlag + 10 * 256 * 1024 + 1024 * 96 * 1024 + 128 * MiB;
  const fmt = (a: number[]) => a.map((v) => v.toFixed(1)).join(', ');
  const pct = (a: number[]) =>
    `p50 ${a[Math.floor(a.length / 2)].toFixed(3)} ms, p99 ${a[Math.floor(a.length * 0.99)].toFixed(3)} ms, max ${a[a.length - 1].toFixed(3)} ms`;
  console.log(
    [
      `DoS: 1,000 trickling + 10 non-reading clients (64 reads of 32 MiB each), --memory-budget 256MiB`,
      `  connections ${conns}, in handshake ${handshakes}, target memory ${(held / MiB).toFixed(1)} MiB`,
      `  normal client, 4 KiB read round trip on one connection (50 reads, data checked): idle ${pct(idleRt)}; under attack ${pct(busyRt)}`,
      `  normal client, qemu-io read -P 4k (process start + connect + read) idle: ${fmt(idle)} ms; under attack: ${fmt(busy)} ms`,
      `  RSS ${(before / MiB).toFixed(0)} -> ${(after / MiB).toFixed(0)} MiB (+${((after - before) / MiB).toFixed(0)}; budget +${(budget / MiB).toFixed(0)})`,
      `  PUT replica ${putMs} ms (201); agent CPU ${(share * 100).toFixed(1)}% of one core`,
    ].join('\n'),
  );
  expect(held).toBeLessThanOrEqual(budgetFlag + 10 * 256 * 1024);
  expect(after - before).toBeLessThanOrEqual(budget);
  expect(fs.readFileSync(path.join(agent.opts.dataDir, 'state.json'), 'utf8')).toContain(r4);
  await hogs.stop();
  await trickle.stop();
  await qemuIoOk(uri(r4), ['write -P 0x11 0 64k', 'read -P 0x11 0 64k']);
  await agent.kill9();
}, 120_000);
