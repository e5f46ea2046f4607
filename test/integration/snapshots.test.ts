/**
 * Replica snapshots, clones and revert through a real agent process and real clients (issue 13): a snapshot
 * exported read-only over NBD reads what the replica held at snapshot time (qemu-img convert, sha256) while fio
 * keeps writing to the replica; a clone reads the same and takes writes without touching either; nbdinfo --map
 * of a clone shows holes where nothing in its chain holds data; pool accounting (4 MiB written, snapshot,
 * overwritten: 8 MiB; snapshot deleted: 4 MiB; everything deleted: back to the start), again after kill -9 and a
 * restart; bad input (missing replica 404, clone bigger/thick/elsewhere 422 naming the field, delete with clones
 * 409 naming them, uuid taken 409). Needs dist/ (`npx tsc -p tsconfig.json`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { runCtl } from '../../agent/ctl/main';
import { AgentProcess, MiB, cleanup, expectAgentError, makeDisk, tempDir } from '../helpers/agent';
import { fioJson, metric, mustRun, nbdmap, qemuIo, qemuIoOk, sha256, startFio, until } from '../helpers/nbd';

jest.setTimeout(180_000);

const u = (n: number) => `5a000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const R1 = u(1);
const R2 = u(2);
const C1 = u(11);
const S1 = u(21);
const S2 = u(22);
const NX = u(31);
const SIZE = 32 * MiB;

let dir: string;
let a: AgentProcess;
let poolStart = 0;

/** What a SIZE-byte device holds after `writes` of [offset, length, byte]. */
function image(size: number, writes: Array<[number, number, number]>): Buffer {
  const b = Buffer.alloc(size);
  for (const [off, len, v] of writes) b.fill(v, off, off + len);
  return b;
}

/** sha256 of the whole export, read by qemu-img convert into a file. */
async function convertSha(uri: string, name: string): Promise<string> {
  const out = path.join(dir, `${name}.raw`);
  await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', uri, out], { timeoutMs: 60000 });
  const sum = sha256(fs.readFileSync(out));
  fs.rmSync(out);
  return sum;
}

async function poolUsed(): Promise<number> {
  const p = await a.client().getPool('p1');
  return p!.usedBytes;
}

beforeAll(async () => {
  dir = tempDir('mayastor-snap-');
  const dataDir = path.join(dir, 'a');
  makeDisk(path.join(dataDir, 'disks', 'd0.img'), 256 * MiB);
  a = new AgentProcess({ node: 'a', dataDir, extraArgs: ['--cluster-size', String(MiB)] });
  await a.start();
  await a.client().putPool('p1', { disks: [path.join(dataDir, 'disks', 'd0.img')] });
  poolStart = await poolUsed();
});

afterAll(async () => {
  await a?.kill9();
  cleanup(dir);
});

