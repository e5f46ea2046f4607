/**
 * Issue 13 (Terraform) with the real `terraform` binary against a real agent:
 *  - a replica written over its NBD share (qemu-io patterns), a `mayastor_snapshot` of it exported read-only over NBD,
 *    a clone of that snapshot (`mayastor_replica.source_snapshot`); the replica is overwritten after the snapshot, and
 *    the clone's and the snapshot export's bytes (nbdcopy, sha256) are what the replica held when it was taken;
 *  - a `mayastor_volume_snapshot` of a 3-child nexus written through its NBD export, the nexus overwritten after it,
 *    a clone of each replica snapshot (by `snapshot_uuids`) holding the volume's data of snapshot time after its
 *    label header (sha256 of each clone's NBD share from 1 MiB on), and the restored volume: a new nexus over the
 *    three clones reading the data of snapshot time (sha256 of its NBD export);
 *  - `plan -detailed-exitcode` exits 0 after apply; every resource imported into an emptied state (fresh), plan empty;
 *  - a snapshot that a clone depends on, destroyed from another state, fails naming the clone (nothing deleted);
 *  - a volume snapshot of a nexus with a faulted child fails with a diagnostic naming the child, leaving no snapshot;
 *  - destroy in dependency order leaves nothing on the agent (GET /v1/snapshots, replicas, nexuses, pools empty);
 *  - the L1 bindings of the snapshot resources match `terraform providers schema -json`;
 *  - CDKTF: a ReplicatedVolume over nvmf with a replica on a second agent, its `snapshot(id)` synthesized and applied
 *    with terraform: the remote part is taken through the protocol, a clone of each part (L1 Replica.sourceSnapshot
 *    from snapshotUuidOf) holds the data of snapshot time, and so does ReplicatedVolume.fromSnapshot (clones on both
 *    agents, a new nexus); plan empty, destroy leaves nothing on either agent.
 * Needs dist/ (`npm run build:ts`) and the launcher (`npm run build:native`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { TerraformOutput, TerraformStack, Testing } from 'cdktf';
import { AgentClient } from '../../agent/api/client';
import {
  MayastorProvider,
  Replica as ReplicaL1,
  ReplicatedVolume,
  Snapshot as SnapshotL1,
  StorageNode,
  VolumeSnapshot as VolumeSnapshotL1,
} from '../../constructs';
import { BINDINGS, ProviderSchemaJson, checkBindings } from '../helpers/constructs-schema-check';
import { MiB } from '../helpers/agent';
import { freePort, nbdReadAll, qemuIo, qemuIoOk, sha256 } from '../helpers/nbd';
import { ProviderTestbed, TerraformDir, expectOk, output, ref, resource } from '../helpers/terraform';

jest.setTimeout(300_000);

const APPLY = ['-no-color', '-input=false', '-auto-approve'];
const R_SIZE = 8 * MiB;
const VOL = 16 * MiB;

let tb: ProviderTestbed;
let tfd: TerraformDir;
let agent: AgentClient;

/** `with`: the snapshots and what is made from them (a second apply, once the data is written). */
function config(withSnapshots: boolean): string {
  const base = [
    tb.provider({ rebuild_timeout_seconds: 120, request_timeout_seconds: 30, retries: 1 }),
    resource('mayastor_pool', 'p', { node: 'a', name: 'pa', disks: [tb.disk('a')] }),
    resource('mayastor_replica', 'r', { node: 'a', pool: ref('mayastor_pool.p.name'), size_bytes: R_SIZE, thin: true, share: 'nbd' }),
    ...[0, 1, 2].map((i) =>
      resource('mayastor_replica', `v${i}`, {
        node: 'a',
        pool: ref('mayastor_pool.p.name'),
        size_bytes: ref(`provider::mayastor::replica_size(${VOL})`),
        thin: true,
      }),
    ),
    resource('mayastor_nexus', 'v', { node: 'a', size_bytes: VOL, children: [0, 1, 2].map((i) => ref(`mayastor_replica.v${i}.uri`)), share: 'nbd' }),
    output('r_uri', ref('mayastor_replica.r.uri')),
    output('v_uri', ref('mayastor_nexus.v.device_uri')),
    output('v_uuid', ref('mayastor_nexus.v.uuid')),
    output('v_children', ref('[mayastor_replica.v0.uuid, mayastor_replica.v1.uuid, mayastor_replica.v2.uuid]')),
  ];
  if (!withSnapshots) return base.join('');
  return [
    ...base,
    resource('mayastor_snapshot', 's', { node: 'a', replica_uuid: ref('mayastor_replica.r.uuid'), share: 'nbd' }),
    resource('mayastor_replica', 'c', {
      node: 'a',
      pool: ref('mayastor_snapshot.s.pool'),
      size_bytes: ref('mayastor_snapshot.s.size_bytes'),
      share: 'nbd',
      source_snapshot: ref('mayastor_snapshot.s.uuid'),
    }),
    resource('mayastor_volume_snapshot', 'vs', { node: 'a', nexus_uuid: ref('mayastor_nexus.v.uuid') }),
    ...[0, 1, 2].map((i) =>
      resource('mayastor_replica', `k${i}`, {
        node: 'a',
        pool: ref('mayastor_pool.p.name'),
        size_bytes: ref(`provider::mayastor::replica_size(${VOL})`),
        source_snapshot: ref(`mayastor_volume_snapshot.vs.snapshot_uuids[mayastor_replica.v${i}.uuid]`),
        share: 'nbd',
      }),
    ),
    resource('mayastor_nexus', 'w', { node: 'a', size_bytes: VOL, children: [0, 1, 2].map((i) => ref(`mayastor_replica.k${i}.uri`)), share: 'nbd' }),
    output('w_uri', ref('mayastor_nexus.w.device_uri')),
    output('c_uri', ref('mayastor_replica.c.uri')),
    output('k_uris', ref('[mayastor_replica.k0.uri, mayastor_replica.k1.uri, mayastor_replica.k2.uri]')),
    output('s_uuid', ref('mayastor_snapshot.s.uuid')),
    output('s_uri', ref('mayastor_snapshot.s.uri')),
    output('c_uuid', ref('mayastor_replica.c.uuid')),
    output('vs', ref('mayastor_volume_snapshot.vs')),
  ].join('');
}

