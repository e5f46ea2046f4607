/**
 * The agent in-process (the test process loads libdatapath.so and drives the embedded block API
 * against the agent's own replicas): pools on one and two disk files, thick and thin replicas,
 * random pattern I/O read back byte for byte, accounting, idempotent PUT, every 4xx case with
 * nothing on disk changed, 401, metrics.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BlockDevice } from '../../agent/src/blockdev';
import { AgentClient } from '../../agent/api/client';
import type { Agent } from '../../agent/src/main';
import { MiB, cleanup, expectAgentError, fingerprint, makeDisk, pattern, rng, startInProcess, tempDir } from '../helpers/agent';

const CLUSTER = 1 * MiB;
const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const U3 = '33333333-3333-4333-8333-333333333333';
const U4 = '44444444-4444-4444-8444-444444444444';

let dir: string;
let dataDir: string;
let disks: Record<string, string>;
let agent: Agent;
let c: AgentClient;

beforeAll(async () => {
  dir = tempDir();
  dataDir = path.join(dir, 'data');
  const dd = path.join(dataDir, 'disks');
  disks = {
    a: makeDisk(path.join(dd, 'a.img'), 64 * MiB),
    b: makeDisk(path.join(dd, 'b.img'), 64 * MiB),
    c: makeDisk(path.join(dd, 'c.img'), 64 * MiB),
    d: makeDisk(path.join(dd, 'd.img'), 64 * MiB),
    outside: makeDisk(path.join(dir, 'outside.img'), 64 * MiB),
    tiny: makeDisk(path.join(dd, 'tiny.img'), 512 * 1024),
  };
  fs.symlinkSync(disks.outside, path.join(dd, 'link-out.img'));
  ({ agent, client: c } = await startInProcess(dataDir, ['--cluster-size', String(CLUSTER)]));
});

afterAll(async () => {
  await agent?.close();
  cleanup(dir);
});

/** Write random-sized, random-offset patterns through the embedded API, keeping a model. */
async function patternIo(uuid: string, size: number, seed: number, count: number): Promise<Buffer> {
  const dev = await BlockDevice.open(uuid);
  try {
    expect(dev.size).toBe(size);
    expect(dev.blockSize).toBeGreaterThanOrEqual(512);
    const bs = dev.blockSize;
    const model = Buffer.alloc(size);
    const r = rng(seed);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const len = (1 + Math.floor(r() * 64)) * bs; // up to 64 blocks
      const off = Math.floor(r() * ((size - len) / bs)) * bs;
      const data = pattern(seed * 1000 + i, len);
      data.copy(model, off);
      // sequential per overlapping region: await each (the model's last-writer-wins must hold)
      await dev.writeAt(data, off);
    }
    await Promise.all(writes);
    await dev.flush();
    // read back the whole device, in chunks, concurrently
    const chunk = 4 * MiB;
    const reads: Promise<void>[] = [];
    const back = Buffer.alloc(size);
    for (let off = 0; off < size; off += chunk) {
      const len = Math.min(chunk, size - off);
      const b = BlockDevice.allocBuffer(len);
      reads.push(dev.readAt(b, off).then(() => void b.copy(back, off)));
    }
    await Promise.all(reads);
    expect(back.equals(model)).toBe(true);
    return model;
  } finally {
    await dev.close();
  }
}

describe('node and auth', () => {
  test('health is open; node names itself', async () => {
    const open = new AgentClient({ url: agent.url });
    expect(await open.health()).toMatchObject({ status: 'ok', node: 'inproc' });
    const n = await c.node();
    expect(n.name).toBe('inproc');
    expect(n.listeners.http).toContain(String(agent.port));
    expect(n.capabilities).toContain('pools');
    expect(typeof n.datapathVersion).toBe('string');
  });
  test('no token or a wrong one: 401 on every other route', async () => {
    const none = new AgentClient({ url: agent.url, retries: 0 });
    const wrong = new AgentClient({ url: agent.url, token: agent.token + 'x', retries: 0 });
    await expectAgentError(none.listPools(), 401, 'Authorization');
    await expectAgentError(wrong.listPools(), 401, 'token');
    await expectAgentError(wrong.node(), 401);
    await expectAgentError(none.putPool('px', { disks: [disks.d] }), 401);
    await expectAgentError(wrong.metrics(), 401);
    expect(fs.existsSync(path.join(dataDir, 'state.json')) ? JSON.parse(fs.readFileSync(path.join(dataDir, 'state.json'), 'utf8')).pools : []).toEqual([]);
  });
});

