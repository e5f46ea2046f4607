/**
 * Issue 14 items 5 and 7 with the real `terraform` against a real agent. A producer configuration makes a pool, two
 * replicas and a nexus shared over NBD with `allowed_hosts`; a consumer configuration (its own state) reads them with
 * data sources `mayastor_replica` and `mayastor_nexus` by node and uuid: every attribute equals the producer's. A
 * missing uuid is an error naming the uuid and the node. `allowed_hosts` on the nexus changes in place (no replace),
 * and the agent enforces it: 127.0.0.1 reads the data written through the nexus (by checksum) while allowed, and is
 * refused once the list names another host. The L1 data source classes match the provider's schema.
 */
import { ProviderService } from '../../provider/protocol/framework';
import { makeProvider } from '../../provider/provider';
import { DataMayastorNexus } from '../../constructs/l1/data-mayastor-nexus';
import { DataMayastorReplica } from '../../constructs/l1/data-mayastor-replica';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { MiB, ROOT, expectAgentError, makeDisk } from '../helpers/agent';
import { BINDINGS, checkBindings, fromGetProviderSchema } from '../helpers/constructs-schema-check';
import { nbdReadAll, qemuIo, qemuIoOk, sha256 } from '../helpers/nbd';
import { ProviderTestbed, TerraformDir, expectOk, output, ref, resource } from '../helpers/terraform';

jest.setTimeout(300_000);

const APPLY = ['-no-color', '-input=false', '-auto-approve'];
const VOL = 8 * MiB;
const R0 = '11111111-2222-4333-8444-000000000000';
const R1 = '11111111-2222-4333-8444-000000000001';
const NX = '11111111-2222-4333-8444-0000000000ff';
let tb: ProviderTestbed;
let producer: TerraformDir;

function producerHcl(allowed: string[]): string {
  return [
    tb.provider({ rebuild_timeout_seconds: 120 }),
    resource('mayastor_pool', 'p', { node: 'a', name: 'pa', disks: [tb.disk('a')] }),
    ...[R0, R1].map((u, i) =>
      resource('mayastor_replica', `r${i}`, {
        node: 'a',
        pool: ref('mayastor_pool.p.name'),
        uuid: u,
        size_bytes: ref(`provider::mayastor::replica_size(${VOL})`),
      }),
    ),
    resource('mayastor_nexus', 'n', {
      node: 'a',
      uuid: NX,
      size_bytes: VOL,
      children: ref('[mayastor_replica.r0.uri, mayastor_replica.r1.uri]'),
      share: 'nbd',
      allowed_hosts: allowed,
    }),
    output('nexus', ref('mayastor_nexus.n')),
    output('replica', ref('mayastor_replica.r0')),
  ].join('\n');
}

function consumerHcl(replica: string, nexus: string): string {
  return [
    tb.provider(),
    `data "mayastor_replica" "r" {\n  node = "a"\n  uuid = "${replica}"\n}\n`,
    `data "mayastor_nexus" "n" {\n  node = "a"\n  uuid = "${nexus}"\n}\n`,
    output('nexus', ref('data.mayastor_nexus.n')),
    output('replica', ref('data.mayastor_replica.r')),
  ].join('\n');
}

function outputs(t: TerraformDir): Record<string, { value: Record<string, unknown> }> {
  return JSON.parse(expectOk(t.run('output', '-json')).trim()) as Record<string, { value: Record<string, unknown> }>;
}

beforeAll(async () => {
  tb = await ProviderTestbed.start('mayastor-data-sources-', { a: { disks: { 'd0.img': 64 * MiB } } });
  producer = tb.dir('producer', producerHcl(['127.0.0.1']));
  expectOk(producer.run('apply', ...APPLY));
});

afterAll(async () => {
  if (producer) producer.run('destroy', ...APPLY);
  await tb?.stop();
});

test('data sources read every attribute of a replica and a nexus made by another configuration', () => {
  const made = outputs(producer);
  const consumer = tb.dir('consumer', consumerHcl(R0, NX));
  expectOk(consumer.run('apply', ...APPLY));
  const read = outputs(consumer);
  const { timeouts: _t, ...nexus } = made.nexus.value;
  expect(read.nexus.value).toEqual(nexus);
  const { source_snapshot: _s, ...replica } = made.replica.value;
  expect(read.replica.value).toEqual(replica);
  expect(read.nexus.value.allowed_hosts).toEqual(['127.0.0.1']);
  expect(read.nexus.value.device_uri).toMatch(/^nbd:\/\/.*11111111-2222-4333-8444-0000000000ff$/);
  consumer.expectNoChanges();
});

test('a uuid that does not exist: the error names the uuid and the node', () => {
  const missing = '99999999-2222-4333-8444-000000000000';
  const consumer = tb.dir('missing', consumerHcl(missing, missing));
  const r = consumer.run('plan', '-no-color', '-input=false');
  expect(r.code).toBe(1);
  expect(r.out).toContain(`Replica ${missing} not found on node "a"`);
  expect(r.out).toContain(`Nexus ${missing} not found on node "a"`);
  const bad = tb.dir('bad-uuid', consumerHcl('not-a-uuid', NX));
  const b = bad.run('plan', '-no-color', '-input=false');
  expect(b.code).toBe(1);
  expect(b.out).toMatch(/Invalid uuid/);
});

