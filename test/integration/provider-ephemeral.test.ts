/**
 * Issue 14 item 4's leftovers with the real `terraform` (>= 1.10) and real TLS agents:
 * - the token from an ephemeral, sensitive input variable (TF_VAR_mayastor_token; MAYASTOR_TOKEN unset): plan -out,
 *   apply of the saved plan, an empty plan after, destroy; the token's bytes are in no entry of the plan file, not in
 *   `terraform show -json` of the plan or the state, not in terraform.tfstate, nowhere under the working directory and
 *   not in the provider daemon's log; a wrong ephemeral token fails naming the node and the 401.
 * - per-node CAs: agents a and b have certificates from two different CAs; one bundle of both (ca_cert_pem, then
 *   ca_cert_file) reaches both; a bundle of CA a alone fails on node b naming the node and the certificate; a bundle
 *   with an unreadable or unterminated certificate is refused naming the attribute (Node's TLS would silently drop
 *   every CA after it).
 * One agent pair and one `terraform init` (later working dirs copy its .terraform).
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { TlsFiles, makeTlsFiles } from '../../scripts/lib/agent-process';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir } from '../helpers/agent';
import { HclValue, TerraformDir, expectOk, installProvider, providerDaemons, providerHcl, ref, resource } from '../helpers/terraform';

jest.setTimeout(300_000);

const TOKEN = `ephemeral-${process.pid}-7f3c9a1e5b2d4c6e8a0b`;
const PLAN = ['plan', '-no-color', '-input=false'];
const APPLY = ['apply', '-no-color', '-input=false', '-auto-approve'];
const DESTROY = ['destroy', '-no-color', '-input=false', '-auto-approve'];
const EPHEMERAL_VAR = 'variable "mayastor_token" {\n  type      = string\n  ephemeral = true\n  sensitive = true\n}\n';

let work: string;
let rc: string;
let runtimeDir: string;
let caA: TlsFiles;
let caB: TlsFiles;
let a: AgentProcess;
let b: AgentProcess;
let first: string | undefined;
let dirs = 0;

/** A Terraform dir whose provider token comes only from TF_VAR_mayastor_token (`tfVar`; none when undefined). */
class EphemeralDir extends TerraformDir {
  tfVar: string | undefined = TOKEN;

  constructor(dir: string) {
    super(dir, rc, '');
  }

  override env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...super.env(), XDG_RUNTIME_DIR: runtimeDir };
    delete env.MAYASTOR_TOKEN;
    delete env.TF_VAR_mayastor_token;
    if (this.tfVar !== undefined) env.TF_VAR_mayastor_token = this.tfVar;
    return env;
  }
}

/** A working dir with `hcl`: the first one runs `terraform init`, the others copy its .terraform and lock file. */
function tf(hcl: string): EphemeralDir {
  const t = new EphemeralDir(path.join(work, `tf${dirs++}`));
  fs.mkdirSync(t.dir, { recursive: true });
  t.write(hcl);
  if (first === undefined) {
    expectOk(t.run('init', '-no-color', '-input=false'));
    first = t.dir;
  } else {
    for (const n of ['.terraform', '.terraform.lock.hcl']) fs.cpSync(path.join(first, n), path.join(t.dir, n), { recursive: true, verbatimSymlinks: true });
  }
  return t;
}

/** The provider block over both agents, the token from the ephemeral variable. */
const provider = (settings: Record<string, HclValue>) => EPHEMERAL_VAR + providerHcl({ a: a.url, b: b.url }, { token: ref('var.mayastor_token'), ...settings });
const disk = (node: string) => path.join(work, node, 'disks', 'd0.img');
const pools = () =>
  resource('mayastor_pool', 'a', { node: 'a', name: 'pa', disks: [disk('a')] }) + resource('mayastor_pool', 'b', { node: 'b', name: 'pb', disks: [disk('b')] });

