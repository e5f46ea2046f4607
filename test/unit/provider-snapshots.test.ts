/**
 * Plan/apply semantics of mayastor_snapshot, mayastor_volume_snapshot and mayastor_replica.source_snapshot through the
 * real ProviderService, with a fake agent client that answers like the agent's snapshot API (201/200 creates, 404,
 * 409 naming the clones, 422 naming a faulted child).
 */
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

const MiB = 1 << 20;
const R = '11111111-1313-4000-8000-000000000001';
const S = '22222222-1313-4000-8000-000000000002';
const C = '33333333-1313-4000-8000-000000000003';
const N = '44444444-1313-4000-8000-000000000004';
const G = '55555555-1313-4000-8000-000000000005';

/** The export fields of a snapshot shared as `share`. */
const exported = (uuid: string, share: string, allowedHosts: string[]) => ({
  share,
  allowedHosts,
  uri: share === 'nbd' ? `nbd://127.0.0.1:10809/${uuid}` : `bdev:///${uuid}`,
});

interface FakeSnap {
  uuid: string;
  sourceReplica: string;
  pool: string;
  sizeBytes: number;
  referencedBytes: number;
  createdAt: string;
  children: string[];
  share: string;
  allowedHosts: string[];
  uri: string;
}

/** One node's agent: replicas, snapshots and nexus snapshots, with the agent's answers. */
function fakeAgent(node: string) {
  const replicas = new Map<string, any>();
  const snaps = new Map<string, FakeSnap>();
  const nexusSnaps = new Map<string, any>();
  const nexuses = new Map<string, { uuid: string; children: { uri: string; state: string }[] }>();
  const calls: string[] = [];
  let hang = false;
  const err = (status: number, msg: string) => new FakeAgentError(status, status === 404 ? 'not_found' : 'conflict', node, msg);
  return {
    replicas,
    snaps,
    nexuses,
    nexusSnaps,
    calls,
    setHang: (h: boolean) => (hang = h),
    async getReplica(u: string) {
      return replicas.get(u);
    },
    async listReplicas() {
      return [...replicas.values()];
    },
    async create(kind: string, key: string, spec: any) {
      calls.push(`create ${kind} ${key} ${JSON.stringify(spec)}`);
      const had = replicas.has(key);
      if (spec.source) {
        const s = snaps.get(spec.source.snapshot);
        // the agent's wording: the field first
        const refuse = (msg: string) => new FakeAgentError(422, 'unprocessable', node, msg);
        if (!s) throw refuse(`source.snapshot: snapshot '${spec.source.snapshot}' does not exist on this node`);
        if (spec.pool !== s.pool) throw refuse(`pool: a clone lives in its snapshot's pool '${s.pool}', not '${spec.pool}'`);
        if (spec.sizeBytes !== s.sizeBytes) throw refuse(`sizeBytes: a clone has its snapshot's size ${s.sizeBytes}, not ${spec.sizeBytes}`);
        s.children.push(key);
      }
      const r = {
        uuid: key,
        pool: spec.pool,
        sizeBytes: spec.sizeBytes,
        thin: !!spec.thin,
        share: spec.share ?? 'none',
        allowedHosts: spec.allowedHosts ?? [],
        uri: `bdev:///${key}`,
        allocatedBytes: 0,
        parent: spec.source?.snapshot ?? null,
      };
      replicas.set(key, r);
      return { object: r, created: !had };
    },
    async deleteReplica(u: string) {
      for (const s of snaps.values()) s.children = s.children.filter((c) => c !== u);
      return replicas.delete(u);
    },
    async putSnapshot(replica: string, uuid: string, spec: { share?: string; allowedHosts?: string[] } = {}) {
      calls.push(`putSnapshot ${replica} ${uuid} ${JSON.stringify(spec)}`);
      const r = replicas.get(replica);
      if (!r) throw err(404, `replica '${replica}' not found`);
      const had = snaps.get(uuid);
      if (had) return had;
      const s = {
        uuid,
        sourceReplica: replica,
        pool: r.pool,
        sizeBytes: r.sizeBytes,
        referencedBytes: MiB,
        createdAt: '2026-12-05T19:00:00Z',
        children: [replica],
        ...exported(uuid, spec.share ?? 'none', spec.allowedHosts ?? []),
      };
      snaps.set(uuid, s);
      r.parent = uuid;
      return s;
    },
    async findSnapshot(uuid: string) {
      return snaps.get(uuid);
    },
    async patchSnapshot(uuid: string, spec: { share: string; allowedHosts: string[] }) {
      calls.push(`patchSnapshot ${uuid} ${JSON.stringify(spec)}`);
      const s = snaps.get(uuid);
      if (!s) throw err(404, `snapshot '${uuid}' does not exist`);
      Object.assign(s, exported(uuid, spec.share, spec.allowedHosts));
      return s;
    },
    async listSnapshots() {
      return [...snaps.values()];
    },
    async deleteSnapshotByUuid(uuid: string) {
      const s = snaps.get(uuid);
      // as the agent: by uuid, also once its replica is gone
      if (!s) return false;
      if (s.children.length > 1) throw err(409, `snapshot '${uuid}' has clones: ${s.children.filter((c) => c !== s.sourceReplica).join(', ')}`);
      snaps.delete(uuid);
      return true;
    },
    async listNexuses() {
      return [...nexuses.values()];
    },
    async putNexusSnapshot(nexus: string, uuid: string, opts: { deadlineMs?: number }) {
      calls.push(`putNexusSnapshot ${nexus} ${uuid} ${JSON.stringify(opts)}`);
      if (opts.deadlineMs !== undefined && opts.deadlineMs > 600000)
        throw new FakeAgentError(400, 'bad_request', node, "deadlineMs must be an integer from 1 to 600000 (milliseconds the volume's I/O may be held)");
      if (opts.deadlineMs !== undefined && opts.deadlineMs > 25000)
        throw new FakeAgentError(422, 'unprocessable', node, `deadlineMs ${opts.deadlineMs} exceeds what this agent waits for a data-path call (25000 ms)`);
      if (hang) return new Promise<never>(() => undefined);
      const n = nexuses.get(nexus);
      if (!n) throw err(404, `nexus '${nexus}' not found`);
      const bad = n.children.find((c) => c.state !== 'online');
      if (bad) throw new FakeAgentError(422, 'unprocessable', node, `child ${bad.uri} is ${bad.state}: cannot snapshot nexus '${nexus}'`);
      const had = nexusSnaps.get(uuid);
      if (had) return had;
      const s = {
        uuid,
        nexus,
        createdAt: '2026-12-05T19:00:01Z',
        replicas: n.children.map((c, i) => ({
          child: c.uri,
          replica: c.uri.replace(/^.*[/:]/, ''),
          snapshot: `${uuid.slice(0, 34)}${String(i).padStart(2, '0')}`,
          // a remote child's part names its agent's address, as the agent does
          ...(c.uri.startsWith('nvmf://') ? { node: '10.0.0.2:4420' } : {}),
        })),
      };
      nexusSnaps.set(uuid, s);
      return s;
    },
    async getNexusSnapshot(nexus: string, uuid: string) {
      const s = nexusSnaps.get(uuid);
      return s && s.nexus === nexus ? s : undefined;
    },
    async deleteNexusSnapshot(_nexus: string, uuid: string) {
      calls.push(`deleteNexusSnapshot ${uuid}`);
      if (hang) return new Promise<never>(() => undefined);
      return nexusSnaps.delete(uuid);
    },
  };
}

