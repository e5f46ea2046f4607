/**
 * Real agent processes and kill -9. Data is written through the embedded block API by an agent
 * process (test/helpers/embedded-agent.js: a real agent with an I/O hook on stdin), which is then
 * killed with SIGKILL. A real `mayastor-agent` restarts on the same data dir and must report the same
 * pools, replicas and accounting; it is killed -9 too; a final embedded agent reads every byte back.
 * Disks are only ever open in one process at a time. Needs `npm run build:ts` (npm test does it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Pool, Replica } from '../../agent/api/client';
import { AgentProcess, MiB, ROOT, cleanup, expectAgentError, makeDisk, pattern, rng, tempDir } from '../helpers/agent';

const run = promisify(execFile);
const CLUSTER = String(MiB);
const THICK = 'aaaaaaaa-0000-4000-8000-000000000001';
const THIN = 'bbbbbbbb-0000-4000-8000-000000000002';

let dir: string;
let dataDir: string;
let disks: string[];
const procs: AgentProcess[] = [];
const models = new Map<string, Buffer>();

function agentProc(embedded: boolean): AgentProcess {
  const p = new AgentProcess({ node: 'n1', dataDir, embedded, extraArgs: ['--cluster-size', CLUSTER] });
  procs.push(p);
  return p;
}

beforeAll(() => {
  dir = tempDir();
  dataDir = path.join(dir, 'data');
  disks = ['a', 'b', 'c'].map((n) => makeDisk(path.join(dataDir, 'disks', `${n}.img`), 64 * MiB));
});

afterAll(async () => {
  for (const p of procs) await p.kill9();
  cleanup(dir);
});

async function snapshot(p: AgentProcess): Promise<{ pools: Pool[]; replicas: Replica[] }> {
  const c = p.client();
  return { pools: await c.listPools(), replicas: await c.listReplicas() };
}

let before: { pools: Pool[]; replicas: Replica[] };

test('write through the embedded API, then kill -9 the writer', async () => {
  const w = await agentProc(true).start();
  const c = w.client();
  await c.putPool('p1', { disks: [disks[0]] });
  await c.putPool('p2', { disks: [disks[1], disks[2]] });
  await c.putReplica(THICK, { pool: 'p1', sizeBytes: 12 * MiB, thin: false });
  await c.putReplica(THIN, { pool: 'p2', sizeBytes: 100 * MiB, thin: true });
  const r = rng(7);
  for (const [uuid, size] of [
    [THICK, 12 * MiB],
    [THIN, 100 * MiB],
  ] as const) {
    const model = Buffer.alloc(size);
    for (let i = 0; i < 25; i++) {
      const len = (1 + Math.floor(r() * 128)) * 512;
      const off = Math.floor(r() * ((size - len) / 512)) * 512;
      const data = pattern(i + (uuid === THIN ? 100 : 0), len);
      await w.write(uuid, off, data);
      data.copy(model, off);
    }
    await w.io({ op: 'flush', target: uuid });
    models.set(uuid, model);
  }
  before = await snapshot(w);
  expect(before.replicas.find((x) => x.uuid === THIN)!.allocatedBytes).toBeGreaterThan(0);
  await w.kill9();
});

test('a real agent restarted after kill -9 reports the same pools, replicas and accounting', async () => {
  const a = await agentProc(false).start();
  expect(await snapshot(a)).toEqual(before);
  // still serving: a new replica, then kill -9 again and it is there after the next start
  await a.client().putReplica('cccccccc-0000-4000-8000-000000000003', { pool: 'p1', sizeBytes: 4 * MiB, thin: true });
  await a.kill9();
  const b = await agentProc(false).start();
  const s = await snapshot(b);
  expect(s.replicas.map((r) => r.uuid)).toContain('cccccccc-0000-4000-8000-000000000003');
  expect(await b.client().deleteReplica('cccccccc-0000-4000-8000-000000000003')).toBe(true);
  expect(await snapshot(b)).toEqual(before);
  expect(await b.stop()).toBe(0); // SIGTERM: graceful
});

test('every byte written before the kill reads back', async () => {
  const r = await agentProc(true).start();
  for (const [uuid, model] of models) {
    const chunk = 4 * MiB;
    for (let off = 0; off < model.length; off += chunk) {
      const len = Math.min(chunk, model.length - off);
      const got = await r.read(uuid, off, len);
      if (!got.equals(model.subarray(off, off + len))) throw new Error(`replica ${uuid}: bytes differ in [${off}, ${off + len})`);
    }
  }
  await r.io({ op: 'close' });
});

test('a pool whose disk is missing at start-up is faulted; the others keep serving', async () => {
  const moved = disks[2] + '.away';
  fs.renameSync(disks[2], moved);
  const a = await agentProc(false).start();
  const c = a.client();
  const p2 = (await c.getPool('p2'))!;
  expect(p2.state).toBe('faulted');
  expect(p2.reason).toBeTruthy();
  const p1 = (await c.getPool('p1'))!;
  expect(p1.state).toBe('online');
  expect((await c.getReplica(THICK))!.allocatedBytes).toBe(12 * MiB);
  await expectAgentError(c.putReplica('dddddddd-0000-4000-8000-000000000004', { pool: 'p2', sizeBytes: MiB }), 422, 'faulted');
  expect(await c.metrics()).toMatch(/^mayastor_pool_online\{node="n1",pool="p2"\} 0$/m);
  // the disk comes back: PUT of the same spec re-imports
  fs.renameSync(moved, disks[2]);
  const again = await c.putPool('p2', { disks: [disks[1], disks[2]] });
  expect(again.state).toBe('online');
  expect(again.usedBytes).toBe(before.pools.find((p) => p.name === 'p2')!.usedBytes);
  await a.stop();
});

test('a second agent on the same data dir is refused', async () => {
  const a = await agentProc(false).start();
  await expect(agentProc(false).start()).rejects.toThrow(/in use by agent pid/);
  expect((await a.client().listPools()).length).toBe(2);
  expect(await a.stop()).toBe(0);
});

describe('mayastorctl against a real agent', () => {
  let a: AgentProcess;
  const ctl = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, [path.join(ROOT, 'bin/mayastorctl'), ...args], {
      env: { ...process.env, MAYASTOR_URL: a.url, MAYASTOR_TOKEN: a.token, ...env },
    }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  beforeAll(async () => {
    a = await agentProc(false).start();
  });
  afterAll(async () => {
    await a.stop();
  });

  test('pool list: a table, and JSON with --json', async () => {
    const t = await ctl(['pool', 'list']);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^NAME\s+STATE\s+CAPACITY/);
    expect(t.stdout).toMatch(/^p1\s+online/m);
    const j = await ctl(['pool', 'list', '--json']);
    expect((JSON.parse(j.stdout) as Pool[]).map((p) => p.name)).toEqual(['p1', 'p2']);
  });

  test('pool create/destroy and replica create/list/destroy, flags instead of env', async () => {
    const d = makeDisk(path.join(dataDir, 'disks', 'ctl.img'), 64 * MiB);
    const flags = ['--url', a.url, '--token', a.token];
    const env = { MAYASTOR_URL: '', MAYASTOR_TOKEN: '' };
    expect((await ctl([...flags, 'pool', 'create', 'pc', d], env)).stdout).toMatch(/^pc\s+online/m);
    const created = await ctl(
      [...flags, '--json', 'replica', 'create', 'eeeeeeee-0000-4000-8000-000000000005', '--pool', 'pc', '--size', '8MiB', '--thin'],
      env,
    );
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ uuid: 'eeeeeeee-0000-4000-8000-000000000005', sizeBytes: 8 * MiB, thin: true });
    expect((await ctl(['replica', 'list'])).stdout).toMatch(/^eeeeeeee-0000-4000-8000-000000000005\s+pc\s+8 MiB/m);
    const busy = await ctl(['pool', 'destroy', 'pc']);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/replica/);
    expect((await ctl(['replica', 'destroy', 'eeeeeeee-0000-4000-8000-000000000005'])).code).toBe(0);
    expect((await ctl(['pool', 'destroy', 'pc'])).stdout).toMatch(/destroyed/);
  });

  test('clear errors with exit code 1', async () => {
    const bad = await ctl(['pool', 'list'], { MAYASTOR_TOKEN: 'wrong-token' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/401/);
    const size = await ctl(['replica', 'create', '--pool', 'p1', '--size', '0']);
    expect(size.code).toBe(1);
    expect(size.stderr).toMatch(/sizeBytes/);
    const down = await ctl(['pool', 'list'], { MAYASTOR_URL: 'http://127.0.0.1:1' });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/127\.0\.0\.1:1/);
    const usage = await ctl(['frobnicate']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/usage/);
  });
});