describe('pools and replicas', () => {
  test('a pool on one disk: 201, same spec 200, different spec 409', async () => {
    const p = await c.call<{ name: string }>('PUT', '/v1/pools/p1', { disks: [disks.a] });
    expect(p.status).toBe(201);
    const again = await c.call('PUT', '/v1/pools/p1', { disks: [disks.a] });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(p.body);
    await expectAgentError(c.putPool('p1', { disks: [disks.b] }), 409, 'disks');
    const pool = (await c.getPool('p1'))!;
    expect(pool).toMatchObject({ name: 'p1', disks: [disks.a], state: 'online', usedBytes: 0 });
    expect(pool.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(pool.capacityBytes).toBeGreaterThan(32 * MiB);
    expect(pool.capacityBytes).toBeLessThanOrEqual(64 * MiB);
  });

  test('a pool on two disks concatenates them', async () => {
    const p2 = await c.putPool('p2', { disks: [disks.b, disks.c] });
    const p1 = (await c.getPool('p1'))!;
    expect(p2.disks).toEqual([disks.b, disks.c]);
    expect(p2.capacityBytes).toBeGreaterThan(p1.capacityBytes * 1.8);
    expect((await c.listPools()).map((p) => p.name)).toEqual(['p1', 'p2']);
  });

  test('thick and thin replicas: accounting', async () => {
    const before = (await c.getPool('p1'))!.usedBytes;
    const r1 = await c.putReplica(U1, { pool: 'p1', sizeBytes: 16 * MiB, thin: false, share: 'none' });
    expect(r1).toEqual({
      uuid: U1,
      pool: 'p1',
      sizeBytes: 16 * MiB,
      thin: false,
      share: 'none',
      allowedHosts: [],
      uri: `bdev:///${U1}`,
      allocatedBytes: 16 * MiB,
      incarnation: expect.stringMatching(/^[0-9a-f-]{36}$/),
      snapshotBytes: 0,
    });
    expect((await c.getPool('p1'))!.usedBytes).toBe(before + 16 * MiB);

    const r2 = await c.putReplica(U2, { pool: 'p2', sizeBytes: 96 * MiB, thin: true });
    expect(r2).toMatchObject({ thin: true, allocatedBytes: 0, sizeBytes: 96 * MiB });
    expect((await c.getPool('p2'))!.usedBytes).toBe(0);

    // idempotent PUT: same spec 200, different 409 naming the field
    const same = await c.call('PUT', `/v1/replicas/${U1}`, { pool: 'p1', sizeBytes: 16 * MiB, thin: false, share: 'none' });
    expect(same.status).toBe(200);
    await expectAgentError(c.putReplica(U1, { pool: 'p1', sizeBytes: 32 * MiB }), 409, 'sizeBytes');
    await expectAgentError(c.putReplica(U1, { pool: 'p1', sizeBytes: 16 * MiB, thin: true }), 409, 'thin');
    await expectAgentError(c.putReplica(U1, { pool: 'p2', sizeBytes: 16 * MiB }), 409, 'pool');
    expect((await c.listReplicas()).map((r) => r.uuid)).toEqual([U1, U2]);
  });

  test('patterns at random offsets and sizes read back byte for byte (thick)', async () => {
    await patternIo(U1, 16 * MiB, 1, 60);
    expect((await c.getReplica(U1))!.allocatedBytes).toBe(16 * MiB);
  });

  test('thin: unwritten ranges read zeros, clusters allocate on first write (across both disks)', async () => {
    const model = await patternIo(U2, 96 * MiB, 2, 40);
    const r2 = (await c.getReplica(U2))!;
    expect(r2.allocatedBytes).toBeGreaterThan(0);
    expect(r2.allocatedBytes % CLUSTER).toBe(0);
    // allocated clusters are exactly the clusters the model touched (non-zero data)
    let touched = 0;
    for (let off = 0; off < model.length; off += CLUSTER) {
      if (model.subarray(off, off + CLUSTER).some((x) => x !== 0)) touched++;
    }
    expect(r2.allocatedBytes).toBeGreaterThanOrEqual(touched * CLUSTER);
    expect((await c.getPool('p2'))!.usedBytes).toBe(r2.allocatedBytes);
  });

  test('unaligned requests are rejected with a clear error (no read-modify-write)', async () => {
    const dev = await BlockDevice.open(U1);
    try {
      await expect(dev.writeAt(Buffer.alloc(512), 100)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/offset 100.*block size/) });
      await expect(dev.readAt(Buffer.alloc(700), 0)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/length 700/) });
      await expect(dev.readAt(Buffer.alloc(512), 16 * MiB)).rejects.toMatchObject({ code: 'ERANGE' });
      // unmap/write-zeroes read back as zeros
      const b = pattern(9, 8192);
      await dev.writeAt(b, 8192);
      await dev.writeZeroes(8192, 4096);
      const back = Buffer.alloc(8192);
      await dev.readAt(back, 8192);
      expect(back.subarray(0, 4096).every((x) => x === 0)).toBe(true);
      expect(back.subarray(4096).equals(b.subarray(4096))).toBe(true);
      await expect(dev.readAt(Buffer.alloc(512), -512)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/offset -512/) });
      await expect(dev.readAt(Buffer.alloc(0), 0)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/length 0/) });
      await expect(dev.writeAt('text' as unknown as Buffer, 0)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/Buffer/) });
      await expect(dev.unmap(0, 100)).rejects.toMatchObject({ code: 'EINVAL' });
    } finally {
      await dev.close();
    }
    await expect(dev.readAt(Buffer.alloc(512), 0)).rejects.toMatchObject({ code: 'EBADF', message: expect.stringMatching(/closed/) });
    await expect(BlockDevice.open('99999999-9999-4999-8999-999999999999')).rejects.toThrow(/9999/);
  });

  test('replicas grow online; shrinking is 400 naming sizeBytes', async () => {
    const grown = await c.patchReplica(U1, { sizeBytes: 24 * MiB });
    expect(grown.sizeBytes).toBe(24 * MiB);
    expect(grown.allocatedBytes).toBe(24 * MiB);
    await expectAgentError(c.patchReplica(U1, { sizeBytes: 8 * MiB }), 400, 'sizeBytes');
    await expectAgentError(c.patchReplica(U1, { sizeBytes: 0 }), 400, 'sizeBytes');
    await expectAgentError(c.patchReplica(U3, { sizeBytes: 8 * MiB }), 404, U3);
    // the data written before the growth is still there
    const dev = await BlockDevice.open(U1);
    expect(dev.size).toBe(24 * MiB);
    await dev.close();
  });

  test('a thick replica beyond the free space is 507; a thin one may overcommit', async () => {
    const free = (await c.getPool('p1'))!;
    await expectAgentError(c.putReplica(U3, { pool: 'p1', sizeBytes: free.capacityBytes + 64 * MiB }), 507, 'sizeBytes');
    const thin = await c.putReplica(U3, { pool: 'p1', sizeBytes: free.capacityBytes * 4, thin: true });
    expect(thin.allocatedBytes).toBe(0);
    expect(await c.deleteReplica(U3)).toBe(true);
  });
});