function setup() {
  const def = makeProvider();
  const agents: Record<string, ReturnType<typeof fakeAgent>> = { a: fakeAgent('a') };
  const configure = def.configure.bind(def);
  def.configure = (cfg, v, diags) => {
    const m = configure(cfg, v, diags) as Mayastor;
    const client = m.client.bind(m),
      reader = m.reader.bind(m);
    m.client = (node, d, path) => (client(node, d, path) ? (agents[node] as any) : undefined);
    m.reader = (node, d, path) => (reader(node, d, path) ? (agents[node] as any) : undefined);
    return m;
  };
  return { svc: new ProviderService(def), agents };
}

const typeOf = (name: string) => objectType(makeProvider().resources.find((r) => r.typeName === name)!.schema) as CtyType;
const dv = (t: CtyType, v: Value) => ({ msgpack: encodeMsgpack(t, v) });
const dec = (t: CtyType, d: any) => (d?.msgpack ? (decodeMsgpack(t, d.msgpack) as ObjectValue | null) : null);

async function configured() {
  const s = setup();
  const res = await s.svc.configureProvider({ config: dv(objectType(makeProvider().schema), { nodes: { a: 'http://127.0.0.1:1' } }) });
  expect(res.diagnostics).toEqual([]);
  s.agents.a.replicas.set(R, { uuid: R, pool: 'p', sizeBytes: 8 * MiB, thin: true, share: 'none', allowedHosts: [], uri: `bdev:///${R}`, allocatedBytes: 0 });
  return s;
}

