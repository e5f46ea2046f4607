/**
 * Issue 10, findings 3 and 5: the state the API reports is the state the data path is in, and the pid
 * file never blocks a start by itself.
 *
 *  - a metadata write error (nbdkit's error filter under the pool's nbd:// disk, switched on by a
 *    file) fails the pool in the data path: GET says "failed" with the reason, PUT of the same spec
 *    re-imports it, the shared replica comes back re-shared with its data (checksum through nbdcopy);
 *  - a pool faulted at start and brought back by PUT: its replica's share is re-created, and while it
 *    is not, the replica does not claim a share or an nbd:// uri;
 *  - a pool on an nbd:// export of the same agent comes back at start;
 *  - a pool adopted by PUT over a disk holding replicas lists them at once; PUT of one answers 200;
 *  - a stale pid file naming a live process (pid reuse after kill -9 / reboot) does not block a start;
 *    a live agent on the same data dir is refused naming its pid.
 * Real agent processes (npm run build:ts first); real NBD clients (nbdcopy, nbdinfo).
 */
import crypto from 'node:crypto';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AgentProcess, MiB, cleanup, expectAgentError, makeDisk, pattern, tempDir } from '../helpers/agent';
import { freePort, nbdReadAll, nbdinfo, runTool, sha256, until } from '../helpers/nbd';

const R1 = 'c0000000-0000-4000-8000-000000000001';
const R2 = 'c0000000-0000-4000-8000-000000000002';
const R3 = 'c0000000-0000-4000-8000-000000000003';
const S1 = 'd0000000-0000-4000-8000-000000000001';
const X1 = 'e0000000-0000-4000-8000-000000000001';
const X2 = 'e0000000-0000-4000-8000-000000000002';
const B1 = 'f0000000-0000-4000-8000-000000000001';
const B2 = 'f0000000-0000-4000-8000-000000000002';

let dir: string;
const procs: AgentProcess[] = [];
const helpers: ChildProcess[] = [];

function agent(dataDir: string, extraArgs: string[] = []): AgentProcess {
  const p = new AgentProcess({ node: 'sc', dataDir, extraArgs: ['--cluster-size', String(MiB), ...extraArgs] });
  procs.push(p);
  return p;
}

/** Write `data` at offset 0 of an NBD export with nbdcopy (flushed). */
async function nbdWrite(uri: string, data: Buffer): Promise<void> {
  const f = path.join(dir, `w-${crypto.randomUUID()}.bin`);
  fs.writeFileSync(f, data);
  const r = await runTool('nbdcopy', ['--flush', f, uri], { timeoutMs: 30000 });
  fs.unlinkSync(f);
  if (r.code !== 0) throw new Error(`nbdcopy to ${uri} failed: ${r.stderr}`);
}

/** sha256 of the first `len` bytes of an NBD export, read with nbdcopy. */
function nbdSha(uri: string, len: number): string {
  return sha256(nbdReadAll(uri, 256 * MiB, 30000).subarray(0, len));
}

beforeAll(() => {
  dir = tempDir('mayastor-state-');
});

afterAll(async () => {
  for (const p of procs) await p.kill9();
  for (const h of helpers) h.kill('SIGKILL');
  cleanup(dir);
});

