/**
 * mayastor_nexus through the real `terraform` binary against two real agents: a 2-child nexus (a local replica
 * and a remote one shared over NBD) exported over NBD; data written with qemu-io survives a no-op apply;
 * a child removed out of band shows as a diff and apply re-adds and rebuilds it; import; destroy.
 */
import type { AgentClient } from '../../agent/api/client';
import { MiB } from '../helpers/agent';
import { qemuIoOk } from '../helpers/nbd';
import { ProviderTestbed, TerraformDir, expectOk, output, ref, resource } from '../helpers/terraform';

const RA = 'aaaaaaaa-0000-4000-8000-000000000001';
const RB = 'bbbbbbbb-0000-4000-8000-000000000002';
const NX = 'cccccccc-0000-4000-8000-000000000003';
const SIZE = 16 * MiB;

let tb: ProviderTestbed;
let tfd: TerraformDir;
/** The agents' clients by node. */
const agents: Record<string, { client: AgentClient }> = {};

const tf = (...args: string[]) => tfd.run(...args);
const ok = expectOk;
const expectNoChanges = () => tfd.expectNoChanges();

function config(nexusShare = 'nbd', size = SIZE, nexusSize = size - MiB): string {
  return [
    tb.provider({ rebuild_timeout_seconds: 120, request_timeout_seconds: 20, retries: 1 }),
    resource('mayastor_pool', 'a', { node: 'a', name: 'pa', disks: [tb.disk('a')] }),
    resource('mayastor_pool', 'b', { node: 'b', name: 'pb', disks: [tb.disk('b')] }),
    resource('mayastor_replica', 'a', { node: 'a', pool: ref('mayastor_pool.a.name'), uuid: RA, size_bytes: size, thin: true }),
    resource('mayastor_replica', 'b', { node: 'b', pool: ref('mayastor_pool.b.name'), uuid: RB, size_bytes: size, share: 'nbd' }),
    resource('mayastor_nexus', 'v', {
      node: 'a',
      uuid: NX,
      size_bytes: nexusSize,
      children: [ref('mayastor_replica.a.uri'), ref('mayastor_replica.b.uri')],
      share: nexusShare,
    }),
    output('device_uri', ref('mayastor_nexus.v.device_uri')),
  ].join('');
}

function writeConfig(nexusShare?: string, size?: number, nexusSize?: number): void {
  tfd.write(config(nexusShare, size, nexusSize));
}

beforeAll(async () => {
  tb = await ProviderTestbed.start('mayastor-provider-nexus-', { a: { disks: { 'd0.img': 128 * MiB } }, b: { disks: { 'd0.img': 128 * MiB } } }, true);
  for (const [node, a] of Object.entries(tb.agents)) agents[node] = { client: a.client() };
  tfd = tb.dir('tf', config());
}, 180_000);

afterAll(async () => {
  await tb?.stop();
});

let deviceUri = '';