const out = <T = string>(name: string): T => JSON.parse(expectOk(tfd.run('output', '-json', name))) as T;

/** `len` bytes: zeros with `fill` bytes at the given MiB ranges ([offset MiB, length MiB, byte]). */
function image(len: number, fill: [number, number, number][]): Buffer {
  const b = Buffer.alloc(len);
  for (const [at, n, v] of fill) b.fill(v, at * MiB, (at + n) * MiB);
  return b;
}

const R_BEFORE: [number, number, number][] = [
  [0, 1, 0x5a],
  [3, 1, 0x6b],
  [7, 1, 0x7c],
];
const V_BEFORE: [number, number, number][] = [
  [0, 2, 0x31],
  [9, 1, 0x32],
  [15, 1, 0x33],
];

beforeAll(async () => {
  tb = await ProviderTestbed.start(
    'mayastor-provider-snapshots-',
    {
      a: { disks: { 'd0.img': 256 * MiB, 'd1.img': 128 * MiB }, extraArgs: ['--nbd-listen', '127.0.0.1:0'] },
      b: { disks: { 'd0.img': 128 * MiB }, extraArgs: ['--nbd-listen', '127.0.0.1:0', '--nvmf-listen', `127.0.0.1:${await freePort()}`] },
    },
    true,
  );
  agent = tb.agents.a.client();
  tfd = tb.dir('tf', config(false));
}, 240_000);

afterAll(async () => {
  await tb?.stop();
});