describe('bad input answers 4xx naming the field, with nothing on disk changed', () => {
  let files: string[];
  let before: string;
  beforeAll(() => {
    files = [...Object.values(disks), path.join(dataDir, 'state.json')];
    before = fingerprint(files);
  });
  afterAll(() => {
    expect(fingerprint(files)).toBe(before);
  });

  test('pool disks outside the allowlist, /etc/passwd, "..", symlink out', async () => {
    await expectAgentError(c.putPool('px', { disks: [disks.outside] }), 422, 'disks[0]');
    await expectAgentError(c.putPool('px', { disks: ['/etc/passwd'] }), 422, 'disks[0]');
    await expectAgentError(c.putPool('px', { disks: [disks.d, path.join(dataDir, 'disks') + '/../../outside.img'] }), 400, 'disks[1]');
    await expectAgentError(c.putPool('px', { disks: [path.join(dataDir, 'disks/link-out.img')] }), 422, 'disks[0]');
    await expectAgentError(c.putPool('px', { disks: ['relative.img'] }), 400, 'disks[0]');
  });
  test('a missing file, or a disk already in another pool', async () => {
    await expectAgentError(c.putPool('px', { disks: [path.join(dataDir, 'disks/missing.img')] }), 422, 'disks[0]');
    await expectAgentError(c.putPool('px', { disks: [disks.d, disks.a] }), 409, 'disks[1]');
    await expectAgentError(c.putPool('px', { disks: [disks.c] }), 409, "pool 'p2'");
    await expectAgentError(c.putPool('px', { disks: [disks.d, disks.d] }), 400, 'disks[1]');
    await expectAgentError(c.putPool('px', {} as never), 400, 'disks');
    await expectAgentError(c.putPool('px', { disks: [disks.d, disks.tiny] }), 422, 'disks[1]');
  });
  test('names containing "/"', async () => {
    await expectAgentError(c.call('PUT', '/v1/pools/a%2Fb', { disks: [disks.d] }), 400, 'name');
    await expectAgentError(c.call('PUT', '/v1/pools/a/b', { disks: [disks.d] }), 400, 'name');
    await expectAgentError(c.putReplica(U4, { pool: 'p/1', sizeBytes: MiB }), 400, 'pool');
  });
  test('sizes 0, negative, not a number, beyond 2^53', async () => {
    for (const sizeBytes of [0, -4096, 'NaN', '4096', null, 2 ** 53, 2 ** 64, 1.5, 1000] as unknown[]) {
      await expectAgentError(c.putReplica(U4, { pool: 'p1', sizeBytes } as never), 400, 'sizeBytes');
    }
    // a literal NaN is not JSON at all
    const raw = await fetch(`${agent.url}/v1/replicas/${U4}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${agent.token}`, 'content-type': 'application/json' },
      body: '{"pool":"p1","sizeBytes":NaN}',
    });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { code: string; message: string } }).error.message).toMatch(/body/);
  });
  test('a replica in a missing pool, a malformed uuid', async () => {
    await expectAgentError(c.putReplica(U4, { pool: 'nope', sizeBytes: MiB }), 422, "pool 'nope'");
    await expectAgentError(c.putReplica('not-a-uuid', { pool: 'p1', sizeBytes: MiB }), 400, 'uuid');
    await expectAgentError(c.call('GET', '/v1/replicas/1234'), 400, 'uuid');
    await expectAgentError(c.putReplica(U4, { pool: 'p1', sizeBytes: MiB, share: 'ftp' as never }), 400, 'share');
    await expectAgentError(c.putReplica(U4, { pool: 'p1', sizeBytes: MiB, extra: 1 } as never), 400, 'extra');
  });
  test('destroying a pool that still holds replicas: 409', async () => {
    await expectAgentError(c.deletePool('p1'), 409, U1);
    await expectAgentError(c.deletePool('p2'), 409, 'replica');
  });
  test('unknown objects: 404', async () => {
    await expectAgentError(c.call('GET', '/v1/pools/none'), 404, 'none');
    await expectAgentError(c.call('DELETE', `/v1/replicas/${U4}`), 404, U4);
    expect(await c.getPool('none')).toBeUndefined();
  });
});