/** The attributes of a resource type, all null, then `o`. */
function blank(type: string, o: ObjectValue): ObjectValue {
  const t = typeOf(type) as ['object', Record<string, CtyType>];
  return { ...Object.fromEntries(Object.keys(t[1]).map((k) => [k, null])), ...o };
}

async function plan(svc: ProviderService<Mayastor>, type: string, prior: ObjectValue | null, config: ObjectValue) {
  const t = typeOf(type);
  const schema = makeProvider().resources.find((r) => r.typeName === type)!.schema;
  // Terraform's proposed new state: the configuration, with computed attributes it leaves null taking the prior value
  const proposed: ObjectValue = { ...config };
  if (prior) for (const [k, a] of Object.entries(schema.attributes)) if (a.computed && config[k] === null) proposed[k] = prior[k];
  const res: any = await svc.planResourceChange({ type_name: type, prior_state: dv(t, prior), proposed_new_state: dv(t, proposed), config: dv(t, config) });
  return { planned: dec(t, res.planned_state), replace: (res.requires_replace ?? []).map((p: any) => p.steps[0].attribute_name), diags: res.diagnostics };
}

async function apply(svc: ProviderService<Mayastor>, type: string, prior: ObjectValue | null, planned: ObjectValue | null) {
  const t = typeOf(type);
  const res: any = await svc.applyResourceChange({ type_name: type, prior_state: dv(t, prior), planned_state: dv(t, planned), config: dv(t, planned) });
  return { state: dec(t, res.new_state), diags: res.diagnostics };
}

async function read(svc: ProviderService<Mayastor>, type: string, state: ObjectValue) {
  const t = typeOf(type);
  const res: any = await svc.readResource({ type_name: type, current_state: dv(t, state) });
  return { state: dec(t, res.new_state), diags: res.diagnostics };
}

async function validate(svc: ProviderService<Mayastor>, type: string, config: ObjectValue) {
  const res: any = await svc.validateResourceConfig({ type_name: type, config: dv(typeOf(type), config) });
  return res.diagnostics as any[];
}

const attrOf = (d: any) => d.attribute?.steps?.map((s: any) => s.attribute_name ?? s.element_key_string);

async function created(svc: ProviderService<Mayastor>, type: string, config: ObjectValue) {
  const p = await plan(svc, type, null, config);
  expect(p.diags).toEqual([]);
  const a = await apply(svc, type, null, p.planned);
  expect(a.diags).toEqual([]);
  return a.state!;
}