describe('a snapshot under load, its read-only export, clones', () => {
  const A = image(SIZE, [[0, 8 * MiB, 0xa1]]);

  test('write A, snapshot, write B: the snapshot reads A while fio writes to the replica', async () => {
    const c = a.client();
    const r = await c.putReplica(R1, { pool: 'p1', sizeBytes: SIZE, thin: true, share: 'nbd' });
    await qemuIoOk(r.uri, ['write -P 0xa1 0 8M']);
    const s = await c.putSnapshot(R1, S1, { share: 'nbd' });
    expect(s).toMatchObject({ uuid: S1, sourceReplica: R1, pool: 'p1', sizeBytes: SIZE, readyAsSource: true, group: '', share: 'nbd' });
    expect(s.referencedBytes).toBe(8 * MiB);
    expect(new Date(s.createdAt).toISOString()).toBe(s.createdAt);
    expect(s.uri).toMatch(new RegExp(`^nbd://.*/${S1}$`));
    await qemuIoOk(r.uri, ['write -P 0xb2 0 4M']);
    const after = await c.getReplica(R1);
    expect(after!.parent).toBe(S1);
    expect(after!.incarnation).toMatch(/^[0-9a-f-]{36}$/);
    expect(after!.snapshotBytes).toBe(8 * MiB);

    const fio = startFio(r.uri, 'load', ['--rw=randwrite', '--bs=64k', '--size=16M', '--time_based', '--runtime=4', '--iodepth=4']);
    const during = await convertSha(s.uri, 's1-during');
    const res = await fio.done;
    expect(fioJson(res.stdout).jobs[0].error).toBe(0);
    expect(during).toBe(sha256(A));
    expect(await convertSha(s.uri, 's1-after')).toBe(sha256(A));
    // the export is read-only: a write fails and changes nothing
    const w = await qemuIo(s.uri, ['write -P 0xee 0 64k']);
    expect(w.code !== 0 || /failed|error|denied|read-only/i.test(w.stdout + w.stderr)).toBe(true);
    expect(await convertSha(s.uri, 's1-ro')).toBe(sha256(A));
  });

  test('a clone reads A, takes writes without touching the snapshot, and maps holes where its chain holds nothing', async () => {
    const c = a.client();
    const cl = await c.putClone(C1, { source: { snapshot: S1 }, share: 'nbd' });
    expect(cl).toMatchObject({ uuid: C1, pool: 'p1', sizeBytes: SIZE, thin: true, parent: S1 });
    expect(await convertSha(cl.uri, 'c1')).toBe(sha256(A));
    const map = await nbdmap(cl.uri);
    const holeAt = (off: number) => map.some((m) => m.offset <= off && off < m.offset + m.length && (m.type & 1) === 1);
    for (let off = 0; off < 8 * MiB; off += MiB) expect(holeAt(off)).toBe(false);
    for (let off = 8 * MiB; off < SIZE; off += MiB) expect(holeAt(off)).toBe(true);
    await qemuIoOk(cl.uri, ['write -P 0xc3 1M 1M']);
    expect(await convertSha(cl.uri, 'c1-w')).toBe(
      sha256(
        image(SIZE, [
          [0, 8 * MiB, 0xa1],
          [MiB, MiB, 0xc3],
        ]),
      ),
    );
    const s = (await c.getSnapshot(R1, S1))!;
    expect(await convertSha(s.uri, 's1-c')).toBe(sha256(A));
    expect(s.children.sort()).toEqual([C1, R1].sort());
    // the same clone PUT again: 200, the same object
    expect((await c.putClone(C1, { source: { snapshot: S1 } })).uuid).toBe(C1);
  });

  test('snapshots are listed per replica and on the node; unshared through PATCH', async () => {
    const c = a.client();
    expect((await c.listReplicaSnapshots(R1)).map((s) => s.uuid)).toEqual([S1]);
    expect((await c.listSnapshots()).map((s) => s.uuid)).toContain(S1);
    expect((await c.findSnapshot(S1))!.sourceReplica).toBe(R1);
    const s = await c.patchSnapshot(S1, { share: 'none' });
    expect(s.share).toBe('none');
    expect(s.uri).toBe(`bdev:///${S1}`);
  });

  test('revert rolls the replica back in place; refused while it is a nexus child', async () => {
    const c = a.client();
    const r = await c.revertReplica(R1, S1);
    expect(r.uuid).toBe(R1);
    const before = (await c.getReplica(R1))!;
    expect(await convertSha(before.uri, 'r1-reverted')).toBe(sha256(A));
    await c.patchReplica(R1, { share: 'none' });
    await c.putNexus(NX, { sizeBytes: SIZE - MiB, children: [`bdev:///${R1}`] });
    await expectAgentError(c.revertReplica(R1, S1), 409, `nexus '${NX}'`);
    await c.deleteNexus(NX);
    // the nexus wrote its label into R1's first MiB: reverting again brings A back
    await c.revertReplica(R1, S1);
    await c.patchReplica(R1, { share: 'nbd' });
    expect(await convertSha((await c.getReplica(R1))!.uri, 'r1-reverted-2')).toBe(sha256(A));
    // an export with a client connected: 409 naming the export and its connections; nothing changes
    const shared = (await c.getReplica(R1))!;
    const fio = startFio(shared.uri, 'hold', ['--rw=read', '--bs=64k', '--size=4M', '--time_based', '--runtime=30']);
    try {
      await until(async () => (metric(await c.metrics(), 'mayastor_nbd_export_connections', { export: R1 }) ?? 0) > 0, 'fio to connect');
      await expectAgentError(c.revertReplica(R1, S1), 409, /connection/);
    } finally {
      fio.proc.kill('SIGKILL');
      await fio.done;
    }
    await until(async () => (metric(await c.metrics(), 'mayastor_nbd_export_connections', { export: R1 }) ?? 0) === 0, 'fio to disconnect');
    expect(await convertSha(shared.uri, 'r1-after-409')).toBe(sha256(A));
    await expectAgentError(c.revertReplica(R1, u(99)), 422, 'snapshot');
    await expectAgentError(c.call('POST', `/v1/replicas/${R1}/revert`, {}), 400, 'snapshot');
  });
});

