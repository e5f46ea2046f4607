/**
 * Replica and nexus NVMe/TCP shares (issue 12) through real agent processes: the target agent runs
 * --nvmf-listen; the host is a second agent process opening the nvmf:// URI through the embedded block
 * API (our initiator, with a host NQN set by MAYASTOR_NVMF_HOSTNQN). Bytes are checked by md5.
 * Covers: node listing, URIs, allowedHosts (host NQNs; malformed -> 400 naming the entry; a host not
 * listed is refused), share "nvmf" without the listener (422 naming --nvmf-listen), PATCH
 * nvmf <-> nbd <-> none in place, kill -9 and restart keeping the share, ownership (a nexus child is
 * not exported), the nexus deviceUri over nvmf, and the connection gauge.
 * Needs dist/ (`npx tsc -p tsconfig.json`) and the native build.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { nqnProblem, nvmfNqn } from '../../agent/api/grammar';
import { AgentProcess, MiB, cleanup, expectAgentError, makeDisk, pattern, tempDir } from '../helpers/agent';
import { freePort, metric } from '../helpers/nbd';

const R = '12121212-0000-4000-8000-000000000001';
const R2 = '12121212-0000-4000-8000-000000000002';
const NX = '12121212-0000-4000-8000-0000000000ff';
const HOSTNQN = 'nqn.2014-08.org.nvmexpress:uuid:12121212-aaaa-4bbb-8ccc-000000000001';
const OTHERNQN = 'nqn.2014-08.org.nvmexpress:uuid:12121212-aaaa-4bbb-8ccc-000000000002';
const SIZE = 16 * MiB;

let dir: string;
let a: AgentProcess; // the target, with --nvmf-listen
let n: AgentProcess; // without --nvmf-listen
let host: AgentProcess; // the host (our initiator), HOSTNQN
let other: AgentProcess; // another host, OTHERNQN
let nvmfPort: number;

const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');

/** An embedded agent process whose initiator introduces itself as `nqn`. */
async function hostAgent(name: string, nqn: string): Promise<AgentProcess> {
  const saved = process.env.MAYASTOR_NVMF_HOSTNQN;
  process.env.MAYASTOR_NVMF_HOSTNQN = nqn;
  try {
    return await new AgentProcess({ node: name, dataDir: path.join(dir, name), embedded: true }).start();
  } finally {
    if (saved === undefined) delete process.env.MAYASTOR_NVMF_HOSTNQN;
    else process.env.MAYASTOR_NVMF_HOSTNQN = saved;
  }
}

/** Drop the host's descriptor on `uri` (a failed open is cached until then). */
async function closeDev(p: AgentProcess, uri: string): Promise<void> {
  await p.io({ op: 'closedev', target: uri }).catch(() => undefined);
}

async function readMd5(p: AgentProcess, uri: string, length: number): Promise<string> {
  const b = await p.read(uri, 0, length);
  await closeDev(p, uri);
  return md5(b);
}

beforeAll(async () => {
  dir = tempDir('mayastor-nvmfshare-');
  nvmfPort = await freePort();
  makeDisk(path.join(dir, 'a', 'disks', 'd0.img'), 128 * MiB);
  a = new AgentProcess({ node: 'a', dataDir: path.join(dir, 'a'), extraArgs: ['--cluster-size', String(MiB), '--nvmf-listen', `127.0.0.1:${nvmfPort}`] });
  await a.start();
  await a.client().putPool('p1', { disks: [path.join(dir, 'a', 'disks', 'd0.img')] });
  makeDisk(path.join(dir, 'n', 'disks', 'd0.img'), 64 * MiB);
  n = new AgentProcess({ node: 'n', dataDir: path.join(dir, 'n'), extraArgs: ['--cluster-size', String(MiB)] });
  await n.start();
  await n.client().putPool('p1', { disks: [path.join(dir, 'n', 'disks', 'd0.img')] });
  host = await hostAgent('host', HOSTNQN);
  other = await hostAgent('other', OTHERNQN);
});

afterAll(async () => {
  for (const p of [a, n, host, other]) await p?.kill9();
  cleanup(dir);
});

const nvmfUri = (uuid: string) => `nvmf://127.0.0.1:${nvmfPort}/${nvmfNqn(uuid)}`;

test('GET /v1/node lists the NVMe/TCP listener and the share; an agent without --nvmf-listen does not', async () => {
  const node = await a.client().node();
  expect(node.listeners.nvmf).toBe(`127.0.0.1:${nvmfPort}`);
  expect(node.shares).toEqual(['none', 'nbd', 'nvmf']);
  expect(node.capabilities).toEqual(expect.arrayContaining(['share:nvmf', 'child:nvmf']));
  const plain = await n.client().node();
  expect(plain.listeners.nvmf).toBeUndefined();
  expect(plain.shares).toEqual(['none', 'nbd']);
  expect(plain.capabilities).not.toContain('share:nvmf');
  // the host NQN its nvmf:// children connect with (what remote allowedHosts must list): stable, well formed
  expect(nqnProblem(node.nvmfHostNqn)).toBeUndefined();
  expect((await a.client().node()).nvmfHostNqn).toBe(node.nvmfHostNqn);
});