test('a snapshot, a clone of it, a volume snapshot and a volume restored from it: each reads the data of snapshot time', async () => {
  expectOk(tfd.run('apply', ...APPLY));
  const rUri = out('r_uri'),
    vUri = out('v_uri');
  await qemuIoOk(rUri, [...R_BEFORE.map(([at, n, v]) => `write -P ${v} ${at}M ${n}M`), 'flush']);
  await qemuIoOk(vUri, [...V_BEFORE.map(([at, n, v]) => `write -P ${v} ${at}M ${n}M`), 'flush']);
  expect(sha256(nbdReadAll(rUri, R_SIZE))).toBe(sha256(image(R_SIZE, R_BEFORE)));

  tfd.write(config(true));
  expectOk(tfd.run('apply', ...APPLY));
  // the sources move on after their snapshots
  await qemuIoOk(rUri, ['write -P 0x11 0 4M', 'flush']);
  await qemuIoOk(vUri, ['write -P 0x22 0 16M', 'flush']);

  const snaps = await agent.listSnapshots();
  const sUuid = out('s_uuid');
  expect(snaps.find((s) => s.uuid === sUuid)).toMatchObject({ sourceReplica: expect.any(String), sizeBytes: R_SIZE, pool: 'pa' });
  expect(sha256(nbdReadAll(out('c_uri'), R_SIZE))).toBe(sha256(image(R_SIZE, R_BEFORE)));
  // the snapshot's own read-only export (share = "nbd"): the data of snapshot time; a write does not change it
  const sUri = out('s_uri');
  expect(sUri).toMatch(new RegExp(`^nbd://.*/${sUuid}$`));
  const tried = await qemuIo(sUri, ['write -P 0x01 0 64k']);
  expect(`${tried.stdout}${tried.stderr}`).toMatch(/failed|not permitted|permission denied|read-only/i);
  expect(sha256(nbdReadAll(sUri, R_SIZE))).toBe(sha256(image(R_SIZE, R_BEFORE)));
  expect(sha256(nbdReadAll(rUri, R_SIZE))).toBe(sha256(image(R_SIZE, [[0, 4, 0x11], ...R_BEFORE.filter(([at]) => at >= 4)])));

  const vs = out<{ replicas: { replica_uuid: string; snapshot_uuid: string; node: string; child: string }[]; snapshot_uuids: Record<string, string> }>('vs');
  const children = out<string[]>('v_children');
  expect(vs.replicas.map((r) => r.replica_uuid).sort()).toEqual([...children].sort());
  for (const r of vs.replicas) {
    expect(r).toMatchObject({ node: 'a', child: `bdev:///${r.replica_uuid}` });
    expect(vs.snapshot_uuids[r.replica_uuid]).toBe(r.snapshot_uuid);
    expect(snaps.find((s) => s.uuid === r.snapshot_uuid)).toMatchObject({ sourceReplica: r.replica_uuid });
  }
  // each part's clone: the nexus label header (1 MiB), then the volume as it was at snapshot time
  const want = sha256(image(VOL, V_BEFORE));
  for (const uri of out<string[]>('k_uris')) expect(sha256(nbdReadAll(uri, VOL + MiB).subarray(MiB))).toBe(want);
  // the restored volume: a new nexus over the clones
  expect(sha256(nbdReadAll(out('w_uri'), VOL))).toBe(want);
  expect(sha256(nbdReadAll(vUri, VOL))).toBe(sha256(image(VOL, [[0, 16, 0x22]])));
});

test('plan is empty after apply; a re-apply changes nothing', () => {
  tfd.expectNoChanges();
  expect(expectOk(tfd.run('apply', ...APPLY))).toMatch(/0 added, 0 changed, 0 destroyed/);
});