describe('mayastor_snapshot', () => {
  const cfg = (o: ObjectValue = {}) => blank('mayastor_snapshot', { node: 'a', replica_uuid: R, ...o });

  test('create with a generated uuid; the agent fills pool, size, referenced bytes and time; plan after is empty', async () => {
    const { svc, agents } = await configured();
    const p = await plan(svc, 'mayastor_snapshot', null, cfg());
    expect(p.planned).toMatchObject({ uuid: UNKNOWN, id: UNKNOWN, pool: UNKNOWN, size_bytes: UNKNOWN });
    const a = await apply(svc, 'mayastor_snapshot', null, p.planned);
    expect(a.diags).toEqual([]);
    const uuid = a.state!.uuid as string;
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.state).toMatchObject({ id: `a/${uuid}`, pool: 'p', size_bytes: 8 * MiB, referenced_bytes: MiB, created_at: '2026-12-05T19:00:00Z' });
    expect(agents.a.snaps.has(uuid)).toBe(true);
    const again = await plan(svc, 'mayastor_snapshot', a.state, cfg());
    expect(again.planned).toEqual(a.state);
    expect(again.replace).toEqual([]);
    // another uuid or replica replaces it
    expect((await plan(svc, 'mayastor_snapshot', a.state, cfg({ uuid: S }))).replace).toEqual(['uuid']);
    expect((await plan(svc, 'mayastor_snapshot', a.state, cfg({ replica_uuid: C }))).replace).toEqual(['replica_uuid']);
  });

  test('share: exported read-only at create, changed in place by PATCH (the uri re-planned), unshared', async () => {
    const { svc, agents } = await configured();
    const s = await created(svc, 'mayastor_snapshot', cfg({ uuid: S, share: 'nbd', allowed_hosts: ['127.0.0.1'] }));
    expect(agents.a.calls).toContain(`putSnapshot ${R} ${S} {"share":"nbd","allowedHosts":["127.0.0.1"]}`);
    expect(s).toMatchObject({ share: 'nbd', allowed_hosts: ['127.0.0.1'], uri: `nbd://127.0.0.1:10809/${S}` });
    const hosts = await plan(svc, 'mayastor_snapshot', s, cfg({ uuid: S, share: 'nbd', allowed_hosts: ['10.0.0.0/8'] }));
    expect(hosts.replace).toEqual([]);
    expect(hosts.planned).toMatchObject({ uri: s.uri, created_at: s.created_at, pool: 'p' });
    const off = await plan(svc, 'mayastor_snapshot', s, cfg({ uuid: S, share: 'none' }));
    expect(off.replace).toEqual([]);
    expect(off.planned).toMatchObject({ uri: UNKNOWN, allowed_hosts: [] });
    const u = await apply(svc, 'mayastor_snapshot', s, off.planned);
    expect(u.diags).toEqual([]);
    expect(agents.a.calls).toContain(`patchSnapshot ${S} {"share":"none","allowedHosts":[]}`);
    expect(u.state).toMatchObject({ share: 'none', uri: `bdev:///${S}` });
    expect((await validate(svc, 'mayastor_snapshot', cfg({ share: 'ftp' }))).map(attrOf)).toEqual([['share']]);
  });

  test('a snapshot this state did not create (already there) is refused: import it', async () => {
    const { svc, agents } = await configured();
    await agents.a.putSnapshot(R, S);
    const a = await apply(svc, 'mayastor_snapshot', null, (await plan(svc, 'mayastor_snapshot', null, cfg({ uuid: S }))).planned);
    expect(a.state).toBeNull();
    expect(a.diags[0]).toMatchObject({ summary: 'mayastor_snapshot already exists' });
    expect(a.diags[0].detail).toContain(`terraform import mayastor_snapshot.NAME a/${S}`);
    expect(attrOf(a.diags[0])).toEqual(['uuid']);
  });

  test('a snapshot of a missing replica names replica_uuid', async () => {
    const { svc } = await configured();
    const a = await apply(svc, 'mayastor_snapshot', null, (await plan(svc, 'mayastor_snapshot', null, cfg({ replica_uuid: C }))).planned);
    expect(a.state).toBeNull();
    expect(a.diags[0].detail).toContain(`replica '${C}' not found`);
    expect(attrOf(a.diags[0])).toEqual(['replica_uuid']);
  });

  test('bad uuids are named at validate; an unknown node at plan', async () => {
    const { svc } = await configured();
    const d = await validate(svc, 'mayastor_snapshot', cfg({ uuid: 'x', replica_uuid: 'y' }));
    expect(d.map(attrOf)).toEqual([['uuid'], ['replica_uuid']]);
    const p = await plan(svc, 'mayastor_snapshot', null, cfg({ node: 'zz' }));
    expect(p.diags[0].summary).toBe('Unknown node "zz"');
  });

  test('drift: a snapshot deleted out of band reads as gone', async () => {
    const { svc, agents } = await configured();
    const s = await created(svc, 'mayastor_snapshot', cfg({ uuid: S }));
    agents.a.snaps.delete(S);
    const r = await read(svc, 'mayastor_snapshot', s);
    expect(r.diags).toEqual([]);
    expect(r.state).toBeNull();
  });

  test('destroying a snapshot with a clone fails naming the clone, and keeps it in state', async () => {
    const { svc, agents } = await configured();
    const s = await created(svc, 'mayastor_snapshot', cfg({ uuid: S }));
    await agents.a.create('replicas', C, { pool: 'p', sizeBytes: 8 * MiB, thin: true, source: { snapshot: S } });
    const d = await apply(svc, 'mayastor_snapshot', s, null);
    expect(d.state).toEqual(s);
    expect(d.diags[0].summary).toBe(`Cannot destroy snapshot ${S} on node "a": clones depend on it`);
    expect(d.diags[0].detail).toContain(C);
    expect(agents.a.snaps.has(S)).toBe(true);
    await agents.a.deleteReplica(C);
    expect((await apply(svc, 'mayastor_snapshot', s, null)).diags).toEqual([]);
    expect(agents.a.snaps.has(S)).toBe(false);
  });

  test('destroying a snapshot whose replica was deleted first deletes it (by uuid); one already gone is simply gone', async () => {
    const { svc, agents } = await configured();
    const s = await created(svc, 'mayastor_snapshot', cfg({ uuid: S }));
    agents.a.replicas.delete(R);
    const d = await apply(svc, 'mayastor_snapshot', s, null);
    expect(d.diags).toEqual([]);
    expect(d.state).toBeNull();
    expect(agents.a.snaps.has(S)).toBe(false);
    expect((await apply(svc, 'mayastor_snapshot', s, null)).diags).toEqual([]);
  });

  test('import by NODE/UUID; a bad id and a missing snapshot are explained', async () => {
    const { svc, agents } = await configured();
    await agents.a.putSnapshot(R, S);
    const t = typeOf('mayastor_snapshot');
    const ok: any = await svc.importResourceState({ type_name: 'mayastor_snapshot', id: `a/${S}` });
    expect(ok.diagnostics).toEqual([]);
    expect(dec(t, ok.imported_resources[0].state)).toMatchObject({ id: `a/${S}`, node: 'a', uuid: S, replica_uuid: R, pool: 'p' });
    const bad: any = await svc.importResourceState({ type_name: 'mayastor_snapshot', id: S });
    expect(bad.diagnostics[0].detail).toMatch(/NODE\/UUID/);
    const missing: any = await svc.importResourceState({ type_name: 'mayastor_snapshot', id: `a/${C}` });
    expect(missing.diagnostics[0].summary).toBe('Cannot import non-existent remote object');
  });
});

