/** `timeouts` on mayastor_nexus: durations parsed and validated, the schema's nested attribute, and a wait bounded by it. */
import { CtyType, ObjectValue, Value, decodeMsgpack, encodeMsgpack } from '../../provider/protocol/cty';
import { ProviderService } from '../../provider/protocol/framework';
import { objectType } from '../../provider/protocol/schema';
import { makeProvider } from '../../provider/provider';
import { Mayastor } from '../../provider/resources/agent-clients';
import { nexusSchema } from '../../provider/resources/nexus';
import { parseDuration, timeoutMs } from '../../provider/resources/timeouts';

const nexusType = objectType(nexusSchema) as CtyType;
const dv = (t: CtyType, v: Value) => ({ msgpack: encodeMsgpack(t, v) });
const U = '7d3c1f7e-3b8a-4f0e-8d65-2f7b1e9c0a11';
const cfg = (o: ObjectValue = {}): ObjectValue => ({
  id: null,
  node: 'a',
  uuid: U,
  size_bytes: 1 << 20,
  children: [`bdev:///${U}`],
  share: null,
  state: null,
  device_uri: null,
  child_states: null,
  timeouts: null,
  ...o,
});

test.each<[string, number | undefined]>([
  ['30s', 30_000],
  ['10m', 600_000],
  ['1h30m', 5_400_000],
  ['1.5h', 5_400_000],
  ['250ms', 250],
  ['2h45m30s', 9_930_000],
  ['30', undefined],
  ['30 minutes', undefined],
  ['-5m', undefined],
  ['', undefined],
  ['m', undefined],
  ['5d', undefined],
])('parseDuration(%j) = %j', (s, ms) => {
  expect(parseDuration(s)).toBe(ms);
});

test('an operation left out takes the provider-level default', () => {
  expect(timeoutMs(null, 'create', 42)).toBe(42);
  expect(timeoutMs({ create: null, update: '1m', delete: null }, 'create', 42)).toBe(42);
  expect(timeoutMs({ create: null, update: '1m', delete: null }, 'update', 42)).toBe(60_000);
});

test('GetProviderSchema sends timeouts as a single nested attribute of optional strings', () => {
  const res = new ProviderService(makeProvider({})).getProviderSchema() as any;
  const t = res.resource_schemas.mayastor_nexus.block.attributes.find((a: any) => a.name === 'timeouts');
  expect(t.type).toBeUndefined();
  expect(t.optional).toBe(true);
  expect(t.nested_type.nesting).toBe(1);
  expect(t.nested_type.attributes.map((a: any) => [a.name, Buffer.from(a.type).toString(), a.optional])).toEqual([
    ['create', '"string"', true],
    ['delete', '"string"', true],
    ['update', '"string"', true],
  ]);
});

test('a duration that is not one is diagnosed at validate, naming timeouts.<op>', () => {
  const svc = new ProviderService(makeProvider({}));
  const v: any = svc.validateResourceConfig({
    type_name: 'mayastor_nexus',
    config: dv(nexusType, cfg({ timeouts: { create: '30 minutes', update: '0s', delete: '10m' } })),
  });
  expect(v.diagnostics.map((d: any) => [d.summary, d.attribute.steps.map((s: any) => s.attribute_name)])).toEqual([
    ['Invalid timeouts.create', ['timeouts', 'create']],
    ['Invalid timeouts.update', ['timeouts', 'update']],
  ]);
  expect(v.diagnostics[0].detail).toMatch(/"30 minutes" is not a duration: write a number and a unit, e.g. "30s"/);
});

test('create waits for the rebuild at most timeouts.create, then fails naming it; the nexus stays in state', async () => {
  const def = makeProvider({});
  const degraded = {
    uuid: U,
    sizeBytes: 1 << 20,
    state: 'degraded',
    share: 'none',
    deviceUri: `bdev:///${U}`,
    children: [{ uri: `bdev:///${U}`, state: 'degraded', rebuildProgress: 10 }],
  };
  const fake = { create: async () => ({ object: degraded, created: true }), getNexus: async () => degraded };
  const configure = def.configure.bind(def);
  def.configure = (c, v, d) => {
    const m = configure(c, v, d) as Mayastor;
    m.client = () => fake as any;
    return m;
  };
  const svc = new ProviderService(def);
  const providerType = objectType(def.schema);
  await svc.configureProvider({ config: dv(providerType, { nodes: { a: 'http://127.0.0.1:1' }, token: 't' }) });
  const planned = { ...cfg({ timeouts: { create: '100ms', update: null, delete: null } }), id: `a/${U}`, share: 'none' };
  const started = Date.now();
  const res: any = await svc.applyResourceChange({ type_name: 'mayastor_nexus', prior_state: dv(nexusType, null), planned_state: dv(nexusType, planned) });
  expect(Date.now() - started).toBeLessThan(5000);
  expect(res.diagnostics[0].summary).toBe(`Nexus ${U} rebuild did not finish on node "a"`);
  expect(res.diagnostics[0].detail).toMatch(/bdev:\/\/\/[-0-9a-f]+ at 10% after 100ms \(timeouts.create\)/);
  expect(res.diagnostics[0].attribute.steps.map((s: any) => s.attribute_name)).toEqual(['timeouts', 'create']);
  expect((decodeMsgpack(nexusType, res.new_state.msgpack) as ObjectValue).timeouts).toEqual({ create: '100ms', update: null, delete: null });
});
