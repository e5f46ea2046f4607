/**
 * Issue 15 with the real `terraform` binary against two real agents:
 *  (a) a Terraform state owns only what it created: a second state (its own working dir) with the same
 *      pool and replica config fails with "mayastor_pool already exists ... terraform import" (then, once
 *      the pool is imported, the same for the replica), its destroy deletes nothing, and the first state's
 *      data, written with qemu-io through the replica's nbd:// share, is untouched at every step; import
 *      then works. A nexus another state owns is refused the same way. The client's rule for a retried
 *      PUT (a 200 after an attempt without an answer is still "created") is checked against a local server.
 *  (b) a re-created replica never passes as an in-sync nexus child: a nexus on agent a over a local replica
 *      and a remote one on agent b (nbd://, short timeouts) created with terraform; the remote replica is
 *      deleted and re-created (empty, same uuid and spec) through b's own HTTP API; I/O through the nexus
 *      after the child reconnected; the nexus then rebuilds the replaced child by itself (no apply), `plan`
 *      shows the child while it is not yet online or nothing once it is, `apply` leaves every child online,
 *      and the child's bytes read from b's own export at the nexus data offset (1 MiB) match the data
 *      (checksum).
 * Needs dist/ (`npm run build:ts`) and the launcher (`npm run build:native`).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { AgentClient } from '../../agent/api/client';
import { MiB, type AgentProcess } from '../helpers/agent';
import { freePort, mustRun, qemuIoOk, until } from '../helpers/nbd';
import { HclValue, ProviderTestbed, TerraformDir, expectOk, output as tfOutput, ref, resource } from '../helpers/terraform';

jest.setTimeout(180_000);

const POOL = 'owned';
const RU = '15151515-0000-4000-8000-00000000000a';
const LA = '15151515-0000-4000-8000-00000000000b';
const RB = '15151515-0000-4000-8000-00000000000c';
const NX = '15151515-0000-4000-8000-00000000000d';
const SIZE = 16 * MiB; // nexus size; its replicas hold it plus the 1 MiB label header
const REPLICA = SIZE + MiB;
const TIMEOUTS = 'io_timeout_ms=2000&connect_timeout_ms=1000';

let tb: ProviderTestbed;
let a: AgentProcess;
let b: AgentProcess;
/** s1 and s2: two states with the same pool + replica config; nx: the nexus of (b). */
let s1: TerraformDir;
let s2: TerraformDir;
let nx: TerraformDir;

const APPLY = ['-no-color', '-input=false', '-auto-approve'];

function header(): string {
  return tb.provider({ rebuild_timeout_seconds: 120, request_timeout_seconds: 20, retries: 1 });
}

function ownedConfig(): string {
  return [
    header(),
    resource('mayastor_pool', 'p', { node: 'a', name: POOL, disks: [tb.disk('a', 'd0.img')] }),
    resource('mayastor_replica', 'r', { node: 'a', pool: ref('mayastor_pool.p.name'), uuid: RU, size_bytes: 8 * MiB, thin: true, share: 'nbd' }),
    tfOutput('uri', ref('mayastor_replica.r.uri')),
  ].join('');
}

const nexusHcl = (children: HclValue[]) => resource('mayastor_nexus', 'v', { node: 'a', uuid: NX, size_bytes: SIZE, children, share: 'nbd' });

function nexusConfig(): string {
  return [
    header(),
    resource('mayastor_pool', 'a', { node: 'a', name: 'na', disks: [tb.disk('a', 'd1.img')] }),
    resource('mayastor_pool', 'b', { node: 'b', name: 'nb', disks: [tb.disk('b', 'd0.img')] }),
    resource('mayastor_replica', 'la', { node: 'a', pool: ref('mayastor_pool.a.name'), uuid: LA, size_bytes: REPLICA, thin: true }),
    resource('mayastor_replica', 'rb', { node: 'b', pool: ref('mayastor_pool.b.name'), uuid: RB, size_bytes: REPLICA, thin: true, share: 'nbd' }),
    nexusHcl([ref('mayastor_replica.la.uri'), `\${mayastor_replica.rb.uri}?${TIMEOUTS}`]),
    tfOutput('device_uri', ref('mayastor_nexus.v.device_uri')),
    tfOutput('rb_uri', ref('mayastor_replica.rb.uri')),
  ].join('');
}

const output = (t: TerraformDir, name: string): string => JSON.parse(expectOk(t.run('output', '-json', name))) as string;

beforeAll(async () => {
  tb = await ProviderTestbed.start('mayastor-provider-ownership-', {
    a: { disks: { 'd0.img': 64 * MiB, 'd1.img': 64 * MiB } },
    b: { disks: { 'd0.img': 64 * MiB } },
  });
  ({ a, b } = tb.agents);
  s1 = tb.dir('s1', ownedConfig());
  s2 = tb.dir('s2', ownedConfig());
  nx = tb.dir('nx', nexusConfig());
}, 120_000);

