/**
 * Replica NBD shares through real agent processes, driven by real clients (issue 3):
 * nbdinfo size/flags, qemu-io patterns, qemu-img convert in and out, fio --verify=crc32c on 64 MiB,
 * flushed data surviving kill -9 (share restored), thin holes and discard, allowedHosts, unshare
 * closing clients, and the nbd:// child bdev against a second agent (which is then killed).
 * Needs dist/ (`npx tsc -p tsconfig.json`) and MAYASTOR_DATAPATH_LIB or the shipping build.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentProcess, MiB, cleanup, expectAgentError, makeDisk, tempDir } from '../helpers/agent';
import { freePort, metric, mustRun, nbdinfo, nbdmap, qemuIo, qemuIoOk, runTool, until } from '../helpers/nbd';

const R64 = '11111111-0000-4000-8000-000000000064';
const THIN = '22222222-0000-4000-8000-000000000002';
const GUARDED = '33333333-0000-4000-8000-000000000003';
const REMOTE = '44444444-0000-4000-8000-000000000004';
const NEXUS = '55555555-0000-4000-8000-000000000005';
const BACKING = '66666666-0000-4000-8000-000000000006';
const ON_REMOTE_POOL = '77777777-0000-4000-8000-000000000007';

let dir: string;
let a: AgentProcess;
let b: AgentProcess | undefined;
let c: AgentProcess | undefined;
let nbdPort: number;

beforeAll(async () => {
  dir = tempDir('mayastor-nbdshare-');
  const dataDir = path.join(dir, 'a');
  makeDisk(path.join(dataDir, 'disks', 'd0.img'), 256 * MiB);
  nbdPort = await freePort();
  a = new AgentProcess({
    node: 'a',
    dataDir,
    extraArgs: ['--cluster-size', String(MiB), '--nbd-listen', `127.0.0.1:${nbdPort}`],
  });
  await a.start();
  await a.client().putPool('p1', { disks: [path.join(dataDir, 'disks', 'd0.img')] });
});

afterAll(async () => {
  await a?.kill9();
  await b?.kill9();
  await c?.kill9();
  cleanup(dir);
});

test('GET /v1/node reports the NBD listener; a shared replica reports nbd://host:port/uuid', async () => {
  const c = a.client();
  const node = await c.node();
  expect(node.listeners.nbd).toBe(`127.0.0.1:${nbdPort}`);
  expect(node.capabilities).toContain('share:nbd');
  const r = await c.putReplica(R64, {
    pool: 'p1',
    sizeBytes: 64 * MiB,
    thin: false,
    share: 'nbd',
  });
  expect(r.uri).toBe(`nbd://127.0.0.1:${nbdPort}/${R64}`);
  // idempotent PUT of the same spec; a different share is 409
  expect(
    (
      await c.call('PUT', `/v1/replicas/${R64}`, {
        pool: 'p1',
        sizeBytes: 64 * MiB,
        thin: false,
        share: 'nbd',
      })
    ).status,
  ).toBe(200);
  await expectAgentError(
    c.putReplica(R64, {
      pool: 'p1',
      sizeBytes: 64 * MiB,
      thin: false,
      share: 'none',
    }),
    409,
    'share',
  );
});

test('nbdinfo reports the size and flags of a shared replica', async () => {
  const info = await nbdinfo(`nbd://127.0.0.1:${nbdPort}/${R64}`);
  expect(info['export-size']).toBe(64 * MiB);
  expect(info['is_read_only']).toBe(false);
  expect(info['can_flush']).toBe(true);
  expect(info['can_fua']).toBe(true);
  expect(info['can_trim']).toBe(true);
  expect(info['can_zero']).toBe(true);
  expect(info['can_multi_conn']).toBe(true);
  expect(info['block_size_minimum']).toBeGreaterThan(0);
  expect(info['block_size_maximum']).toBeGreaterThanOrEqual(32 * MiB);
});

test('qemu-io writes patterns and reads them back', async () => {
  const uri = `nbd://127.0.0.1:${nbdPort}/${R64}`;
  await qemuIoOk(uri, ['write -P 0xa5 0 1M', 'write -P 0x5a 1M 64k', 'write -P 0x11 63M 1M', 'flush']);
  await qemuIoOk(uri, ['read -P 0xa5 0 1M', 'read -P 0x5a 1M 64k', 'read -P 0x11 63M 1M', 'read -P 0 2M 64k']);
  // a wrong pattern is detected (the check is real)
  const bad = await qemuIo(uri, ['read -P 0x77 0 4k']);
  expect(bad.stdout + bad.stderr).toMatch(/Pattern verification failed/);
  // beyond the end: an error, not a crash
  const past = await qemuIo(uri, ['read 64M 4k']);
  expect(past.stdout + past.stderr).toMatch(/error|Input\/output|Invalid argument|out of range|beyond/i);
  await qemuIoOk(uri, ['read -P 0xa5 0 4k']);
});

test('qemu-img convert copies an image in and out byte-identical', async () => {
  const uri = `nbd://127.0.0.1:${nbdPort}/${R64}`;
  const src = path.join(dir, 'src.img');
  const out = path.join(dir, 'out.img');
  const data = Buffer.concat([crypto.randomBytes(3 * MiB), Buffer.alloc(2 * MiB), crypto.randomBytes(3 * MiB)]);
  const image = Buffer.alloc(64 * MiB);
  data.copy(image, 0);
  fs.writeFileSync(src, image);
  await mustRun('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, uri], { timeoutMs: 60000 });
  await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', uri, out], {
    timeoutMs: 60000,
  });
  const got = fs.readFileSync(out);
  expect(got.length).toBe(64 * MiB);
  expect(crypto.createHash('sha256').update(got).digest('hex')).toBe(crypto.createHash('sha256').update(image).digest('hex'));
});

test('fio --ioengine=nbd --verify=crc32c passes on a 64 MiB replica', async () => {
  const uri = `nbd://127.0.0.1:${nbdPort}/${R64}`;
  const r = await runTool(
    'fio',
    [
      '--name=verify',
      '--ioengine=nbd',
      `--uri=${uri}`,
      '--rw=randwrite',
      '--bs=16k',
      '--iodepth=16',
      '--size=64M',
      '--verify=crc32c',
      '--verify_fatal=1',
      '--verify_state_save=0',
      '--do_verify=1',
      '--output-format=json',
    ],
    { timeoutMs: 120000 },
  );
  if (r.code !== 0) throw new Error(`fio failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  const job = (
    JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {
      jobs: Array<{
        error: number;
        write: { io_bytes: number };
        read: { io_bytes: number };
      }>;
    }
  ).jobs[0];
  expect(job.error).toBe(0);
  expect(job.write.io_bytes).toBe(64 * MiB);
  expect(job.read.io_bytes).toBe(64 * MiB); // the verify pass read everything back
});

test('data written and flushed survives kill -9; the share comes back at the same URI', async () => {
  const uri = `nbd://127.0.0.1:${nbdPort}/${R64}`;
  await qemuIoOk(uri, ['write -P 0xcd 8M 2M', 'write -P 0xef 40M 512', 'flush']);
  await a.kill9();
  await a.start();
  const r = await a.client().getReplica(R64);
  expect(r!.share).toBe('nbd');
  expect(r!.uri).toBe(uri);
  await qemuIoOk(uri, ['read -P 0xcd 8M 2M', 'read -P 0xef 40M 512']);
});

test('thin replica: nbdinfo --map shows holes, and discard returns space', async () => {
  const c = a.client();
  await c.putReplica(THIN, {
    pool: 'p1',
    sizeBytes: 32 * MiB,
    thin: true,
    share: 'nbd',
  });
  const uri = `nbd://127.0.0.1:${nbdPort}/${THIN}`;
  expect((await nbdmap(uri)).every((e) => /hole/.test(e.description))).toBe(true);
  await qemuIoOk(uri, ['write -P 0x42 4M 2M', 'flush']);
  const map = await nbdmap(uri);
  const data = map.filter((e) => !/hole/.test(e.description));
  expect(data.length).toBeGreaterThan(0);
  expect(data.every((e) => e.offset >= 4 * MiB && e.offset + e.length <= 6 * MiB)).toBe(true);
  expect(map.some((e) => /hole/.test(e.description) && e.offset === 0)).toBe(true);
  const before = (await c.getReplica(THIN))!.allocatedBytes;
  expect(before).toBeGreaterThanOrEqual(2 * MiB);
  await qemuIoOk(uri, ['discard 4M 2M', 'flush']);
  const after = (await c.getReplica(THIN))!.allocatedBytes;
  expect(after).toBeLessThan(before);
  await qemuIoOk(uri, ['read -P 0 4M 2M']);
  expect((await nbdmap(uri)).every((e) => /hole/.test(e.description))).toBe(true);
});

test('allowedHosts: bad entries are 400; a list without 127.0.0.1 refuses the client; PATCH lets it in', async () => {
  const c = a.client();
  await expectAgentError(
    c.putReplica(GUARDED, {
      pool: 'p1',
      sizeBytes: 4 * MiB,
      share: 'nbd',
      allowedHosts: ['not a host'],
    }),
    400,
    'allowedHosts[0]',
  );
  await expectAgentError(
    c.putReplica(GUARDED, {
      pool: 'p1',
      sizeBytes: 4 * MiB,
      share: 'nbd',
      allowedHosts: ['10.0.0.1/33'],
    }),
    400,
    'allowedHosts[0]',
  );
  await expectAgentError(c.putReplica(GUARDED, { pool: 'p1', sizeBytes: 4 * MiB, share: 'iscsi' }), 422, 'not supported yet');
  expect(await c.getReplica(GUARDED)).toBeUndefined();
  await c.putReplica(GUARDED, {
    pool: 'p1',
    sizeBytes: 4 * MiB,
    share: 'nbd',
    allowedHosts: ['10.9.9.9', '192.168.0.0/16'],
  });
  const uri = `nbd://127.0.0.1:${nbdPort}/${GUARDED}`;
  const refused = await runTool('nbdinfo', [uri], { timeoutMs: 20000 });
  expect(refused.code).not.toBe(0);
  const p = await c.patchReplica(GUARDED, {
    allowedHosts: ['10.9.9.9', '127.0.0.1'],
  });
  expect(p.allowedHosts).toEqual(['10.9.9.9', '127.0.0.1']);
  expect((await nbdinfo(uri))['export-size']).toBe(4 * MiB);
});

test('share none closes the export and its clients; the uri goes back to bdev:///', async () => {
  const c = a.client();
  const uri = `nbd://127.0.0.1:${nbdPort}/${GUARDED}`;
  // an interactive qemu-io keeps a connection open
  const { spawn } = await import('node:child_process');
  const q = spawn('qemu-io', ['-f', 'raw', uri], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  q.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  q.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const closed = new Promise<void>((r) => q.on('close', () => r()));
  try {
    q.stdin.write('write -P 0x33 0 4k\n');
    await until(async () => /wrote 4096/.test(out), 'qemu-io to write');
    await until(
      async () =>
        metric(await c.metrics(), 'mayastor_nbd_export_connections', {
          export: GUARDED,
        }) === 1,
      'one connection in /metrics',
    );
    const r = await c.patchReplica(GUARDED, { share: 'none' });
    expect(r.uri).toBe(`bdev:///${GUARDED}`);
    expect(
      metric(await c.metrics(), 'mayastor_nbd_export_connections', {
        export: GUARDED,
      }),
    ).toBeUndefined();
    out = '';
    q.stdin.write('read 0 4k\n');
    await until(async () => /error|failed|Input\/output|not connected|closed/i.test(out), 'the read on the closed connection to fail');
    // a new client is refused (no such export)
    expect((await runTool('nbdinfo', [uri], { timeoutMs: 20000 })).code).not.toBe(0);
  } finally {
    q.stdin.end('quit\n');
    await closed;
  }
  // share again: the data is still there
  const again = await c.patchReplica(GUARDED, { share: 'nbd' });
  expect(again.uri).toBe(uri);
  await qemuIoOk(uri, ['read -P 0x33 0 4k']);
  // deleting a shared replica removes its export
  expect(await c.deleteReplica(GUARDED)).toBe(true);
  expect((await runTool('nbdinfo', [uri], { timeoutMs: 20000 })).code).not.toBe(0);
});

test('a pool on an nbd:// disk exported by another agent holds replicas that read back', async () => {
  const cDir = path.join(dir, 'c');
  makeDisk(path.join(cDir, 'disks', 'd0.img'), 96 * MiB);
  c = new AgentProcess({ node: 'c', dataDir: cDir, extraArgs: ['--cluster-size', String(MiB)] });
  await c.start();
  const cc = c.client();
  await cc.putPool('pc', { disks: [path.join(cDir, 'disks', 'd0.img')] });
  const backing = await cc.putReplica(BACKING, { pool: 'pc', sizeBytes: 64 * MiB, thin: false, share: 'nbd' });

  const ca = a.client();
  // No allowlist applies to a remote export; a malformed one is 400 naming the disk.
  await expectAgentError(ca.putPool('remote', { disks: ['nbd://127.0.0.1:0'] }), 400, 'disks[0]');
  const pool = await ca.putPool('remote', { disks: [backing.uri] });
  expect(pool.state).toBe('online');
  expect(pool.capacityBytes).toBeGreaterThan(32 * MiB);
  const r = await ca.putReplica(ON_REMOTE_POOL, { pool: 'remote', sizeBytes: 16 * MiB, thin: true, share: 'nbd' });
  await qemuIoOk(r.uri, ['write -P 0x3c 0 1M', 'write -P 0x3d 15M 1M', 'flush']);
  await qemuIoOk(r.uri, ['read -P 0x3c 0 1M', 'read -P 0x3d 15M 1M', 'read -P 0 4M 1M']);
  expect((await ca.getReplica(ON_REMOTE_POOL))!.allocatedBytes).toBe(2 * MiB);
  expect(await ca.deleteReplica(ON_REMOTE_POOL)).toBe(true);
  expect(await ca.deletePool('remote')).toBe(true);
});

test('nbd:// child against a second agent: remote read/write, then a clear error (no hang) once it is killed', async () => {
  const bDir = path.join(dir, 'b');
  makeDisk(path.join(bDir, 'disks', 'd0.img'), 64 * MiB);
  b = new AgentProcess({
    node: 'b',
    dataDir: bDir,
    extraArgs: ['--cluster-size', String(MiB)],
  });
  await b.start();
  const cb = b.client();
  await cb.putPool('pb', { disks: [path.join(bDir, 'disks', 'd0.img')] });
  const remote = await cb.putReplica(REMOTE, {
    pool: 'pb',
    sizeBytes: 17 * MiB,
    thin: false,
    share: 'nbd',
  });
  expect(remote.uri).toMatch(/^nbd:\/\/127\.0\.0\.1:\d+\//);

  // agent A: a nexus with the single remote child, exported over NBD
  const ca = a.client();
  const child = `${remote.uri}?io_timeout_ms=3000&connect_timeout_ms=2000`;
  const nx = await ca.putNexus(NEXUS, {
    sizeBytes: 16 * MiB,
    children: [child],
    share: 'nbd',
  });
  expect(nx.state).toBe('online');
  expect(nx.deviceUri).toBe(`nbd://127.0.0.1:${nbdPort}/${NEXUS}`);
  await qemuIoOk(nx.deviceUri, ['write -P 0x6b 0 1M', 'write -P 0x6c 15M 1M', 'flush']);
  await qemuIoOk(nx.deviceUri, ['read -P 0x6b 0 1M', 'read -P 0x6c 15M 1M']);
  // the bytes are on agent B's replica, after the 1 MiB nexus label
  await qemuIoOk(remote.uri, ['read -P 0x6b 1M 1M', 'read -P 0x6c 16M 1M']);

  await b.kill9();
  const r = await qemuIo(nx.deviceUri, ['read 0 64k', 'write -P 1 0 64k'], 30000);
  expect(r.signal).toBeNull(); // not killed by the tool timeout: no hang
  expect(r.stdout + r.stderr).toMatch(/error|Input\/output/i);
  const after = await ca.getNexus(NEXUS);
  expect(after!.state).toBe('faulted');
  expect(after!.children[0].state).toBe('faulted');
  expect(after!.children[0].reason).toMatch(/not connected|timed out|refused|reset|127\.0\.0\.1/i);
  expect(await ca.deleteNexus(NEXUS)).toBe(true);
});