test('nexus allowed_hosts changes in place and the agent enforces it (data by checksum while allowed)', async () => {
  const uri = (outputs(producer).nexus.value.device_uri as string) ?? '';
  await qemuIoOk(uri, ['write -P 0x6b 0 1M']);
  const want = Buffer.concat([Buffer.alloc(MiB, 0x6b), Buffer.alloc(VOL - MiB)]);
  expect(sha256(nbdReadAll(uri, 2 * VOL))).toBe(sha256(want));
  // only another host: 127.0.0.1 is refused, in place
  producer.write(producerHcl(['10.9.9.9']));
  const plan = expectOk(producer.run('plan', '-no-color', '-input=false'));
  expect(plan).toMatch(/1 to change, 0 to destroy/);
  expect(plan).not.toMatch(/must be replaced/);
  expectOk(producer.run('apply', ...APPLY));
  const refused = await qemuIo(uri, ['read 0 4k']);
  expect(refused.code).not.toBe(0);
  producer.expectNoChanges();
  // back to everyone ([]): readable again, same bytes
  producer.write(producerHcl([]));
  expectOk(producer.run('apply', ...APPLY));
  expect(sha256(nbdReadAll(uri, 2 * VOL))).toBe(sha256(want));
  producer.expectNoChanges();
});

test('agent: nexus allowedHosts checked (400 naming the entry), compared on PUT (409), persisted and applied after a restart, changed by PATCH and mayastorctl', async () => {
  const a = tb.agents.a;
  const uuid = '22222222-2222-4333-8444-0000000000aa';
  // a file child (its label survives the restart below; a malloc:// one would not)
  const file = makeDisk(path.join(a.opts.dataDir, 'disks', 'h14.img'), 8 * MiB);
  const spec = { sizeBytes: 4 * MiB, children: [`aio://${file}`], share: 'nbd' as const };
  const c = a.client();
  await expectAgentError(c.putNexus(uuid, { ...spec, allowedHosts: ['not an address'] }), 400, 'allowedHosts[0]');
  await expectAgentError(
    c.putNexus(uuid, { ...spec, allowedHosts: ['nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555'] }),
    400,
    'allowedHosts[0]',
  );
  expect(await c.getNexus(uuid)).toBeUndefined();
  const made = await c.putNexus(uuid, { ...spec, allowedHosts: ['10.1.1.1'] });
  expect(made.allowedHosts).toEqual(['10.1.1.1']);
  expect((await c.putNexus(uuid, { ...spec, allowedHosts: ['10.1.1.1'] })).allowedHosts).toEqual(['10.1.1.1']);
  await expectAgentError(c.putNexus(uuid, { ...spec, allowedHosts: ['10.1.1.2'] }), 409, 'allowedHosts');
  expect((await qemuIo(made.deviceUri, ['read 0 4k'])).code).not.toBe(0);
  // a restart restores the share with its allowlist
  await a.restart();
  const c2 = a.client();
  const back = await c2.getNexus(uuid);
  expect(back?.allowedHosts).toEqual(['10.1.1.1']);
  expect((await qemuIo(back!.deviceUri, ['read 0 4k'])).code).not.toBe(0);
  // PATCH: everyone again, the data path serves 127.0.0.1 (written and read back)
  await expectAgentError(c2.patchNexus(uuid, { allowedHosts: ['10.0.0.0/99'] }), 400, 'allowedHosts[0]');
  expect((await c2.patchNexus(uuid, { allowedHosts: [] })).allowedHosts).toEqual([]);
  await qemuIoOk(back!.deviceUri, ['write -P 0x21 0 64k', 'read -P 0x21 0 64k']);
  // mayastorctl nexus set --allowed-hosts
  const ctl = spawnSync(
    process.execPath,
    [path.join(ROOT, 'bin/mayastorctl'), '--url', a.url, '--token', a.token, '--json', 'nexus', 'set', uuid, '--allowed-hosts', '10.3.3.3,10.4.0.0/16'],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  expect(ctl.stderr).toBe('');
  expect((JSON.parse(ctl.stdout) as { allowedHosts: string[] }).allowedHosts).toEqual(['10.3.3.3', '10.4.0.0/16']);
  await c2.deleteNexus(uuid);
});

test('L1 DataMayastorReplica and DataMayastorNexus match the provider schema (cdktf get shape)', () => {
  const ctor = (c: unknown) => c as (typeof BINDINGS)[number]['ctor'];
  for (const [tfType, file, className, c] of [
    ['mayastor_replica', 'data-mayastor-replica.ts', 'DataMayastorReplica', DataMayastorReplica],
    ['mayastor_nexus', 'data-mayastor-nexus.ts', 'DataMayastorNexus', DataMayastorNexus],
  ] as const) {
    if (!BINDINGS.some((b) => b.kind === 'data' && b.tfType === tfType)) {
      BINDINGS.push({ kind: 'data', tfType, file, className, configName: `${className}Config`, ctor: ctor(c) });
    }
  }
  const schema = fromGetProviderSchema(new ProviderService(makeProvider()).getProviderSchema() as Record<string, unknown>);
  const mine = checkBindings(schema).filter((p) => /data\.mayastor_(replica|nexus)\b|^mayastor_nexus\b|^mayastor\b/.test(p));
  expect(mine).toEqual([]);
});