afterAll(async () => {
  await tb?.stop();
});

describe('(a) a state owns only what it created', () => {
  let uri = '';
  /** state 1's data, checked through the replica's own export after every step of state 2 */
  const intact = () => qemuIoOk(uri, ['read -P 0x3c 0 1M', 'read -P 0x3d 4M 1M']);

  test('a second state applying the same pool and replica fails with "already exists, import it"; data untouched', async () => {
    expectOk(s1.run('apply', ...APPLY));
    uri = output(s1, 'uri');
    expect(uri).toMatch(/^nbd:\/\//);
    await qemuIoOk(uri, ['write -P 0x3c 0 1M', 'write -P 0x3d 4M 1M', 'flush']);

    const r = s2.run('apply', ...APPLY);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/Error: mayastor_pool already exists/);
    expect(r.out).toContain(`Node "a" already has pool "${POOL}"`);
    expect(r.out.replace(/\s+/g, ' ')).toContain(`terraform import mayastor_pool.NAME a/${POOL}`);
    expect(expectOk(s2.run('state', 'list')).trim()).toBe('');
    await intact();
    expect((await a.client().getReplica(RU))?.pool).toBe(POOL);
  });

  test("the second state's destroy deletes nothing", async () => {
    const out = expectOk(s2.run('destroy', ...APPLY));
    expect(out).toMatch(/No objects need to be destroyed|0 destroyed/);
    expect((await a.client().getPool(POOL))?.state).toBe('online');
    expect(await a.client().getReplica(RU)).toBeDefined();
    await intact();
  });

  test('import works; a replica it did not create is refused the same way until it is imported', async () => {
    expectOk(s2.run('import', '-no-color', '-input=false', 'mayastor_pool.p', `a/${POOL}`));
    const r = s2.run('apply', ...APPLY);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/Error: mayastor_replica already exists/);
    expect(r.out.replace(/\s+/g, ' ')).toContain(`terraform import mayastor_replica.NAME a/${RU}`);
    await intact();
    expectOk(s2.run('import', '-no-color', '-input=false', 'mayastor_replica.r', `a/${RU}`));
    s2.expectNoChanges();
    s1.expectNoChanges();
    await intact();
    // hand everything back to state 1 and let it clean up
    expectOk(s2.run('state', 'rm', 'mayastor_replica.r', 'mayastor_pool.p'));
    expectOk(s1.run('destroy', ...APPLY));
    expect(await a.client().getPool(POOL)).toBeUndefined();
  });

  test('the client counts a 200 to its own retry after an unanswered PUT as created, never a first 200', async () => {
    let answers: Array<'drop' | 200 | 201 | 503> = [];
    let puts = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        puts++;
        const what = answers.shift() ?? 200;
        if (what === 'drop') return req.socket.destroy(); // the request arrived; its answer is lost
        res.writeHead(what, { 'content-type': 'application/json' });
        res.end(JSON.stringify(what === 503 ? { error: { code: 'busy', message: 'blocked' } } : { name: 'p' }));
      });
    });
    const port = await freePort();
    const client = new AgentClient({ url: `http://127.0.0.1:${port}`, token: 't', node: 'fake', retries: 2, backoffMs: 400, timeoutMs: 5000 });
    const create = () => client.create('pools', 'p', { disks: ['/d'] });
    try {
      // refused (the request never left), then 200: the pool was there before this call
      const refusedFirst = create();
      await new Promise((r) => setTimeout(r, 100));
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
      expect((await refusedFirst).created).toBe(false);
      const cases: Array<[typeof answers, boolean]> = [
        [[200], false],
        [[201], true],
        [['drop', 200], true],
        [[503, 200], true],
      ];
      for (const [seq, created] of cases) {
        answers = [...seq];
        puts = 0;
        expect({ seq, created: (await create()).created }).toEqual({ seq, created });
        expect(puts).toBe(seq.length);
      }
    } finally {
      server.close();
    }
  });
});