test('import each resource into an emptied state: plan is empty', () => {
  const shown = JSON.parse(expectOk(tfd.run('show', '-json')));
  const managed = (shown.values.root_module.resources as { address: string; mode: string; values: { id: string } }[]).filter((r) => r.mode === 'managed');
  expect(managed.map((r) => r.address)).toEqual(
    expect.arrayContaining(['mayastor_snapshot.s', 'mayastor_replica.c', 'mayastor_volume_snapshot.vs', 'mayastor_replica.k0', 'mayastor_nexus.w']),
  );
  expectOk(tfd.run('state', 'rm', ...managed.map((r) => r.address)));
  expect(expectOk(tfd.run('state', 'list')).trim()).toBe('');
  for (const r of managed) expectOk(tfd.run('import', '-no-color', '-input=false', r.address, r.values.id));
  tfd.expectNoChanges();
});

test('destroying a snapshot a clone depends on fails naming the clone; nothing is deleted', async () => {
  const sUuid = out('s_uuid'),
    cUuid = out('c_uuid');
  const rUuid = (await agent.listSnapshots()).find((s) => s.uuid === sUuid)!.sourceReplica;
  const other = tb.dir('other', tb.provider() + resource('mayastor_snapshot', 's', { node: 'a', replica_uuid: rUuid, uuid: sUuid }));
  expectOk(other.run('import', '-no-color', '-input=false', 'mayastor_snapshot.s', `a/${sUuid}`));
  const r = other.run('destroy', ...APPLY);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/Cannot destroy snapshot .* clones depend on it/);
  expect(r.out).toContain(cUuid);
  expect((await agent.listSnapshots()).some((s) => s.uuid === sUuid)).toBe(true);
  expectOk(other.run('state', 'rm', 'mayastor_snapshot.s'));
  tfd.expectNoChanges();
});

test('a volume snapshot of a nexus with a faulted child fails naming the child; no snapshot is left', async () => {
  const v = out('v_uuid');
  const faulted = `bdev:///${out<string[]>('v_children')[2]}`;
  const before = (await agent.listSnapshots()).map((s) => s.uuid).sort();
  await agent.childFault(v, faulted);
  const bad = tb.dir(
    'faulted',
    tb.provider() + resource('mayastor_volume_snapshot', 'bad', { node: 'a', nexus_uuid: v, deadline_ms: 5000, timeouts: ref('{ create = "1m" }') }),
  );
  const r = bad.run('apply', ...APPLY);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/Error: Cannot snapshot nexus/);
  expect(r.out).toContain(faulted.replace('bdev:///', ''));
  expect(r.out).toMatch(/with mayastor_volume_snapshot\.bad[\s\S]*nexus_uuid/);
  expect(expectOk(bad.run('state', 'list')).trim()).toBe('');
  expect((await agent.listSnapshots()).map((s) => s.uuid).sort()).toEqual(before);
});

test('bad input: each refusal names its attribute (missing replica, missing snapshot, clone of another size or pool, missing nexus)', async () => {
  const sUuid = out('s_uuid');
  const none = (n: number) => `00000000-1313-4000-8000-00000000000${n}`;
  const bad = tb.dir(
    'bad',
    [
      tb.provider({ retries: 0 }),
      resource('mayastor_snapshot', 'missing_replica', { node: 'a', replica_uuid: none(1) }),
      resource('mayastor_replica', 'missing_snapshot', { node: 'a', pool: 'pa', size_bytes: R_SIZE, source_snapshot: none(2) }),
      resource('mayastor_replica', 'bigger', { node: 'a', pool: 'pa', size_bytes: 2 * R_SIZE, source_snapshot: sUuid }),
      resource('mayastor_replica', 'elsewhere', { node: 'b', pool: 'pb', size_bytes: R_SIZE, source_snapshot: sUuid }),
      resource('mayastor_volume_snapshot', 'missing_nexus', { node: 'a', nexus_uuid: none(3) }),
    ].join(''),
  );
  const before = (await agent.listSnapshots()).length;
  const r = bad.run('apply', ...APPLY);
  expect(r.code).toBe(1);
  const named = (res: string, attr: string) =>
    expect(r.out).toMatch(
      new RegExp(`with ${res.replace('.', '\\.')},\\s+on main\\.tf line \\d+, in resource "${res.replace('.', '" "')}":\\s+\\d+:\\s+${attr}\\b`),
    );
  named('mayastor_snapshot.missing_replica', 'replica_uuid');
  named('mayastor_replica.missing_snapshot', 'source_snapshot');
  named('mayastor_replica.bigger', 'size_bytes');
  named('mayastor_volume_snapshot.missing_nexus', 'nexus_uuid');
  const text = r.out.replace(/\s+/g, ' ');
  expect(text).toContain(`replica '${none(1)}' does not exist`);
  expect(text).toContain(`snapshot '${none(2)}' does not exist`);
  expect(text).toContain(`a clone has its snapshot's size ${R_SIZE}, not ${2 * R_SIZE}`);
  expect(text).toContain(`nexus '${none(3)}' does not exist`);
  // the snapshot is on node a: node b has none of that uuid
  named('mayastor_replica.elsewhere', 'source_snapshot');
  expect(expectOk(bad.run('state', 'list')).trim()).toBe('');
  expect((await agent.listSnapshots()).length).toBe(before);
});

