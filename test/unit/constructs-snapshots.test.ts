/**
 * The snapshot side of the constructs, by synthesized JSON: the L1 Snapshot and VolumeSnapshot bindings, Replica's
 * sourceSnapshot, ReplicatedVolume.snapshot(id) and a volume made from a snapshot (ReplicatedVolume.fromSnapshot and
 * the `source` prop), their validation errors (each naming the property), and the typed properties a
 * ReplicatedVolume exposes to other stacks.
 */
import { TerraformOutput, TerraformStack, Testing } from 'cdktf';
import {
  MayastorConstructError,
  MayastorProvider,
  Nexus,
  Replica,
  ReplicatedVolume,
  ReplicatedVolumeProps,
  ReplicatedVolumeSnapshot,
  Snapshot,
  StorageNode,
  VolumeSnapshot,
} from '../../constructs';
import { ProviderService } from '../../provider/protocol/framework';
import { makeProvider } from '../../provider/provider';
import { BINDINGS, checkBindings, fromGetProviderSchema } from '../helpers/constructs-schema-check';

Testing.setupJest();

const MiB = 1024 * 1024;
type Block = Record<string, unknown>;
type Synth = { resource?: Record<string, Record<string, Block>>; output?: Record<string, { value: unknown }> };

const synth = (stack: TerraformStack): Synth => JSON.parse(Testing.synth(stack)) as Synth;
const blocks = (stack: TerraformStack, type: string): [string, Block][] => Object.entries(synth(stack).resource?.[type] ?? {});

function nodes(s: TerraformStack, names = ['node-a', 'node-b', 'node-c']): StorageNode[] {
  return names.map(
    (name, i) => new StorageNode(s, name, { name, agentUrl: `http://127.0.0.1:${9501 + i}`, pools: [{ name: `pool-${name}`, disks: [`/d/${name}.img`] }] }),
  );
}

function stack(): TerraformStack {
  const s = new TerraformStack(Testing.app(), 'test');
  new MayastorProvider(s, 'mayastor', {});
  return s;
}

/** The error a construction throws (a MayastorConstructError), or a failure when it throws none. */
function thrown(fn: () => unknown): MayastorConstructError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MayastorConstructError);
    return e as MayastorConstructError;
  }
  throw new Error('expected a MayastorConstructError');
}

