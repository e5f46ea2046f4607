/** Refresh batching: the reads of one burst share one listing per node; writes and failures are never cached. */
import { Mayastor } from '../../provider/resources/agent-clients';
import { replicaResource } from '../../provider/resources/replica';
import { poolResource } from '../../provider/resources/pool';
import { Diagnostics } from '../../provider/protocol/schema';
import { ObjectValue } from '../../provider/protocol/cty';

const U = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

function setup() {
  const m = new Mayastor({ nodes: { a: 'http://127.0.0.1:1', b: 'http://127.0.0.1:2' }, token: 't', timeoutMs: 1000, retries: 0, rebuildTimeoutMs: 1000 });
  const calls = { a: 0, b: 0 } as Record<string, number>;
  const stores: Record<string, Map<string, any>> = { a: new Map(), b: new Map() };
  let down = false;
  const fake = (node: string) => ({
    async listReplicas() {
      calls[node]++;
      await new Promise((r) => setTimeout(r, 5));
      if (down)
        throw Object.assign(new Error(`agent ${node}: cannot reach`), { name: 'AgentError', status: 0, code: 'unreachable', agentMessage: 'cannot reach' });
      return [...stores[node].values()];
    },
    async listPools() {
      calls[node]++;
      return [{ name: 'p', uuid: 'x', disks: ['/d'], state: 'online', capacityBytes: 1, usedBytes: 0 }];
    },
    async patchReplica(u: string, p: any) {
      const r = { ...stores[node].get(u), ...p };
      stores[node].set(u, r);
      return r;
    },
  });
  const clients: Record<string, any> = { a: fake('a'), b: fake('b') };
  const origReader = m.reader.bind(m);
  m.reader = (node, d, path) => (origReader(node, d, path) ? clients[node] : undefined);
  for (let i = 0; i < 20; i++) {
    const node = i % 2 ? 'b' : 'a';
    stores[node].set(U(i), {
      uuid: U(i),
      pool: 'p',
      sizeBytes: 1 << 20,
      thin: true,
      share: 'none',
      allowedHosts: [],
      uri: `bdev:///${U(i)}`,
      allocatedBytes: 0,
    });
  }
  const state = (i: number): ObjectValue => ({
    id: null,
    node: i % 2 ? 'b' : 'a',
    pool: 'p',
    uuid: U(i),
    size_bytes: 1 << 20,
    thin: true,
    share: 'none',
    allowed_hosts: [],
    uri: null,
    allocated_bytes: null,
  });
  return {
    m,
    calls,
    stores,
    state,
    setDown: (d: boolean) => {
      down = d;
    },
  };
}

test('concurrent and following reads share one GET /v1/replicas per node', async () => {
  const { m, calls, state } = setup();
  const diags = new Diagnostics();
  const got = await Promise.all(Array.from({ length: 20 }, (_, i) => replicaResource.read(m, state(i), diags)));
  expect(diags.hasErrors()).toBe(false);
  expect(got.every((g, i) => g && g.uuid === U(i) && g.node === (i % 2 ? 'b' : 'a'))).toBe(true);
  await replicaResource.read(m, state(0), diags);
  expect(calls).toEqual({ a: 1, b: 1 });
});

test('a replica missing from the listing is gone', async () => {
  const { m, stores, state } = setup();
  stores.a.delete(U(2));
  const diags = new Diagnostics();
  expect(await replicaResource.read(m, state(2), diags)).toBeNull();
  expect(await replicaResource.read(m, state(4), diags)).not.toBeNull();
  expect(diags.hasErrors()).toBe(false);
});

test('anything that may change a node drops its cached listing', async () => {
  const { m, calls, stores, state } = setup();
  const diags = new Diagnostics();
  await replicaResource.read(m, state(0), diags);
  m.client('a', diags); // every write path asks for the client first
  stores.a.delete(U(0));
  expect(await replicaResource.read(m, state(0), diags)).toBeNull();
  expect(calls.a).toBe(2);
  // node b's listing is untouched
  await replicaResource.read(m, state(1), diags);
  await replicaResource.read(m, state(3), diags);
  expect(calls.b).toBe(1);
});

test('a failed listing gives each read a diagnostic naming the node, keeps state, and is not cached', async () => {
  const { m, calls, state, setDown } = setup();
  setDown(true);
  const results = await Promise.all(
    [0, 2, 4].map(async (i) => {
      const d = new Diagnostics();
      const r = await replicaResource.read(m, state(i), d);
      return { r, d: d.toProto() as any[] };
    }),
  );
  for (const [k, { r, d }] of results.entries()) {
    expect(r).toEqual(state([0, 2, 4][k]));
    expect(d[0].summary).toMatch(/node "a" is unreachable/);
  }
  expect(calls.a).toBe(1);
  setDown(false);
  const d = new Diagnostics();
  expect((await replicaResource.read(m, state(0), d))?.uuid).toBe(U(0));
  expect(d.hasErrors()).toBe(false);
  expect(calls.a).toBe(2);
});

test('pools read from the pool listing; an unknown node is a diagnostic', async () => {
  const { m, state } = setup();
  const diags = new Diagnostics();
  const p = await poolResource.read(
    m,
    { id: null, node: 'a', name: 'p', disks: ['/d'], uuid: null, state: null, capacity_bytes: null, used_bytes: null },
    diags,
  );
  expect(p?.uuid).toBe('x');
  expect(
    await poolResource.read(m, { id: null, node: 'a', name: 'gone', disks: ['/d'], uuid: null, state: null, capacity_bytes: null, used_bytes: null }, diags),
  ).toBeNull();
  const s = { ...state(0), node: 'zz' };
  expect(await replicaResource.read(m, s, diags)).toEqual(s);
  expect((diags.toProto() as any[])[0].summary).toMatch(/Unknown node "zz"/);
});

test('an answer that is not a list is an error for each read and is not cached', async () => {
  const { m, state } = setup();
  let calls = 0;
  const bad = {
    async listReplicas() {
      calls++;
      return calls === 1 ? ({ not: 'a list' } as any) : [];
    },
  };
  m.reader = () => bad as any;
  await expect(replicaResource.read(m, state(0), new Diagnostics())).rejects.toThrow(/non-list/);
  expect(await replicaResource.read(m, state(0), new Diagnostics())).toBeNull();
  expect(calls).toBe(2);
});

test('StopProvider: a refresh waiting on an agent ends with a "Provider stopped" diagnostic, not a hang', async () => {
  const http = await import('node:http');
  const server = http.createServer(() => undefined); // accepts, never answers
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
  const m = new Mayastor({ nodes: { a: url }, token: 't', timeoutMs: 60_000, retries: 3, rebuildTimeoutMs: 1000 });
  const diags = new Diagnostics();
  const state: ObjectValue = {
    id: null,
    node: 'a',
    pool: 'p',
    uuid: U(1),
    size_bytes: 1 << 20,
    thin: true,
    share: 'none',
    allowed_hosts: [],
    uri: null,
    allocated_bytes: null,
  };
  const read = replicaResource.read(m, state, diags);
  await new Promise((r) => setTimeout(r, 50));
  m.stop();
  await read;
  expect(diags.items.map((d) => d.summary)).toEqual(['Provider stopped']);
  server.closeAllConnections();
  server.close();
});
