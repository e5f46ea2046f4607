/**
 * Issue 10, "an export for a replica that is a nexus child is read-write only for that nexus's host":
 * agent a runs a nexus whose child is a replica of agent b reached over b's nbd:// export. A client from
 * another host (nbd_writer.py bound to 127.0.0.2; Linux routes all of 127/8 to lo, so it is another peer
 * address on one machine) may read that export but its writes, trims and write-zeroes fail with EPERM,
 * and b logs it once naming both hosts; the replica's bytes (sha256) do not change and the nexus keeps
 * working. b restarting forgets the lease, and the nexus's child, reconnecting, writes its label back so
 * b learns it again. The lease outlives the nexus host's connections (a's kill -9: still refused) and the
 * nexus coming back keeps it; once the nexus is deleted (its labels say RELEASED) the other host may write,
 * and when the nexus's host stays away past the writer grace the other host may write too, until the nexus
 * comes back and labels the child again (b restarted with --writer-grace-ms 2000 for that case, so it does
 * not wait out the 30 s default; /metrics shows the value reached the data path).
 * On the code before the lease, the other host's writes landed behind the nexus.
 * Revert (issue 13) of a replica a remote nexus holds is 409 naming the nexus's host, also once its
 * connection dropped (within the grace it would come back to a rolled-back replica); nothing changes, and
 * after the nexus is deleted the revert brings the snapshot's bytes back (sha256).
 * Needs dist/ (`npx tsc -p tsconfig.json`) and python3.
 */
import path from 'node:path';
import { AgentProcess, MiB, cleanup, expectAgentError, makeDisk, tempDir } from '../helpers/agent';
import { freePort, mustRun, nbdReadAll, qemuIoOk, sha256, until } from '../helpers/nbd';

jest.setTimeout(240_000);

const R = '0e1e0e1e-0000-4000-8000-000000000001';
const NX = '0f1f0f1f-0000-4000-8000-000000000001';
const SIZE = 16 * MiB; // nexus size; the replica holds it plus the 1 MiB label header
const REPLICA = SIZE + MiB;
const NBD_EPERM = 1;
const STRANGER = '127.0.0.2';
const WRITER = path.join(__dirname, 'nbd_writer.py');

let dir: string;
let a: AgentProcess;
let b: AgentProcess;
let nbdB: number;
let replicaUri: string;

interface Result {
  op: string;
  offset: number;
  error: number;
  sha256?: string;
}

/** Requests from the other host against b's export of R (nbd_writer.py). */
async function fromStranger(ops: string[]): Promise<Result[]> {
  const r = await mustRun('python3', [WRITER, STRANGER, '127.0.0.1', String(nbdB), R, ...ops]);
  return (JSON.parse(r.stdout) as { results: Result[] }).results;
}

const pattern = (byte: number, n: number) => sha256(Buffer.alloc(n, byte));
const replicaSha = () => sha256(nbdReadAll(replicaUri, REPLICA + MiB));
const refusals = () =>
  (
    b.stderr.match(
      new RegExp(`peer ${STRANGER.replace(/\./g, '\\.')}:\\d+ \\(host ${STRANGER.replace(/\./g, '\\.')}\\), export '${R}': writes refused \\(EPERM\\)`, 'g'),
    ) ?? []
  ).length;

beforeAll(async () => {
  dir = tempDir('mayastor-export-writer-');
  const nbdA = await freePort();
  nbdB = await freePort();
  makeDisk(path.join(dir, 'a', 'disks', 'd0.img'), 64 * MiB);
  makeDisk(path.join(dir, 'b', 'disks', 'd0.img'), 64 * MiB);
  a = new AgentProcess({ node: 'a', dataDir: path.join(dir, 'a'), extraArgs: ['--nbd-listen', `127.0.0.1:${nbdA}`] });
  b = new AgentProcess({ node: 'b', dataDir: path.join(dir, 'b'), extraArgs: ['--nbd-listen', `127.0.0.1:${nbdB}`] });
  await a.start();
  await b.start();
  await b.client().putPool('p', { disks: [path.join(dir, 'b', 'disks', 'd0.img')] });
  replicaUri = (await b.client().putReplica(R, { pool: 'p', sizeBytes: REPLICA, thin: true, share: 'nbd' })).uri!;
});

afterAll(async () => {
  await a?.kill9();
  await b?.kill9();
  if (dir) cleanup(dir);
});