describe('bad input', () => {
  test('a snapshot of a missing replica is 404; bad uuids 400', async () => {
    const c = a.client();
    await expectAgentError(c.putSnapshot(u(98), u(97)), 404, u(98));
    await expectAgentError(c.call('PUT', `/v1/replicas/${R1}/snapshots/not-a-uuid`, {}), 400, 'snapshotUuid');
    await expectAgentError(c.call('PUT', `/v1/replicas/${R1}/snapshots/${u(97)}`, { bogus: 1 }), 400, 'bogus');
    expect(await c.findSnapshot(u(97))).toBeUndefined();
  });

  test('a uuid taken by another snapshot or a replica is 409; the same PUT again is 200', async () => {
    const c = a.client();
    await c.putReplica(R2, { pool: 'p1', sizeBytes: 16 * MiB, thin: true });
    await expectAgentError(c.putSnapshot(R2, S1), 409, R1);
    await expectAgentError(c.putSnapshot(R2, R1), 409, 'replica');
    const again = await c.call('PUT', `/v1/replicas/${R1}/snapshots/${S1}`, {});
    expect(again.status).toBe(200);
  });

  test('a clone bigger, thick, elsewhere or of nothing is 422 naming the field; nothing is created', async () => {
    const c = a.client();
    const X = u(50);
    await expectAgentError(c.putClone(X, { source: { snapshot: S1 }, sizeBytes: 2 * SIZE }), 422, 'sizeBytes');
    await expectAgentError(c.putClone(X, { source: { snapshot: S1 }, thin: false }), 422, 'thin');
    await expectAgentError(c.putClone(X, { source: { snapshot: S1 }, pool: 'p2' }), 422, 'pool');
    await expectAgentError(c.putClone(X, { source: { snapshot: u(96) } }), 422, 'source.snapshot');
    await expectAgentError(c.call('PUT', `/v1/replicas/${X}`, { source: 'x' }), 400, 'source');
    expect(await c.getReplica(X)).toBeUndefined();
    await expectAgentError(c.putClone(R2, { source: { snapshot: S1 } }), 409, 'source');
  });

  test('deleting a snapshot with clones is 409 naming them; a missing one 404', async () => {
    const c = a.client();
    await expectAgentError(c.call('DELETE', `/v1/replicas/${R1}/snapshots/${S1}`), 409, C1);
    await expectAgentError(c.call('DELETE', `/v1/replicas/${R1}/snapshots/${u(95)}`), 404, u(95));
    expect(await c.findSnapshot(S1)).toBeDefined();
  });
});

test('mayastorctl snapshot create|list|share|delete, replica create --from-snapshot, replica revert', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (x: string) => void out.push(x), err: (x: string) => void err.push(x), env: { MAYASTOR_URL: a.url, MAYASTOR_TOKEN: a.token } };
  const R = u(70);
  const S = u(71);
  const C = u(72);
  await a.client().putReplica(R, { pool: 'p1', sizeBytes: 8 * MiB, thin: true });
  expect(await runCtl(['snapshot', 'create', R, S], io)).toBe(0);
  expect(out.join('')).toContain(S);
  expect(await runCtl(['--json', 'snapshot', 'list', R], io)).toBe(0);
  expect((JSON.parse(out[out.length - 1]) as Array<{ uuid: string }>).map((x) => x.uuid)).toEqual([S]);
  expect(await runCtl(['--json', 'snapshot', 'share', S, '--share', 'nbd'], io)).toBe(0);
  expect(JSON.parse(out[out.length - 1])).toMatchObject({ uuid: S, share: 'nbd' });
  expect(await runCtl(['replica', 'create', C, '--from-snapshot', S], io)).toBe(0);
  expect((await a.client().getReplica(C))!.parent).toBe(S);
  expect(await runCtl(['replica', 'create', u(73), '--from-snapshot', S, '--size', '16MiB'], io)).toBe(2);
  expect(await runCtl(['snapshot', 'delete', S], io)).toBe(1);
  expect(err.join('')).toContain(C);
  expect(await runCtl(['replica', 'revert', R, S], io)).toBe(0);
  expect(await runCtl(['replica', 'destroy', C], io)).toBe(0);
  expect(await runCtl(['snapshot', 'delete', S], io)).toBe(0);
  expect(await runCtl(['snapshot', 'get', S], io)).toBe(1);
  expect(await runCtl(['nexus', 'snapshot'], io)).toBe(2);
  expect(await runCtl(['replica', 'destroy', R], io)).toBe(0);
});