/** Every entry of a zip file (a saved plan), inflated: name → bytes. Stored and deflated entries, as Go's archive/zip writes. */
function zipEntries(file: string): Map<string, Buffer> {
  const z = fs.readFileSync(file);
  const eocd = z.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error(`${file} is not a zip file`);
  const count = z.readUInt16LE(eocd + 10);
  let p = z.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    if (z.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: bad central directory entry ${i}`);
    const method = z.readUInt16LE(p + 10);
    const size = z.readUInt32LE(p + 20);
    const [nameLen, extraLen, commentLen] = [z.readUInt16LE(p + 28), z.readUInt16LE(p + 30), z.readUInt16LE(p + 32)];
    const local = z.readUInt32LE(p + 42);
    const name = z.toString('utf8', p + 46, p + 46 + nameLen);
    const start = local + 30 + z.readUInt16LE(local + 26) + z.readUInt16LE(local + 28);
    const raw = z.subarray(start, start + size);
    if (method !== 0 && method !== 8) throw new Error(`${file}: entry ${name} uses compression method ${method}`);
    out.set(name, method === 8 ? zlib.inflateRawSync(raw) : raw);
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

/** Every file under `dir` (symlinks not followed). */
function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const f = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(f) : e.isFile() ? [f] : [];
  });
}

/** Data sources that read both nodes at plan. */
const nodesData = ['a', 'b'].map((n) => `data "mayastor_node" "${n}" {\n  node = "${n}"\n}\n`).join('');

const holdsToken = (bytes: Buffer | string) => Buffer.from(bytes).includes(TOKEN);

beforeAll(async () => {
  work = tempDir('mayastor-provider-ephemeral-');
  rc = path.join(work, 'terraformrc');
  // a provider daemon of this suite's own, so its log is ours to read and its pids ours to end
  runtimeDir = path.join(work, 'run');
  fs.mkdirSync(runtimeDir, { mode: 0o700 });
  installProvider(work, rc, false);
  caA = makeTlsFiles(path.join(work, 'pki-a'), ['127.0.0.1'], 'ca-a');
  caB = makeTlsFiles(path.join(work, 'pki-b'), ['127.0.0.1'], 'ca-b');
  const tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
  makeDisk(disk('a'), 32 * MiB);
  makeDisk(disk('b'), 32 * MiB);
  a = new AgentProcess({ node: 'a', dataDir: path.join(work, 'a'), tls: caA, extraArgs: ['--token-file', tokenFile] });
  b = new AgentProcess({ node: 'b', dataDir: path.join(work, 'b'), tls: caB, extraArgs: ['--token-file', tokenFile] });
  await Promise.all([a.start(), b.start()]);
});

afterAll(async () => {
  for (const ag of [a, b]) await ag?.kill9();
  if (runtimeDir) for (const pid of providerDaemons(path.join(runtimeDir, 'mayastor-provider'))) process.kill(pid, 'SIGKILL');
  if (work) cleanup(work);
});

test('the two agents really have certificates from two different CAs', () => {
  const pem = (f: string) => fs.readFileSync(f, 'utf8');
  expect(pem(caA.ca)).not.toEqual(pem(caB.ca));
  expect(a.url).toMatch(/^https:/);
  expect(b.url).toMatch(/^https:/);
});

test('an ephemeral token: plan -out, apply of the plan, empty plan, destroy; its bytes are in no plan, state or show output', () => {
  const bundle = fs.readFileSync(caA.ca, 'utf8') + fs.readFileSync(caB.ca, 'utf8');
  const t = tf(provider({ ca_cert_pem: bundle }) + pools());
  expect(t.env().MAYASTOR_TOKEN).toBeUndefined();
  expectOk(t.run(...PLAN, '-out=tfplan'));
  const planFile = path.join(t.dir, 'tfplan');
  const entries = zipEntries(planFile);
  expect(entries.size).toBeGreaterThan(1);
  expect([...entries].filter(([, bytes]) => holdsToken(bytes)).map(([n]) => n)).toEqual([]);
  const planJson = expectOk(t.run('show', '-json', 'tfplan'));
  expect(JSON.parse(planJson.slice(0, planJson.lastIndexOf('}') + 1)).resource_changes).toHaveLength(2);
  expect(holdsToken(planJson)).toBe(false);

  // the plan file does not carry the ephemeral variable: apply wants it again, and gets it
  t.tfVar = undefined;
  const without = t.run('apply', '-no-color', '-input=false', 'tfplan');
  expect(without.code).toBe(1);
  expect(without.out).toMatch(/No value for required variable/);
  expect(without.out).toMatch(/ephemeral input variable "mayastor_token" was set during the plan phase/);
  t.tfVar = TOKEN;
  expectOk(t.run('apply', '-no-color', '-input=false', 'tfplan'));
  t.expectNoChanges();

  const state = fs.readFileSync(path.join(t.dir, 'terraform.tfstate'), 'utf8');
  expect(JSON.parse(state).resources).toHaveLength(2);
  expect(holdsToken(state)).toBe(false);
  const shown = expectOk(t.run('show', '-json'));
  expect(shown).toMatch(/"pa"/);
  expect(holdsToken(shown)).toBe(false);
  expect(filesUnder(t.dir).filter((f) => holdsToken(fs.readFileSync(f)))).toEqual([]);
  const daemonLogs = filesUnder(runtimeDir).filter((f) => f.endsWith('.log'));
  expect(daemonLogs.length).toBeGreaterThan(0);
  expect(daemonLogs.filter((f) => holdsToken(fs.readFileSync(f)))).toEqual([]);

  expectOk(t.run(...DESTROY));
  expect(JSON.parse(fs.readFileSync(path.join(t.dir, 'terraform.tfstate'), 'utf8')).resources).toEqual([]);
});

test('control: the same variable without `ephemeral` is written into the plan file, where the scan above finds it', () => {
  const t = tf(provider({ ca_cert_file: caA.ca }).replace('  ephemeral = true\n', '') + pools());
  expectOk(t.run(...PLAN, '-out=tfplan'));
  expect([...zipEntries(path.join(t.dir, 'tfplan'))].filter(([, bytes]) => holdsToken(bytes)).map(([n]) => n)).toEqual(['tfplan']);
});

test('a wrong ephemeral token: the diagnostic names the node and the 401; the wrong token is not echoed', () => {
  const t = tf(provider({ ca_cert_pem: fs.readFileSync(caA.ca, 'utf8') + fs.readFileSync(caB.ca, 'utf8') }) + nodesData);
  t.tfVar = 'not-the-token-3b8e51d0';
  const r = t.run(...PLAN);
  expect(r.code).toBe(1);
  for (const n of ['a', 'b']) {
    expect(r.out).toMatch(new RegExp(`Error: Agent on node "${n}" rejected the token`));
    expect(r.out).toMatch(new RegExp(`agent ${n}: the bearer token is wrong\\s+\\[401\\s+unauthorized\\]`));
  }
  expect(r.out).not.toContain('not-the-token-3b8e51d0');
});

test('one ca_cert_file bundle of both CAs: a pool on each node applies, plans empty, destroys', () => {
  const bundle = path.join(work, 'bundle.pem');
  fs.writeFileSync(bundle, fs.readFileSync(caA.ca, 'utf8') + fs.readFileSync(caB.ca, 'utf8'));
  const t = tf(provider({ ca_cert_file: bundle }) + pools());
  expectOk(t.run(...APPLY));
  t.expectNoChanges();
  expectOk(t.run(...DESTROY));
});

test('a bundle of CA a alone: node a answers, node b fails naming the node and its certificate', () => {
  const t = tf(provider({ ca_cert_pem: fs.readFileSync(caA.ca, 'utf8') }) + nodesData);
  const r = t.run(...PLAN);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/TLS to the agent on node "b" failed/);
  expect(r.out).toMatch(/the agent's certificate was\s+refused \(UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  expect(r.out).toMatch(/data\.mayastor_node\.a: Read complete/);
  expect(r.out).not.toMatch(/node "a" failed/);
});

test('CA b before CA a in the bundle, and comments between them, still reach both nodes', () => {
  const bundle = `# CA b\n${fs.readFileSync(caB.ca, 'utf8')}\n# CA a\n${fs.readFileSync(caA.ca, 'utf8')}`;
  const t = tf(provider({ ca_cert_pem: bundle }) + nodesData);
  expectOk(t.run(...PLAN));
});

test('a bundle with an unreadable certificate is refused naming the attribute and which certificate (Node would drop every CA after it)', () => {
  const [pemA, pemB] = [fs.readFileSync(caA.ca, 'utf8'), fs.readFileSync(caB.ca, 'utf8')];
  const corrupt = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
  const t = tf(provider({ ca_cert_pem: pemA + corrupt + pemB }) + nodesData);
  const r = t.run(...PLAN);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/Error: Invalid ca_cert_pem/);
  expect(r.out).toMatch(/certificate 2 of 3 cannot be read/);
  const truncated = path.join(work, 'truncated.pem');
  fs.writeFileSync(truncated, pemA + pemB.slice(0, 120));
  const f = tf(provider({ ca_cert_file: truncated }) + nodesData);
  const r2 = f.run(...PLAN);
  expect(r2.code).toBe(1);
  expect(r2.out).toMatch(/Error: Invalid ca_cert_file/);
  expect(r2.out).toMatch(/certificate 2 of 2 has no -----END CERTIFICATE----- line/);
});