test("a replica exported to a nexus is writable only by the nexus's host; reads stay open; deleting the nexus frees it", async () => {
  // before any nexus: the other host may write (and the bytes land)
  let r = await fromStranger([`write:${2 * MiB}:4096:0x11`, `read:${2 * MiB}:4096`]);
  expect(r.map((x) => x.error)).toEqual([0, 0]);
  expect(r[1].sha256).toBe(pattern(0x11, 4096));

  const n = await a.client().putNexus(NX, { sizeBytes: SIZE, children: [replicaUri], share: 'nbd' });
  await qemuIoOk(n.deviceUri, ['write -P 0xa1 0 2M', 'flush']);
  const before = replicaSha();

  // the other host: reads work (the nexus's data at child offset 1 MiB), every kind of change is EPERM
  r = await fromStranger([
    `read:${MiB}:4096`,
    `write:${MiB}:4096:0x5a`,
    `trim:${MiB}:65536`,
    `zero:${MiB}:65536`,
    'write:0:4096:0', // the label area too
    `read:${MiB}:4096`,
    'flush',
  ]);
  expect(r.map((x) => x.error)).toEqual([0, NBD_EPERM, NBD_EPERM, NBD_EPERM, NBD_EPERM, 0, 0]);
  expect(r[0].sha256).toBe(pattern(0xa1, 4096));
  expect(r[5].sha256).toBe(pattern(0xa1, 4096));
  expect(replicaSha()).toBe(before);
  // logged once for that connection, naming the peer and the owning host
  expect(refusals()).toBe(1);
  expect(b.stderr).toMatch(new RegExp(`serves a child of nexus ${NX}, writable only by host 127\\.0\\.0\\.1`));

  // the nexus keeps working, its child online
  await qemuIoOk(n.deviceUri, ['write -P 0xa2 4M 1M', 'flush', 'read -P 0xa1 0 2M', 'read -P 0xa2 4M 1M']);
  const st = await a.client().getNexus(NX);
  expect(st!.state).toBe('online');
  expect(st!.children.map((c) => c.state)).toEqual(['online']);

  // b restarts and forgets the lease; the nexus's child reconnects and writes its label back before any
  // I/O, so b learns it again. Polled with a write of the bytes already there (0xa1), so nothing changes.
  await b.kill9();
  await b.start();
  await until(async () => (await fromStranger([`write:${MiB}:4096:0xa1`]))[0].error === NBD_EPERM, 'the lease re-learnt from the reconnected child');
  expect(b.stderr).toMatch(new RegExp(`export '${R}' serves a child of nexus ${NX}: only host 127\\.0\\.0\\.1`));
  await qemuIoOk(n.deviceUri, ['read -P 0xa1 0 2M', 'read -P 0xa2 4M 1M']);
  expect((await a.client().getNexus(NX))!.children.map((c) => c.state)).toEqual(['online']);

  // the nexus's host gone (kill -9): the lease outlives its connections (--writer-grace-ms)
  await a.kill9();
  const held = replicaSha();
  r = await fromStranger([`write:${MiB}:4096:0x5a`]);
  expect(r[0].error).toBe(NBD_EPERM);
  expect(replicaSha()).toBe(held);
  // it comes back (same host): the nexus reopens and writes; the other host is still refused
  await a.start();
  await until(async () => (await a.client().getNexus(NX))?.state === 'online', 'the nexus back online');
  await qemuIoOk(n.deviceUri, ['read -P 0xa1 0 2M', 'read -P 0xa2 4M 1M', 'write -P 0xa3 6M 1M', 'flush']);
  r = await fromStranger([`write:${MiB}:4096:0x5a`]);
  expect(r[0].error).toBe(NBD_EPERM);
  expect(refusals()).toBe(3); // one per refused connection since b restarted (its log restarted with it)

  // deleted for good: the labels say RELEASED, the lease ends at once and the other host may write
  await a.client().deleteNexus(NX);
  expect(b.stderr).toMatch(new RegExp(`writer lease of host 127\\.0\\.0\\.1 \\(nexus ${NX}\\) ended: nexus ${NX} released the child`));
  r = await fromStranger([`write:${MiB}:4096:0x5a`, `read:${MiB}:4096`, `read:${MiB + 4096}:4096`]);
  expect(r.map((x) => x.error)).toEqual([0, 0, 0]);
  expect(r[1].sha256).toBe(pattern(0x5a, 4096));
  expect(r[2].sha256).toBe(pattern(0xa1, 4096));
});

