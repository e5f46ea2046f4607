/**
 * The provider driven by the real `terraform` binary (v1.11 on PATH) against real agents on 127.0.0.1:
 * offline init from a filesystem mirror, schema, validate/plan diagnostics, apply/plan/destroy of pools and
 * replicas, growth in place, drift, import, an agent down during plan, a pool that still holds replicas.
 *
 * Needs: `terraform` on PATH (or TERRAFORM_BINARY_NAME), the native library (agent/native/build/libdatapath.so
 * or MAYASTOR_DATAPATH_LIB). The suite builds the TypeScript itself (scripts/install-provider.js).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AgentClient } from '../../agent/api/client';
import { TerraformDir, expectOk, installProvider, terraformBinary as terraform } from '../helpers/terraform';

const root = path.resolve(__dirname, '..', '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mayastor-provider-it-'));
const rc = path.join(work, 'terraformrc');
const tfDir = path.join(work, 'tf');
const token = randomBytes(16).toString('hex');
const tokenFile = path.join(work, 'token');

const R1 = '11111111-2222-4333-8444-555555555555'; // thin, node a
const R2 = '66666666-7777-4888-9999-aaaaaaaaaaaa'; // thick, node b

interface Agent {
  node: string;
  dir: string;
  url: string;
  port: number;
  proc?: ChildProcess;
  client: AgentClient;
}
const agents: Record<string, Agent> = {};

const tfd = new TerraformDir(tfDir, rc, token);
const tf = (...args: string[]) => tfd.run(...args);
const expectNoChanges = () => tfd.expectNoChanges();

async function startAgent(node: string, port = 0): Promise<Agent> {
  const dir = agents[node]?.dir ?? path.join(work, `agent-${node}`);
  fs.mkdirSync(path.join(dir, 'disks'), { recursive: true });
  const proc = spawn(
    path.join(root, 'bin', 'mayastor-agent'),
    ['--node', node, '--listen', `127.0.0.1:${port}`, '--data-dir', dir, '--token-file', tokenFile, '--nbd-listen', '127.0.0.1:0'],
    {
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      log += d.toString();
      const m = /"event":"agent\.listening".*?"url":"([^"]+)"/.exec(log);
      if (m) resolve(m[1]);
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`agent ${node} exited (${code}) before listening:\n${log}`)));
  });
  const a: Agent = { node, dir, url, port: Number(new URL(url).port), proc, client: new AgentClient({ url, token, node }) };
  agents[node] = a;
  return a;
}

async function stopAgent(node: string): Promise<void> {
  const p = agents[node]?.proc;
  if (!p || p.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

function writeConfig(opts: { aSize?: number; extra?: string; replicas?: boolean } = {}): void {
  const aDisk = path.join(agents.a.dir, 'disks', 'a0.img');
  const bDisk = path.join(agents.b.dir, 'disks', 'b0.img');
  const replicas =
    opts.replicas === false
      ? ''
      : `
resource "mayastor_replica" "thin" {
  node       = "a"
  pool       = mayastor_pool.a.name
  uuid       = "${R1}"
  size_bytes = ${opts.aSize ?? 4 * 1024 * 1024}
  thin       = true
}

resource "mayastor_replica" "thick" {
  node       = "b"
  pool       = mayastor_pool.b.name
  uuid       = "${R2}"
  size_bytes = ${8 * 1024 * 1024}
}
`;
  fs.writeFileSync(
    path.join(tfDir, 'main.tf'),
    `
terraform {
  required_providers {
    mayastor = { source = "mayastor/mayastor" }
  }
}

provider "mayastor" {
  nodes = {
    a = "${agents.a.url}"
    b = "${agents.b.url}"
  }
  request_timeout_seconds = 10
  retries                 = 1
}

resource "mayastor_pool" "a" {
  node  = "a"
  name  = "pool-a"
  disks = ["${aDisk}"]
}

resource "mayastor_pool" "b" {
  node  = "b"
  name  = "pool-b"
  disks = ["${bDisk}"]
}
${replicas}
data "mayastor_pools" "a" {
  node       = "a"
  depends_on = [mayastor_pool.a]
}
${opts.extra ?? ''}
`,
  );
}

beforeAll(async () => {
  const ver = spawnSync(terraform, ['version'], { encoding: 'utf8' });
  if (ver.error) throw new Error(`terraform binary "${terraform}" not found on PATH (set TERRAFORM_BINARY_NAME): ${ver.error.message}`);
  installProvider(work, rc);
  fs.writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  fs.mkdirSync(tfDir, { recursive: true });
  await startAgent('a');
  await startAgent('b');
  fs.writeFileSync(path.join(agents.a.dir, 'disks', 'a0.img'), '');
  fs.truncateSync(path.join(agents.a.dir, 'disks', 'a0.img'), 64 * 1024 * 1024);
  fs.writeFileSync(path.join(agents.b.dir, 'disks', 'b0.img'), '');
  fs.truncateSync(path.join(agents.b.dir, 'disks', 'b0.img'), 64 * 1024 * 1024);
}, 180_000);

afterAll(async () => {
  await stopAgent('a');
  await stopAgent('b');
  fs.rmSync(work, { recursive: true, force: true });
});

test('terraform init works offline from the filesystem mirror', () => {
  writeConfig();
  const out = expectOk(tf('init', '-no-color', '-input=false'));
  expect(out).toMatch(/Installing mayastor\/mayastor v0\.1\.0/);
  expect(out).toMatch(/Terraform has been successfully initialized/);
});

test('providers schema -json shows every resource and data source', () => {
  const schema = JSON.parse(
    expectOk(tf('providers', 'schema', '-json'))
      .trim()
      .split('\n')[0],
  );
  const p = schema.provider_schemas['registry.terraform.io/mayastor/mayastor'];
  expect(Object.keys(p.resource_schemas).sort()).toEqual([
    'mayastor_nexus',
    'mayastor_pool',
    'mayastor_replica',
    'mayastor_snapshot',
    'mayastor_volume_snapshot',
  ]);
  expect(Object.keys(p.data_source_schemas).sort()).toEqual(['mayastor_nexus', 'mayastor_node', 'mayastor_pools', 'mayastor_replica']);
  expect(p.provider.block.attributes.token.sensitive).toBe(true);
  expect(p.resource_schemas.mayastor_replica.block.attributes.size_bytes).toMatchObject({ type: 'number', required: true });
  expect(p.resource_schemas.mayastor_replica.block.attributes.uri).toMatchObject({ type: 'string', computed: true });
});

test('validate: bad size, share and child URI are diagnosed on their attribute', () => {
  writeConfig({
    extra: `
resource "mayastor_replica" "bad" {
  node       = "a"
  pool       = "pool-a"
  uuid       = "99999999-2222-4333-8444-555555555555"
  size_bytes = 1000
  share      = "smb"
}
resource "mayastor_nexus" "bad" {
  node       = "a"
  uuid       = "99999999-2222-4333-8444-000000000000"
  size_bytes = 1048576
  children   = ["nbd://nohost:1/", "bdev:///${R1}"]
}
`,
  });
  const r = tf('validate', '-no-color');
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/Error: Invalid size_bytes[\s\S]*size_bytes = 1000[\s\S]*multiple of 512/);
  expect(r.out).toMatch(/Error: Invalid share[\s\S]*share\s+= "smb"/);
  expect(r.out).toMatch(/Error: Invalid child URI[\s\S]*children\s+= \["nbd:\/\/nohost:1\/"[\s\S]*must be nbd:\/\/host\[:port\]\/<export>/);
  writeConfig();
  expectOk(tf('validate', '-no-color'));
});

test('plan: an unknown node is diagnosed naming it', () => {
  writeConfig({
    extra: `
resource "mayastor_pool" "c" {
  node  = "c"
  name  = "pool-c"
  disks = ["/nonexistent"]
}
`,
  });
  const r = tf('plan', '-no-color', '-input=false');
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/Error: Unknown node "c"[\s\S]*node\s+= "c"[\s\S]*known nodes: a, b/);
  writeConfig();
});

test('apply creates pools and thin/thick replicas; a second plan has no changes', async () => {
  writeConfig();
  expectOk(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  const thin = await agents.a.client.getReplica(R1);
  const thick = await agents.b.client.getReplica(R2);
  expect(thin).toMatchObject({ pool: 'pool-a', thin: true, sizeBytes: 4 * 1024 * 1024 });
  expect(thick).toMatchObject({ pool: 'pool-b', thin: false, sizeBytes: 8 * 1024 * 1024 });
  expectNoChanges();
  const state = JSON.parse(expectOk(tf('show', '-json')));
  const res = state.values.root_module.resources;
  const byAddr = Object.fromEntries(res.map((r: any) => [r.address, r.values]));
  expect(byAddr['mayastor_replica.thin']).toMatchObject({ id: `a/${R1}`, uri: `bdev:///${R1}`, allocated_bytes: expect.any(Number) });
  expect(byAddr['data.mayastor_pools.a'].pools[0]).toMatchObject({ name: 'pool-a', state: 'online' });
});

test('growth is in place; shrink is rejected at plan on size_bytes', async () => {
  writeConfig({ aSize: 8 * 1024 * 1024 });
  const plan = expectOk(tf('plan', '-no-color', '-input=false'));
  expect(plan).toMatch(/mayastor_replica\.thin will be updated in-place/);
  expect(plan).toMatch(/Plan: 0 to add, 1 to change, 0 to destroy/);
  expectOk(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  expect((await agents.a.client.getReplica(R1))!.sizeBytes).toBe(8 * 1024 * 1024);
  writeConfig({ aSize: 4 * 1024 * 1024 });
  const r = tf('plan', '-no-color', '-input=false');
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/Error: Replica cannot shrink[\s\S]*size_bytes = 4194304/);
  writeConfig({ aSize: 8 * 1024 * 1024 });
});

test('drift: a replica deleted through the agent API is re-created', async () => {
  writeConfig({ aSize: 8 * 1024 * 1024 });
  await agents.b.client.deleteReplica(R2);
  const r = tf('plan', '-no-color', '-input=false', '-detailed-exitcode');
  expect(r.code).toBe(2);
  expect(r.out).toMatch(/mayastor_replica\.thick will be created/);
  expectOk(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  expect(await agents.b.client.getReplica(R2)).toBeDefined();
  expectNoChanges();
});

test('import by NODE/NAME and NODE/UUID, then no changes', () => {
  writeConfig({ aSize: 8 * 1024 * 1024 });
  expectOk(tf('state', 'rm', 'mayastor_pool.a', 'mayastor_replica.thin'));
  expectOk(tf('import', '-no-color', '-input=false', 'mayastor_pool.a', 'a/pool-a'));
  expectOk(tf('import', '-no-color', '-input=false', 'mayastor_replica.thin', `a/${R1}`));
  const bad = tf('import', '-no-color', '-input=false', 'mayastor_replica.thick', 'b/00000000-0000-4000-8000-000000000000');
  expect(bad.code).toBe(1);
  expect(bad.out).toMatch(/non-existent remote object/);
  expectNoChanges();
});

test('an agent down during plan is diagnosed naming the node; state is untouched; apply converges after', async () => {
  writeConfig({ aSize: 8 * 1024 * 1024 });
  const statePath = path.join(tfDir, 'terraform.tfstate');
  const before = fs.readFileSync(statePath, 'utf8');
  const port = agents.b.port;
  await stopAgent('b');
  const r = tf('plan', '-no-color', '-input=false');
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/Error: Agent on node "b" is unreachable/);
  expect(fs.readFileSync(statePath, 'utf8')).toBe(before);
  await startAgent('b', port);
  expectOk(tf('apply', '-no-color', '-input=false', '-auto-approve'));
  expectNoChanges();
});

test('destroying a pool that still holds replicas fails clearly; destroy works once they are gone', async () => {
  const extra = '33333333-2222-4333-8444-555555555555';
  await agents.a.client.putReplica(extra, { pool: 'pool-a', sizeBytes: 1024 * 1024, thin: true });
  const r = tf('destroy', '-no-color', '-input=false', '-auto-approve');
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/Error: Pool "pool-a" on node "a" still holds replicas/);
  await agents.a.client.deleteReplica(extra);
  expectOk(tf('destroy', '-no-color', '-input=false', '-auto-approve'));
  expect(await agents.a.client.listPools()).toEqual([]);
  expect(await agents.b.client.listReplicas()).toEqual([]);
});