test('share "nvmf" without --nvmf-listen is 422 naming the flag, and nothing is created', async () => {
  const c = n.client();
  const e = await expectAgentError(c.putReplica(R, { pool: 'p1', sizeBytes: SIZE, thin: false, share: 'nvmf' }), 422, /--nvmf-listen/);
  expect(e.message).toMatch(/share 'nvmf'/);
  expect(await c.getReplica(R)).toBeUndefined();
  await c.putReplica(R, { pool: 'p1', sizeBytes: SIZE, thin: false, share: 'none' });
  await expectAgentError(c.patchReplica(R, { share: 'nvmf' }), 422, /--nvmf-listen/);
  expect((await c.getReplica(R))!.share).toBe('none');
});

test('allowedHosts of an nvmf share are host NQNs: a malformed one or an address is 400 naming the entry', async () => {
  const c = a.client();
  await expectAgentError(c.putReplica(R2, { pool: 'p1', sizeBytes: SIZE, share: 'nvmf', allowedHosts: ['nqn.20-1.bad'] }), 400, /allowedHosts\[0\]/);
  await expectAgentError(c.putReplica(R2, { pool: 'p1', sizeBytes: SIZE, share: 'nvmf', allowedHosts: [HOSTNQN, '10.0.0.1'] }), 400, /allowedHosts\[1\].*NQN/);
  await expectAgentError(c.putReplica(R2, { pool: 'p1', sizeBytes: SIZE, share: 'nbd', allowedHosts: [HOSTNQN] }), 400, /allowedHosts\[0\].*IP address/);
  expect(await c.getReplica(R2)).toBeUndefined();
});

test('a replica shared over nvmf: uri nvmf://host:port/<nqn>, the allowed host writes and reads it back (md5), another host is refused', async () => {
  const c = a.client();
  const r = await c.putReplica(R, { pool: 'p1', sizeBytes: SIZE, thin: false, share: 'nvmf', allowedHosts: [HOSTNQN] });
  expect(r.share).toBe('nvmf');
  expect(r.uri).toBe(nvmfUri(R));
  expect(r.allowedHosts).toEqual([HOSTNQN]);
  const data = pattern(12, SIZE);
  await host.write(r.uri, 0, data);
  await host.io({ op: 'flush', target: r.uri });
  expect(md5(await host.read(r.uri, 0, SIZE))).toBe(md5(data));
  // the connection gauge counts the host's queues while it is attached
  const gauge = metric(await c.metrics(), 'mayastor_nvmf_subsystem_connections', { nqn: nvmfNqn(R) });
  expect(gauge).toBeGreaterThan(0);
  await closeDev(host, r.uri);
  await expect(other.read(r.uri, 0, 4096)).rejects.toThrow();
  await closeDev(other, r.uri);
  // PATCH the allowlist in place: now the other host is in, the first one out
  await c.patchReplica(R, { allowedHosts: [OTHERNQN] });
  expect(await readMd5(other, r.uri, SIZE)).toBe(md5(data));
  await expect(host.read(r.uri, 0, 4096)).rejects.toThrow();
  await closeDev(host, r.uri);
  await expectAgentError(c.patchReplica(R, { allowedHosts: ['192.168.0.0/16'] }), 400, /allowedHosts\[0\]/);
  await c.patchReplica(R, { allowedHosts: [] }); // everyone
  expect(await readMd5(host, r.uri, SIZE)).toBe(md5(data));
});

test('PATCH share nvmf -> nbd -> nvmf -> none in place; the bytes stay (md5 over each)', async () => {
  const c = a.client();
  const want = md5(pattern(12, SIZE));
  await c.patchReplica(R, { allowedHosts: [HOSTNQN] });
  // the host NQNs do not carry over to nbd: the PATCH names allowedHosts
  await expectAgentError(c.patchReplica(R, { share: 'nbd' }), 400, /allowedHosts.*share 'nbd'/);
  const nbd = await c.patchReplica(R, { share: 'nbd', allowedHosts: ['127.0.0.1'] });
  expect(nbd.share).toBe('nbd');
  expect(nbd.uri).toMatch(new RegExp(`^nbd://127\\.0\\.0\\.1:\\d+/${R}$`));
  await expect(host.read(nvmfUri(R), 0, 4096)).rejects.toThrow(); // the subsystem went with the share
  await closeDev(host, nvmfUri(R));
  expect(await readMd5(host, nbd.uri, SIZE)).toBe(want);
  const back = await c.patchReplica(R, { share: 'nvmf', allowedHosts: [HOSTNQN] });
  expect(back.uri).toBe(nvmfUri(R));
  expect(await readMd5(host, back.uri, SIZE)).toBe(want);
  const none = await c.patchReplica(R, { share: 'none' });
  expect(none.uri).toBe(`bdev:///${R}`);
  await expect(host.read(nvmfUri(R), 0, 4096)).rejects.toThrow();
  await closeDev(host, nvmfUri(R));
  await c.patchReplica(R, { share: 'nvmf', allowedHosts: [HOSTNQN] });
});

