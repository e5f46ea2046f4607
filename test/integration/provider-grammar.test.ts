/**
 * The one grammar through the real terraform end to end (issue 11): a pool named `db:1` (the agent always took
 * such names; the provider used to refuse them, so such a pool could not be managed from Terraform) and a
 * nexus child `nbd://host/<export>` without a port (the data path's default, 10809; the provider used to
 * demand a port). Agent b serves NBD on 10809 for that. Data written through the volume reads back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir } from '../helpers/agent';
import { qemuIoOk } from '../helpers/nbd';
import { TerraformDir, expectOk, installProvider } from '../helpers/terraform';
import { NBD_DEFAULT_PORT } from '../../agent/api/limits';

jest.setTimeout(240_000);

const RA = 'dbdbdbdb-0000-4000-8000-000000000001';
const RB = 'dbdbdbdb-0000-4000-8000-000000000002';
const NX = 'dbdbdbdb-0000-4000-8000-0000000000ff';
const SIZE = 16 * MiB;

let work: string;
let tfd: TerraformDir;
const agents: Record<string, AgentProcess> = {};

beforeAll(async () => {
  work = tempDir('mayastor-provider-grammar-');
  const rc = path.join(work, 'terraformrc');
  const token = randomBytes(16).toString('hex');
  const tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  installProvider(work, rc, false);
  for (const [node, nbd] of [
    ['a', '127.0.0.1:0'],
    ['b', `127.0.0.1:${NBD_DEFAULT_PORT}`],
  ]) {
    const dataDir = path.join(work, node);
    makeDisk(path.join(dataDir, 'disks', 'd0.img'), 128 * MiB);
    agents[node] = await new AgentProcess({ node, dataDir, extraArgs: ['--token-file', tokenFile, '--nbd-listen', nbd] }).start();
  }
  const tfDir = path.join(work, 'tf');
  fs.mkdirSync(tfDir);
  fs.writeFileSync(
    path.join(tfDir, 'main.tf'),
    `
terraform {
  required_providers {
    mayastor = { source = "mayastor/mayastor" }
  }
}
provider "mayastor" {
  nodes = { a = "${agents.a.url}", b = "${agents.b.url}" }
}
resource "mayastor_pool" "a" {
  node  = "a"
  name  = "db:1"
  disks = ["${path.join(work, 'a', 'disks', 'd0.img')}"]
}
resource "mayastor_pool" "b" {
  node  = "b"
  name  = "db:2"
  disks = ["${path.join(work, 'b', 'disks', 'd0.img')}"]
}
resource "mayastor_replica" "a" {
  node       = "a"
  pool       = mayastor_pool.a.name
  uuid       = "${RA}"
  size_bytes = ${SIZE + MiB}
  thin       = true
}
resource "mayastor_replica" "b" {
  node       = "b"
  pool       = mayastor_pool.b.name
  uuid       = "${RB}"
  size_bytes = ${SIZE + MiB}
  thin       = true
  share      = "nbd"
}
resource "mayastor_nexus" "v" {
  node       = "a"
  uuid       = "${NX}"
  size_bytes = ${SIZE}
  # the remote replica by host and export alone: NBD's port 10809 is implied
  children   = ["bdev:///${RA}", "nbd://127.0.0.1/${RB}"]
  share      = "nbd"
  depends_on = [mayastor_replica.a, mayastor_replica.b]
}
output "device_uri" { value = mayastor_nexus.v.device_uri }
`,
  );
  tfd = new TerraformDir(tfDir, rc, token);
  expectOk(tfd.run('init', '-no-color', '-input=false'));
});

afterAll(async () => {
  for (const a of Object.values(agents)) await a.kill9();
  if (work) cleanup(work);
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
