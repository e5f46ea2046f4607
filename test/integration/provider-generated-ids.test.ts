/**
 * Issue 14 (generated ids, plan hygiene) with the real `terraform` binary against a real agent: a pool, two replicas
 * and a nexus over them with no `uuid` anywhere apply; the provider generated v4 uuids; `plan` is empty right
 * after, a re-apply changes nothing; in-place changes plan no "(known after apply)" for what they do not change;
 * import by the generated uuid; a configured uuid that differs from the state's plans a replace naming `uuid`;
 * destroy. The replicas are sized with provider::mayastor::replica_size; the nexus takes `timeouts`.
 */
import { AgentClient } from '../../agent/api/client';
import { MiB } from '../helpers/agent';
import { ProviderTestbed, TerraformDir, expectOk, output, ref, resource } from '../helpers/terraform';

jest.setTimeout(180_000);

const SIZE = 8 * MiB;
const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const APPLY = ['-no-color', '-input=false', '-auto-approve'];
const PLAN = ['plan', '-no-color', '-input=false', '-detailed-exitcode'];

let tb: ProviderTestbed;
let tfd: TerraformDir;
let agent: AgentClient;

interface Opts {
  /** The nexus's uuid argument (left out when undefined). */
  nexusUuid?: string;
  share?: string;
  allowedHosts?: string[];
  /** The nexus's timeouts argument, as HCL. */
  timeouts?: string;
}

function config(o: Opts = {}): string {
  return [
    tb.provider({ rebuild_timeout_seconds: 120, request_timeout_seconds: 20, retries: 1 }),
    resource('mayastor_pool', 'p', { node: 'a', name: 'pa', disks: [tb.disk('a')] }),
    ...['r0', 'r1'].map((r) =>
      resource('mayastor_replica', r, {
        node: 'a',
        pool: ref('mayastor_pool.p.name'),
        // the volume plus the nexus label header, by the provider's function
        size_bytes: ref(`provider::mayastor::replica_size(${SIZE})`),
        allowed_hosts: r === 'r1' ? o.allowedHosts : undefined,
      }),
    ),
    resource('mayastor_nexus', 'v', {
      node: 'a',
      uuid: o.nexusUuid,
      size_bytes: SIZE,
      children: [ref('mayastor_replica.r0.uri'), ref('mayastor_replica.r1.uri')],
      share: o.share ?? 'nbd',
      timeouts: o.timeouts === undefined ? undefined : ref(o.timeouts),
    }),
    output('nexus_uuid', ref('mayastor_nexus.v.uuid')),
    output('replica_uuids', ref('[mayastor_replica.r0.uuid, mayastor_replica.r1.uuid]')),
  ].join('');
}

const outputs = (): { nexus: string; replicas: string[] } => {
  const o = JSON.parse(expectOk(tfd.run('output', '-json')));
  return { nexus: o.nexus_uuid.value, replicas: o.replica_uuids.value };
};

beforeAll(async () => {
  tb = await ProviderTestbed.start('mayastor-provider-ids-', { a: { disks: { 'd0.img': 128 * MiB } } }, true);
  agent = tb.agents.a.client();
  tfd = tb.dir('tf', config());
}, 180_000);

afterAll(async () => {
  await tb?.stop();
});

let ids: { nexus: string; replicas: string[] };

test('a configuration with no uuid anywhere applies; the uuids are generated v4 uuids', async () => {
  const plan = tfd.run(...PLAN);
  expect(plan.code).toBe(2);
  expect(plan.out).toMatch(/uuid +\s*= \(known after apply\)/);
  expect(plan.out).not.toMatch(/The argument "uuid" is required/);
  expectOk(tfd.run('apply', ...APPLY));
  ids = outputs();
  expect(ids.nexus).toMatch(V4);
  for (const u of ids.replicas) expect(u).toMatch(V4);
  expect(new Set([ids.nexus, ...ids.replicas]).size).toBe(3);
  const n = await agent.getNexus(ids.nexus);
  expect(n).toMatchObject({ uuid: ids.nexus, state: 'online' });
  expect(n!.children.map((c) => c.uri).sort()).toEqual(ids.replicas.map((u) => `bdev:///${u}`).sort());
  const state = JSON.parse(expectOk(tfd.run('show', '-json')));
  const byAddr = Object.fromEntries(state.values.root_module.resources.map((r: { address: string; values: unknown }) => [r.address, r.values]));
  expect(byAddr['mayastor_nexus.v']).toMatchObject({ id: `a/${ids.nexus}`, uuid: ids.nexus });
  expect(byAddr['mayastor_replica.r0']).toMatchObject({ id: `a/${ids.replicas[0]}` });
});