test('destroy in dependency order leaves nothing on the agent', async () => {
  expectOk(tfd.run('destroy', ...APPLY));
  expect(await agent.listSnapshots()).toEqual([]);
  expect(await agent.listNexuses()).toEqual([]);
  expect(await agent.listReplicas()).toEqual([]);
  expect(await agent.listPools()).toEqual([]);
});

test('the L1 Snapshot and VolumeSnapshot bindings match terraform providers schema -json', () => {
  const r = tfd.run('providers', 'schema', '-json');
  expect(r.code).toBe(0);
  const all = JSON.parse(r.out.slice(r.out.indexOf('{'), r.out.lastIndexOf('}') + 1)) as { provider_schemas: Record<string, ProviderSchemaJson> };
  const mine = all.provider_schemas['registry.terraform.io/mayastor/mayastor'];
  expect(Object.keys(mine.resource_schemas ?? {})).toEqual(expect.arrayContaining(['mayastor_snapshot', 'mayastor_volume_snapshot']));
  // the shared binding table may not list them yet: check them here either way
  const ctor = (c: unknown) => c as (typeof BINDINGS)[number]['ctor'];
  if (!BINDINGS.some((b) => b.tfType === 'mayastor_snapshot'))
    BINDINGS.push({
      kind: 'resource',
      tfType: 'mayastor_snapshot',
      file: 'snapshot.ts',
      className: 'Snapshot',
      configName: 'SnapshotConfig',
      ctor: ctor(SnapshotL1),
    });
  if (!BINDINGS.some((b) => b.tfType === 'mayastor_volume_snapshot'))
    BINDINGS.push({
      kind: 'resource',
      tfType: 'mayastor_volume_snapshot',
      file: 'volume-snapshot.ts',
      className: 'VolumeSnapshot',
      configName: 'VolumeSnapshotConfig',
      ctor: ctor(VolumeSnapshotL1),
    });
  expect(checkBindings(mine).filter((p) => /^mayastor_(snapshot|volume_snapshot|replica)\b/.test(p))).toEqual([]);
});