test('a 2-child nexus over a local and an NBD replica applies; plan is then empty', async () => {
  ok(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  const n = await agents.a.client.getNexus(NX);
  expect(n).toBeDefined();
  expect(n!.children.map((c) => c.state)).toEqual(['online', 'online']);
  expect(n!.children[1].uri).toMatch(/^nbd:\/\//);
  deviceUri = JSON.parse(ok(tf('output', '-json', 'device_uri')));
  expect(deviceUri).toMatch(/^nbd:\/\//);
  expectNoChanges();
});

test('data written through the nexus survives a second apply that changes nothing', async () => {
  await qemuIoOk(deviceUri, ['write -P 0x5a 0 1M']);
  const out = ok(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  expect(out).toMatch(/0 added, 0 changed, 0 destroyed/);
  await qemuIoOk(deviceUri, ['read -P 0x5a 0 1M']);
});

test('a child removed out of band shows as a diff; apply re-adds and rebuilds it', async () => {
  const n = (await agents.a.client.getNexus(NX))!;
  const remote = n.children[1].uri;
  await agents.a.client.removeNexusChild(NX, remote);
  const plan = tf('plan', '-no-color', '-input=false', '-detailed-exitcode');
  expect(plan.code).toBe(2);
  expect(plan.out).toMatch(/mayastor_nexus\.v will be updated in-place/);
  expect(plan.out).toContain(remote);
  ok(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  const after = (await agents.a.client.getNexus(NX))!;
  expect(after.children.map((c) => [c.uri, c.state])).toEqual([
    [n.children[0].uri, 'online'],
    [remote, 'online'],
  ]);
  expectNoChanges();
  // the rebuilt child holds the data: fault the local one and read through the remote only
  await agents.a.client.setNexusChildState(NX, n.children[0].uri, 'offline');
  await qemuIoOk(deviceUri, ['read -P 0x5a 0 1M']);
  const offline = tf('plan', '-no-color', '-input=false', '-detailed-exitcode');
  expect(offline.code).toBe(2);
  ok(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  expectNoChanges();
});

test('the nexus share changes in place: unshared, shared again, the data stays', async () => {
  writeConfig('none');
  const plan = tf('plan', '-no-color', '-input=false', '-detailed-exitcode');
  expect(plan.code).toBe(2);
  expect(plan.out).toMatch(/mayastor_nexus\.v will be updated in-place/);
  expect(plan.out).not.toMatch(/must be replaced/);
  expect(plan.out).toMatch(/device_uri += "nbd:\/\/[^"]+" -> \(known after apply\)/);
  ok(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  expect(JSON.parse(ok(tf('output', '-json', 'device_uri')))).toBe(`bdev:///${NX}`);
  expect(await agents.a.client.getNexus(NX)).toMatchObject({ share: 'none', state: 'online' });
  expectNoChanges();
  writeConfig('nbd');
  ok(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  deviceUri = JSON.parse(ok(tf('output', '-json', 'device_uri')));
  await qemuIoOk(deviceUri, ['read -P 0x5a 0 1M']);
  expectNoChanges();
});

test('the volume grows in place, replicas and nexus in one apply; it cannot shrink', async () => {
  writeConfig('nbd', 2 * SIZE);
  const plan = tf('plan', '-no-color', '-input=false', '-detailed-exitcode');
  expect(plan.code).toBe(2);
  expect(plan.out).toMatch(/mayastor_nexus\.v will be updated in-place/);
  expect(plan.out).not.toMatch(/must be replaced/);
  expect(plan.out).toMatch(/Plan: 0 to add, 3 to change, 0 to destroy/);
  ok(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  expect(await agents.a.client.getNexus(NX)).toMatchObject({ sizeBytes: 2 * SIZE - 1024 * 1024, state: 'online' });
  await qemuIoOk(deviceUri, ['read -P 0x5a 0 1M']);
  await qemuIoOk(deviceUri, [`write -P 0x5b ${2 * SIZE - 2 * MiB} 1M`]);
  expectNoChanges();
  writeConfig('nbd', 2 * SIZE, SIZE - 1024 * 1024);
  const shrink = tf('plan', '-no-color', '-input=false');
  expect(shrink.code).toBe(1);
  expect(shrink.out).toMatch(new RegExp(`Error: A nexus cannot shrink[\\s\\S]*size_bytes = ${SIZE - 1024 * 1024}`));
  writeConfig('nbd', 2 * SIZE);
  expectNoChanges();
});

test('every resource type imports, then plan shows no changes', () => {
  ok(tf('state', 'rm', 'mayastor_nexus.v', 'mayastor_replica.b', 'mayastor_pool.b'));
  ok(tf('import', '-no-color', '-input=false', 'mayastor_pool.b', 'b/pb'));
  ok(tf('import', '-no-color', '-input=false', 'mayastor_replica.b', `b/${RB}`));
  ok(tf('import', '-no-color', '-input=false', 'mayastor_nexus.v', `a/${NX}`));
  expectNoChanges();
});

test('destroy removes everything', async () => {
  ok(tf('destroy', '-no-color', '-input=false', '-auto-approve'));
  expect(await agents.a.client.listNexuses()).toEqual([]);
  expect(await agents.a.client.listPools()).toEqual([]);
  expect(await agents.b.client.listPools()).toEqual([]);
});
