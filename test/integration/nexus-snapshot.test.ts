/**
 * A consistent snapshot of a volume (issue 13): a nexus over two local replicas and one remote replica reached
 * over NVMe/TCP (a second agent), snapshotted while fio writes through the nexus's NBD export:
 *  - fio sees no error; the three replica snapshots (one on the other node, made there through the NVMe/TCP
 *    vendor command) hold the same bytes from the nexus header on (sha256 over read-only NBD exports);
 *  - a volume restored from it (three clones, a new nexus) holds the data written before the snapshot;
 *  - deleting the volume snapshot removes every part on both nodes;
 *  - a faulted child makes the snapshot fail with 422 naming it, and nothing is left on either node.
 * Needs dist/ (`npx tsc -p tsconfig.json`).
 */
import path from 'node:path';
import { volumeSnapshotPartUuid } from '../../agent/api/snapshots';
import { runCtl } from '../../agent/ctl/main';
import { AgentProcess, MiB, cleanup, expectAgentError, makeDisk, tempDir } from '../helpers/agent';
import { fioJson, freePort, nbdReadAll, qemuIoOk, sha256, startFio, until } from '../helpers/nbd';

jest.setTimeout(240_000);

const u = (n: number) => `6b000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const L1 = u(1);
const L2 = u(2);
const REM = u(3);
const CL1 = u(11);
const CL2 = u(12);
const CL3 = u(13);
const NX = u(21);
const NX2 = u(22);
const G = u(31);
const G2 = u(32);
const SIZE = 32 * MiB;
const HDR = MiB; // the nexus label area at each child's start

let dir: string;
let a: AgentProcess;
let b: AgentProcess;

async function agent(name: string): Promise<AgentProcess> {
  const dataDir = path.join(dir, name);
  makeDisk(path.join(dataDir, 'disks', 'd0.img'), 256 * MiB);
  const p = new AgentProcess({ node: name, dataDir, extraArgs: ['--cluster-size', String(MiB), '--nvmf-listen', `127.0.0.1:${await freePort()}`] });
  await p.start();
  await p.client().putPool('p', { disks: [path.join(dataDir, 'disks', 'd0.img')] });
  return p;
}

/** sha256 of an agent's snapshot from the nexus header on, read over a read-only NBD export of it. */
async function partSha(p: AgentProcess, snapshot: string): Promise<string> {
  const s = await p.client().patchSnapshot(snapshot, { share: 'nbd' });
  const bytes = nbdReadAll(s.uri, SIZE + HDR + MiB, 60000);
  await p.client().patchSnapshot(snapshot, { share: 'none' });
  return sha256(bytes.subarray(HDR, HDR + SIZE));
}

let remoteChild: string;

beforeAll(async () => {
  dir = tempDir('mayastor-nexus-snap-');
  a = await agent('a');
  b = await agent('b');
  await a.client().putReplica(L1, { pool: 'p', sizeBytes: SIZE + HDR, thin: true });
  await a.client().putReplica(L2, { pool: 'p', sizeBytes: SIZE + HDR, thin: true });
  const rem = await b.client().putReplica(REM, { pool: 'p', sizeBytes: SIZE + HDR, thin: true, share: 'nvmf' });
  remoteChild = `${rem.uri}?io_timeout_ms=5000&connect_timeout_ms=3000`;
  const nx = await a.client().putNexus(NX, { sizeBytes: SIZE, children: [`bdev:///${L1}`, `bdev:///${L2}`, remoteChild], share: 'nbd' });
  expect(nx.state).toBe('online');
});

afterAll(async () => {
  await a?.kill9();
  await b?.kill9();
  cleanup(dir);
});

const before = Buffer.alloc(16 * MiB, 0x5c);