describe('CDKTF: a snapshot of a ReplicatedVolume with a remote nvmf:// replica', () => {
  let cdk: TerraformDir;
  const cdkOut = <T = string>(name: string): T => JSON.parse(expectOk(cdk.run('output', '-json', name))) as T;

  /** The stack's Terraform JSON as main.tf.json of the `cdk` dir; `snapshot`: the volume snapshot and a clone of each part. */
  function synth(withSnapshot: boolean): void {
    const stack = new TerraformStack(Testing.app(), 'snapshots');
    const nodes = [
      new StorageNode(stack, 'a', { name: 'a', agentUrl: tb.agents.a.url, pools: [{ name: 'va', disks: [tb.disk('a', 'd1.img')] }] }),
      new StorageNode(stack, 'b', { name: 'b', agentUrl: tb.agents.b.url, pools: [{ name: 'vb', disks: [tb.disk('b', 'd0.img')] }] }),
    ];
    new MayastorProvider(stack, 'mayastor', { nodes: StorageNode.providerNodes(nodes), requestTimeoutSeconds: 30, retries: 1 });
    const vol = new ReplicatedVolume(stack, 'vol', { nodes, sizeBytes: VOL, replicas: 2, thin: true, protocol: 'nvmf', nexusNode: 'a' });
    // the test writes and reads the volume with qemu-io over NBD (agent a has no NVMe/TCP listener); b's replica stays nvmf://
    vol.nexus.share = 'nbd';
    if (withSnapshot) {
      const snap = vol.snapshot('snap', { deadlineMs: 5000, timeouts: { create: '1m', delete: '1m' } });
      vol.placement.forEach((p, i) => {
        const clone = new ReplicaL1(stack, `part-${p.node}`, {
          nodeAttribute: p.node,
          pool: p.pool,
          sizeBytes: VOL + MiB,
          share: 'nbd',
          sourceSnapshot: snap.snapshotUuidOf(p.replicaUuid),
          dependsOn: [vol.replicas[i]],
        });
        new TerraformOutput(stack, `part_uri_${p.node}`, { value: clone.uri });
      });
      new TerraformOutput(stack, 'parts', { value: snap.resource.replicas });
      const restored = ReplicatedVolume.fromSnapshot(stack, 'restored', { snapshot: snap, nexusNode: 'a' });
      restored.nexus.share = 'nbd';
    }
    fs.writeFileSync(path.join(cdk.dir, 'main.tf.json'), Testing.synth(stack));
  }

  beforeAll(() => {
    cdk = tb.dir('cdk');
    synth(false);
    expectOk(cdk.run('init', '-no-color', '-input=false'));
  });

  test('snapshot(id) applied: a part per replica (the remote one through the protocol); clones and fromSnapshot hold the data', async () => {
    expectOk(cdk.run('apply', ...APPLY));
    const uri = cdkOut('vol_device_uri');
    await qemuIoOk(uri, [...V_BEFORE.map(([at, n, v]) => `write -P ${v} ${at}M ${n}M`), 'flush']);
    synth(true);
    expectOk(cdk.run('apply', ...APPLY));
    await qemuIoOk(uri, ['write -P 0x44 0 16M', 'flush']);
    const parts = cdkOut<{ child: string; node: string | null; replica_uuid: string; snapshot_uuid: string }[]>('parts');
    expect(parts).toHaveLength(2);
    const local = parts.find((p) => p.child.startsWith('bdev:///'))!,
      remote = parts.find((p) => p.child.startsWith('nvmf://'))!;
    expect(local.node).toBe('a');
    expect(remote.node).toBeNull();
    // each part lives on its replica's node
    expect((await tb.agents.a.client().listSnapshots()).map((s) => s.uuid)).toContain(local.snapshot_uuid);
    expect((await tb.agents.b.client().listSnapshots()).map((s) => s.uuid)).toContain(remote.snapshot_uuid);
    const want = sha256(image(VOL, V_BEFORE));
    for (const n of ['a', 'b']) expect(sha256(nbdReadAll(cdkOut(`part_uri_${n}`), VOL + MiB).subarray(MiB))).toBe(want);
    expect(sha256(nbdReadAll(cdkOut('restored_device_uri'), VOL))).toBe(want);
    cdk.expectNoChanges();
  });

  test('destroy leaves nothing on either agent', async () => {
    expectOk(cdk.run('destroy', ...APPLY));
    for (const n of ['a', 'b']) {
      const c = tb.agents[n].client();
      expect(await c.listSnapshots()).toEqual([]);
      expect(await c.listReplicas()).toEqual([]);
      expect(await c.listNexuses()).toEqual([]);
    }
  });
});
