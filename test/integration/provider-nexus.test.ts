/**
 * mayastor_nexus through the real `terraform` binary against two real agents: a 2-child nexus (a local replica
 * and a remote one shared over NBD) exported over NBD; data written with qemu-io survives a no-op apply;
 * a child removed out of band shows as a diff and apply re-adds and rebuilds it; import; destroy.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AgentClient } from '../../agent/api/client';
import { TerraformDir, expectOk, installProvider } from '../helpers/terraform';

const root = path.resolve(__dirname, '..', '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mayastor-provider-nexus-'));
const rc = path.join(work, 'terraformrc');
const tfDir = path.join(work, 'tf');
const token = randomBytes(16).toString('hex');
const tokenFile = path.join(work, 'token');

const RA = 'aaaaaaaa-0000-4000-8000-000000000001';
const RB = 'bbbbbbbb-0000-4000-8000-000000000002';
const NX = 'cccccccc-0000-4000-8000-000000000003';
const SIZE = 16 * 1024 * 1024;

interface Agent {
  node: string;
  dir: string;
  url: string;
  proc: ChildProcess;
  client: AgentClient;
}
const agents: Record<string, Agent> = {};

const tfd = new TerraformDir(tfDir, rc, token);
const tf = (...args: string[]) => tfd.run(...args);
const ok = expectOk;
const expectNoChanges = () => tfd.expectNoChanges();

async function startAgent(node: string): Promise<Agent> {
  const dir = path.join(work, `agent-${node}`);
  fs.mkdirSync(path.join(dir, 'disks'), { recursive: true });
  const proc = spawn(
    path.join(root, 'bin', 'mayastor-agent'),
    ['--node', node, '--listen', '127.0.0.1:0', '--data-dir', dir, '--token-file', tokenFile, '--nbd-listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    const on = (d: Buffer) => {
      log += d.toString();
      const m = /"event":"agent\.listening".*?"url":"([^"]+)"/.exec(log);
      if (m) resolve(m[1]);
    };
    proc.stdout!.on('data', on);
    proc.stderr!.on('data', on);
    proc.on('exit', (c) => reject(new Error(`agent ${node} exited (${c}):\n${log}`)));
  });
  const disk = path.join(dir, 'disks', 'd0.img');
  fs.writeFileSync(disk, '');
  fs.truncateSync(disk, 128 * 1024 * 1024);
  return (agents[node] = { node, dir, url, proc, client: new AgentClient({ url, token, node }) });
}

function writeConfig(nexusShare = 'nbd', size = SIZE, nexusSize = size - 1024 * 1024): void {
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
  rebuild_timeout_seconds = 120
  request_timeout_seconds = 20
  retries                 = 1
}
resource "mayastor_pool" "a" {
  node  = "a"
  name  = "pa"
  disks = ["${path.join(agents.a.dir, 'disks', 'd0.img')}"]
}
resource "mayastor_pool" "b" {
  node  = "b"
  name  = "pb"
  disks = ["${path.join(agents.b.dir, 'disks', 'd0.img')}"]
}
resource "mayastor_replica" "a" {
  node       = "a"
  pool       = mayastor_pool.a.name
  uuid       = "${RA}"
  size_bytes = ${size}
  thin       = true
}
resource "mayastor_replica" "b" {
  node       = "b"
  pool       = mayastor_pool.b.name
  uuid       = "${RB}"
  size_bytes = ${size}
  share      = "nbd"
}
resource "mayastor_nexus" "v" {
  node       = "a"
  uuid       = "${NX}"
  size_bytes = ${nexusSize}
  children   = [mayastor_replica.a.uri, mayastor_replica.b.uri]
  share      = "${nexusShare}"
}
output "device_uri" { value = mayastor_nexus.v.device_uri }
`,
  );
}

function qemuIo(uri: string, cmd: string): string {
  const u = new URL(uri);
  const target = `nbd://${u.host}${u.pathname}`;
  const r = spawnSync('qemu-io', ['-f', 'raw', '-c', cmd, target], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`qemu-io ${cmd} ${target} failed: ${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}

beforeAll(async () => {
  installProvider(work, rc);
  fs.writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  fs.mkdirSync(tfDir, { recursive: true });
  await startAgent('a');
  await startAgent('b');
  writeConfig();
  ok(tf('init', '-no-color', '-input=false'));
}, 180_000);

afterAll(async () => {
  for (const a of Object.values(agents)) {
    if (a.proc.exitCode !== null) continue;
    await new Promise<void>((r) => {
      const t = setTimeout(() => a.proc.kill('SIGKILL'), 10_000);
      a.proc.once('exit', () => {
        clearTimeout(t);
        r();
      });
      a.proc.kill('SIGTERM');
    });
  }
  fs.rmSync(work, { recursive: true, force: true });
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

test('data written through the nexus survives a second apply that changes nothing', () => {
  qemuIo(deviceUri, 'write -P 0x5a 0 1M');
  const out = ok(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  expect(out).toMatch(/0 added, 0 changed, 0 destroyed/);
  expect(qemuIo(deviceUri, 'read -P 0x5a 0 1M')).not.toMatch(/Pattern verification failed/);
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
  expect(qemuIo(deviceUri, 'read -P 0x5a 0 1M')).not.toMatch(/Pattern verification failed/);
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
  expect(qemuIo(deviceUri, 'read -P 0x5a 0 1M')).not.toMatch(/Pattern verification failed/);
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
  expect(qemuIo(deviceUri, 'read -P 0x5a 0 1M')).not.toMatch(/Pattern verification failed/);
  expect(qemuIo(deviceUri, `write -P 0x5b ${2 * SIZE - 2 * 1024 * 1024} 1M`)).not.toMatch(/error/i);
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
