/**
 * Issue 14 item 4 with the real `terraform`: the provider against agents serving TLS. The right CA (ca_cert_file)
 * applies a pool and a replica and plans empty; a client certificate answers --tls-client-ca; a wrong CA, plain
 * http:// to a TLS agent and https:// to a plain agent each fail with a diagnostic naming the node and the reason;
 * with TLS configured an http:// node URL is refused at validate, and a raw TCP listener on that URL sees no byte
 * (so no Authorization header) during the whole plan.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { TlsFiles, makeTlsFiles } from '../../scripts/lib/agent-process';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir } from '../helpers/agent';
import { HclValue, TerraformDir, expectOk, installProvider, providerHcl, ref, resource } from '../helpers/terraform';

jest.setTimeout(300_000);

const TOKEN = 'tls-test-token-0123456789';
const PLAN = ['plan', '-no-color', '-input=false'];
let work: string;
let rc: string;
let pki: TlsFiles;
let other: TlsFiles;
let tlsAgent: AgentProcess;
let mtlsAgent: AgentProcess;
let plainAgent: AgentProcess;
let dirs = 0;

/** A Terraform dir over `nodes` with provider `settings` and `body`, initialised. */
function tf(nodes: Record<string, string>, settings: Record<string, HclValue>, body = ''): TerraformDir {
  const t = new TerraformDir(path.join(work, `tf${dirs++}`), rc, TOKEN);
  fs.mkdirSync(t.dir, { recursive: true });
  t.write(providerHcl(nodes, settings) + body);
  expectOk(t.run('init', '-no-color', '-input=false'));
  return t;
}

const nodeData = (node: string) => `data "mayastor_node" "n" {\n  node = "${node}"\n}\n`;

beforeAll(async () => {
  work = tempDir('mayastor-provider-tls-');
  rc = path.join(work, 'terraformrc');
  installProvider(work, rc, false);
  pki = makeTlsFiles(path.join(work, 'pki'));
  other = makeTlsFiles(path.join(work, 'other'), ['127.0.0.1'], 'other');
  const tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
  const tok = ['--token-file', tokenFile];
  makeDisk(path.join(work, 'a', 'disks', 'd0.img'), 64 * MiB);
  tlsAgent = new AgentProcess({ node: 'a', dataDir: path.join(work, 'a'), tls: pki, extraArgs: tok });
  mtlsAgent = new AgentProcess({ node: 'b', dataDir: path.join(work, 'b'), tls: { ...pki, clientCa: pki.ca }, extraArgs: tok });
  plainAgent = new AgentProcess({ node: 'c', dataDir: path.join(work, 'c'), extraArgs: tok });
  await Promise.all([tlsAgent.start(), mtlsAgent.start(), plainAgent.start()]);
});

afterAll(async () => {
  for (const a of [tlsAgent, mtlsAgent, plainAgent]) await a?.kill9();
  cleanup(work);
});

test('the right CA: a pool and a replica apply over https://, the plan after is empty, destroy', () => {
  const body =
    resource('mayastor_pool', 'p', { node: 'a', name: 'p', disks: [path.join(work, 'a', 'disks', 'd0.img')] }) +
    resource('mayastor_replica', 'r', { node: 'a', pool: ref('mayastor_pool.p.name'), size_bytes: 8 * MiB });
  const t = tf({ a: tlsAgent.url }, { ca_cert_file: pki.ca }, body);
  expect(tlsAgent.url).toMatch(/^https:/);
  expectOk(t.run('apply', '-no-color', '-input=false', '-auto-approve'));
  t.expectNoChanges();
  expectOk(t.run('destroy', '-no-color', '-input=false', '-auto-approve'));
});

test('a client certificate (client_cert_pem/client_key_pem) answers --tls-client-ca; without it the handshake fails naming the node', () => {
  const pem = (f: string) => fs.readFileSync(f, 'utf8');
  const ok = tf({ b: mtlsAgent.url }, { ca_cert_pem: pem(pki.ca), client_cert_pem: pem(pki.clientCert!), client_key_pem: pem(pki.clientKey!) }, nodeData('b'));
  expectOk(ok.run(...PLAN));
  const no = tf({ b: mtlsAgent.url }, { ca_cert_pem: pem(pki.ca) }, nodeData('b'));
  const r = no.run(...PLAN);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/node "b"/);
  const half = tf({ b: mtlsAgent.url }, { ca_cert_pem: pem(pki.ca), client_cert_pem: pem(pki.clientCert!) }, nodeData('b'));
  const h = half.run(...PLAN);
  expect(h.code).toBe(1);
  expect(h.out).toMatch(/Missing client_key_pem/);
});

test('a wrong CA: the diagnostic names the node and the certificate', () => {
  const t = tf({ a: tlsAgent.url }, { ca_cert_file: other.ca }, nodeData('a'));
  const r = t.run(...PLAN);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/TLS to the agent on node "a" failed/);
  expect(r.out).toMatch(/certificate/);
});

test('plain http:// to a TLS agent, and https:// to a plain agent: the node and the reason', () => {
  const toTls = tf({ a: tlsAgent.url.replace('https:', 'http:') }, {}, nodeData('a'));
  const r1 = toTls.run(...PLAN);
  expect(r1.code).toBe(1);
  expect(r1.out).toMatch(/node "a"/);
  expect(r1.out).toMatch(/if it serves TLS \(--tls-cert\),\s+use an\s+https:\/\/ URL/);
  const toPlain = tf({ c: plainAgent.url.replace('http:', 'https:') }, { ca_cert_file: pki.ca }, nodeData('c'));
  const r2 = toPlain.run(...PLAN);
  expect(r2.code).toBe(1);
  expect(r2.out).toMatch(/TLS to the agent on node "c" failed/);
  expect(r2.out).toMatch(/did not answer with\s+TLS/);
});

test('TLS configured and an http:// node URL: refused at validate; a raw listener there receives nothing', async () => {
  const got: Buffer[] = [];
  let connections = 0;
  const srv = net.createServer((s) => {
    connections++;
    s.on('data', (d) => got.push(d));
    s.destroy();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  try {
    const t = tf({ eve: url }, { ca_cert_file: pki.ca }, nodeData('eve'));
    const r = t.run(...PLAN);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/Plain http:\/\/ URL with TLS configured/);
    expect(r.out).toMatch(/node "eve"/);
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
  expect(connections).toBe(0);
  expect(Buffer.concat(got).toString('latin1')).not.toMatch(/authorization/i);
});

test('bad TLS settings name their attribute', () => {
  const t = tf({ a: tlsAgent.url }, { ca_cert_pem: 'not a pem', ca_cert_file: pki.ca }, nodeData('a'));
  const r = t.run(...PLAN);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/Invalid ca_cert_pem/);
  expect(r.out).toMatch(/Conflicting ca_cert_pem and ca_cert_file/);
  const missing = tf({ a: tlsAgent.url }, { ca_cert_file: path.join(work, 'nope.pem') }, nodeData('a'));
  const m = missing.run(...PLAN);
  expect(m.code).toBe(1);
  expect(m.out).toMatch(/cannot read ca_cert_file/);
});
