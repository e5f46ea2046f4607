/**
 * Issue 14 item 4 at the agent and its client: `--tls-cert/--tls-key` serve the API over HTTPS, `--tls-client-ca`
 * requires client certificates; agent/api's client verifies the agent with a CA (IP SAN for 127.0.0.1) and refuses
 * an http:// URL when TLS is configured before sending a byte (a raw TCP listener proves no Authorization header,
 * no byte at all, left the client). Every failure names the node and the reason; mayastorctl takes --ca-cert.
 * Data written through a replica shared over NBD on the TLS agent reads back by checksum.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AgentClient, AgentError } from '../../agent/api/client';
import { parseArgs } from '../../agent/src/config';
import { loadTls } from '../../agent/src/main';
import { TlsFiles, clientTls, makeTlsFiles } from '../../scripts/lib/agent-process';
import { AgentProcess, MiB, ROOT, cleanup, makeDisk, startInProcess, tempDir } from '../helpers/agent';
import { nbdReadAll, qemuIoOk, sha256 } from '../helpers/nbd';

jest.setTimeout(120_000);

let work: string;
let good: TlsFiles;
let other: TlsFiles;
let tlsAgent: AgentProcess;
let mtlsAgent: AgentProcess;
let plainAgent: AgentProcess;

async function failure(p: Promise<unknown>): Promise<AgentError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AgentError) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  work = tempDir('mayastor-tls-');
  good = makeTlsFiles(path.join(work, 'pki'));
  other = makeTlsFiles(path.join(work, 'other-pki'), ['127.0.0.1'], 'other');
  tlsAgent = new AgentProcess({ node: 'tls-a', dataDir: path.join(work, 'a'), tls: good });
  mtlsAgent = new AgentProcess({ node: 'mtls-b', dataDir: path.join(work, 'b'), tls: { ...good, clientCa: good.ca } });
  plainAgent = new AgentProcess({ node: 'plain-c', dataDir: path.join(work, 'c') });
  makeDisk(path.join(work, 'a', 'disks', 'd0.img'), 64 * MiB);
  await Promise.all([tlsAgent.start(), mtlsAgent.start(), plainAgent.start()]);
});

afterAll(async () => {
  for (const a of [tlsAgent, mtlsAgent, plainAgent]) await a?.stop(5000);
  cleanup(work);
});

test('the agent serves https:// and the client verifies it with the CA (IP SAN); data reads back by checksum', async () => {
  expect(tlsAgent.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  const c = tlsAgent.client();
  const disk = path.join(work, 'a', 'disks', 'd0.img');
  await c.putPool('p', { disks: [disk] });
  const uuid = crypto.randomUUID();
  const r = await c.putReplica(uuid, { pool: 'p', sizeBytes: 8 * MiB, share: 'nbd' });
  expect(r.uri).toMatch(/^nbd:\/\//);
  // data through the share: 1 MiB of 0x5a written by qemu-io, the whole export read back by nbdcopy, by checksum
  await qemuIoOk(r.uri, ['write -P 0x5a 0 1M']);
  const want = Buffer.concat([Buffer.alloc(MiB, 0x5a), Buffer.alloc(7 * MiB)]);
  expect(sha256(nbdReadAll(r.uri, 16 * MiB))).toBe(sha256(want));
  await c.patchReplica(uuid, { share: 'none' });
  await c.deleteReplica(uuid);
  await c.deletePool('p');
  await c.close();
});

test('a CA that did not sign the agent: code tls, the node and "certificate" named, not retried', async () => {
  const c = new AgentClient({ url: tlsAgent.url, token: tlsAgent.token, node: 'tls-a', retries: 3, backoffMs: 10_000, tls: clientTls(other) });
  const e = await failure(c.listPools());
  expect(e.code).toBe('tls');
  expect(e.message).toContain('tls-a');
  expect(e.message).toMatch(/certificate/);
  await c.close();
});

test('plain http:// to a TLS agent names the node and the likely reason', async () => {
  const c = new AgentClient({ url: tlsAgent.url.replace('https:', 'http:'), token: tlsAgent.token, node: 'tls-a', retries: 0 });
  const e = await failure(c.listPools());
  expect(e.message).toContain('tls-a');
  expect(e.message).toMatch(/if it serves TLS \(--tls-cert\), use an https:\/\/ URL/);
});

test('https:// to a plain agent names the node and says it does not answer with TLS', async () => {
  const c = new AgentClient({ url: plainAgent.url.replace('http:', 'https:'), token: plainAgent.token, node: 'plain-c', retries: 0, tls: clientTls(good) });
  const e = await failure(c.listPools());
  expect(e.code).toBe('tls');
  expect(e.message).toContain('plain-c');
  expect(e.message).toMatch(/did not answer with TLS/);
  await c.close();
});

test('with a CA configured, an http:// URL is refused before a byte is sent (raw listener sees nothing)', async () => {
  const got: Buffer[] = [];
  let connections = 0;
  const srv = net.createServer((s) => {
    connections++;
    s.on('data', (d) => {
      got.push(d);
      s.destroy(); // a listener that is not an agent: it hangs up after the first bytes
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const c = new AgentClient({ url: `http://127.0.0.1:${port}`, token: 'secret-token-123', node: 'eve', retries: 2, tls: clientTls(good) });
  const e = await failure(c.listPools());
  expect(e.code).toBe('insecure');
  expect(e.message).toContain('eve');
  expect(e.message).toMatch(/plain http:\/\//);
  // and over https:// to a listener that is not our agent: the handshake never completes, so the token never leaves
  const c2 = new AgentClient({ url: `https://127.0.0.1:${port}`, token: 'secret-token-123', node: 'eve', retries: 0, timeoutMs: 1500, tls: clientTls(good) });
  await failure(c2.listPools());
  await c2.close();
  await new Promise<void>((r) => srv.close(() => r()));
  const bytes = Buffer.concat(got).toString('latin1');
  expect(connections).toBe(1); // only the https:// attempt connected
  expect(bytes).not.toMatch(/authorization/i);
  expect(bytes).not.toContain('secret-token-123');
  expect(bytes.charCodeAt(0)).toBe(0x16); // a TLS ClientHello record, nothing else
});

test('--tls-client-ca: no client certificate fails the handshake; the CA-signed one works', async () => {
  const noCert = new AgentClient({ url: mtlsAgent.url, token: mtlsAgent.token, node: 'mtls-b', retries: 0, tls: { ca: fs.readFileSync(good.ca) } });
  const e = await failure(noCert.listPools());
  expect(e.message).toContain('mtls-b');
  expect(e.code).toMatch(/tls|unreachable/);
  await noCert.close();
  const wrongCert = new AgentClient({ url: mtlsAgent.url, token: mtlsAgent.token, node: 'mtls-b', retries: 0, tls: { ...clientTls(good), ...pair(other) } });
  expect((await failure(wrongCert.listPools())).message).toContain('mtls-b');
  await wrongCert.close();
  const c = mtlsAgent.client();
  expect(await c.listPools()).toEqual([]);
  await c.close();
});

function pair(t: TlsFiles): { cert: string; key: string } {
  return { cert: fs.readFileSync(t.clientCert!, 'utf8'), key: fs.readFileSync(t.clientKey!, 'utf8') };
}

test('mayastorctl --ca-cert works; without it the certificate is refused', () => {
  const ctl = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [path.join(ROOT, 'bin/mayastorctl'), '--url', tlsAgent.url, '--token', tlsAgent.token, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 30_000,
    });
  const ok = ctl(['--ca-cert', good.ca, 'pool', 'list']);
  expect(ok.stderr).toBe('');
  expect(ok.status).toBe(0);
  const viaEnv = ctl(['node'], { MAYASTOR_CA_CERT: good.ca });
  expect(viaEnv.status).toBe(0);
  expect(viaEnv.stdout).toContain('tls-a');
  const bad = ctl(['pool', 'list']);
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/certificate/);
  const insecure = ctl(['--url', tlsAgent.url.replace('https:', 'http:'), '--ca-cert', good.ca, 'pool', 'list']);
  expect(insecure.status).toBe(1);
  expect(insecure.stderr).toMatch(/refusing to call .* over plain http/);
  const missingKey = ctl(['--ca-cert', good.ca, '--client-cert', good.clientCert!, 'pool', 'list']);
  expect(missingKey.status).toBe(2);
  expect(missingKey.stderr).toContain('--client-key');
  // a bundle of several CAs (agents certified by different CAs): the agent's CA second still verifies it
  const bundle = path.join(work, 'bundle.pem');
  fs.writeFileSync(bundle, fs.readFileSync(other.ca, 'utf8') + fs.readFileSync(good.ca, 'utf8'));
  expect(ctl(['--ca-cert', bundle, 'pool', 'list']).status).toBe(0);
  // an unreadable certificate before the agent's CA: Node's TLS would drop every CA after it; refused, naming it
  const broken = path.join(work, 'broken-bundle.pem');
  fs.writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n' + fs.readFileSync(good.ca, 'utf8'));
  const refused = ctl(['--ca-cert', broken, 'pool', 'list']);
  expect(refused.status).toBe(2);
  expect(refused.stderr).toContain(`--ca-cert: '${broken}': certificate 1 of 2 cannot be read`);
  expect(() => new AgentClient({ url: tlsAgent.url, token: tlsAgent.token, tls: { ca: fs.readFileSync(broken) } })).toThrow(
    /tls\.ca: certificate 1 of 2 cannot be read/,
  );
});

test('bad TLS flags name the flag', () => {
  const base = ['--data-dir', work];
  expect(() => parseArgs([...base, '--tls-cert', good.cert])).toThrow(/--tls-key: is required with --tls-cert/);
  expect(() => parseArgs([...base, '--tls-key', good.key])).toThrow(/--tls-cert: is required with --tls-key/);
  expect(() => parseArgs([...base, '--tls-client-ca', good.ca])).toThrow(/--tls-client-ca: needs --tls-cert and --tls-key/);
  expect(() => loadTls({ certFile: path.join(work, 'nope.pem'), keyFile: good.key })).toThrow(/--tls-cert: cannot read .*ENOENT/);
  expect(() => loadTls({ certFile: good.cert, keyFile: other.key })).toThrow(/--tls-key: .* does not fit/);
  fs.writeFileSync(path.join(work, 'junk.pem'), 'not a pem');
  expect(() => loadTls({ certFile: good.cert, keyFile: good.key, clientCaFile: path.join(work, 'junk.pem') })).toThrow(/--tls-client-ca: .* is not a PEM file/);
  // the agent process refuses to start, naming the flag
  const r = spawnSync(
    process.execPath,
    [path.join(ROOT, 'bin/mayastor-agent'), ...base, '--tls-cert', good.cert, '--tls-key', path.join(work, 'missing.key')],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/--tls-key: cannot read/);
});

test('a token file readable by others starts the agent with a warning naming the file and the fix', async () => {
  const tokenFile = path.join(work, 'open-token');
  fs.writeFileSync(tokenFile, 'abcdefgh12345678\n');
  fs.chmodSync(tokenFile, 0o644);
  const a = new AgentProcess({ node: 'open', dataDir: path.join(work, 'd'), extraArgs: ['--token-file', tokenFile] });
  await a.start();
  try {
    expect(a.stderr).toContain('"agent.token_file_readable"');
    expect(a.stderr).toContain(`chmod 600 ${tokenFile}`);
  } finally {
    await a.stop(5000);
  }
});

test('an in-process agent with --tls-cert serves https:// (startInProcess with the client side)', async () => {
  const { agent, client } = await startInProcess(path.join(work, 'inproc'), ['--tls-cert', good.cert, '--tls-key', good.key], 'inproc-tls', clientTls(good));
  try {
    expect(agent.url).toMatch(/^https:\/\//);
    expect(await client.listPools()).toEqual([]);
  } finally {
    await client.close();
    await agent.close();
  }
});
