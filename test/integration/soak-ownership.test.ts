/**
 * Soak (issue 10): claims and faults mixed at random, and after every round every flushed byte reads back.
 *
 * Agents "a" and "b" (real processes, fixed NBD ports so that child URIs survive restarts). Agent "a"
 * holds the volume: a nexus over a local replica (bdev:///) and a replica on "b" (nbd://), exported over
 * NBD; and a thin volume on a pool smaller than it, for ENOSPC. Each round picks one action at random
 * (seeded: SOAK_SEED) and writes one or two 1 MiB chunks with fresh qemu-io patterns before it:
 *   claims   - a second nexus over the remote replica (its export, a host alias), the local replica in a
 *              second nexus, a's pool disk as a child, a's pool disk as a pool of b: every one refused;
 *   fault / offline / remove+add - of a random child, then back online (rebuilt);
 *   kill -9 of b (writes go on to the local child), restart, online its child;
 *   kill -9 of a (the nexus's agent): it reopens from the labels (resync);
 *   graceful restart of b: its pool is exported and imported again;
 *   nexus delete + re-create with the same uuid and children: the labels (released, this nexus's) keep the data;
 *   ENOSPC: the thin volume is written until the pool is full: the writer gets ENOSPC, its child stays
 *           online, and the chunks flushed before still read back.
 * After each round the volume converges to every child online, and every chunk written and flushed so far
 * is read back through the nexus with `read -P` (every byte checked). The rounds and the bytes checked are
 * printed at the end. Bounded by SOAK_SECONDS (default 30).
 * Needs dist/ (`npx tsc -p tsconfig.json`).
 */
import path from 'node:path';
import { AgentProcess, MiB, cleanup, expectAgentError, makeDisk, rng, tempDir } from '../helpers/agent';
import { freePort, qemuIo, qemuIoOk, until } from '../helpers/nbd';

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 30);
const SEED = Number(process.env.SOAK_SEED ?? 10);
jest.setTimeout(SOAK_SECONDS * 1000 + 240_000);

const u = (n: number) => `50a50a50-0000-4000-8000-${String(n).padStart(12, '0')}`;
const LOCAL = u(1);
const REMOTE = u(2);
const THIN = u(3);
const FILLER = u(4);
const NX = '50b50b50-0000-4000-8000-000000000001';
const NS = '50b50b50-0000-4000-8000-000000000002';
const OTHER = '50b50b50-0000-4000-8000-000000000003';
const SIZE = 16 * MiB;
const CHUNKS = SIZE / MiB;
const TIMEOUTS = 'io_timeout_ms=2000&connect_timeout_ms=1000';

let dir: string;
let a: AgentProcess;
let b: AgentProcess;
let nbdB: number;

afterAll(async () => {
  await a?.kill9();
  await b?.kill9();
  if (dir) cleanup(dir);
});