test('a volume snapshot under fio: no error, the same bytes in every part, a restored volume holds the data', async () => {
  const ca = a.client();
  const nx = (await ca.getNexus(NX))!;
  await qemuIoOk(nx.deviceUri, ['write -P 0x5c 0 16M']);
  const fio = startFio(nx.deviceUri, 'load', ['--rw=randwrite', '--bs=16k', '--iodepth=8', '--offset=16M', '--size=16M', '--time_based', '--runtime=6']);
  try {
    const writes = async () => Number(((await ca.metrics()).match(/^mayastor_nexus_writes_total\{[^}]*\} (\d+)/m) ?? [])[1] ?? 0);
    const w0 = await writes();
    await until(async () => (await writes()) > w0 + 200, 'fio to be writing');
    const v = await ca.putNexusSnapshot(NX, G, { deadlineMs: 20000 });
    expect(v.uuid).toBe(G);
    expect(v.nexus).toBe(NX);
    expect(v.replicas.map((r) => r.replica)).toEqual([L1, L2, REM]);
    for (const r of v.replicas) expect(r.snapshot).toBe(volumeSnapshotPartUuid(G, r.replica));
    expect(v.replicas[2].node).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(v.replicas[0].node).toBeUndefined();
    const res = await fio.done;
    if (res.code !== 0) throw new Error(`fio failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
    expect(fioJson(res.stdout).jobs[0].error).toBe(0);
  } finally {
    if (fio.proc.exitCode === null) fio.proc.kill('SIGKILL');
  }
  // the same PUT again: 200, the same record
  const again = await ca.call('PUT', `/v1/nexuses/${NX}/snapshots/${G}`, {});
  expect(again.status).toBe(200);

  const [p1, p2, p3] = [L1, L2, REM].map((r) => volumeSnapshotPartUuid(G, r));
  expect((await ca.listSnapshots()).map((s) => [s.uuid, s.group, s.sourceReplica]).sort()).toEqual(
    [
      [p1, G, L1],
      [p2, G, L2],
    ].sort(),
  );
  expect((await b.client().listSnapshots()).map((s) => [s.uuid, s.group, s.sourceReplica])).toEqual([[p3, G, REM]]);
  const sums = [await partSha(a, p1), await partSha(a, p2), await partSha(b, p3)];
  expect(sums[1]).toBe(sums[0]);
  expect(sums[2]).toBe(sums[0]);

  // restore: a clone of each part, a new nexus over them (the clones' copies of NX's labels are released: no force)
  await ca.putClone(CL1, { source: { snapshot: p1 } });
  await ca.putClone(CL2, { source: { snapshot: p2 } });
  const c3 = await b.client().putClone(CL3, { source: { snapshot: p3 }, share: 'nvmf' });
  const nx2 = await ca.putNexus(NX2, {
    sizeBytes: SIZE,
    children: [`bdev:///${CL1}`, `bdev:///${CL2}`, `${c3.uri}?io_timeout_ms=5000`],
    share: 'nbd',
  });
  expect(nx2.state).toBe('online');
  const restored = nbdReadAll(nx2.deviceUri, SIZE + MiB, 60000);
  expect(sha256(restored.subarray(0, 16 * MiB))).toBe(sha256(before));
  expect(sha256(restored)).toBe(sums[0]);
  expect(await ca.deleteNexus(NX2)).toBe(true);
  expect(await ca.deleteReplica(CL1)).toBe(true);
  expect(await ca.deleteReplica(CL2)).toBe(true);
  // the remote part still has a clone: 409 naming that part, the record stays; once the clone goes, the delete ends
  await expectAgentError(ca.deleteNexusSnapshot(NX, G), 409, p3);
  expect(await ca.getNexusSnapshot(NX, G)).toBeDefined();
  expect(await b.client().deleteReplica(CL3)).toBe(true);

  // deleting the volume snapshot removes every part, the remote one through the nexus
  expect(await ca.deleteNexusSnapshot(NX, G)).toBe(true);
  expect(await ca.listSnapshots()).toEqual([]);
  expect(await b.client().listSnapshots()).toEqual([]);
  expect(await ca.getNexusSnapshot(NX, G)).toBeUndefined();
});