describe('(b) a re-created replica never passes as an in-sync nexus child', () => {
  let deviceUri = '';
  let child = '';
  let direct = '';
  const nexusJson = async () => JSON.stringify(await a.client().getNexus(NX), null, 2);

  test('a nexus over a local and a remote replica applies; another state cannot take the nexus', async () => {
    expectOk(nx.run('apply', ...APPLY));
    deviceUri = output(nx, 'device_uri');
    direct = output(nx, 'rb_uri');
    child = `${direct}?${TIMEOUTS}`;
    const n = (await a.client().getNexus(NX))!;
    expect(Object.fromEntries(n.children.map((c) => [c.uri, c.state]))).toEqual({ [`bdev:///${LA}`]: 'online', [child]: 'online' });
    nx.expectNoChanges();

    // the same nexus in a state that did not create it
    s2.write([header(), nexusHcl([`bdev:///${LA}`, child])].join(''));
    const r = s2.run('apply', ...APPLY);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/Error: mayastor_nexus already exists/);
    expect(r.out.replace(/\s+/g, ' ')).toContain(`terraform import mayastor_nexus.NAME a/${NX}`);
    expect(expectOk(s2.run('state', 'list')).trim()).toBe('');
    expect((await a.client().getNexus(NX))?.state).toBe('online');
  });

  test('deleted and re-created out of band on b: the nexus rebuilds it by itself, plan and apply agree, its bytes match', async () => {
    await qemuIoOk(deviceUri, ['write -P 0xa1 0 1M', 'write -P 0xa2 5M 1M', 'flush']);

    // out of band, through b's own API: deleted, then created again (empty) with the same uuid and spec
    const mark = a.stderr.length;
    const spec = { pool: 'nb', sizeBytes: REPLICA, thin: true, share: 'nbd' as const };
    expect(await b.client().deleteReplica(RB)).toBe(true);
    expect((await b.client().putReplica(RB, spec)).uri).toBe(direct);
    // the child's connection comes back by itself (reconnects back off up to 5 s): wait until it reached the
    // new device, so the I/O below meets the reconnected child rather than a closed connection
    const verdict = new RegExp(`${RB}[^\\n]*reconnected`);
    await until(async () => verdict.test(a.stderr.slice(mark)), 'the child to reconnect', 100, 30_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\nagent a stderr since the re-create:\n${a.stderr.slice(mark)}\nnexus on a:\n${await nexusJson()}`);
    });
    await qemuIoOk(deviceUri, ['write -P 0xa3 6M 1M', 'flush', 'read -P 0xa1 0 1M', 'read -P 0xa2 5M 1M']);
    await qemuIoOk(deviceUri, ['write -P 0xa4 9M 1M', 'flush', 'read -P 0xa3 6M 1M']);
    // the re-created child never counts as a member: its I/O fails (ENODEV) and the nexus, by itself,
    // reopens it as a new child and rebuilds it from the local one (the log line says so)
    const started = `nexus ${NX}: child ${child}: replaced: rebuilding from bdev:///${LA}`;
    await until(async () => a.stderr.slice(mark).includes(started), 'the nexus rebuilding the child by itself', 100, 60_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\nagent a stderr since the re-create:\n${a.stderr.slice(mark)}\nnexus on a:\n${await nexusJson()}`);
    });

    // plan: the child while it is not online yet (an in-place update), or nothing once it is
    const plan = nx.run('plan', '-no-color', '-input=false', '-detailed-exitcode');
    if (plan.code !== 0 && plan.code !== 2)
      throw new Error(
        `plan failed (exit ${plan.code}):\n${plan.out}\nnexus on a:\n${await nexusJson()}\nagent a stderr since the re-create:\n${a.stderr.slice(mark)}`,
      );
    if (plan.code === 2) {
      expect(plan.out).toMatch(/mayastor_nexus\.v will be updated in-place/);
      expect(plan.out).toContain(child);
      expect(plan.out).toMatch(/Plan: 0 to add, 1 to change, 0 to destroy/);
    }

    expectOk(nx.run('apply', ...APPLY));
    const rebuilt = await until(
      async () => {
        const n = await a.client().getNexus(NX);
        return n && n.state === 'online' && n.children.every((c) => c.state === 'online' && (c.rebuildProgress ?? 100) === 100) ? n : undefined;
      },
      'every child online and rebuilt',
      200,
      60_000,
    );
    expect(rebuilt.children.map((c) => c.uri).sort()).toEqual([`bdev:///${LA}`, child].sort());
    nx.expectNoChanges();

    // the child itself, read through b's own export at the nexus data offset (1 MiB)
    await qemuIoOk(direct, ['read -P 0xa1 1M 1M', 'read -P 0xa2 6M 1M', 'read -P 0xa3 7M 1M', 'read -P 0xa4 10M 1M']);
    const expected = Buffer.alloc(SIZE);
    for (const [byte, at] of [
      [0xa1, 0],
      [0xa2, 5],
      [0xa3, 6],
      [0xa4, 9],
    ])
      expected.fill(byte, at * MiB, (at + 1) * MiB);
    const sha = (buf: Buffer) => crypto.createHash('sha256').update(buf).digest('hex');
    const childCopy = path.join(tb.work, 'child.img');
    await mustRun('nbdcopy', [direct, childCopy], { timeoutMs: 30_000 });
    expect(sha(fs.readFileSync(childCopy).subarray(MiB, MiB + SIZE))).toBe(sha(expected));
    const volumeCopy = path.join(tb.work, 'volume.img');
    await mustRun('nbdcopy', [deviceUri, volumeCopy], { timeoutMs: 30_000 });
    expect(sha(fs.readFileSync(volumeCopy))).toBe(sha(expected));
  });

  test('destroy removes the nexus and its replicas', async () => {
    expectOk(nx.run('destroy', ...APPLY));
    expect(await a.client().listNexuses()).toEqual([]);
    expect(await b.client().listReplicas()).toEqual([]);
  });
});