describe('pool accounting, also after kill -9 and a restart', () => {
  test('4 MiB, snapshot, overwrite: 8 MiB; snapshot deleted: 4 MiB; everything deleted: the start', async () => {
    const c = a.client();
    const R = u(60);
    const S = S2;
    const start = await poolUsed();
    const r = await c.putReplica(R, { pool: 'p1', sizeBytes: 16 * MiB, thin: true, share: 'nbd' });
    await qemuIoOk(r.uri, ['write -P 0x11 0 4M']);
    expect((await poolUsed()) - start).toBe(4 * MiB);
    await c.putSnapshot(R, S);
    expect((await poolUsed()) - start).toBe(4 * MiB);
    await qemuIoOk(r.uri, ['write -P 0x22 0 4M']);
    expect((await poolUsed()) - start).toBe(8 * MiB);
    expect((await c.getReplica(R))!.snapshotBytes).toBe(4 * MiB);
    await c.patchSnapshot(S, { share: 'nbd' });

    await a.kill9();
    await a.start();
    expect((await poolUsed()) - start).toBe(8 * MiB);
    const back = (await a.client().getSnapshot(R, S))!;
    expect(back.referencedBytes).toBe(4 * MiB);
    // its read-only share came back with it
    expect(back.share).toBe('nbd');
    expect(await convertSha(back.uri, 'acct-snap')).toBe(sha256(image(16 * MiB, [[0, 4 * MiB, 0x11]])));

    expect(await a.client().deleteSnapshot(R, S)).toBe(true);
    expect((await poolUsed()) - start).toBe(4 * MiB);
    const rr = (await a.client().getReplica(R))!;
    expect(await convertSha(rr.uri, 'acct')).toBe(sha256(image(16 * MiB, [[0, 4 * MiB, 0x22]])));

    await a.kill9();
    await a.start();
    expect((await poolUsed()) - start).toBe(4 * MiB);
    expect(await a.client().deleteReplica(R)).toBe(true);
    expect((await poolUsed()) - start).toBe(0);
  });

  test('after a restart the snapshots, their shares and clones are all there; deleting everything returns the pool', async () => {
    const c = a.client();
    expect((await c.listSnapshots()).map((s) => s.uuid)).toEqual([S1]);
    expect((await c.getReplica(C1))!.parent).toBe(S1);
    expect(await c.deleteReplica(C1)).toBe(true);
    expect(await c.deleteSnapshot(R1, S1)).toBe(true); // one child left (R1): merged into it
    const r1 = (await c.getReplica(R1))!;
    expect(r1.parent).toBeUndefined();
    expect(await convertSha((await c.getReplica(R1))!.uri, 'r1-merged')).toBe(sha256(imageA()));
    expect(await c.deleteReplica(R1)).toBe(true);
    expect(await c.deleteReplica(R2)).toBe(true);
    expect(await c.listSnapshots()).toEqual([]);
    expect(await poolUsed()).toBe(poolStart);
  });

  test('a replica deleted before its snapshot leaves it holding space; DELETE /v1/snapshots/{uuid} frees it', async () => {
    const c = a.client();
    const R = u(61);
    const S = u(62);
    const start = await poolUsed();
    const r = await c.putReplica(R, { pool: 'p1', sizeBytes: 16 * MiB, thin: true, share: 'nbd' });
    await qemuIoOk(r.uri, ['write -P 0x33 0 2M']);
    await c.putSnapshot(R, S, { share: 'nbd' });
    expect(await c.deleteReplica(R)).toBe(true);
    const left = (await c.findSnapshot(S))!;
    expect(left.sourceReplica).toBe(R);
    expect((await poolUsed()) - start).toBe(2 * MiB);
    expect(await convertSha(left.uri, 'orphan')).toBe(sha256(image(16 * MiB, [[0, 2 * MiB, 0x33]])));
    expect(await c.deleteSnapshot(R, S)).toBe(false); // its replica is gone: not found under it
    expect(await c.deleteSnapshotByUuid(S)).toBe(true);
    expect(await c.deleteSnapshotByUuid(S)).toBe(false);
    expect((await poolUsed()) - start).toBe(0);
  });
});

function imageA(): Buffer {
  return image(SIZE, [[0, 8 * MiB, 0xa1]]);
}