test('claims and faults at random: every flushed byte reads back after every round', async () => {
  dir = tempDir('mayastor-soak-ownership-');
  const nbdA = await freePort();
  nbdB = await freePort();
  makeDisk(path.join(dir, 'a', 'disks', 'd0.img'), 128 * MiB);
  makeDisk(path.join(dir, 'a', 'disks', 's.img'), 20 * MiB);
  makeDisk(path.join(dir, 'b', 'disks', 'd0.img'), 128 * MiB);
  const aDisks = path.join(dir, 'a', 'disks');
  a = new AgentProcess({ node: 'a', dataDir: path.join(dir, 'a'), extraArgs: ['--cluster-size', String(MiB), '--nbd-listen', `127.0.0.1:${nbdA}`] });
  b = new AgentProcess({
    node: 'b',
    dataDir: path.join(dir, 'b'),
    extraArgs: [
      '--cluster-size',
      String(MiB),
      '--nbd-listen',
      `127.0.0.1:${nbdB}`,
      '--allow-disk',
      path.join(dir, 'b', 'disks') + '/',
      '--allow-disk',
      aDisks + '/',
    ],
  });
  await a.start();
  await b.start();
  const ca = () => a.client();
  await ca().putPool('p', { disks: [path.join(aDisks, 'd0.img')] });
  await ca().putPool('s', { disks: [path.join(aDisks, 's.img')] });
  await b.client().putPool('p', { disks: [path.join(dir, 'b', 'disks', 'd0.img')] });
  await ca().putReplica(LOCAL, { pool: 'p', sizeBytes: SIZE + MiB, thin: true });
  const remote = (await b.client().putReplica(REMOTE, { pool: 'p', sizeBytes: SIZE + MiB, thin: true, share: 'nbd' })).uri!;
  const rem = `${remote}?${TIMEOUTS}`;
  const children = [`bdev:///${LOCAL}`, rem];
  const dev = (await ca().putNexus(NX, { sizeBytes: SIZE, children, share: 'nbd' })).deviceUri;
  await ca().putReplica(FILLER, { pool: 's', sizeBytes: 4 * MiB, thin: false });
  await ca().putReplica(THIN, { pool: 's', sizeBytes: 2 * SIZE + MiB, thin: true });
  const thinDev = (await ca().putNexus(NS, { sizeBytes: 2 * SIZE, children: [`bdev:///${THIN}`], share: 'nbd' })).deviceUri;

  const rand = rng(SEED);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const flushed = new Map<number, number>(); // chunk -> pattern byte, on the volume
  const thinFlushed = new Map<number, number>();
  let nextPattern = 1;
  let bytesChecked = 0;
  const counts: Record<string, number> = {};

  const write = async (uri: string, into: Map<number, number>, chunk: number) => {
    const pat = (nextPattern++ % 254) + 1;
    await qemuIoOk(uri, [`write -P ${pat} ${chunk}M 1M`, 'flush']);
    into.set(chunk, pat);
  };
  const verify = async (uri: string, from: Map<number, number>) => {
    const cmds = [...from].map(([c, p]) => `read -P ${p} ${c}M 1M`);
    for (let i = 0; i < cmds.length; i += 8) await qemuIoOk(uri, cmds.slice(i, i + 8));
    bytesChecked += from.size * MiB;
  };
  const converge = async () =>
    until(
      async () => {
        const n = await ca().getNexus(NX);
        return n && n.state === 'online' && n.children.length === 2 && n.children.every((c) => c.state === 'online' && c.rebuildProgress === 100);
      },
      'the volume back with both children online',
      200,
      120_000,
    );
  const bringBack = async () => {
    const n = (await ca().getNexus(NX))!;
    for (const c of children) {
      const have = n.children.find((x) => x.uri === c);
      if (!have) await ca().addNexusChild(NX, c);
      else if (have.state === 'faulted' || have.state === 'offline') await ca().childOnline(NX, c);
    }
  };

  const actions: Record<string, () => Promise<void>> = {
    claims: async () => {
      await expectAgentError(ca().putNexus(OTHER, { sizeBytes: SIZE, children: [rem] }), 409);
      await expectAgentError(ca().putNexus(OTHER, { sizeBytes: SIZE, children: [`nbd://localhost:${nbdB}/${REMOTE}`] }), 409);
      await expectAgentError(ca().putNexus(OTHER, { sizeBytes: SIZE, children: [`bdev:///${LOCAL}`] }), 409);
      await expectAgentError(ca().putNexus(OTHER, { sizeBytes: SIZE, children: [`uring://${path.join(aDisks, 'd0.img')}`] }), 409);
      await expectAgentError(b.client().putPool('x', { disks: [path.join(aDisks, 'd0.img')] }), 409);
    },
    fault: async () => {
      await ca().childFault(NX, pick(children));
      await write(dev, flushed, Math.floor(rand() * CHUNKS));
    },
    offline: async () => {
      const c = pick(children);
      await ca()
        .childOffline(NX, c)
        .catch(() => undefined); // the last healthy child refuses: fine
      await write(dev, flushed, Math.floor(rand() * CHUNKS));
    },
    removeAdd: async () => {
      await ca()
        .removeChild(NX, pick(children))
        .catch(() => undefined); // the last healthy one refuses
      await write(dev, flushed, Math.floor(rand() * CHUNKS));
    },
    killB: async () => {
      await b.kill9();
      // the remote child fails and is faulted; the local child takes the write
      await write(dev, flushed, Math.floor(rand() * CHUNKS));
      await b.start();
    },
    killA: async () => {
      await a.kill9();
      await a.start();
    },
    restartB: async () => {
      await b.stop(); // graceful: the pool is exported
      await b.start(); // and imported again
    },
    recreate: async () => {
      await ca().deleteNexus(NX);
      await ca().putNexus(NX, { sizeBytes: SIZE, children, share: 'nbd' });
    },
    enospc: async () => {
      let full = false;
      for (let c = 0; c < 2 * CHUNKS && !full; c++) {
        if (thinFlushed.has(c)) continue;
        const pat = (nextPattern++ % 254) + 1;
        const r = await qemuIo(thinDev, [`write -P ${pat} ${c}M 1M`, 'flush']);
        const out = r.stdout + r.stderr;
        if (/No space left on device/.test(out)) full = true;
        else if (r.code === 0 && !/error|failed/i.test(out)) thinFlushed.set(c, pat);
        else throw new Error(`thin volume write: ${out}`);
      }
      expect(full).toBe(true);
      const n = (await ca().getNexus(NS))!;
      expect(n.state).toBe('online');
      expect(n.children[0].state).toBe('online');
      await verify(thinDev, thinFlushed);
      // give the space back for the next time: free the filler, rewrite a chunk, take the filler again
      await ca().deleteReplica(FILLER);
      const c = [...thinFlushed.keys()][0];
      await write(thinDev, thinFlushed, c);
      await ca().putReplica(FILLER, { pool: 's', sizeBytes: 4 * MiB, thin: true });
    },
  };

  for (let c = 0; c < 4; c++) await write(dev, flushed, c);
  const end = Date.now() + SOAK_SECONDS * 1000;
  let rounds = 0;
  while (Date.now() < end) {
    const name = pick(Object.keys(actions));
    await write(dev, flushed, Math.floor(rand() * CHUNKS));
    await actions[name]();
    await bringBack();
    await converge();
    await verify(dev, flushed);
    counts[name] = (counts[name] ?? 0) + 1;
    rounds++;
  }
  await verify(thinDev, thinFlushed);
  // the summary the issue asks for (not asserted: the rounds depend on the machine)
  console.log(
    `soak-ownership: ${rounds} rounds in ${SOAK_SECONDS}s (seed ${SEED}): ${JSON.stringify(counts)}; ${bytesChecked / MiB} MiB of flushed data checked byte by byte`,
  );
  expect(rounds).toBeGreaterThan(0);
});