describe('L1 bindings', () => {
  test('Snapshot, VolumeSnapshot and Replica match the provider schema as cdktf get would generate them', () => {
    // the shared binding table may not list the snapshot resources yet: check them here either way
    const mine = [
      {
        kind: 'resource' as const,
        tfType: 'mayastor_snapshot',
        file: 'snapshot.ts',
        className: 'Snapshot',
        configName: 'SnapshotConfig',
        ctor: Snapshot as never,
      },
      {
        kind: 'resource' as const,
        tfType: 'mayastor_volume_snapshot',
        file: 'volume-snapshot.ts',
        className: 'VolumeSnapshot',
        configName: 'VolumeSnapshotConfig',
        ctor: VolumeSnapshot as never,
      },
    ];
    for (const b of mine) if (!BINDINGS.some((x) => x.tfType === b.tfType)) BINDINGS.push(b);
    const schema = fromGetProviderSchema(new ProviderService(makeProvider()).getProviderSchema() as Record<string, unknown>);
    const problems = checkBindings(schema).filter((p) => /^mayastor_(snapshot|volume_snapshot|replica)\b/.test(p));
    expect(problems).toEqual([]);
  });

  test('Snapshot synthesizes node, replica_uuid and uuid; its outputs are references', () => {
    const s = stack();
    const r = new Replica(s, 'r', { nodeAttribute: 'node-a', pool: 'p', sizeBytes: 8 * MiB });
    const snap = new Snapshot(s, 'snap', { nodeAttribute: 'node-a', replicaUuid: r.uuid });
    new TerraformOutput(s, 'size', { value: snap.sizeBytes });
    new TerraformOutput(s, 'pool', { value: snap.pool });
    const out = synth(s);
    expect(out.resource!.mayastor_snapshot.snap).toEqual({ node: 'node-a', replica_uuid: '${mayastor_replica.r.uuid}' });
    expect(out.output!.size.value).toBe('${mayastor_snapshot.snap.size_bytes}');
    expect(out.output!.pool.value).toBe('${mayastor_snapshot.snap.pool}');
    expect(Snapshot.tfResourceType).toBe('mayastor_snapshot');
  });

  test('Replica.sourceSnapshot is source_snapshot; left out, it is not synthesized', () => {
    const s = stack();
    const snap = new Snapshot(s, 'snap', { nodeAttribute: 'node-a', replicaUuid: '11111111-0000-4000-8000-000000000001' });
    new Replica(s, 'clone', { nodeAttribute: 'node-a', pool: 'p', sizeBytes: 8 * MiB, sourceSnapshot: snap.uuid });
    new Replica(s, 'plain', { nodeAttribute: 'node-a', pool: 'p', sizeBytes: 8 * MiB });
    const r = synth(s).resource!.mayastor_replica;
    expect(r.clone.source_snapshot).toBe('${mayastor_snapshot.snap.uuid}');
    expect(r.plain).not.toHaveProperty('source_snapshot');
  });

  test('VolumeSnapshot: deadline_ms and timeouts { create, delete }; replicas and snapshot_uuids resolve to references', () => {
    const s = stack();
    const vs = new VolumeSnapshot(s, 'vs', { nodeAttribute: 'node-a', nexusUuid: 'n', deadlineMs: 5000, timeouts: { create: '2m', delete: '1m' } });
    new TerraformOutput(s, 'first', { value: vs.replicas.get(0).snapshotUuid });
    new TerraformOutput(s, 'by_replica', { value: vs.snapshotUuids.lookup('r-1') });
    new TerraformOutput(s, 'all', { value: vs.snapshotUuids });
    const out = synth(s);
    expect(out.resource!.mayastor_volume_snapshot.vs).toEqual({
      node: 'node-a',
      nexus_uuid: 'n',
      deadline_ms: 5000,
      timeouts: { create: '2m', delete: '1m' },
    });
    expect(out.output!.first.value).toBe('${mayastor_volume_snapshot.vs.replicas[0].snapshot_uuid}');
    expect(out.output!.by_replica.value).toBe('${mayastor_volume_snapshot.vs.snapshot_uuids["r-1"]}');
    expect(out.output!.all.value).toBe('${mayastor_volume_snapshot.vs.snapshot_uuids}');
  });
});