describe('mayastor_replica.source_snapshot', () => {
  const cfg = (o: ObjectValue = {}) => blank('mayastor_replica', { node: 'a', pool: 'p', uuid: C, size_bytes: 8 * MiB, source_snapshot: S, ...o });

  test('a clone: thin is planned true, the agent gets {source: {snapshot}}, and source_snapshot stays in state', async () => {
    const { svc, agents } = await configured();
    await agents.a.putSnapshot(R, S);
    const p = await plan(svc, 'mayastor_replica', null, cfg());
    expect(p.planned).toMatchObject({ thin: true, source_snapshot: S });
    const a = await apply(svc, 'mayastor_replica', null, p.planned);
    expect(a.diags).toEqual([]);
    expect(agents.a.calls.find((c) => c.startsWith(`create replicas ${C}`))).toContain(`"source":{"snapshot":"${S}"}`);
    expect(agents.a.calls.find((c) => c.startsWith(`create replicas ${C}`))).toContain('"thin":true');
    expect(a.state).toMatchObject({ source_snapshot: S, thin: true });
    const r = await read(svc, 'mayastor_replica', a.state!);
    expect(r.state).toEqual(a.state);
    const again = await plan(svc, 'mayastor_replica', a.state, cfg());
    expect(again.planned).toEqual(a.state);
    expect((await plan(svc, 'mayastor_replica', a.state, cfg({ source_snapshot: G }))).replace).toEqual(['source_snapshot']);
    // in-place changes keep it a clone (thin stays true)
    const grow = await plan(svc, 'mayastor_replica', a.state, cfg({ share: 'nbd' }));
    expect(grow.replace).toEqual([]);
    expect(grow.planned).toMatchObject({ thin: true, source_snapshot: S });
  });

  test('thin = false with a source_snapshot is refused at validate, naming thin; a bad uuid names source_snapshot', async () => {
    const { svc } = await configured();
    expect((await validate(svc, 'mayastor_replica', cfg({ thin: false }))).map(attrOf)).toEqual([['thin']]);
    expect((await validate(svc, 'mayastor_replica', cfg({ thin: true }))).map(attrOf)).toEqual([]);
    expect((await validate(svc, 'mayastor_replica', cfg({ source_snapshot: 'nope' }))).map(attrOf)).toEqual([['source_snapshot']]);
  });

  test('a clone of a missing snapshot names source_snapshot; another size names size_bytes, another pool names pool', async () => {
    const { svc, agents } = await configured();
    const missing = await apply(svc, 'mayastor_replica', null, (await plan(svc, 'mayastor_replica', null, cfg())).planned);
    expect(missing.state).toBeNull();
    expect(attrOf(missing.diags[0])).toEqual(['source_snapshot']);
    expect(missing.diags[0].detail).toContain(`snapshot '${S}' does not exist on this node`);
    await agents.a.putSnapshot(R, S);
    const big = await apply(svc, 'mayastor_replica', null, (await plan(svc, 'mayastor_replica', null, cfg({ size_bytes: 16 * MiB }))).planned);
    expect(attrOf(big.diags[0])).toEqual(['size_bytes']);
    const elsewhere = await apply(svc, 'mayastor_replica', null, (await plan(svc, 'mayastor_replica', null, cfg({ pool: 'q' }))).planned);
    expect(attrOf(elsewhere.diags[0])).toEqual(['pool']);
    expect(elsewhere.diags[0].detail).toContain("a clone lives in its snapshot's pool 'p', not 'q'");
  });

  test('import: a clone gets its source_snapshot back; a snapshotted replica is no clone', async () => {
    const { svc, agents } = await configured();
    await agents.a.putSnapshot(R, S);
    await agents.a.create('replicas', C, { pool: 'p', sizeBytes: 8 * MiB, thin: true, source: { snapshot: S } });
    // the clone snapshotted in turn: its parent is now its own snapshot, the source is still S
    await agents.a.putSnapshot(C, G);
    agents.a.snaps.get(S)!.children = [R, G];
    agents.a.snaps.get(G)!.children = [C];
    const t = typeOf('mayastor_replica');
    const imp = async (u: string) =>
      dec(t, ((await svc.importResourceState({ type_name: 'mayastor_replica', id: `a/${u}` })) as any).imported_resources[0].state);
    expect(await imp(C)).toMatchObject({ uuid: C, source_snapshot: S });
    expect(await imp(R)).toMatchObject({ uuid: R, source_snapshot: null });
  });
});