test('a faulted child: 422 naming it, nothing left on either node; bad bodies 400', async () => {
  const ca = a.client();
  await expectAgentError(ca.call('PUT', `/v1/nexuses/${NX}/snapshots/${G2}`, { deadlineMs: 0 }), 400, 'deadlineMs');
  await expectAgentError(ca.call('PUT', `/v1/nexuses/${NX}/snapshots/${G2}`, { skipUnhealthy: 'yes' }), 400, 'skipUnhealthy');
  await expectAgentError(ca.call('PUT', `/v1/nexuses/${NX}/snapshots/${G2}`, { deadlineMs: 590000 }), 422, 'deadlineMs');
  await expectAgentError(ca.putNexusSnapshot(u(99), G2), 404, u(99));
  await ca.childFault(NX, remoteChild);
  await expectAgentError(ca.putNexusSnapshot(NX, G2), 422, remoteChild.split('?')[0]);
  expect(await ca.listSnapshots()).toEqual([]);
  expect(await b.client().listSnapshots()).toEqual([]);
  expect(await ca.listNexusSnapshots(NX)).toEqual([]);
  // asked to skip it: the two healthy children are snapshotted, the faulted one is reported skipped
  const v = await ca.putNexusSnapshot(NX, G2, { skipUnhealthy: true });
  expect(v.replicas.map((r) => Boolean(r.skipped))).toEqual([false, false, true]);
  expect((await ca.listSnapshots()).length).toBe(2);
  // the record and its parts survive kill -9 and a restart
  await a.kill9();
  await a.start();
  expect((await a.client().getNexusSnapshot(NX, G2))!.replicas.length).toBe(3);
  expect((await a.client().listSnapshots()).map((x) => x.group)).toEqual([G2, G2]);
  expect(await a.client().deleteNexusSnapshot(NX, G2)).toBe(true);
  expect(await a.client().listSnapshots()).toEqual([]);
});

test('an nbd:// child cannot be snapshotted: 422 naming it, nothing left', async () => {
  const ca = a.client();
  const L3 = u(4);
  const R5 = u(5);
  const NX3 = u(23);
  await ca.putReplica(L3, { pool: 'p', sizeBytes: SIZE + HDR, thin: true });
  const r5 = await b.client().putReplica(R5, { pool: 'p', sizeBytes: SIZE + HDR, thin: true, share: 'nbd' });
  await ca.putNexus(NX3, { sizeBytes: SIZE, children: [`bdev:///${L3}`, r5.uri] });
  await expectAgentError(ca.putNexusSnapshot(NX3, u(33)), 422, r5.uri);
  expect(await ca.listSnapshots()).toEqual([]);
  expect(await b.client().listSnapshots()).toEqual([]);
  expect(await ca.getNexusSnapshot(NX3, u(33))).toBeUndefined();
  expect(await ca.deleteNexus(NX3)).toBe(true);
});

test('mayastorctl nexus snapshot | snapshots | snapshot-delete', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (x: string) => void out.push(x), err: (x: string) => void err.push(x), env: { MAYASTOR_URL: a.url, MAYASTOR_TOKEN: a.token } };
  const G3 = u(34);
  // the remote child faulted (the restart above may have brought it back): refused naming it, then skipped on request
  const n = (await a.client().getNexus(NX))!;
  if (n.children.find((ch) => ch.uri === remoteChild)!.state !== 'faulted') await a.client().childFault(NX, remoteChild);
  expect(await runCtl(['nexus', 'snapshot', NX, G3, '--deadline-ms', '5000'], io)).toBe(1);
  expect(err.join('')).toContain(remoteChild.split('?')[0]);
  expect(await runCtl(['--json', 'nexus', 'snapshot', NX, G3, '--skip-unhealthy'], io)).toBe(0);
  expect((JSON.parse(out[out.length - 1]) as { uuid: string }).uuid).toBe(G3);
  expect(await runCtl(['nexus', 'snapshots', NX], io)).toBe(0);
  expect(out[out.length - 1]).toContain(volumeSnapshotPartUuid(G3, L1));
  expect(await runCtl(['nexus', 'snapshot', NX, G3, '--deadline-ms', 'x'], io)).toBe(2);
  expect(await runCtl(['nexus', 'snapshot-delete', NX, G3], io)).toBe(0);
  expect(await runCtl(['nexus', 'snapshot-delete', NX, G3], io)).toBe(1);
  expect(await a.client().listSnapshots()).toEqual([]);
});