describe('ReplicatedVolume.snapshot and fromSnapshot', () => {
  function volumeAndRestore(extra: Partial<Parameters<typeof ReplicatedVolume.fromSnapshot>[2]> = {}) {
    const s = stack();
    const ns = nodes(s);
    const vol = new ReplicatedVolume(s, 'vol', { nodes: ns, sizeBytes: 64 * MiB, protocol: 'nvmf' });
    const snap = vol.snapshot('daily', { deadlineMs: 3000 });
    const restored = ReplicatedVolume.fromSnapshot(s, 'restored', { snapshot: snap, ...extra });
    return { s, vol, snap, restored };
  }

  test('snapshot(id) is a mayastor_volume_snapshot of the nexus, on its node, with a stable uuid', () => {
    const { s, vol, snap } = volumeAndRestore();
    expect(snap).toBeInstanceOf(ReplicatedVolumeSnapshot);
    expect(snap.volume).toBe(vol);
    const [[id, body]] = blocks(s, 'mayastor_volume_snapshot');
    const nexusId = blocks(s, 'mayastor_nexus').find(([, n]) => n.uuid === vol.uuid)![0];
    expect(body).toMatchObject({ node: 'node-a', nexus_uuid: `\${mayastor_nexus.${nexusId}.uuid}`, uuid: snap.uuid, deadline_ms: 3000 });
    expect(id).toMatch(/snapshot/);
    // same construct path, same uuid: re-synthesizing never takes another snapshot
    expect(volumeAndRestore().snap.uuid).toBe(snap.uuid);
    expect(snap.uuid).not.toBe(vol.uuid);
  });

  test('fromSnapshot: one thin clone of each replica snapshot on the same node and pool, a new nexus over them', () => {
    const { s, vol, snap, restored } = volumeAndRestore();
    const snapId = blocks(s, 'mayastor_volume_snapshot')[0][0];
    expect(restored.source).toBe(snap);
    expect(restored.thin).toBe(true);
    expect(restored.sizeBytes).toBe(vol.sizeBytes);
    expect(restored.uuid).not.toBe(vol.uuid);
    expect(restored.placement.map((p) => [p.node, p.pool])).toEqual(vol.placement.map((p) => [p.node, p.pool]));
    const replicas = Object.fromEntries(blocks(s, 'mayastor_replica'));
    const clones = restored.placement.map((p) => Object.values(replicas).find((r) => r.uuid === p.replicaUuid)!);
    clones.forEach((c, i) => {
      const src = vol.placement[i];
      expect(c).toMatchObject({ node: src.node, thin: true, size_bytes: 65 * MiB, share: src.local ? 'none' : 'nvmf' });
      expect(c.source_snapshot).toBe(`\${mayastor_volume_snapshot.${snapId}.snapshot_uuids["${src.replicaUuid}"]}`);
      // the same pool resource as the original replica's (a clone lives in its snapshot's pool)
      expect(c.pool).toBe(Object.values(replicas).find((r) => r.uuid === src.replicaUuid)!.pool);
      expect(c.pool).toMatch(/^\$\{mayastor_pool\.[^.]+\.name\}$/);
      expect(c.uuid).not.toBe(src.replicaUuid);
    });
    // the originals are no clones
    for (const p of vol.placement) expect(Object.values(replicas).find((r) => r.uuid === p.replicaUuid)).not.toHaveProperty('source_snapshot');
    const nexus = blocks(s, 'mayastor_nexus').find(([, n]) => n.uuid === restored.uuid)![1];
    expect(nexus).toMatchObject({ node: 'node-a', size_bytes: 64 * MiB, share: 'nvmf' });
    expect((nexus.children as string[])[0]).toBe(`bdev:///${restored.placement[0].replicaUuid}`);
    expect(synth(s).output).toHaveProperty('restored_device_uri');
  });

  test('fromSnapshot takes its own protocol, uuid, nexus node and output name', () => {
    const uuid = 'abcdefab-1313-4000-8000-000000000013';
    const { s, restored } = volumeAndRestore({ uuid, nexusNode: 'node-b', outputName: 'restored_uri' });
    expect(restored.uuid).toBe(uuid);
    expect(restored.nexusNode).toBe('node-b');
    expect(restored.placement.map((p) => p.local)).toEqual([false, true, false]);
    expect(blocks(s, 'mayastor_nexus').find(([, n]) => n.uuid === uuid)![1]).toMatchObject({ node: 'node-b' });
    expect(synth(s).output).toHaveProperty('restored_uri');
  });

  test('a one-node volume over nbd can be snapshotted (no remote child)', () => {
    const s = stack();
    const vol = new ReplicatedVolume(s, 'solo', { nodes: nodes(s, ['node-a']), sizeBytes: 8 * MiB, replicas: 1 });
    const snap = vol.snapshot('s', { uuid: 'ABCDEFAB-0000-4000-8000-000000000001', timeouts: { create: '30s' } });
    expect(snap.uuid).toBe('abcdefab-0000-4000-8000-000000000001');
    expect(blocks(s, 'mayastor_volume_snapshot')[0][1]).toMatchObject({ timeouts: { create: '30s' } });
  });

  test('a volume whose remote replicas are reached over nbd cannot be snapshotted: the error names the nodes', () => {
    const s = stack();
    const vol = new ReplicatedVolume(s, 'vol', { nodes: nodes(s), sizeBytes: 8 * MiB });
    const e = thrown(() => vol.snapshot('s'));
    expect(e.property).toBe('volume');
    expect(e.message).toMatch(/ReplicatedVolumeSnapshot 'test\/vol\/s': volume: .* on node-b, node-c over nbd, which cannot snapshot them/);
  });

  test.each([
    ['uuid', { uuid: 'not-a-uuid' }, /"not-a-uuid" is not a UUID/],
    ['deadlineMs', { deadlineMs: 0 }, /0 must be a positive whole number of milliseconds/],
    ['deadlineMs', { deadlineMs: 1.5 }, /1.5 must be a positive whole number/],
  ])('snapshot props: bad %s is named', (prop, props, re) => {
    const s = stack();
    const vol = new ReplicatedVolume(s, 'vol', { nodes: nodes(s), sizeBytes: 8 * MiB, protocol: 'nvmf' });
    const e = thrown(() => vol.snapshot('s', props as never));
    expect(e.property).toBe(prop);
    expect(e.message).toMatch(re);
  });

  test.each<[string, (snap: ReplicatedVolumeSnapshot, ns: StorageNode[]) => Partial<ReplicatedVolumeProps>, RegExp]>([
    ['source', () => ({ source: {} as never }), /is not a ReplicatedVolumeSnapshot/],
    ['sizeBytes', () => ({ sizeBytes: 128 * MiB }), /must be the source volume's size, 67108864/],
    ['replicas', () => ({ replicas: 2 }), /2 must be the source volume's 3/],
    ['thin', () => ({ thin: false }), /is thin \(its replicas are clones\)/],
    ['pools', () => ({ pools: ['pool-node-a'] }), /uses the snapshot's pools/],
    ['nodes', (_snap, ns) => ({ nodes: ns.slice(0, 2) }), /replicas are on node-c, which nodes does not hold/],
  ])('a volume from a snapshot: bad %s is named', (prop, patch, re) => {
    const s = stack();
    const ns = nodes(s);
    const snap = new ReplicatedVolume(s, 'vol', { nodes: ns, sizeBytes: 64 * MiB, protocol: 'nvmf' }).snapshot('s');
    const e = thrown(() => new ReplicatedVolume(s, 'restored', { nodes: ns, sizeBytes: 64 * MiB, source: snap, ...patch(snap, ns) } as ReplicatedVolumeProps));
    expect(e.property).toBe(prop);
    expect(e.message).toMatch(re);
  });

  test('fromSnapshot without a snapshot names source', () => {
    const s = stack();
    const e = thrown(() => ReplicatedVolume.fromSnapshot(s, 'r', { snapshot: undefined as never }));
    expect(e.property).toBe('source');
  });
});

describe('ReplicatedVolume exposes typed properties for other stacks', () => {
  test('nexus, replicas, deviceUri, placement and storageNodes', () => {
    const s = stack();
    const ns = nodes(s);
    const vol = new ReplicatedVolume(s, 'vol', { nodes: ns, sizeBytes: 16 * MiB, replicas: 2 });
    expect(vol.nexus).toBeInstanceOf(Nexus);
    expect(vol.replicas).toHaveLength(2);
    for (const r of vol.replicas) expect(r).toBeInstanceOf(Replica);
    expect(vol.storageNodes).toEqual(ns);
    expect(vol.source).toBeUndefined();
    // what another stack (or an output) consumes: references to the nexus and replicas
    new TerraformOutput(s, 'uri', { value: vol.deviceUri });
    new TerraformOutput(s, 'replica_uris', { value: vol.replicas.map((r) => r.uri) });
    new TerraformOutput(s, 'nexus_state', { value: vol.nexus.state });
    const out = synth(s).output!;
    const nexusId = blocks(s, 'mayastor_nexus')[0][0];
    expect(out.uri.value).toBe(`\${mayastor_nexus.${nexusId}.device_uri}`);
    expect(out.nexus_state.value).toBe(`\${mayastor_nexus.${nexusId}.state}`);
    expect(out.replica_uris.value).toEqual(vol.replicas.map((r) => `\${mayastor_replica.${r.friendlyUniqueId}.uri}`));
  });
});