test("the way out when the nexus's host is gone for good: after the writer grace (--writer-grace-ms 2000) another host may write", async () => {
  const NX2 = '0f1f0f1f-0000-4000-8000-000000000002';
  // b again, with a short grace (same data dir and NBD port: the replica and its URI stay)
  const metric = /^mayastor_target_limit_writer_grace_ms\{[^}]*\} (\d+)$/m;
  expect(metric.exec(await b.client().metrics())?.[1]).toBe('30000');
  await b.stop();
  b = new AgentProcess({ node: 'b', dataDir: path.join(dir, 'b'), extraArgs: ['--nbd-listen', `127.0.0.1:${nbdB}`, '--writer-grace-ms', '2000'] });
  await b.start();
  expect(metric.exec(await b.client().metrics())?.[1]).toBe('2000');
  expect((await b.client().getReplica(R))?.uri).toBe(replicaUri);
  const n = await a.client().putNexus(NX2, { sizeBytes: SIZE, children: [replicaUri], share: 'nbd' });
  await qemuIoOk(n.deviceUri, ['write -P 0xb1 0 1M', 'flush']);
  await a.kill9();
  let r = await fromStranger([`write:${MiB}:4096:0x5b`]);
  expect(r[0].error).toBe(NBD_EPERM);
  // no time is asserted: the other host's write is retried until the grace has passed
  await until(async () => (await fromStranger([`write:${MiB}:4096:0x5b`]))[0].error === 0, 'the lease to lapse', 1000, 90_000);
  expect(b.stderr).toMatch(/ended: its host has had no connection for the writer grace \(--writer-grace-ms\)/);
  r = await fromStranger([`read:${MiB}:4096`, `read:${MiB + 4096}:4096`]);
  expect(r[0].sha256).toBe(pattern(0x5b, 4096));
  expect(r[1].sha256).toBe(pattern(0xb1, 4096));
  // the nexus's host comes back: its open writes labels and takes the export again
  await a.start();
  await until(async () => (await a.client().getNexus(NX2))?.state === 'online', 'the nexus back online');
  await qemuIoOk(n.deviceUri, ['read -P 0xb1 4k 1020k', 'write -P 0xb2 0 4k', 'flush']);
  r = await fromStranger([`write:${MiB}:4096:0x5c`]);
  expect(r[0].error).toBe(NBD_EPERM);
  await a.client().deleteNexus(NX2);
});

test('bad input: an unknown export and a request past the end get clear answers, not a crash', async () => {
  const bad = await mustRun('python3', [WRITER, STRANGER, '127.0.0.1', String(nbdB), 'no-such-export']).catch((e: Error) => e);
  expect(String(bad)).toMatch(/export 'no-such-export' refused/);
  const r = await fromStranger([`read:${REPLICA}:4096`, `write:${REPLICA}:4096:0x1`, `read:0:4096`]);
  expect(r.map((x) => x.error)).toEqual([22, 28, 0]); // EINVAL, ENOSPC; the connection still serves
  expect((await b.client().getReplica(R))?.uuid).toBe(R); // b is fine
});

test("revert of a replica a remote nexus holds (writer lease) is 409 naming the nexus's host, also after its connection dropped; after the nexus is deleted it reverts", async () => {
  const NX3 = '0f1f0f1f-0000-4000-8000-000000000003';
  const S = '0e1e0e1e-0000-4000-8000-0000000000a1';
  // b with a grace far longer than the test: a's dropped connection leaves the lease held throughout
  await b.stop();
  b = new AgentProcess({ node: 'b', dataDir: path.join(dir, 'b'), extraArgs: ['--nbd-listen', `127.0.0.1:${nbdB}`, '--writer-grace-ms', '3600000'] });
  await b.start();
  const atSnapshot = replicaSha();
  await b.client().putSnapshot(R, S);
  const n = await a.client().putNexus(NX3, { sizeBytes: SIZE, children: [replicaUri], share: 'nbd' });
  await qemuIoOk(n.deviceUri, ['write -P 0xc1 0 2M', 'flush']);
  const written = replicaSha();
  expect(written).not.toBe(atSnapshot);
  await expectAgentError(b.client().revertReplica(R, S), 409, /serves nexus host 127\.0\.0\.1 \(writer lease over nbd, connected\)/);
  // the nexus's host drops its connection (kill -9): it may come back within the grace, so still 409
  await a.kill9();
  const err = await until(async () => {
    const e = await expectAgentError(b.client().revertReplica(R, S), 409, 'serves nexus host 127.0.0.1');
    return /\d+ s grace left/.test(e.message) && e;
  }, "b to see the nexus host's connection gone");
  expect(err.message).toMatch(/revert after the nexus is deleted or the grace passes/);
  expect(replicaSha()).toBe(written);
  expect((await b.client().getReplica(R))?.uri).toBe(replicaUri); // still exported, nothing unshared
  // the nexus comes back and is deleted: its labels say RELEASED, the lease ends, the revert goes through
  await a.start();
  await until(async () => (await a.client().getNexus(NX3))?.state === 'online', 'the nexus back online');
  await qemuIoOk(n.deviceUri, ['read -P 0xc1 0 2M']);
  await a.client().deleteNexus(NX3);
  expect((await b.client().revertReplica(R, S)).uuid).toBe(R);
  expect(replicaSha()).toBe(atSnapshot);
  expect((await b.client().getReplica(R))?.uri).toBe(replicaUri);
  expect(await b.client().deleteSnapshot(R, S)).toBe(true);
});
