/**
 * A snapshot's NBD export through the agent (issue 13's read-only devices, NBD side): nbdinfo sees it
 * read-only without trim or write-zeroes; a raw client's write, trim and write-zeroes each get NBD_EPERM
 * (not EIO, not a dropped connection) while its reads work on the same connection; qemu-io cannot write;
 * the bytes (sha256 of the whole export) do not change, and the replica it was taken of keeps taking
 * writes. Needs dist/ (`npx tsc -p tsconfig.json`) and python3.
 */
import path from 'node:path';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir } from '../helpers/agent';
import { freePort, mustRun, nbdinfo, nbdReadAll, qemuIo, qemuIoOk, sha256 } from '../helpers/nbd';

jest.setTimeout(120_000);

const R = '0e3e0e3e-0000-4000-8000-000000000001';
const S = '0e3e0e3e-0000-4000-8000-000000000002';
const SIZE = 8 * MiB;
const NBD_EPERM = 1;
const WRITER = path.join(__dirname, 'nbd_writer.py');

let dir: string;
let a: AgentProcess;
let nbd: number;

beforeAll(async () => {
  dir = tempDir('mayastor-nbd-readonly-');
  nbd = await freePort();
  makeDisk(path.join(dir, 'disks', 'd0.img'), 64 * MiB);
  a = new AgentProcess({ node: 'a', dataDir: dir, extraArgs: ['--nbd-listen', `127.0.0.1:${nbd}`] });
  await a.start();
  await a.client().putPool('p', { disks: [path.join(dir, 'disks', 'd0.img')] });
});

afterAll(async () => {
  await a?.kill9();
  if (dir) cleanup(dir);
});

test('a snapshot export is read-only: advertised so, every change EPERM, reads work, bytes unchanged', async () => {
  const r = await a.client().putReplica(R, { pool: 'p', sizeBytes: SIZE, thin: true, share: 'nbd' });
  await qemuIoOk(r.uri, ['write -P 0x5a 0 3M', 'flush']);
  const s = await a.client().putSnapshot(R, S, { share: 'nbd' });
  const want = sha256(Buffer.concat([Buffer.alloc(3 * MiB, 0x5a), Buffer.alloc(SIZE - 3 * MiB)]));
  expect(sha256(nbdReadAll(s.uri, SIZE + MiB))).toBe(want);

  const info = await nbdinfo(s.uri);
  expect(info).toMatchObject({ is_read_only: true, can_trim: false, can_zero: false });
  expect(info['export-size']).toBe(SIZE);

  const out = await mustRun('python3', [
    WRITER,
    '127.0.0.1',
    '127.0.0.1',
    String(nbd),
    S,
    'write:0:4096:0x11',
    'trim:0:65536',
    'zero:0:65536',
    'read:0:4096',
    'flush',
  ]);
  const res = JSON.parse(out.stdout) as { flags: number; results: Array<{ error: number; sha256?: string }> };
  expect(res.flags & 2).toBe(2); // NBD_FLAG_READ_ONLY
  expect(res.results.map((x) => x.error)).toEqual([NBD_EPERM, NBD_EPERM, NBD_EPERM, 0, 0]);
  expect(res.results[3].sha256).toBe(sha256(Buffer.alloc(4096, 0x5a)));

  const w = await qemuIo(s.uri, ['write -P 0xee 0 64k']);
  expect(w.code !== 0 || /failed|error|denied|read-only|not permitted/i.test(w.stdout + w.stderr)).toBe(true);
  expect(sha256(nbdReadAll(s.uri, SIZE + MiB))).toBe(want);

  // the replica it was taken of still takes writes; the snapshot keeps its bytes
  await qemuIoOk(r.uri, ['write -P 0x77 0 1M', 'flush', 'read -P 0x77 0 1M', 'read -P 0x5a 1M 2M']);
  expect(sha256(nbdReadAll(s.uri, SIZE + MiB))).toBe(want);
});
