/** Plan/apply semantics of the resources through the real ProviderService, with a fake agent client. */
import { ProviderService } from '../../provider/protocol/framework';
import { makeProvider } from '../../provider/provider';
import { Mayastor } from '../../provider/resources/agent-clients';
import { CtyType, ObjectValue, UNKNOWN, Value, decodeMsgpack, encodeMsgpack } from '../../provider/protocol/cty';
import { objectType } from '../../provider/protocol/schema';

class FakeAgentError extends Error {
  name = 'AgentError';
  constructor(
    public status: number,
    public code: string,
    public node: string,
    public agentMessage: string,
  ) {
    super(`agent ${node}: ${agentMessage}`);
  }
}

function fakeClient(node: string) {
  const replicas = new Map<string, any>();
  const pools = new Map<string, any>();
  let down = false;
  const guard = () => {
    if (down) throw new FakeAgentError(0, 'unreachable', node, 'cannot reach http://127.0.0.1:1/v1 (GET): ECONNREFUSED');
  };
  return {
    replicas,
    pools,
    setDown: (d: boolean) => {
      down = d;
    },
    async getReplica(u: string) {
      guard();
      return replicas.get(u);
    },
    async putReplica(u: string, s: any) {
      guard();
      if (!pools.has(s.pool)) throw new FakeAgentError(404, 'not_found', node, `pool '${s.pool}' not found`);
      const r = {
        uuid: u,
        pool: s.pool,
        sizeBytes: s.sizeBytes,
        thin: !!s.thin,
        share: s.share ?? 'none',
        allowedHosts: s.allowedHosts ?? [],
        uri: `bdev:///${u}`,
        allocatedBytes: s.thin ? 0 : s.sizeBytes,
      };
      replicas.set(u, r);
      return r;
    },
    async patchReplica(u: string, p: any) {
      guard();
      const r = { ...replicas.get(u), ...p };
      replicas.set(u, r);
      return r;
    },
    async deleteReplica(u: string) {
      guard();
      return replicas.delete(u);
    },
    async listReplicas() {
      guard();
      return [...replicas.values()];
    },
    async listPools() {
      guard();
      return [...pools.values()];
    },
    async getPool(n: string) {
      guard();
      return pools.get(n);
    },
    async putPool(n: string, s: any) {
      guard();
      const p = { name: n, uuid: 'u-' + n, disks: s.disks, state: 'online', capacityBytes: 1 << 30, usedBytes: 0 };
      pools.set(n, p);
      return p;
    },
    // AgentClient.create: 201 (created) for a new key, 200 (created: false) when it already existed
    async create(kind: string, key: string, spec: any) {
      const had = (kind === 'pools' ? pools : replicas).has(key);
      const object = kind === 'pools' ? await this.putPool(key, spec) : await this.putReplica(key, spec);
      return { object, created: !had };
    },
    async deletePool(n: string) {
      guard();
      if ([...replicas.values()].some((r) => r.pool === n)) throw new FakeAgentError(409, 'conflict', node, `pool '${n}' still has 1 replica`);
      return pools.delete(n);
    },
  };
}

function setup() {
  const def = makeProvider();
  const clients: Record<string, ReturnType<typeof fakeClient>> = { a: fakeClient('a'), b: fakeClient('b') };
  const configure = def.configure.bind(def);
  def.configure = (cfg, v, diags) => {
    const m = configure(cfg, v, diags) as Mayastor;
    const orig = m.client.bind(m);
    m.client = (node, d, path) => (orig(node, d, path) ? (clients[node] as any) : undefined);
    const origReader = m.reader.bind(m);
    m.reader = (node, d, path) => (origReader(node, d, path) ? (clients[node] as any) : undefined);
    return m;
  };
  const svc = new ProviderService(def);
  return { svc, clients };
}

const providerType = objectType(makeProvider().schema);
const replicaType = objectType(makeProvider().resources.find((r) => r.typeName === 'mayastor_replica')!.schema) as CtyType;
const dv = (t: CtyType, v: Value) => ({ msgpack: encodeMsgpack(t, v) });
const out = (t: CtyType, d: any) => decodeMsgpack(t, d?.msgpack) as ObjectValue | null;

async function configured() {
  const s = setup();
  const res = await s.svc.configureProvider({ config: dv(providerType, { nodes: { a: 'http://127.0.0.1:1', b: 'http://127.0.0.1:2' }, token: 't' }) });
  expect(res.diagnostics).toEqual([]);
  s.clients.a.pools.set('p', { name: 'p', uuid: 'x', disks: ['/d'], state: 'online', capacityBytes: 1 << 30, usedBytes: 0 });
  return s;
}