/** nbdkit serving 256 MiB of memory whose writes fail with EIO while `errorFile` exists. */
async function nbdkitWithErrors(errorFile: string): Promise<string> {
  const port = await freePort();
  const h = spawn(
    'nbdkit',
    [
      '--foreground',
      '--exit-with-parent',
      '-i',
      '127.0.0.1',
      '-p',
      String(port),
      '--filter=error',
      'memory',
      '256M',
      'error-pwrite=EIO',
      'error-pwrite-rate=100%',
      `error-pwrite-file=${errorFile}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  helpers.push(h);
  const uri = `nbd://127.0.0.1:${port}/disk0`;
  await until(async () => (await runTool('nbdinfo', ['--size', uri], { timeoutMs: 5000 })).code === 0, 'nbdkit up', 100, 20000);
  return uri;
}

test('a metadata write error: GET says failed with the reason; PUT of the same spec re-imports; the shared replica comes back with its data', async () => {
  const errorFile = path.join(dir, 'pwrite-fails');
  const disk = await nbdkitWithErrors(errorFile);
  const a = await agent(path.join(dir, 'a')).start();
  const c = a.client();
  expect((await c.putPool('pf', { disks: [disk] })).state).toBe('online');
  const r1 = await c.putReplica(R1, { pool: 'pf', sizeBytes: 16 * MiB, thin: false, share: 'nbd' });
  const data = pattern(11, 16 * MiB);
  await nbdWrite(r1.uri, data);
  expect(nbdSha(r1.uri, data.length)).toBe(sha256(data));

  // the next metadata commit fails: the pool is failed in the data path
  fs.writeFileSync(errorFile, '');
  await expect(c.putReplica(R2, { pool: 'pf', sizeBytes: 8 * MiB, thin: false })).rejects.toThrow();
  fs.unlinkSync(errorFile);

  const failed = (await c.getPool('pf'))!;
  expect(failed.state).toBe('failed');
  expect(failed.reason).toMatch(/metadata (write|flush|commit) failed/);
  expect(failed.reason).toMatch(/PUT the pool again/);
  // every allocation fails until it is re-imported, with the pool's state in the message
  await expectAgentError(c.putReplica(R3, { pool: 'pf', sizeBytes: 8 * MiB, thin: false }), 422, /pool 'pf' is failed \(metadata/);

  // PUT of the same spec re-imports it: online, the replica back, re-shared, its data intact
  const again = await c.putPool('pf', { disks: [disk] });
  expect(again.state).toBe('online');
  expect(again.reason).toBeUndefined();
  const back = await c.getReplica(R1);
  expect(back.share).toBe('nbd');
  expect(back.uri).toBe(r1.uri);
  expect((await nbdinfo(back.uri))['export-size']).toBe(16 * MiB);
  expect(nbdSha(back.uri, data.length)).toBe(sha256(data));
  // and it allocates again
  const r3 = await c.putReplica(R3, { pool: 'pf', sizeBytes: 8 * MiB, thin: false });
  expect(r3.sizeBytes).toBe(8 * MiB);
  expect((await c.listReplicas()).map((r) => r.uuid).sort()).toEqual([R1, R3]);
  await a.stop();
}, 90000);

test('a pool faulted at start and brought back by PUT re-creates its shares; meanwhile the replica claims no export', async () => {
  const dataDir = path.join(dir, 'b');
  const disk = makeDisk(path.join(dataDir, 'disks', 'b0.img'), 64 * MiB);
  let a = await agent(dataDir).start();
  let c = a.client();
  await c.putPool('pb', { disks: [disk] });
  const s1 = await c.putReplica(S1, { pool: 'pb', sizeBytes: 8 * MiB, thin: true, share: 'nbd' });
  const data = pattern(21, 8 * MiB);
  await nbdWrite(s1.uri, data);
  await a.stop();

  fs.renameSync(disk, disk + '.away');
  a = await agent(dataDir).start();
  c = a.client();
  expect((await c.getPool('pb'))!.state).toBe('faulted');
  const gone = await c.getReplica(S1);
  expect(gone.share).toBe('none'); // no export exists: the replica does not claim one
  expect(gone.uri).toBe(`bdev:///${S1}`);
  expect(gone.reason).toMatch(/not in effect/);
  // asking for the share is not a silent no-op: the pool is faulted, say so
  await expectAgentError(c.patchReplica(S1, { share: 'nbd' }), 422, /pool 'pb' is faulted/);
  const here = `nbd://${(await c.node()).listeners.nbd}/${S1}`;
  expect((await runTool('nbdinfo', ['--size', here], { timeoutMs: 10000 })).code).not.toBe(0);

  fs.renameSync(disk + '.away', disk);
  expect((await c.putPool('pb', { disks: [disk] })).state).toBe('online');
  const back = await c.getReplica(S1);
  expect(back.share).toBe('nbd');
  expect(back.reason).toBeUndefined();
  expect(nbdSha(back.uri, data.length)).toBe(sha256(data));
  // PUT of the same spec is 200 and keeps it shared
  expect((await c.putReplica(S1, { pool: 'pb', sizeBytes: 8 * MiB, thin: true, share: 'nbd' })).uri).toBe(back.uri);
  await a.stop();
}, 90000);

test('a pool on an nbd:// export of the same agent comes back at start, its replica shared, data intact', async () => {
  const dataDir = path.join(dir, 'c');
  const disk = makeDisk(path.join(dataDir, 'disks', 'c0.img'), 128 * MiB);
  const port = await freePort();
  const args = ['--nbd-listen', `127.0.0.1:${port}`];
  let a = await agent(dataDir, args).start();
  let c = a.client();
  await c.putPool('base', { disks: [disk] });
  const x1 = await c.putReplica(X1, { pool: 'base', sizeBytes: 64 * MiB, thin: false, share: 'nbd' });
  expect(x1.uri).toBe(`nbd://127.0.0.1:${port}/${X1}`);
  expect((await c.putPool('stacked', { disks: [x1.uri] })).state).toBe('online');
  const x2 = await c.putReplica(X2, { pool: 'stacked', sizeBytes: 8 * MiB, thin: false, share: 'nbd' });
  const data = pattern(31, 8 * MiB);
  await nbdWrite(x2.uri, data);
  await a.stop();

  a = await agent(dataDir, args).start();
  c = a.client();
  const pools = await c.listPools();
  expect(pools.map((p) => [p.name, p.state])).toEqual([
    ['base', 'online'],
    ['stacked', 'online'],
  ]);
  const back = await c.getReplica(X2);
  expect(back.share).toBe('nbd');
  expect(nbdSha(back.uri, data.length)).toBe(sha256(data));
  await a.stop();
}, 90000);

test('a pool adopted by PUT over a disk holding replicas lists them at once; PUT of one answers 200', async () => {
  const first = path.join(dir, 'd1');
  const second = path.join(dir, 'd2');
  const disk = makeDisk(path.join(dir, 'shared-disks', 'd0.img'), 64 * MiB);
  const allow = ['--allow-disk', path.join(dir, 'shared-disks') + '/'];
  const a = await agent(first, allow).start();
  const ca = a.client();
  await ca.putPool('pd', { disks: [disk] });
  const b1 = await ca.putReplica(B1, { pool: 'pd', sizeBytes: 8 * MiB, thin: false, share: 'nbd' });
  await ca.putReplica(B2, { pool: 'pd', sizeBytes: 24 * MiB, thin: true });
  const data = pattern(41, 8 * MiB);
  await nbdWrite(b1.uri, data);
  await a.stop(); // pool exported, disk untouched

  const b = await agent(second, allow).start();
  const cb = b.client();
  const adopted = await cb.putPool('pd', { disks: [disk] });
  expect(adopted.state).toBe('online');
  const listed = await cb.listReplicas();
  expect(listed.map((r) => [r.uuid, r.sizeBytes, r.thin, r.share])).toEqual([
    [B1, 8 * MiB, false, 'none'],
    [B2, 24 * MiB, true, 'none'],
  ]);
  expect((await cb.putReplica(B1, { pool: 'pd', sizeBytes: 8 * MiB, thin: false })).uuid).toBe(B1);
  await expectAgentError(cb.putReplica(B2, { pool: 'pd', sizeBytes: 32 * MiB, thin: true }), 409, 'sizeBytes');
  const shared = await cb.patchReplica(B1, { share: 'nbd' });
  expect(nbdSha(shared.uri, data.length)).toBe(sha256(data));
  await b.stop();
}, 90000);

test('pid file: a stale file naming a live pid does not block a start; a live agent is refused naming its pid', async () => {
  const dataDir = path.join(dir, 'e');
  const a = await agent(dataDir).start();
  const pidFile = path.join(dataDir, 'agent.pid');
  expect(fs.readFileSync(pidFile, 'utf8').trim()).toBe(String(a.pid));

  // a second agent while the first lives: refused, naming the pid
  const second = agent(dataDir);
  const err = await second.start().then(
    () => undefined,
    (e: Error) => e,
  );
  expect(err?.message).toContain(`in use by agent pid ${a.pid}`);

  // kill -9; the pid in the file is then reused by another live process (here: this test runner)
  await a.kill9();
  fs.writeFileSync(pidFile, `${process.pid}\n`);
  const b = await agent(dataDir).start();
  expect(fs.readFileSync(pidFile, 'utf8').trim()).toBe(String(b.pid));
  await b.stop();
  expect(fs.existsSync(pidFile)).toBe(false);
}, 60000);
