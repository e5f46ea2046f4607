/**
 * The one grammar through the real terraform end to end (issue 11): a pool named `db:1` (the agent always took
 * such names; the provider used to refuse them, so such a pool could not be managed from Terraform) and a
 * nexus child `nbd://host/<export>` without a port (the data path's default, 10809; the provider used to
 * demand a port). Agent b serves NBD on 10809 for that. Data written through the volume reads back.
 */
import { MiB, type AgentProcess } from '../helpers/agent';
import { qemuIoOk } from '../helpers/nbd';
import { ProviderTestbed, TerraformDir, expectOk, output, ref, resource } from '../helpers/terraform';
import { NBD_DEFAULT_PORT } from '../../agent/api/limits';

jest.setTimeout(240_000);

const RA = 'dbdbdbdb-0000-4000-8000-000000000001';
const RB = 'dbdbdbdb-0000-4000-8000-000000000002';
const NX = 'dbdbdbdb-0000-4000-8000-0000000000ff';
const SIZE = 16 * MiB;

let tb: ProviderTestbed;
let tfd: TerraformDir;
let agents: Record<string, AgentProcess>;

beforeAll(async () => {
  tb = await ProviderTestbed.start('mayastor-provider-grammar-', {
    a: { disks: { 'd0.img': 128 * MiB }, extraArgs: ['--nbd-listen', '127.0.0.1:0'] },
    b: { disks: { 'd0.img': 128 * MiB }, extraArgs: ['--nbd-listen', `127.0.0.1:${NBD_DEFAULT_PORT}`] },
  });
  agents = tb.agents;
  const replica = (node: string, uuid: string, share?: string) =>
    resource('mayastor_replica', node, { node, pool: ref(`mayastor_pool.${node}.name`), uuid, size_bytes: SIZE + MiB, thin: true, share });
  tfd = tb.dir(
    'tf',
    [
      tb.provider(),
      resource('mayastor_pool', 'a', { node: 'a', name: 'db:1', disks: [tb.disk('a')] }),
      resource('mayastor_pool', 'b', { node: 'b', name: 'db:2', disks: [tb.disk('b')] }),
      replica('a', RA),
      replica('b', RB, 'nbd'),
      // the remote replica by host and export alone: NBD's port 10809 is implied
      resource('mayastor_nexus', 'v', {
        node: 'a',
        uuid: NX,
        size_bytes: SIZE,
        children: [`bdev:///${RA}`, `nbd://127.0.0.1/${RB}`],
        share: 'nbd',
        depends_on: [ref('mayastor_replica.a'), ref('mayastor_replica.b')],
      }),
      output('device_uri', ref('mayastor_nexus.v.device_uri')),
    ].join(''),
  );
});

afterAll(async () => {
  await tb?.stop();
});

test('a pool named db:1 and an nbd:// child without a port apply, plan is then empty, data reads back', async () => {
  expectOk(tfd.run('apply', '-no-color', '-input=false', '-auto-approve'));
  expect((await agents.a.client().getPool('db:1'))!.state).toBe('online');
  const n = (await agents.a.client().getNexus(NX))!;
  expect(n.children.map((c) => [c.uri, c.state])).toEqual([
    [`bdev:///${RA}`, 'online'],
    [`nbd://127.0.0.1/${RB}`, 'online'],
  ]);
  tfd.expectNoChanges();
  const device = JSON.parse(expectOk(tfd.run('output', '-json', 'device_uri'))) as string;
  await qemuIoOk(device, ['write -P 0x5d 0 2M', 'flush', 'read -P 0x5d 0 2M']);
  // the remote child holds it too, at the nexus's data offset (1 MiB)
  await qemuIoOk(`nbd://127.0.0.1:${NBD_DEFAULT_PORT}/${RB}`, ['read -P 0x5d 1M 2M']);
  // and the import id of such a pool is NODE/NAME as usual
  expect(expectOk(tfd.run('state', 'show', '-no-color', 'mayastor_pool.a'))).toContain('db:1');
  expectOk(tfd.run('destroy', '-no-color', '-input=false', '-auto-approve'));
  expect(await agents.a.client().getPool('db:1')).toBeUndefined();
});