const U = '0f8e3c2a-6a49-4b7e-9d4c-1f0e2a3b4c5d';
const cfg = (o: ObjectValue = {}): ObjectValue => ({
  id: null,
  node: 'a',
  pool: 'p',
  uuid: U,
  size_bytes: 1 << 20,
  thin: null,
  share: null,
  allowed_hosts: null,
  uri: null,
  allocated_bytes: null,
  ...o,
});

async function plan(svc: ProviderService<Mayastor>, prior: ObjectValue | null, config: ObjectValue) {
  // proposed new state: config, with computed attributes left null in config taking the prior value
  const proposed: ObjectValue = { ...config };
  if (prior) for (const k of ['id', 'uuid', 'thin', 'share', 'allowed_hosts', 'uri', 'allocated_bytes']) if (config[k] === null) proposed[k] = prior[k];
  const res: any = await svc.planResourceChange({
    type_name: 'mayastor_replica',
    prior_state: dv(replicaType, prior),
    proposed_new_state: dv(replicaType, proposed),
    config: dv(replicaType, config),
  });
  return {
    planned: out(replicaType, res.planned_state),
    replace: (res.requires_replace ?? []).map((p: any) => p.steps[0].attribute_name),
    diags: res.diagnostics,
  };
}

async function apply(svc: ProviderService<Mayastor>, prior: ObjectValue | null, planned: ObjectValue | null) {
  const res: any = await svc.applyResourceChange({
    type_name: 'mayastor_replica',
    prior_state: dv(replicaType, prior),
    planned_state: dv(replicaType, planned),
    config: dv(replicaType, planned),
  });
  return { state: out(replicaType, res.new_state), diags: res.diagnostics };
}

test('create plans defaults and unknown computed values, apply fills them', async () => {
  const { svc } = await configured();
  const p = await plan(svc, null, cfg());
  expect(p.diags).toEqual([]);
  expect(p.planned).toMatchObject({ id: `a/${U}`, thin: false, share: 'none', allowed_hosts: [], uri: UNKNOWN, allocated_bytes: UNKNOWN });
  const a = await apply(svc, null, p.planned);
  expect(a.diags).toEqual([]);
  expect(a.state).toMatchObject({ uri: `bdev:///${U}`, allocated_bytes: 1 << 20, size_bytes: 1 << 20 });
});

test('no change plans exactly the prior state', async () => {
  const { svc } = await configured();
  const a = await apply(svc, null, (await plan(svc, null, cfg())).planned);
  const p = await plan(svc, a.state, cfg());
  expect(p.planned).toEqual(a.state);
  expect(p.replace).toEqual([]);
});

test('growth is in place and keeps the uri; shrink is rejected on size_bytes', async () => {
  const { svc, clients } = await configured();
  const a = await apply(svc, null, (await plan(svc, null, cfg())).planned);
  const grow = await plan(svc, a.state, cfg({ size_bytes: 2 << 20 }));
  expect(grow.replace).toEqual([]);
  expect(grow.planned).toMatchObject({ uri: `bdev:///${U}`, allocated_bytes: UNKNOWN });
  const g = await apply(svc, a.state, grow.planned);
  expect(g.diags).toEqual([]);
  expect(clients.a.replicas.get(U).sizeBytes).toBe(2 << 20);
  const shrink = await plan(svc, g.state, cfg({ size_bytes: 1 << 20 }));
  expect(shrink.diags).toHaveLength(1);
  expect(shrink.diags[0]).toMatchObject({ severity: 1, summary: 'Replica cannot shrink', attribute: { steps: [{ attribute_name: 'size_bytes' }] } });
});