test('kill -9 and restart on the same port: the nvmf share comes back, the bytes read back (md5)', async () => {
  await a.restart();
  const c = a.client();
  const r = (await c.getReplica(R))!;
  expect(r.share).toBe('nvmf');
  expect(r.uri).toBe(nvmfUri(R));
  expect(r.allowedHosts).toEqual([HOSTNQN]);
  expect((await c.node()).listeners.nvmf).toBe(`127.0.0.1:${nvmfPort}`);
  expect(await readMd5(host, r.uri, SIZE)).toBe(md5(pattern(12, SIZE)));
});

test('ownership: an exported replica is no nexus child (409), a child is not exported (409); a nexus shared over nvmf serves its volume', async () => {
  const c = a.client();
  const vol = SIZE - MiB;
  await expectAgentError(c.putNexus(NX, { sizeBytes: vol, children: [`bdev:///${R}`], share: 'nvmf' }), 409, /exported/);
  await c.patchReplica(R, { share: 'none' });
  const nx = await c.putNexus(NX, { sizeBytes: vol, children: [`bdev:///${R}`], share: 'nvmf' });
  expect(nx.deviceUri).toBe(nvmfUri(NX));
  await expectAgentError(c.patchReplica(R, { share: 'nvmf' }), 409, /nexus/);
  const data = pattern(99, vol);
  await host.write(nx.deviceUri, 0, data);
  await host.io({ op: 'flush', target: nx.deviceUri });
  expect(await readMd5(host, nx.deviceUri, vol)).toBe(md5(data));
  const unshared = await c.patchNexus(NX, { share: 'none' });
  expect(unshared.deviceUri).toBe(`bdev:///${NX}`);
  await expect(host.read(nvmfUri(NX), 0, 4096)).rejects.toThrow();
  await closeDev(host, nvmfUri(NX));
  const nbd = await c.patchNexus(NX, { share: 'nbd' });
  expect(nbd.deviceUri).toMatch(/^nbd:\/\//);
  const again = await c.patchNexus(NX, { share: 'nvmf' });
  expect(again.deviceUri).toBe(nvmfUri(NX));
  expect(await readMd5(host, again.deviceUri, vol)).toBe(md5(data));
});

test('a nexus on another agent (no --nvmf-listen needed) takes the nvmf:// URI as its child: bytes written through it land on the replica (md5 over NVMe/TCP)', async () => {
  const c = a.client();
  const r2 = await c.putReplica(R2, { pool: 'p1', sizeBytes: SIZE, share: 'nvmf' });
  expect(r2.uri).toBe(nvmfUri(R2));
  const NX2 = '12121212-0000-4000-8000-0000000000fe';
  const vol = SIZE - MiB;
  const nx = await n.client().putNexus(NX2, { sizeBytes: vol, children: [`${r2.uri}?io_timeout_ms=5000`], share: 'nbd' });
  expect(nx.children.map((ch) => ch.state)).toEqual(['online']);
  const data = pattern(7, vol);
  await host.write(nx.deviceUri, 0, data);
  await host.io({ op: 'flush', target: nx.deviceUri });
  await closeDev(host, nx.deviceUri);
  // the child holds the volume after the 1 MiB label: read it straight from the replica's subsystem
  const onReplica = await host.read(r2.uri, MiB, vol);
  await closeDev(host, r2.uri);
  expect(md5(onReplica)).toBe(md5(data));
  // a child URI whose NQN is malformed is 400 naming the child, before any connection
  await expectAgentError(
    n.client().putNexus(NX2.replace('fe', 'fd'), { sizeBytes: vol, children: [`nvmf://127.0.0.1:${nvmfPort}/${R2}`], share: 'none' }),
    400,
    /children\[0\].*NQN/,
  );
  expect(await n.client().deleteNexus(NX2)).toBe(true);
});

test('unsharing disconnects an attached host: the subsystem has no connection left and the host gets an error, no hang', async () => {
  const c = a.client();
  const r2 = (await c.getReplica(R2))!;
  expect(r2.share).toBe('nvmf');
  const uri = `${r2.uri}?io_timeout_ms=2000&connect_timeout_ms=1000`;
  const want = md5(pattern(7, 4096 * 4));
  await host.write(uri, 0, pattern(7, 4096 * 4));
  expect(md5(await host.read(uri, 0, 4096 * 4))).toBe(want);
  expect(metric(await c.metrics(), 'mayastor_nvmf_subsystem_connections', { nqn: nvmfNqn(R2) })).toBeGreaterThan(0);
  await c.patchReplica(R2, { share: 'none' });
  expect(metric(await c.metrics(), 'mayastor_nvmf_subsystem_connections', { nqn: nvmfNqn(R2) })).toBeUndefined();
  await expect(host.read(uri, 0, 4096)).rejects.toThrow(); // the descriptor is still open: its queue was dropped
  await closeDev(host, uri);
  await c.patchReplica(R2, { share: 'nvmf' });
  expect(await readMd5(host, uri, 4096 * 4)).toBe(want);
});
