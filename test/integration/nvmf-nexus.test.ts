/**
 * A nexus whose remote child is reached over NVMe/TCP (our nvmf:// initiator against our target):
 *  - fio --verify=crc32c writes through the nexus's NBD export while the remote agent is killed -9
 *    (the child is faulted, fio sees no error), comes back on the same port with its nvmf share
 *    restored, and the child is brought online and rebuilt while fio writes;
 *  - the local child is then faulted, so a verify-only pass reads every block from the rebuilt
 *    remote child alone, over NVMe/TCP;
 *  - the remote agent is killed -9 again and restarted: the flushed data reads back over NVMe/TCP
 *    through a fresh nexus on that replica.
 * Needs dist/ (`npx tsc -p tsconfig.json`).
 */
import path from 'node:path';
import { nvmfNqn } from '../../agent/api/grammar';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir } from '../helpers/agent';
import { fioJson, freePort, runTool, startFio, until } from '../helpers/nbd';

const LOCAL = 'eeeeeeee-0000-4000-8000-000000000001';
const REM = 'eeeeeeee-0000-4000-8000-000000000002';
const NX = 'ffffffff-0000-4000-8000-000000000001';
const NX2 = 'ffffffff-0000-4000-8000-000000000002';
const SIZE = 32 * MiB;
const JOB = ['--rw=randwrite', '--bs=4k', '--iodepth=8', `--size=${SIZE}`, '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', '--randseed=777'];

let dir: string;
const procs: AgentProcess[] = [];

beforeAll(() => {
  dir = tempDir('mayastor-nvmf-nexus-');
});

afterAll(async () => {
  for (const p of procs) await p.kill9();
  cleanup(dir);
});

async function agent(name: string, nvmfPort: number): Promise<AgentProcess> {
  const dataDir = path.join(dir, name);
  makeDisk(path.join(dataDir, 'disks', 'd0.img'), 128 * MiB);
  const p = new AgentProcess({ node: name, dataDir, extraArgs: ['--cluster-size', String(MiB), '--nvmf-listen', `127.0.0.1:${nvmfPort}`] });
  procs.push(p);
  await p.start();
  await p.client().putPool('p', { disks: [path.join(dataDir, 'disks', 'd0.img')] });
  return p;
}

async function verifyOnly(uri: string): Promise<void> {
  const v = await runTool('fio', ['--name=load', '--ioengine=nbd', `--uri=${uri}`, ...JOB, '--verify_only', '--output-format=json'], { timeoutMs: 180000 });
  if (v.code !== 0) throw new Error(`verify-only fio failed (${v.code}):\n${v.stdout}\n${v.stderr}`);
  const res = fioJson(v.stdout).jobs[0];
  expect(res.error).toBe(0);
  expect(res.read.io_bytes).toBe(SIZE);
}

test('fio verify through a nexus with a remote nvmf:// child: remote agent killed, back, rebuilt; every byte read from it alone, and again after kill -9', async () => {
  const a = await agent('a', await freePort());
  const b = await agent('b', await freePort());
  const ca = a.client();
  await ca.putReplica(LOCAL, { pool: 'p', sizeBytes: SIZE + MiB, thin: false });
  const remote = await b.client().putReplica(REM, { pool: 'p', sizeBytes: SIZE + MiB, thin: false, share: 'nvmf' });
  expect(remote.uri).toMatch(new RegExp(`^nvmf://127\\.0\\.0\\.1:\\d+/${nvmfNqn(REM).replace(/\./g, '\\.')}$`));
  const remoteChild = `${remote.uri}?io_timeout_ms=3000&connect_timeout_ms=2000`;
  const nx = await ca.putNexus(NX, { sizeBytes: SIZE, children: [`bdev:///${LOCAL}`, remoteChild], share: 'nbd' });
  expect(nx.state).toBe('online');

  const fio = startFio(nx.deviceUri!, 'load', [...JOB, '--do_verify=1', '--rate_iops=1500']);
  try {
    const writes = async () => Number(((await ca.metrics()).match(/^mayastor_nexus_writes_total\{[^}]*\} (\d+)/m) ?? [])[1] ?? 0);
    await until(async () => (await writes()) > 500, 'fio to be writing');

    await b.kill9();
    let n = await until(async () => {
      const g = await ca.getNexus(NX);
      return g!.children.find((c) => c.uri === remoteChild)!.state === 'faulted' && g;
    }, 'the remote child to be faulted');
    expect(n.state).toBe('degraded');
    expect(fio.proc.exitCode).toBeNull(); // fio keeps writing to the local child

    await b.start(); // same port, the nvmf share comes back with the replica
    expect((await b.client().getReplica(REM))!.uri).toBe(remote.uri); // (a restarted agent has a new HTTP port)
    await ca.childOnline(NX, remoteChild);
    n = await until(async () => {
      const g = await ca.getNexus(NX);
      return g!.children.every((c) => c.state === 'online') && g;
    }, 'the remote child to be rebuilt');
    expect(n.children.find((c) => c.uri === remoteChild)!.rebuildProgress).toBe(100);

    const r = await fio.done;
    if (r.code !== 0) throw new Error(`fio failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    expect(fioJson(r.stdout).jobs[0].error).toBe(0);

    // Only the rebuilt remote child serves now: every block comes over NVMe/TCP.
    n = await ca.childFault(NX, `bdev:///${LOCAL}`);
    expect(n.children.filter((c) => c.state === 'online').map((c) => c.uri)).toEqual([remoteChild]);
    await verifyOnly(nx.deviceUri!);

    // Flushed data survives kill -9 of the replica's agent: read it back over NVMe/TCP through a fresh nexus.
    expect(await ca.deleteNexus(NX)).toBe(true);
    await b.kill9();
    await b.start();
    const nx2 = await ca.putNexus(NX2, { sizeBytes: SIZE, children: [remoteChild], share: 'nbd' });
    expect(nx2.state).toBe('online');
    await verifyOnly(nx2.deviceUri!);
    expect(await ca.deleteNexus(NX2)).toBe(true);
  } finally {
    if (fio.proc.exitCode === null) fio.proc.kill('SIGKILL');
  }
});