test('a uuid left out is generated at create, kept by every later plan, and replaces only when set to another value', async () => {
  const { svc, clients } = await configured();
  const p = await plan(svc, null, cfg({ uuid: null }));
  expect(p.diags).toEqual([]);
  expect(p.planned).toMatchObject({ uuid: UNKNOWN, id: UNKNOWN });
  const a = await apply(svc, null, p.planned);
  expect(a.diags).toEqual([]);
  const uuid = a.state!.uuid as string;
  expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(a.state).toMatchObject({ id: `a/${uuid}`, uri: `bdev:///${uuid}` });
  expect(clients.a.replicas.has(uuid)).toBe(true);
  // nothing configured changed: the plan is the state
  const same = await plan(svc, a.state, cfg({ uuid: null }));
  expect(same.planned).toEqual(a.state);
  // an in-place change keeps the uuid and the id known (UseStateForUnknown)
  const grow = await plan(svc, a.state, cfg({ uuid: null, size_bytes: 2 << 20 }));
  expect(grow.replace).toEqual([]);
  expect(grow.planned).toMatchObject({ uuid, id: `a/${uuid}` });
  // writing the state's uuid into the configuration changes nothing; another uuid replaces
  expect((await plan(svc, a.state, cfg({ uuid }))).planned).toEqual(a.state);
  expect((await plan(svc, a.state, cfg({ uuid: U }))).replace).toEqual(['uuid']);
  // a replace for another reason generates a new one
  const moved = await plan(svc, a.state, cfg({ uuid: null, pool: 'q' }));
  expect(moved.replace).toEqual(['pool']);
  expect(moved.planned!.uuid).toBe(UNKNOWN);
});

test('plan hygiene: an in-place change keeps every computed value that apply will not change', async () => {
  const { svc } = await configured();
  const a = await apply(svc, null, (await plan(svc, null, cfg())).planned);
  // thick: allocation is the whole size, steady through a share or allowed_hosts change
  const hosts = await plan(svc, a.state, cfg({ allowed_hosts: ['10.0.0.1'] }));
  expect(hosts.planned).toEqual({ ...a.state, allowed_hosts: ['10.0.0.1'] });
  const h = await apply(svc, a.state, hosts.planned);
  expect(h.diags).toEqual([]);
  expect(h.state).toEqual(hosts.planned);
  // a thin replica's allocation moves with writes: known after apply
  const thin = await configured();
  const t = await apply(thin.svc, null, (await plan(thin.svc, null, cfg({ thin: true }))).planned);
  expect((await plan(thin.svc, t.state, cfg({ thin: true }))).planned).toEqual(t.state);
  const th = await plan(thin.svc, t.state, cfg({ thin: true, allowed_hosts: ['10.0.0.1'] }));
  expect(th.planned).toMatchObject({ uri: t.state!.uri, id: t.state!.id, allocated_bytes: UNKNOWN });
});

test('pool, thin and node changes require replacement; share is in place but re-plans the uri', async () => {
  const { svc } = await configured();
  const a = await apply(svc, null, (await plan(svc, null, cfg())).planned);
  expect((await plan(svc, a.state, cfg({ pool: 'q' }))).replace).toEqual(['pool']);
  expect((await plan(svc, a.state, cfg({ thin: true }))).replace).toEqual(['thin']);
  expect((await plan(svc, a.state, cfg({ node: 'b' }))).replace).toEqual(['node']);
  const sh = await plan(svc, a.state, cfg({ share: 'nbd' }));
  expect(sh.replace).toEqual([]);
  expect(sh.planned!.uri).toBe(UNKNOWN);
});

test('an unknown node is diagnosed at plan naming it', async () => {
  const { svc } = await configured();
  const p = await plan(svc, null, cfg({ node: 'zz' }));
  expect(p.diags[0].summary).toBe('Unknown node "zz"');
  expect(p.diags[0].detail).toContain('known nodes: a, b');
  expect(p.diags[0].attribute.steps).toEqual([{ attribute_name: 'node' }]);
});

test('validation: size not a multiple of 512, bad share, bad uuid', async () => {
  const { svc } = setup();
  const v: any = svc.validateResourceConfig({ type_name: 'mayastor_replica', config: dv(replicaType, cfg({ size_bytes: 1000, share: 'smb', uuid: 'nope' })) });
  const byAttr = Object.fromEntries(v.diagnostics.map((d: any) => [d.attribute.steps[0].attribute_name, d.detail]));
  expect(byAttr.size_bytes).toMatch(/multiple of 512/);
  expect(byAttr.share).toMatch(/must be one of: none, nbd/);
  expect(byAttr.uuid).toMatch(/is not a uuid/);
  // unknown values are not judged
  const u: any = svc.validateResourceConfig({ type_name: 'mayastor_replica', config: dv(replicaType, cfg({ size_bytes: UNKNOWN, share: UNKNOWN })) });
  expect(u.diagnostics).toEqual([]);
});

