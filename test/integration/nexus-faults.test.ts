/**
 * Nexus fault scenarios of issue 4 with real agents and real clients:
 *  - faults under load: a 3-child nexus (two local replicas + a remote nbd:// replica on a second
 *    agent) takes fio --verify=crc32c writes through its NBD export; one child is faulted through the
 *    API and the second agent is killed -9; fio sees no error and the nexus is degraded; a replacement
 *    child is added and rebuilt while fio writes; the old children are faulted, so only the rebuilt
 *    child serves, and a verify-only fio pass over the same job succeeds.
 *  - stale data never served: a child is offlined, writes continue, kill -9, restart: reads return
 *    the new data; with only the stale child left the nexus refuses to serve (GET: faulted with the
 *    reason, the agent keeps running), and comes back once the current child is back.
 * Needs dist/ (`npx tsc -p tsconfig.json`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir } from '../helpers/agent';
import { fioJson, freePort, mustRun, qemuIo, qemuIoOk, runTool, startFio, until } from '../helpers/nbd';

const u = (n: number) => `cccccccc-0000-4000-8000-${String(n).padStart(12, '0')}`;
const L1 = u(1);
const L2 = u(2);
const L3 = u(3); // the replacement
const REM = u(4);
const NX = 'dddddddd-0000-4000-8000-000000000001';
const NX2 = 'dddddddd-0000-4000-8000-000000000002';
const b = (r: string) => `bdev:///${r}`;

let dir: string;
const procs: AgentProcess[] = [];

beforeAll(() => {
  dir = tempDir('mayastor-nexus-faults-');
});

afterAll(async () => {
  for (const p of procs) await p.kill9();
  cleanup(dir);
});

function agent(name: string, extra: string[] = []): AgentProcess {
  const dataDir = path.join(dir, name);
  makeDisk(path.join(dataDir, 'disks', 'd0.img'), 192 * MiB);
  const p = new AgentProcess({
    node: name,
    dataDir,
    extraArgs: ['--cluster-size', String(MiB), ...extra],
  });
  procs.push(p);
  return p;
}

test('faults under load: fault, kill the remote agent, rebuild a replacement while fio writes, verify from it alone', async () => {
  const a = await agent('a').start();
  const bb = await agent('b').start();
  const ca = a.client();
  const cb = bb.client();
  await ca.putPool('p', {
    disks: [path.join(a.opts.dataDir, 'disks', 'd0.img')],
  });
  await cb.putPool('p', {
    disks: [path.join(bb.opts.dataDir, 'disks', 'd0.img')],
  });
  const SIZE = 32 * MiB;
  for (const r of [L1, L2, L3]) await ca.putReplica(r, { pool: 'p', sizeBytes: SIZE + MiB, thin: false });
  const remote = await cb.putReplica(REM, {
    pool: 'p',
    sizeBytes: SIZE + MiB,
    thin: false,
    share: 'nbd',
  });
  const remoteChild = `${remote.uri}?io_timeout_ms=3000&connect_timeout_ms=2000`;
  const nx = await ca.putNexus(NX, {
    sizeBytes: SIZE,
    children: [b(L1), b(L2), remoteChild],
    share: 'nbd',
  });
  expect(nx.state).toBe('online');

  const job = ['--rw=randwrite', '--bs=4k', '--iodepth=8', `--size=${SIZE}`, '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', '--randseed=4242'];
  // rate-limited so the faults and the rebuild happen while it writes
  const fio = startFio(nx.deviceUri, 'load', [...job, '--do_verify=1', '--rate_iops=1500']);
  try {
    const writes = async () => (await ca.metrics()).match(/^mayastor_nexus_writes_total\{[^}]*\} (\d+)/m);
    await until(async () => {
      const m = await writes();
      return m !== null && Number(m[1]) > 500;
    }, 'fio to be writing');

    let n = await ca.childFault(NX, b(L2));
    expect(n.state).toBe('degraded');
    await bb.kill9();
    n = await until(async () => {
      const g = await ca.getNexus(NX);
      return g!.children.find((c) => c.uri === remoteChild)!.state === 'faulted' && g;
    }, 'the remote child to be faulted');
    expect(n.state).toBe('degraded');
    expect(fio.proc.exitCode).toBeNull(); // still writing

    n = await ca.addChild(NX, b(L3));
    const rebuilt = await until(async () => {
      const g = await ca.getNexus(NX);
      const c = g!.children.find((x) => x.uri === b(L3))!;
      return c.state === 'online' && g;
    }, 'the replacement to be rebuilt');
    expect(rebuilt.children.find((x) => x.uri === b(L3))!.rebuildProgress).toBe(100);
    const stillWriting = fio.proc.exitCode === null;

    n = await ca.childFault(NX, b(L1));
    expect(n.children.filter((c) => c.state === 'online').map((c) => c.uri)).toEqual([b(L3)]);
    expect(n.state).toBe('degraded');

    const r = await fio.done;
    if (r.code !== 0) throw new Error(`fio failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    const res = fioJson(r.stdout).jobs[0];
    expect(res.error).toBe(0);
    expect(res.write.io_bytes).toBe(SIZE);
    // Every block again, read only from the rebuilt child (the only one online now).
    const v = await runTool('fio', ['--name=load', '--ioengine=nbd', `--uri=${nx.deviceUri}`, ...job, '--verify_only', '--output-format=json'], {
      timeoutMs: 120000,
    });
    if (v.code !== 0) throw new Error(`verify-only fio failed (${v.code}):\n${v.stdout}\n${v.stderr}`);
    expect(fioJson(v.stdout).jobs[0].error).toBe(0);
    expect(fioJson(v.stdout).jobs[0].read.io_bytes).toBe(SIZE);
    // (informational) whether the rebuild overlapped the writes in this run
    if (!stillWriting) console.warn('fio finished writing before the rebuild completed in this run');
    expect(await ca.deleteNexus(NX)).toBe(true);
    await a.stop();
  } finally {
    if (fio.proc.exitCode === null) fio.proc.kill('SIGKILL');
  }
});

test('stale data is never served: offline, write, kill -9, restart; only the stale child left -> refused', async () => {
  const port = await freePort();
  const a = agent('s', ['--nbd-listen', `127.0.0.1:${port}`]);
  const disks = path.join(a.opts.dataDir, 'disks');
  const f1 = makeDisk(path.join(disks, 'c1.img'), 9 * MiB);
  const f2 = makeDisk(path.join(disks, 'c2.img'), 9 * MiB);
  const c1 = `uring://${f1}`;
  const c2 = `uring://${f2}`;
  await a.start();
  let c = a.client();
  const spec = {
    sizeBytes: 8 * MiB,
    children: [c1, c2],
    share: 'nbd' as const,
  };
  const nx = await c.putNexus(NX2, spec);
  const dev = nx.deviceUri;
  await qemuIoOk(dev, ['write -P 0x11 0 1M', 'write -P 0x11 7M 1M', 'flush']);
  await c.childOffline(NX2, c2);
  await qemuIoOk(dev, ['write -P 0x22 0 1M', 'flush']);

  await a.kill9();
  await a.start();
  c = a.client();
  let g = (await c.getNexus(NX2))!;
  expect(g.state).not.toBe('faulted');
  expect(g.children.find((x) => x.uri === c1)!.state).toBe('online');
  // c2 is out of sync: rebuilt before it serves (the rebuild of 8 MiB may already be over here)
  expect(['degraded', 'online']).toContain(g.children.find((x) => x.uri === c2)!.state);
  await qemuIoOk(dev, ['read -P 0x22 0 1M', 'read -P 0x11 7M 1M']);
  await until(async () => (await c.getNexus(NX2))!.state === 'online', 'the stale child to be rebuilt');
  await qemuIoOk(dev, ['read -P 0x22 0 1M']);

  // Again, and this time the current child is gone when the agent comes back.
  await c.childOffline(NX2, c2);
  await qemuIoOk(dev, ['write -P 0x33 0 1M', 'flush']);
  await a.kill9();
  fs.renameSync(f1, f1 + '.away');
  await a.start();
  c = a.client();
  g = (await c.getNexus(NX2))!;
  expect(g.state).toBe('faulted');
  expect(g.reason).toMatch(/stale|current|generation|sync/i);
  expect((await c.health()).status).toBe('ok');
  const refused = await qemuIo(dev, ['read -P 0x11 0 1M']);
  expect(refused.stdout + refused.stderr).not.toMatch(/^read 1048576/m); // nothing served, stale or not
  await expect(c.childOnline(NX2, c2)).rejects.toMatchObject({ status: 409 });

  // The current child is back: the same spec reopens it, and the newest data is served.
  fs.renameSync(f1 + '.away', f1);
  const back = await c.call('PUT', `/v1/nexuses/${NX2}`, spec);
  expect(back.status).toBe(200);
  await qemuIoOk(dev, ['read -P 0x33 0 1M', 'read -P 0x11 7M 1M']);
  await until(async () => (await c.getNexus(NX2))!.state === 'online', 'the stale child to be rebuilt again');
  expect(await c.deleteNexus(NX2)).toBe(true);
  await mustRun('true', []);
});