test('plan is empty right after apply; a re-apply changes nothing and keeps the uuids', () => {
  tfd.expectNoChanges();
  const out = expectOk(tfd.run('apply', ...APPLY));
  expect(out).toMatch(/0 added, 0 changed, 0 destroyed/);
  expect(outputs()).toEqual(ids);
});

test('in-place changes plan only what they change: no "(known after apply)" for the rest', () => {
  // a replica's allowed_hosts: the thick replica's uri and allocation stay; the nexus is untouched
  tfd.write(config({ allowedHosts: ['127.0.0.1'] }));
  const hosts = tfd.run(...PLAN);
  expect(hosts.code).toBe(2);
  expect(hosts.out).toMatch(/mayastor_replica\.r1 will be updated in-place/);
  expect(hosts.out).toMatch(/Plan: 0 to add, 1 to change, 0 to destroy/);
  expect(hosts.out).not.toMatch(/known after apply/);
  expectOk(tfd.run('apply', ...APPLY));
  tfd.expectNoChanges();
  // the nexus share: only device_uri is re-planned (state and child_states stay: the nexus is steady)
  tfd.write(config({ allowedHosts: ['127.0.0.1'], share: 'none' }));
  const share = tfd.run(...PLAN);
  expect(share.code).toBe(2);
  expect(share.out).toMatch(/mayastor_nexus\.v will be updated in-place/);
  expect(share.out.match(/known after apply/g)).toHaveLength(1);
  expect(share.out).toMatch(/device_uri += "nbd:\/\/[^"]+" -> \(known after apply\)/);
  expectOk(tfd.run('apply', ...APPLY));
  tfd.expectNoChanges();
  expect(outputs()).toEqual(ids);
});

test('import by the generated uuid, then plan is empty', () => {
  tfd.write(config({ allowedHosts: ['127.0.0.1'], share: 'none' }));
  expectOk(tfd.run('state', 'rm', 'mayastor_nexus.v', 'mayastor_replica.r1'));
  expectOk(tfd.run('import', '-no-color', '-input=false', 'mayastor_replica.r1', `a/${ids.replicas[1]}`));
  expectOk(tfd.run('import', '-no-color', '-input=false', 'mayastor_nexus.v', `a/${ids.nexus}`));
  tfd.expectNoChanges();
  expect(outputs()).toEqual(ids);
});

test('timeouts: set in place without touching anything else, kept across refreshes; a bad duration names timeouts.create', () => {
  const base = { allowedHosts: ['127.0.0.1'], share: 'none' };
  tfd.write(config({ ...base, timeouts: '{ create = "30m", update = "1h30m" }' }));
  const plan = tfd.run(...PLAN);
  expect(plan.code).toBe(2);
  expect(plan.out).toMatch(/mayastor_nexus\.v will be updated in-place/);
  expect(plan.out).toMatch(/Plan: 0 to add, 1 to change, 0 to destroy/);
  expect(plan.out).not.toMatch(/known after apply/);
  expectOk(tfd.run('apply', ...APPLY));
  tfd.expectNoChanges();
  tfd.write(config({ ...base, timeouts: '{ create = "30 minutes" }' }));
  const bad = tfd.run(...PLAN);
  expect(bad.code).toBe(1);
  expect(bad.out).toMatch(/Error: Invalid timeouts\.create/);
  expect(bad.out).toMatch(/timeouts\.create "30 minutes" is not a duration/);
  tfd.write(config(base));
  expectOk(tfd.run('apply', ...APPLY));
  tfd.expectNoChanges();
});

test("a configured uuid equal to the state's changes nothing; a different one plans a replace naming uuid", () => {
  tfd.write(config({ allowedHosts: ['127.0.0.1'], share: 'none', nexusUuid: ids.nexus }));
  tfd.expectNoChanges();
  const other = 'cccccccc-1414-4000-8000-000000000014';
  tfd.write(config({ allowedHosts: ['127.0.0.1'], share: 'none', nexusUuid: other }));
  const plan = tfd.run(...PLAN);
  expect(plan.code).toBe(2);
  expect(plan.out).toMatch(/mayastor_nexus\.v must be replaced/);
  expect(plan.out).toMatch(new RegExp(`uuid +\\s*= "${ids.nexus}" -> "${other}" # forces replacement`));
  expect(plan.out).toMatch(/Plan: 1 to add, 0 to change, 1 to destroy/);
});

test('destroy removes everything', async () => {
  expectOk(tfd.run('destroy', ...APPLY));
  expect(await agent.listNexuses()).toEqual([]);
  expect(await agent.listReplicas()).toEqual([]);
  expect(await agent.listPools()).toEqual([]);
});
