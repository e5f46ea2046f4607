/** The typed-model codec (provider/protocol/model.ts) and the adapter that hands resources their models. */
import { CtyDecimal, ObjectValue, UNKNOWN } from '../../provider/protocol/cty';
import { applyChanges, camel, decodeModel, encodeModel, known } from '../../provider/protocol/model';
import { Diagnostics } from '../../provider/protocol/schema';
import { nexusSchema, NexusModel } from '../../provider/resources/nexus';
import { poolResource } from '../../provider/resources/pool';

const U = '0b6c6b8e-3a4f-4f36-9d0f-3a1c8b1e2d40';
const nexusState: ObjectValue = {
  id: `a/${U}`,
  node: 'a',
  uuid: U,
  size_bytes: 1 << 20,
  children: [`bdev:///${U}`],
  share: 'nbd',
  allowed_hosts: ['127.0.0.1'],
  state: 'online',
  device_uri: `nbd://127.0.0.1:10809/${U}`,
  child_states: { [`bdev:///${U}`]: { state: 'online', rebuild_progress: 100 } },
  timeouts: { create: '30m', update: null, delete: null },
};

test('attribute names become camelCase fields at every depth; map keys stay as they are', () => {
  expect(camel('size_bytes')).toBe('sizeBytes');
  const m = decodeModel<NexusModel>(nexusSchema, nexusState);
  expect(m).toEqual({
    id: `a/${U}`,
    node: 'a',
    uuid: U,
    sizeBytes: 1 << 20,
    children: [`bdev:///${U}`],
    share: 'nbd',
    allowedHosts: ['127.0.0.1'],
    state: 'online',
    deviceUri: `nbd://127.0.0.1:10809/${U}`,
    childStates: { [`bdev:///${U}`]: { state: 'online', rebuildProgress: 100 } },
    timeouts: { create: '30m', update: null, delete: null },
  });
  expect(encodeModel(nexusSchema, m)).toEqual(nexusState);
});

test('null, unknown and missing attributes survive the round trip; big numbers become JS numbers', () => {
  const m = decodeModel<Record<string, unknown>>(nexusSchema, { node: UNKNOWN, children: ['x', UNKNOWN], size_bytes: 2n ** 40n, share: null });
  expect(m).toMatchObject({ node: UNKNOWN, children: ['x', UNKNOWN], sizeBytes: 2 ** 40, share: null, id: null, childStates: null });
  expect(known(m.node as never)).toBeUndefined();
  expect(decodeModel<Record<string, unknown>>(nexusSchema, { size_bytes: new CtyDecimal('1.5') }).sizeBytes).toBe(1.5);
  expect(encodeModel(nexusSchema, m)).toMatchObject({ node: UNKNOWN, children: ['x', UNKNOWN], share: null, device_uri: null });
});

test('a plan refinement writes only the fields it changed; the others keep the exact value Terraform sent', () => {
  const planned: ObjectValue = { ...nexusState, size_bytes: 2n ** 60n, children: ['b', 'a'] };
  const before = decodeModel<Record<string, unknown>>(nexusSchema, planned);
  const after = { ...before, deviceUri: UNKNOWN };
  applyChanges(nexusSchema, planned, before, after);
  expect(planned.device_uri).toBe(UNKNOWN);
  expect(planned.size_bytes).toBe(2n ** 60n); // not rounded through a JS number
  expect(planned.children).toEqual(['b', 'a']);
});

test('a resource read that answers its state unchanged hands back the very value it got', async () => {
  const state: ObjectValue = { id: null, node: 'zz', name: 'p', disks: ['/d'], uuid: null, state: null, capacity_bytes: null, used_bytes: null };
  const { Mayastor } = await import('../../provider/resources/agent-clients');
  const m = new Mayastor({ nodes: {}, token: undefined, timeoutMs: 1000, retries: 0, rebuildTimeoutMs: 1000 });
  const diags = new Diagnostics();
  expect(await poolResource.read(m, state, diags)).toBe(state);
  expect(diags.items[0].summary).toBe('Unknown node "zz"');
});