describe('labels on disks', () => {
  test('a disk carrying another pool label is 409; the same pool name adopts it', async () => {
    // a pool created and exported behind the agent's back (another agent's disk)
    await agent.ctx.dp.poolCreate('ghost', [fs.realpathSync(disks.d)], CLUSTER);
    await agent.ctx.dp.poolExport('ghost');
    const fp = fingerprint([disks.d, path.join(dataDir, 'state.json')]);
    await expectAgentError(c.putPool('px', { disks: [disks.d] }), 409, "pool 'ghost'");
    expect(fingerprint([disks.d, path.join(dataDir, 'state.json')])).toBe(fp);
    const g = await c.call<{ state: string }>('PUT', '/v1/pools/ghost', { disks: [disks.d] });
    expect(g.status).toBe(201);
    expect(g.body.state).toBe('online');
    expect(await c.deletePool('ghost')).toBe(true);
    // destroyed: the label is gone, so a new pool may take the disk
    const px = await c.putPool('px', { disks: [disks.d] });
    expect(px.usedBytes).toBe(0);
    expect(await c.deletePool('px')).toBe(true);
  });
});

describe('graceful restart in the same process', () => {
  test('close exports the pools; a new agent re-imports them with the same objects', async () => {
    const pools = await c.listPools();
    const replicas = await c.listReplicas();
    await agent.close();
    await expect(BlockDevice.open(U1)).rejects.toThrow(/not initialised/);
    ({ agent, client: c } = await startInProcess(dataDir, ['--cluster-size', String(CLUSTER)]));
    expect(await c.listPools()).toEqual(pools);
    expect(await c.listReplicas()).toEqual(replicas);
    const dev = await BlockDevice.open(U1);
    const b = Buffer.alloc(4096);
    await dev.readAt(b, 0);
    await dev.close();
  });
});

describe('metrics and teardown', () => {
  test('Prometheus text with pool, replica and I/O figures', async () => {
    const m = await c.metrics();
    expect(m).toMatch(/^mayastor_pool_capacity_bytes\{node="inproc",pool="p1"\} \d+$/m);
    expect(m).toMatch(new RegExp(`^mayastor_replica_allocated_bytes\\{node="inproc",pool="p1",replica="${U1}"\\} ${24 * MiB}$`, 'm'));
    expect(m).toMatch(new RegExp(`^mayastor_replica_reads_total\\{[^}]*replica="${U1}"\\} [1-9]\\d*$`, 'm'));
    expect(m).toMatch(/^process_resident_memory_bytes \d+$/m);
  });
  test('destroying replicas returns their clusters; then the pools go', async () => {
    const used = (await c.getPool('p1'))!.usedBytes;
    expect(await c.deleteReplica(U1)).toBe(true);
    expect((await c.getPool('p1'))!.usedBytes).toBe(used - 24 * MiB);
    expect(await c.deleteReplica(U2)).toBe(true);
    expect((await c.getPool('p2'))!.usedBytes).toBe(0);
    expect(await c.deletePool('p1')).toBe(true);
    expect(await c.deletePool('p2')).toBe(true);
    expect(await c.listPools()).toEqual([]);
    const st = JSON.parse(fs.readFileSync(path.join(dataDir, 'state.json'), 'utf8'));
    expect(st.pools).toEqual([]);
    expect(st.replicas).toEqual([]);
  });
});