describe('mayastor_volume_snapshot', () => {
  const cfg = (o: ObjectValue = {}) => blank('mayastor_volume_snapshot', { node: 'a', nexus_uuid: N, uuid: G, ...o });
  const children = ['c0', 'c1', 'c2'].map((c, i) => `${c}000000-1313-4000-8000-00000000000${i}`);

  async function withNexus(state = 'online') {
    const s = await configured();
    s.agents.a.nexuses.set(N, {
      uuid: N,
      children: [
        { uri: `bdev:///${children[0]}`, state: 'online' },
        { uri: `bdev:///${children[1]}`, state: 'online' },
        { uri: `nvmf://10.0.0.2:4420/nqn.2019-05.io.openebs:${children[2]}`, state },
      ],
    });
    return s;
  }

  test('create: replicas and snapshot_uuids from the agent (local children on the nexus node); plan after is empty', async () => {
    const { svc, agents } = await withNexus();
    const s = await created(svc, 'mayastor_volume_snapshot', cfg({ deadline_ms: 5000 }));
    expect(agents.a.calls).toContain(`putNexusSnapshot ${N} ${G} {"deadlineMs":5000}`);
    const reps = s.replicas as ObjectValue[];
    expect(reps.map((r) => [r.node, r.replica_uuid])).toEqual([
      ['a', children[0]],
      ['a', children[1]],
      [null, children[2]],
    ]);
    expect(s.snapshot_uuids).toEqual(Object.fromEntries(reps.map((r) => [r.replica_uuid, r.snapshot_uuid])));
    expect(s).toMatchObject({ id: `a/${G}`, nexus_uuid: N, created_at: '2026-12-05T19:00:01Z', deadline_ms: 5000 });
    expect((await plan(svc, 'mayastor_volume_snapshot', s, cfg({ deadline_ms: 5000 }))).planned).toEqual(s);
    expect((await read(svc, 'mayastor_volume_snapshot', s)).state).toEqual(s);
  });

  test('deadline_ms and timeouts change in place without asking the agent; nexus_uuid replaces', async () => {
    const { svc, agents } = await withNexus();
    const s = await created(svc, 'mayastor_volume_snapshot', cfg());
    const p = await plan(svc, 'mayastor_volume_snapshot', s, cfg({ deadline_ms: 100, timeouts: { create: '1m', delete: null } }));
    expect(p.replace).toEqual([]);
    expect(p.planned).toMatchObject({ replicas: s.replicas, snapshot_uuids: s.snapshot_uuids, created_at: s.created_at });
    const before = agents.a.calls.length;
    const u = await apply(svc, 'mayastor_volume_snapshot', s, p.planned);
    expect(u.diags).toEqual([]);
    expect(u.state).toMatchObject({ deadline_ms: 100, timeouts: { create: '1m', delete: null } });
    expect(agents.a.calls.length).toBe(before);
    expect((await plan(svc, 'mayastor_volume_snapshot', s, cfg({ nexus_uuid: C }))).replace).toEqual(['nexus_uuid']);
  });

  test('a faulted child: the diagnostic names the child, on nexus_uuid; nothing in state', async () => {
    const { svc, agents } = await withNexus('faulted');
    const a = await apply(svc, 'mayastor_volume_snapshot', null, (await plan(svc, 'mayastor_volume_snapshot', null, cfg())).planned);
    expect(a.state).toBeNull();
    expect(a.diags[0].summary).toBe(`Cannot snapshot nexus ${N} on node "a"`);
    expect(a.diags[0].detail).toContain(`nvmf://10.0.0.2:4420/nqn.2019-05.io.openebs:${children[2]} is faulted`);
    expect(attrOf(a.diags[0])).toEqual(['nexus_uuid']);
    expect(agents.a.nexusSnaps.size).toBe(0);
  });

  test('bad deadline_ms, timeouts and uuids are named at validate', async () => {
    const { svc } = await withNexus();
    const d = await validate(svc, 'mayastor_volume_snapshot', cfg({ deadline_ms: 0, timeouts: { create: '5 minutes', delete: null }, nexus_uuid: 'n' }));
    expect(d.map(attrOf)).toEqual([['nexus_uuid'], ['timeouts', 'create'], ['deadline_ms']]);
  });

  test("a deadline_ms beyond the agent's limit is refused on deadline_ms", async () => {
    const { svc } = await withNexus();
    const a = await apply(svc, 'mayastor_volume_snapshot', null, (await plan(svc, 'mayastor_volume_snapshot', null, cfg({ deadline_ms: 3600000 }))).planned);
    expect(a.state).toBeNull();
    expect(attrOf(a.diags[0])).toEqual(['deadline_ms']);
    expect(a.diags[0].detail).toContain('deadlineMs must be an integer from 1 to 600000');
  });

  test('a deadline_ms beyond what the agent waits for (422) is on deadline_ms, not blamed on a child', async () => {
    const { svc } = await withNexus();
    const a = await apply(svc, 'mayastor_volume_snapshot', null, (await plan(svc, 'mayastor_volume_snapshot', null, cfg({ deadline_ms: 30000 }))).planned);
    expect(a.state).toBeNull();
    expect(attrOf(a.diags[0])).toEqual(['deadline_ms']);
    expect(a.diags[0].summary).not.toMatch(/Cannot snapshot nexus/);
  });

  test('timeouts.create bounds a create the agent never answers, naming timeouts.create', async () => {
    const { svc, agents } = await withNexus();
    agents.a.setHang(true);
    const a = await apply(
      svc,
      'mayastor_volume_snapshot',
      null,
      (await plan(svc, 'mayastor_volume_snapshot', null, cfg({ timeouts: { create: '20ms', delete: null } }))).planned,
    );
    expect(a.state).toBeNull();
    expect(a.diags[0].summary).toBe(`Snapshot ${G} of nexus ${N} did not finish on node "a"`);
    expect(attrOf(a.diags[0])).toEqual(['timeouts', 'create']);
  });

  test('drift: a volume snapshot deleted out of band reads as gone', async () => {
    const { svc, agents } = await withNexus();
    const s = await created(svc, 'mayastor_volume_snapshot', cfg());
    agents.a.nexusSnaps.delete(G);
    const r = await read(svc, 'mayastor_volume_snapshot', s);
    expect(r.diags).toEqual([]);
    expect(r.state).toBeNull();
  });

  test('timeouts.delete bounds a destroy the agent never answers: an error on uuid, state kept', async () => {
    const { svc, agents } = await withNexus();
    const s = await created(svc, 'mayastor_volume_snapshot', cfg({ timeouts: { create: null, delete: '20ms' } }));
    agents.a.setHang(true);
    const d = await apply(svc, 'mayastor_volume_snapshot', s, null);
    expect(d.state).toEqual(s);
    expect(d.diags[0].summary).toBe(`Destroy volume snapshot ${G} did not finish on node "a"`);
    expect(d.diags[0].detail).toContain('20ms (timeouts.delete)');
    expect(attrOf(d.diags[0])).toEqual(['uuid']);
  });

  test('destroy deletes it; import by NODE/UUID finds it under its nexus', async () => {
    const { svc, agents } = await withNexus();
    const s = await created(svc, 'mayastor_volume_snapshot', cfg());
    const t = typeOf('mayastor_volume_snapshot');
    const ok: any = await svc.importResourceState({ type_name: 'mayastor_volume_snapshot', id: `a/${G}` });
    expect(ok.diagnostics).toEqual([]);
    expect(dec(t, ok.imported_resources[0].state)).toEqual({ ...s, deadline_ms: null, timeouts: null });
    expect((await apply(svc, 'mayastor_volume_snapshot', s, null)).diags).toEqual([]);
    expect(agents.a.nexusSnaps.size).toBe(0);
    const gone: any = await svc.importResourceState({ type_name: 'mayastor_volume_snapshot', id: `a/${G}` });
    expect(gone.diagnostics[0].detail).toBe(`no nexus on node "a" has volume snapshot ${G}`);
  });
});

test('a volume snapshot this state did not create is refused: import it', async () => {
  const { svc, agents } = setupWithNexus();
  await svc.configureProvider({ config: dv(objectType(makeProvider().schema), { nodes: { a: 'http://127.0.0.1:1' } }) });
  await agents.a.putNexusSnapshot(N, G, {});
  const t = 'mayastor_volume_snapshot';
  const a = await apply(svc, t, null, (await plan(svc, t, null, blank(t, { node: 'a', nexus_uuid: N, uuid: G }))).planned);
  expect(a.state).toBeNull();
  expect(a.diags[0].summary).toBe('mayastor_volume_snapshot already exists');
  expect(a.diags[0].detail).toContain(`terraform import mayastor_volume_snapshot.NAME a/${G}`);
});

function setupWithNexus() {
  const s = setup();
  s.agents.a.nexuses.set(N, { uuid: N, children: [{ uri: `bdev:///${R}`, state: 'online' }] });
  return s;
}