test('drift: a replica deleted out of band reads as gone', async () => {
  const { svc, clients } = await configured();
  const a = await apply(svc, null, (await plan(svc, null, cfg())).planned);
  clients.a.replicas.delete(U);
  const r: any = await svc.readResource({ type_name: 'mayastor_replica', current_state: dv(replicaType, a.state) });
  expect(r.diagnostics).toEqual([]);
  expect(out(replicaType, r.new_state)).toBeNull();
});

test('an agent that is down: diagnostic names the node, state is returned unchanged', async () => {
  const { svc, clients } = await configured();
  const a = await apply(svc, null, (await plan(svc, null, cfg())).planned);
  clients.a.setDown(true);
  const r: any = await svc.readResource({ type_name: 'mayastor_replica', current_state: dv(replicaType, a.state) });
  expect(r.diagnostics[0].summary).toBe('Agent on node "a" is unreachable');
  expect(r.diagnostics[0].attribute.steps).toEqual([{ attribute_name: 'node' }]);
  expect(out(replicaType, r.new_state)).toEqual(a.state);
  const u = await apply(svc, a.state, { ...a.state!, size_bytes: 4 << 20, allocated_bytes: UNKNOWN });
  expect(u.state).toEqual(a.state);
});

test('agent errors name the attribute and node', async () => {
  const { svc } = await configured();
  const a = await apply(svc, null, (await plan(svc, null, cfg({ pool: 'missing' }))).planned);
  expect(a.state).toBeNull();
  expect(a.diags[0]).toMatchObject({ summary: `Create replica ${U} failed on node "a"`, attribute: { steps: [{ attribute_name: 'pool' }] } });
});

test('import by NODE/UUID, and bad ids', async () => {
  const { svc } = await configured();
  await apply(svc, null, (await plan(svc, null, cfg())).planned);
  const ok: any = await svc.importResourceState({ type_name: 'mayastor_replica', id: `a/${U}` });
  expect(ok.diagnostics).toEqual([]);
  expect(out(replicaType, ok.imported_resources[0].state)).toMatchObject({ node: 'a', uuid: U, pool: 'p' });
  const bad: any = await svc.importResourceState({ type_name: 'mayastor_replica', id: U });
  expect(bad.diagnostics[0].detail).toMatch(/NODE\/UUID/);
  const missing: any = await svc.importResourceState({ type_name: 'mayastor_replica', id: 'a/00000000-0000-0000-0000-000000000000' });
  expect(missing.diagnostics[0].summary).toBe('Cannot import non-existent remote object');
});

test('destroying a pool that holds replicas fails with a clear diagnostic', async () => {
  const { svc } = await configured();
  await apply(svc, null, (await plan(svc, null, cfg())).planned);
  const poolType = objectType(makeProvider().resources[0].schema);
  const prior = { id: 'a/p', node: 'a', name: 'p', disks: ['/d'], uuid: 'x', state: 'online', capacity_bytes: 1, used_bytes: 0 };
  const res: any = await svc.applyResourceChange({ type_name: 'mayastor_pool', prior_state: dv(poolType, prior), planned_state: dv(poolType, null) });
  expect(res.diagnostics[0].summary).toBe('Pool "p" on node "a" still holds replicas');
  expect(decodeMsgpack(poolType, res.new_state.msgpack)).toEqual(prior);
});

test('upgrade state: JSON with removed attributes, missing ones become null', () => {
  const { svc } = setup();
  const json = Buffer.from(JSON.stringify({ node: 'a', pool: 'p', uuid: U, size_bytes: 1048576, old_attr: 1 }));
  const res: any = svc.upgradeResourceState({ type_name: 'mayastor_replica', version: 0, raw_state: { json } });
  expect(res.diagnostics).toEqual([]);
  expect(out(replicaType, res.upgraded_state)).toMatchObject({ node: 'a', size_bytes: 1048576, uri: null });
  const future: any = svc.upgradeResourceState({ type_name: 'mayastor_replica', version: 9, raw_state: { json } });
  expect(future.diagnostics[0].summary).toBe('Unsupported state version');
});

test('provider config: node URLs are checked, map key named', () => {
  const { svc } = setup();
  const v: any = svc.validateProviderConfig({ config: dv(providerType, { nodes: { a: 'ftp://x', b: 'http://ok:1' } }) });
  expect(v.diagnostics).toHaveLength(1);
  expect(v.diagnostics[0].attribute.steps).toEqual([{ attribute_name: 'nodes' }, { element_key_string: 'a' }]);
});
