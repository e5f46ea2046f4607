/** L2 constructs (StorageNode, ReplicatedVolume) and the example stacks, with cdktf's Testing helpers. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App, TerraformStack, Testing } from 'cdktf';
import {
  MayastorConstructError,
  MayastorProvider,
  Nexus,
  Pool,
  ReplicatedVolume,
  ReplicatedVolumeConfig,
  Replica,
  StorageNode,
  StorageNodeConfig,
  stableUuid,
} from '../../constructs';
import { QuickstartStack, VOLUME_UUID } from '../../examples/quickstart/stack';
import { FRESH_REPLICA_UUID, LEGACY_REPLICA_UUID, MigrationStack, parsePhase } from '../../examples/migration/stack';
import { loadCluster } from '../../examples/cluster';

Testing.setupJest();

const MiB = 1024 * 1024;

type Synth = Record<string, Record<string, Record<string, Record<string, unknown>>>>;
function parsed(stack: TerraformStack): Synth {
  return JSON.parse(Testing.synth(stack)) as Synth;
}
function resources(stack: TerraformStack, type: string): Record<string, Record<string, unknown>> {
  return parsed(stack).resource?.[type] ?? {};
}

function stackWith(fn: (s: TerraformStack) => void): TerraformStack {
  const stack = new TerraformStack(Testing.app(), 'test');
  fn(stack);
  return stack;
}

function node(scope: TerraformStack, name: string, extra: Partial<StorageNodeConfig> = {}): StorageNode {
  return new StorageNode(scope, name, {
    name,
    agentUrl: `http://127.0.0.1:95${name.charCodeAt(name.length - 1) % 100}`,
    pools: [{ name: `pool-${name}`, disks: [`/var/lib/mayastor/${name}/disk0.img`] }],
    ...extra,
  });
}

function three(s: TerraformStack, zones?: string[]): StorageNode[] {
  return ['node-a', 'node-b', 'node-c'].map((n, i) => node(s, n, zones ? { zone: zones[i] } : {}));
}

describe('StorageNode', () => {
  test('creates one mayastor_pool per pool and feeds the provider nodes map', () => {
    const stack = stackWith((s) => {
      const a = new StorageNode(s, 'a', {
        name: 'node-a',
        agentUrl: 'http://10.0.0.1:9500',
        zone: 'rack-1',
        pools: [
          { name: 'ssd', disks: ['/dev/nvme0n1'] },
          { name: 'hdd', disks: ['uring:///dev/sdb', 'aio:///dev/sdc'] },
        ],
      });
      const b = node(s, 'node-b');
      new MayastorProvider(s, 'mayastor', { nodes: StorageNode.providerNodes([a, b]), token: 'secret-token' });
      expect(a.pools).toHaveLength(2);
      expect(a.pool('ssd')).toBeInstanceOf(Pool);
      expect(a.hasPool('nvme')).toBe(false);
    });
    const out = Testing.synth(stack);
    expect(out).toHaveResourceWithProperties(Pool, { node: 'node-a', name: 'ssd', disks: ['/dev/nvme0n1'] });
    expect(out).toHaveResourceWithProperties(Pool, { node: 'node-a', name: 'hdd', disks: ['uring:///dev/sdb', 'aio:///dev/sdc'] });
    expect(out).toHaveResourceWithProperties(Pool, { node: 'node-b', name: 'pool-node-b' });
    // (the matcher snake-cases map keys, so the nodes map is compared on the parsed JSON)
    expect(out).toHaveProviderWithProperties(MayastorProvider, { token: 'secret-token' });
    const tf = parsed(stack);
    expect(tf.provider.mayastor).toEqual([{ nodes: { 'node-a': 'http://10.0.0.1:9500', 'node-b': 'http://127.0.0.1:9598' }, token: 'secret-token' }]);
    expect(tf.terraform.required_providers.mayastor).toEqual({ source: 'mayastor/mayastor', version: '~> 0.1' });
  });

  test('a node may have no pools', () => {
    const stack = stackWith((s) => {
      new StorageNode(s, 'n', { name: 'node-x', agentUrl: 'https://node-x.example:9500', pools: [] });
    });
    expect(Object.keys(resources(stack, 'mayastor_pool'))).toHaveLength(0);
  });

  const base: StorageNodeConfig = { name: 'node-a', agentUrl: 'http://127.0.0.1:9500', pools: [{ name: 'p', disks: ['/d/0.img'] }] };
  const bad: [string, Record<string, unknown>, string, RegExp][] = [
    ['name missing', { name: undefined }, 'name', /must be 1-63 characters/],
    ['name with a space', { name: 'node a' }, 'name', /"node a" must be 1-63 characters/],
    ['name too long', { name: 'n'.repeat(64) }, 'name', /must be 1-63 characters/],
    ['agentUrl missing', { agentUrl: '' }, 'agentUrl', /must be the agent's URL/],
    ['agentUrl not a URL', { agentUrl: 'localhost:9500' }, 'agentUrl', /is not an http:\/\/ or https:\/\/ URL/],
    ['agentUrl ftp', { agentUrl: 'ftp://h:21' }, 'agentUrl', /is not an http:\/\/ or https:\/\/ URL/],
    ['agentUrl with a path', { agentUrl: 'http://h:9500/v1' }, 'agentUrl', /must not have a path/],
    ['zone empty', { zone: '' }, 'zone', /must be 1-63 characters/],
    ['zone not a string', { zone: 3 }, 'zone', /3 must be 1-63 characters/],
    ['pools not an array', { pools: undefined }, 'pools', /must be an array/],
    ['pool not an object', { pools: [null] }, 'pools[0]', /must be an object/],
    ['pool name invalid', { pools: [{ name: '-p', disks: ['/d'] }] }, 'pools[0].name', /"-p" must start with a letter or digit/],
    [
      'pool given twice',
      {
        pools: [
          { name: 'p', disks: ['/d1'] },
          { name: 'p', disks: ['/d2'] },
        ],
      },
      'pools[1].name',
      /pool "p" is given twice on node "node-a"/,
    ],
    ['pool without disks', { pools: [{ name: 'p', disks: [] }] }, 'pools[0].disks', /pool "p" needs at least one disk/],
    ['pool disks not an array', { pools: [{ name: 'p' }] }, 'pools[0].disks', /needs at least one disk/],
    ['relative disk', { pools: [{ name: 'p', disks: ['disk0.img'] }] }, 'pools[0].disks[0]', /"disk0.img" must be an absolute path/],
    ['disk URI of another scheme', { pools: [{ name: 'p', disks: ['iscsi://h/x'] }] }, 'pools[0].disks[0]', /only uring:\/\/, aio:\/\/ and nbd:\/\/ disks/],
    [
      'disk claimed twice',
      {
        pools: [
          { name: 'p', disks: ['/d'] },
          { name: 'q', disks: ['/d'] },
        ],
      },
      'pools[1].disks[0]',
      /disk "\/d" is already claimed by pool "p"/,
    ],
    ['capacityBytes zero', { pools: [{ name: 'p', disks: ['/d'], capacityBytes: 0 }] }, 'pools[0].capacityBytes', /must be a positive whole number/],
    ['capacityBytes fractional', { pools: [{ name: 'p', disks: ['/d'], capacityBytes: 1.5 }] }, 'pools[0].capacityBytes', /must be a positive whole number/],
  ];
  test.each(bad)('rejects %s, naming %s', (_what, patch, prop, re) => {
    const s = new TerraformStack(Testing.app(), 'test');
    let err: unknown;
    try {
      new StorageNode(s, 'sn', { ...base, ...patch } as unknown as StorageNodeConfig);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MayastorConstructError);
    const e = err as MayastorConstructError;
    expect(e.property).toBe(prop);
    expect(e.message).toContain(`StorageNode 'test/sn': ${prop}: `);
    expect(e.message).toMatch(re);
  });

  test('rejects a config that is not an object', () => {
    const s = new TerraformStack(Testing.app(), 'test');
    expect(() => new StorageNode(s, 'sn', undefined as unknown as StorageNodeConfig)).toThrow(/StorageNode 'test\/sn': config: /);
  });

  test('pool(name) names the missing pool', () => {
    const s = new TerraformStack(Testing.app(), 'test');
    const n = node(s, 'node-a');
    expect(() => n.pool('nope')).toThrow(/pools: node "node-a" has no pool "nope" \(pools: pool-node-a\)/);
  });
});

describe('ReplicatedVolume', () => {
  test('3 replicas on 3 nodes; the local one is bdev:///, the remote ones are shared over nbd', () => {
    let vol!: ReplicatedVolume;
    const stack = stackWith((s) => {
      const nodes = three(s);
      new MayastorProvider(s, 'mayastor', { nodes: StorageNode.providerNodes(nodes) });
      vol = new ReplicatedVolume(s, 'vol', { nodes, sizeBytes: 64 * MiB, replicas: 3, thin: true, protocol: 'nbd' });
    });
    const out = Testing.synth(stack);
    expect(vol.nexusNode).toBe('node-a');
    expect(vol.placement.map((p) => [p.node, p.pool, p.local])).toEqual([
      ['node-a', 'pool-node-a', true],
      ['node-b', 'pool-node-b', false],
      ['node-c', 'pool-node-c', false],
    ]);
    const [ra, rb, rc] = vol.placement.map((p) => p.replicaUuid);
    expect(out).toHaveResourceWithProperties(Replica, { node: 'node-a', uuid: ra, size_bytes: 65 * MiB, thin: true, share: 'none' });
    expect(out).toHaveResourceWithProperties(Replica, { node: 'node-b', uuid: rb, share: 'nbd' });
    expect(out).toHaveResourceWithProperties(Replica, { node: 'node-c', uuid: rc, share: 'nbd' });

    const reps = resources(stack, 'mayastor_replica');
    const idOf = (uuid: string): string => Object.entries(reps).find(([, r]) => r.uuid === uuid)![0];
    // replicas reference their pool resource (created after it, destroyed before it)
    expect(reps[idOf(ra)].pool).toMatch(/^\$\{mayastor_pool\.[^.]+\.name\}$/);
    // a replica leaving the volume is dropped from the nexus before it is deleted
    for (const r of Object.values(reps)) expect(r.lifecycle).toEqual({ create_before_destroy: true });

    const nexuses = Object.values(resources(stack, 'mayastor_nexus'));
    expect(nexuses).toHaveLength(1);
    const nx = nexuses[0];
    expect(nx).toMatchObject({ node: 'node-a', uuid: vol.uuid, size_bytes: 64 * MiB, share: 'nbd' });
    expect(nx.children).toEqual([`bdev:///${ra}`, `\${mayastor_replica.${idOf(rb)}.uri}`, `\${mayastor_replica.${idOf(rc)}.uri}`]);
    expect((nx.depends_on as string[]).sort()).toEqual([ra, rb, rc].map((u) => `mayastor_replica.${idOf(u)}`).sort());

    const tf = parsed(stack);
    const outputs = tf.output as unknown as Record<string, { value: string }>;
    const nexusId = Object.keys(resources(stack, 'mayastor_nexus'))[0];
    expect(outputs.vol_device_uri.value).toBe(`\${mayastor_nexus.${nexusId}.device_uri}`);
    expect(Testing.synth(stack)).toHaveResource(Nexus);
  });

  test('protocol nvmf: the nexus shares over nvmf, the remote replicas are shared over nvmf and reached by their uri', () => {
    let vol!: ReplicatedVolume;
    const stack = stackWith((s) => {
      const nodes = three(s);
      new MayastorProvider(s, 'mayastor', { nodes: StorageNode.providerNodes(nodes) });
      vol = new ReplicatedVolume(s, 'vol', { nodes, sizeBytes: 64 * MiB, replicas: 3, protocol: 'nvmf' });
    });
    const out = Testing.synth(stack);
    expect(vol.protocol).toBe('nvmf');
    const [ra, rb, rc] = vol.placement.map((p) => p.replicaUuid);
    expect(out).toHaveResourceWithProperties(Replica, { node: 'node-a', uuid: ra, share: 'none' });
    expect(out).toHaveResourceWithProperties(Replica, { node: 'node-b', uuid: rb, share: 'nvmf' });
    expect(out).toHaveResourceWithProperties(Replica, { node: 'node-c', uuid: rc, share: 'nvmf' });
    const reps = resources(stack, 'mayastor_replica');
    const idOf = (uuid: string): string => Object.entries(reps).find(([, r]) => r.uuid === uuid)![0];
    const nx = Object.values(resources(stack, 'mayastor_nexus'))[0];
    expect(nx).toMatchObject({ node: 'node-a', uuid: vol.uuid, share: 'nvmf' });
    expect(nx.children).toEqual([`bdev:///${ra}`, `\${mayastor_replica.${idOf(rb)}.uri}`, `\${mayastor_replica.${idOf(rc)}.uri}`]);
  });

  test('defaults: 3 replicas, thick, nbd; UUIDs are stable across synths', () => {
    const mk = (): ReplicatedVolume => {
      const s = new TerraformStack(Testing.app(), 'test');
      return new ReplicatedVolume(s, 'vol', { nodes: three(s), sizeBytes: MiB });
    };
    const a = mk();
    const b = mk();
    expect(a.placement).toHaveLength(3);
    expect(a.thin).toBe(false);
    expect(a.protocol).toBe('nbd');
    expect(a.uuid).toBe(b.uuid);
    expect(a.placement.map((p) => p.replicaUuid)).toEqual(b.placement.map((p) => p.replicaUuid));
    expect(new Set([a.uuid, ...a.placement.map((p) => p.replicaUuid)]).size).toBe(4);
    expect(stableUuid('x')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test('distinct zones when nodes carry zones', () => {
    let vol!: ReplicatedVolume;
    stackWith((s) => {
      const nodes = ['n1', 'n2', 'n3', 'n4'].map((n, i) => node(s, n, { zone: ['z1', 'z1', 'z2', 'z3'][i] }));
      vol = new ReplicatedVolume(s, 'vol', { nodes, sizeBytes: MiB, replicas: 3 });
    });
    expect(vol.placement.map((p) => `${p.node}@${p.zone}`)).toEqual(['n1@z1', 'n3@z2', 'n4@z3']);
  });

  test('nexusNode runs the nexus and gets a replica first', () => {
    let vol!: ReplicatedVolume;
    const stack = stackWith((s) => {
      vol = new ReplicatedVolume(s, 'vol', { nodes: three(s), sizeBytes: MiB, replicas: 2, nexusNode: 'node-c' });
    });
    expect(vol.placement.map((p) => [p.node, p.local])).toEqual([
      ['node-c', true],
      ['node-a', false],
    ]);
    expect(Testing.synth(stack)).toHaveResourceWithProperties(Nexus, { node: 'node-c' });
    expect(Testing.synth(stack)).toHaveResourceWithProperties(Replica, { node: 'node-c', share: 'none' });
  });

  test('a nexus on a node without a replica reaches every replica over nbd', () => {
    let vol!: ReplicatedVolume;
    const stack = stackWith((s) => {
      vol = new ReplicatedVolume(s, 'vol', { nodes: three(s), sizeBytes: MiB, replicas: 2, nexusNode: 'node-a', pools: ['pool-node-b', 'node-c/pool-node-c'] });
    });
    expect(vol.placement.map((p) => [p.node, p.local])).toEqual([
      ['node-b', false],
      ['node-c', false],
    ]);
    const nx = Object.values(resources(stack, 'mayastor_nexus'))[0];
    expect(nx.node).toBe('node-a');
    expect((nx.children as string[]).every((c) => /^\$\{mayastor_replica\.[^.]+\.uri\}$/.test(c))).toBe(true);
    expect(Object.values(resources(stack, 'mayastor_replica')).map((r) => r.share)).toEqual(['nbd', 'nbd']);
  });

  test('chooses the largest declared pool, and skips pools too small for a thick volume', () => {
    let thick!: ReplicatedVolume;
    let thin!: ReplicatedVolume;
    stackWith((s) => {
      const a = new StorageNode(s, 'a', {
        name: 'node-a',
        agentUrl: 'http://127.0.0.1:9501',
        pools: [
          { name: 'small', disks: ['/d/s'], capacityBytes: 10 * MiB },
          { name: 'big', disks: ['/d/b'], capacityBytes: 100 * MiB },
          { name: 'mid', disks: ['/d/m'], capacityBytes: 50 * MiB },
        ],
      });
      const b = new StorageNode(s, 'b', {
        name: 'node-b',
        agentUrl: 'http://127.0.0.1:9502',
        pools: [{ name: 'tiny', disks: ['/d/t'], capacityBytes: 8 * MiB }],
      });
      thick = new ReplicatedVolume(s, 'thick', { nodes: [a, b], sizeBytes: 20 * MiB, replicas: 1, pools: ['small', 'mid', 'tiny'] });
      thin = new ReplicatedVolume(s, 'thin', { nodes: [b, a], sizeBytes: 20 * MiB, replicas: 2, thin: true });
    });
    expect(thick.placement.map((p) => `${p.node}/${p.pool}`)).toEqual(['node-a/mid']);
    expect(thin.placement.map((p) => `${p.node}/${p.pool}`)).toEqual(['node-b/tiny', 'node-a/big']);
  });

  test('the output name can be chosen', () => {
    const stack = stackWith((s) => {
      new ReplicatedVolume(s, 'vol', { nodes: three(s), sizeBytes: MiB, outputName: 'my_volume' });
    });
    expect(Object.keys(parsed(stack).output)).toEqual(['my_volume']);
  });

  const volBase = (s: TerraformStack, ownNodes: boolean): Omit<ReplicatedVolumeConfig, 'nodes'> & { nodes?: StorageNode[] } =>
    ownNodes ? { sizeBytes: 64 * MiB, replicas: 3 } : { nodes: three(s), sizeBytes: 64 * MiB, replicas: 3 };
  const bad: [string, (s: TerraformStack) => Record<string, unknown>, string, RegExp][] = [
    ['no nodes', () => ({ nodes: [] }), 'nodes', /give at least one StorageNode/],
    ['nodes not an array', () => ({ nodes: undefined }), 'nodes', /give at least one StorageNode/],
    ['a node that is not a StorageNode', () => ({ nodes: [{ name: 'node-a' }] }), 'nodes[0]', /is not a StorageNode/],
    [
      'a node given twice',
      (s) => {
        const n = three(s);
        return { nodes: [n[0], n[1], n[0]] };
      },
      'nodes[2]',
      /node "node-a" is given twice/,
    ],
    [
      'zones on some nodes only',
      (s) => ({ nodes: [node(s, 'z1', { zone: 'a' }), node(s, 'z2'), node(s, 'z3', { zone: 'b' })] }),
      'nodes',
      /node\(s\) z2 carry no zone while z1, z3 do/,
    ],
    ['sizeBytes missing', () => ({ sizeBytes: undefined }), 'sizeBytes', /undefined must be a positive whole number/],
    ['sizeBytes zero', () => ({ sizeBytes: 0 }), 'sizeBytes', /0 must be a positive whole number/],
    ['sizeBytes negative', () => ({ sizeBytes: -512 }), 'sizeBytes', /must be a positive whole number/],
    ['sizeBytes fractional', () => ({ sizeBytes: 1024.5 }), 'sizeBytes', /must be a positive whole number/],
    ['sizeBytes a string', () => ({ sizeBytes: '64MiB' }), 'sizeBytes', /"64MiB" must be a positive whole number/],
    ['sizeBytes not a multiple of 512', () => ({ sizeBytes: 1000 }), 'sizeBytes', /1000 is not a multiple of 512/],
    ['replicas zero', () => ({ replicas: 0 }), 'replicas', /0 must be a whole number of at least 1/],
    ['replicas fractional', () => ({ replicas: 1.5 }), 'replicas', /1.5 must be a whole number/],
    ['replicas beyond a nexus', () => ({ replicas: 9 }), 'replicas', /9 is more than a nexus can mirror \(at most 8 children\)/],
    ['thin not a boolean', () => ({ thin: 'yes' }), 'thin', /"yes" must be true or false/],
    ['protocol unsupported', () => ({ protocol: 'iscsi' }), 'protocol', /"iscsi" is not supported; use one of: nbd, nvmf/],
    ['uuid malformed', () => ({ uuid: 'vol-1' }), 'uuid', /"vol-1" is not a UUID/],
    ['outputName malformed', () => ({ outputName: '1 uri' }), 'outputName', /must start with a letter/],
    ['nexusNode unknown', () => ({ nexusNode: 'node-z' }), 'nexusNode', /"node-z" is not one of the volume's nodes \(node-a, node-b, node-c\)/],
    ['pools empty', () => ({ pools: [] }), 'pools', /give at least one pool/],
    ['pools entry malformed', () => ({ pools: ['a/b/c'] }), 'pools[0]', /"a\/b\/c" must be "POOL" or "NODE\/POOL"/],
    ['pools entry not a string', () => ({ pools: [7] }), 'pools[0]', /7 must be "POOL" or "NODE\/POOL"/],
    [
      'pools entry unknown',
      () => ({ pools: ['pool-node-a', 'node-b/pool-node-a'] }),
      'pools[1]',
      /no node among node-a, node-b, node-c has a pool "node-b\/pool-node-a"/,
    ],
    [
      'more replicas than nodes',
      () => ({ replicas: 4 }),
      'replicas',
      /cannot place 4 replica\(s\) on distinct nodes, but only 3 node\(s\) have an eligible pool \(node-a, node-b, node-c\)/,
    ],
    [
      'more replicas than zones',
      (s) => ({ nodes: ['a', 'b', 'c'].map((n, i) => node(s, n, { zone: ['z1', 'z1', 'z2'][i] })) }),
      'replicas',
      /cannot place 3 replica\(s\) on distinct zones, but only 2 zone\(s\) have a node with an eligible pool \(z1, z2\)/,
    ],
    [
      'more replicas than allowed pools',
      () => ({ pools: ['pool-node-a'] }),
      'replicas',
      /only 1 node\(s\) have an eligible pool \(node-a\); excluded: node-b has no pool allowed by pools; node-c has no pool allowed by pools/,
    ],
    [
      'pools too small for a thick volume',
      (s) => ({
        nodes: [node(s, 'x1'), new StorageNode(s, 'x2', { name: 'x2', agentUrl: 'http://h:1', pools: [{ name: 'small', disks: ['/s'], capacityBytes: MiB }] })],
        replicas: 2,
      }),
      'replicas',
      /excluded: x2\/small is too small for a thick replica \(capacityBytes 1048576 < 68157440: sizeBytes 67108864 \+ 1048576 for the nexus label\)/,
    ],
    [
      'a node without pools',
      (s) => ({ nodes: [node(s, 'x1'), new StorageNode(s, 'x2', { name: 'x2', agentUrl: 'http://h:1', pools: [] })], replicas: 2 }),
      'replicas',
      /excluded: x2 has no pools/,
    ],
  ];
  test.each(bad)('rejects %s, naming %s', (_what, patch, prop, re) => {
    const s = new TerraformStack(Testing.app(), 'test');
    let err: unknown;
    try {
      const p = patch(s);
      new ReplicatedVolume(s, 'vol', { ...volBase(s, 'nodes' in p), ...p } as unknown as ReplicatedVolumeConfig);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MayastorConstructError);
    const e = err as MayastorConstructError;
    expect(e.property).toBe(prop);
    expect(e.message).toContain(`ReplicatedVolume 'test/vol': ${prop}: `);
    expect(e.message).toMatch(re);
  });

  test('rejects a config that is not an object', () => {
    const s = new TerraformStack(Testing.app(), 'test');
    expect(() => new ReplicatedVolume(s, 'vol', null as unknown as ReplicatedVolumeConfig)).toThrow(/ReplicatedVolume 'test\/vol': config: /);
  });
});

describe('examples', () => {
  const cluster = {
    nodes: ['node-a', 'node-b', 'node-c'].map((name, i) => ({
      name,
      url: `http://127.0.0.1:${9501 + i}`,
      zone: `zone-${i}`,
      disks: { data: `/q/${name}/disks/disk0.img`, legacy: '/q/legacy.img', fresh: '/q/fresh.img' },
    })),
    stateFile: '/q/terraform.tfstate',
  };

  test('quickstart: three pools, a 3-way volume with a fixed UUID, state in the cluster dir', () => {
    const stack = new QuickstartStack(Testing.app(), 'quickstart', cluster);
    const out = Testing.synth(stack);
    for (const n of cluster.nodes) expect(out).toHaveResourceWithProperties(Pool, { node: n.name, name: `pool-${n.name}`, disks: [n.disks.data] });
    expect(out).toHaveResourceWithProperties(Nexus, { node: 'node-a', uuid: VOLUME_UUID, share: 'nbd', size_bytes: 64 * MiB });
    expect(Object.keys(resources(stack, 'mayastor_replica'))).toHaveLength(3);
    const tf = parsed(stack);
    expect(tf.terraform.backend).toEqual({ local: { path: '/q/terraform.tfstate' } });
    expect(Object.keys(tf.output)).toEqual(['device_uri']);
    // the token stays out of the synthesized configuration (MAYASTOR_TOKEN)
    expect(out).toHaveProvider(MayastorProvider);
    expect(tf.provider.mayastor).toEqual([
      { nodes: { 'node-a': 'http://127.0.0.1:9501', 'node-b': 'http://127.0.0.1:9502', 'node-c': 'http://127.0.0.1:9503' } },
    ]);
    expect(JSON.stringify(tf.provider)).not.toMatch(/token/);
  });

  test.each([
    ['legacy', [LEGACY_REPLICA_UUID]],
    ['both', [LEGACY_REPLICA_UUID, FRESH_REPLICA_UUID]],
    ['fresh', [FRESH_REPLICA_UUID]],
  ])('migration phase %s: nexus children and replicas', (phase, uuids) => {
    const stack = new MigrationStack(Testing.app(), 'migration', cluster, parsePhase(phase));
    const reps = resources(stack, 'mayastor_replica');
    expect(
      Object.values(reps)
        .map((r) => r.uuid)
        .sort(),
    ).toEqual([...uuids].sort());
    const nx = Object.values(resources(stack, 'mayastor_nexus'))[0];
    expect(nx.children).toEqual(uuids.map((u) => `\${mayastor_replica.${Object.entries(reps).find(([, r]) => r.uuid === u)![0]}.uri}`));
    // both pools exist in every phase: the legacy one ends up empty, not deleted
    expect(
      Object.values(resources(stack, 'mayastor_pool'))
        .map((p) => p.name)
        .sort(),
    ).toEqual(['fresh', 'legacy']);
  });

  test('migration: the nexus keeps its identity across phases (updated in place, not replaced)', () => {
    const ids = (['legacy', 'both', 'fresh'] as const).map((p) => {
      const stack = new MigrationStack(Testing.app(), 'migration', cluster, p);
      const [[id, nx]] = Object.entries(resources(stack, 'mayastor_nexus'));
      return JSON.stringify([id, nx.node, nx.uuid, nx.size_bytes, nx.share]);
    });
    expect(new Set(ids).size).toBe(1);
  });

  test('migration: a bad phase is named', () => {
    expect(() => parsePhase('done')).toThrow(/MIGRATION_PHASE: "done" is not one of legacy, both, fresh/);
    expect(parsePhase(undefined)).toBe('legacy');
  });

  test('cluster files: errors name the file and the field', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-'));
    try {
      const f = path.join(dir, 'c.json');
      expect(() => loadCluster(f)).toThrow(/cluster file .*c\.json: .*npm run quickstart/);
      fs.writeFileSync(f, '{');
      expect(() => loadCluster(f)).toThrow(/not JSON/);
      fs.writeFileSync(f, JSON.stringify({ nodes: [] }));
      expect(() => loadCluster(f)).toThrow(/"nodes" must be a non-empty array/);
      fs.writeFileSync(f, JSON.stringify({ nodes: [{ name: 'a' }] }));
      expect(() => loadCluster(f)).toThrow(/nodes\[0\] needs "name" and "url"/);
      fs.writeFileSync(f, JSON.stringify({ nodes: [{ name: 'a', url: 'http://h:1' }] }));
      expect(() => loadCluster(f)).toThrow(/nodes\[0\]\.disks must be an object/);
      fs.writeFileSync(f, JSON.stringify({ nodes: [{ name: 'a', url: 'http://h:1', disks: {} }], stateFile: 'rel.tfstate' }));
      expect(() => loadCluster(f)).toThrow(/"stateFile" must be an absolute path/);
      fs.writeFileSync(f, JSON.stringify(cluster));
      expect(loadCluster(f).nodes).toHaveLength(3);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the example apps and their cdktf.json files type-check and point at run-ts.js', () => {
    for (const ex of ['quickstart', 'migration']) {
      const cfg = JSON.parse(fs.readFileSync(path.join(__dirname, '../../examples', ex, 'cdktf.json'), 'utf8')) as { app: string; language: string };
      expect(cfg.language).toBe('typescript');
      expect(cfg.app).toBe('node ../run-ts.js main.ts');
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ts = require('typescript') as typeof import('typescript');
    const cfgPath = path.join(__dirname, '../../examples/tsconfig.json');
    const cfg = ts.getParsedCommandLineOfConfigFile(cfgPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined })!;
    const program = ts.createProgram(cfg.fileNames, cfg.options);
    const diags = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diags).toEqual([]);
  });
});

// keep App imported for readers who copy these tests as a starting point
void App;
