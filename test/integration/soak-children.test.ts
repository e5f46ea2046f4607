/**
 * Soak: nexus children churn under continuous verified I/O, with real agents and real clients.
 *
 * Agent "a" holds a 2-child nexus (a local bdev:/// replica + a replica on agent "b" shared over
 * NBD), exported over NBD. While fio writes and verifies (crc32c) through that export in a loop,
 * the test cycles through:
 *   - remove the nbd:// child, POST it back (the reported hang), also while "b" is dead;
 *   - offline/online the nbd:// child and the local child;
 *   - fault the local child and replace it with a spare replica;
 *   - fault the nbd:// child and online it;
 *   - kill -9 agent "b" and restart it, then online its child;
 *   - kill -9 agent "a" (the nexus's agent) and restart it (I/O paused around this step).
 * After every step: every API call must answer (a client with a deadline and no retries, so a hang
 * is a failure naming the call, not a stalled suite), the nexus must converge to online with every
 * child online, the loop's fio runs must have passed, and a sentinel region written with qemu-io
 * patterns before the step must read back intact.
 *
 * Bounded to ~60 s of churn by default (the suite); SOAK_SECONDS=600 runs longer.
 * Needs dist/ (`npx tsc -p tsconfig.json`).
 */
import path from 'node:path';
import { AgentClient, Nexus } from '../../agent/api/client';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir } from '../helpers/agent';
import { ToolResult, freePort, qemuIo, qemuIoOk, startFio } from '../helpers/nbd';

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
/** Every API call must answer within this (the agent's own control timeout is lower). */
const CALL_DEADLINE_MS = 45000;
/** States must converge within this after a step. */
const CONVERGE_MS = 90000;

jest.setTimeout(SOAK_SECONDS * 1000 + 300000);

const u = (n: number) => `5a5a5a5a-0000-4000-8000-${String(n).padStart(12, '0')}`;
const LOCAL = [u(1), u(2)]; // the local child and its spare (they swap on "fault + replace")
const REM = u(3);
const NX = '5b5b5b5b-0000-4000-8000-000000000001';
const SIZE = 16 * MiB;
const FIO_REGION = 8 * MiB; // [0, 8 MiB): fio; [8 MiB, 16 MiB): qemu-io sentinel chunks
const CHUNK = MiB;
const NCHUNKS = (SIZE - FIO_REGION) / CHUNK;
const bdev = (r: string) => `bdev:///${r}`;

let dir: string;
const procs: AgentProcess[] = [];

afterAll(async () => {
  for (const p of procs) await p.kill9();
  if (dir && !process.env.SOAK_KEEP) cleanup(dir);
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Start (or restart) an agent. SOAK_ASAN_LIB=/path/to/asan/libdatapath.so (`make asan-lib`) runs
 * the agents on the ASan+UBSan build: libasan is preloaded into the agent processes only.
 */
async function launch(p: AgentProcess, restart = false): Promise<AgentProcess> {
  const lib = process.env.SOAK_ASAN_LIB;
  const saved = { ...process.env };
  if (lib) {
    process.env.MAYASTOR_DATAPATH_LIB = lib;
    process.env.LD_PRELOAD = process.env.SOAK_LIBASAN ?? '/usr/lib/gcc/x86_64-linux-gnu/12/libasan.so';
    process.env.ASAN_OPTIONS = 'detect_leaks=0:abort_on_error=1:halt_on_error=1';
    process.env.UBSAN_OPTIONS = 'halt_on_error=1:print_stacktrace=1';
  }
  try {
    return restart ? await p.restart() : await p.start();
  } finally {
    if (lib) {
      for (const k of ['MAYASTOR_DATAPATH_LIB', 'LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  }
}

/** A call that must answer within the deadline: a hang fails naming the call. */
async function answer<T>(what: string, p: Promise<T>, ms = CALL_DEADLINE_MS): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`HANG: ${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

/** Continuous fio write+verify runs over the fio region until stopped; collects failures. */
class IoLoop {
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private current: ReturnType<typeof startFio> | undefined;
  readonly failures: string[] = [];
  runs = 0;
  private seed = 1;

  constructor(private uri: () => string) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const job = [
          '--rw=randwrite',
          '--bs=4k',
          '--iodepth=8',
          `--size=${FIO_REGION}`,
          '--verify=crc32c',
          '--verify_fatal=1',
          '--verify_state_save=0',
          '--do_verify=1',
          `--randseed=${this.seed++}`,
          '--rate_iops=2000',
        ];
        this.current = startFio(this.uri(), 'soak', job);
        const r: ToolResult = await this.current.done;
        this.current = undefined;
        if (!this.running && r.signal) break; // killed by stop()
        this.runs++;
        if (r.code !== 0) this.failures.push(`fio run ${this.runs} failed (${r.code ?? r.signal}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
      }
    })();
  }

  /** Let the current run finish (it verifies), then stop. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  kill(): void {
    this.running = false;
    this.current?.proc.kill('SIGKILL');
  }
}

test('children churn under verified I/O: no hang, states converge, data verifies', async () => {
  dir = tempDir('mayastor-soak-');
  const nbdA = await freePort();
  const nbdB = await freePort();
  const mk = (name: string, nbd: number, extra: string[] = []) => {
    const dataDir = path.join(dir, name);
    makeDisk(path.join(dataDir, 'disks', 'd0.img'), 128 * MiB);
    const p = new AgentProcess({ node: name, dataDir, extraArgs: ['--cluster-size', String(MiB), '--nbd-listen', `127.0.0.1:${nbd}`, ...extra] });
    procs.push(p);
    return p;
  };
  // two reactors on a: children and the nexus may live on different reactors
  const a = await launch(mk('a', nbdA, ['--reactors', '2']));
  const b = await launch(mk('b', nbdB));
  const client = (p: AgentProcess): AgentClient => new AgentClient({ url: p.url, token: p.token, node: p.opts.node, retries: 0, timeoutMs: CALL_DEADLINE_MS });
  let ca = client(a);
  let cb = client(b);

  await ca.putPool('p', { disks: [path.join(a.opts.dataDir, 'disks', 'd0.img')] });
  await cb.putPool('p', { disks: [path.join(b.opts.dataDir, 'disks', 'd0.img')] });
  for (const r of LOCAL) await ca.putReplica(r, { pool: 'p', sizeBytes: SIZE + MiB, thin: false });
  const remote = await cb.putReplica(REM, { pool: 'p', sizeBytes: SIZE + MiB, thin: false, share: 'nbd' });
  const REMOTE = `${remote.uri}?io_timeout_ms=2000&connect_timeout_ms=1000`;
  let local = bdev(LOCAL[0]);
  let spare = bdev(LOCAL[1]);
  const nx0 = await ca.putNexus(NX, { sizeBytes: SIZE, children: [local, REMOTE], share: 'nbd' });
  expect(nx0.state).toBe('online');
  const deviceUri = nx0.deviceUri;

  // sentinel chunks: pattern per chunk, rewritten before each step, verified after
  const patterns: number[] = new Array(NCHUNKS).fill(0);
  let step = 0;
  const writeSentinel = async () => {
    const k = step % NCHUNKS;
    patterns[k] = (step % 250) + 1;
    await qemuIoOk(deviceUri, [`write -P ${patterns[k]} ${FIO_REGION + k * CHUNK} ${CHUNK}`, 'flush'], 60000);
  };
  const verifySentinel = async (what: string) => {
    const cmds = patterns.map((p, k) => `read -P ${p} ${FIO_REGION + k * CHUNK} ${CHUNK}`);
    try {
      await qemuIoOk(deviceUri, cmds, 60000);
    } catch (e) {
      throw new Error(`after "${what}": sentinel data does not verify: ${(e as Error).message}`);
    }
  };

  const nexus = async (): Promise<Nexus> => {
    const n = await answer('GET nexus on a', ca.getNexus(NX));
    if (!n) throw new Error('nexus vanished');
    return n;
  };
  /** Wait until the nexus is online with exactly `children`, all online. */
  const converge = async (what: string, children: string[]) => {
    const end = Date.now() + CONVERGE_MS;
    let n: Nexus | undefined;
    for (;;) {
      n = await nexus();
      const uris = n.children.map((c) => c.uri).sort();
      if (n.state === 'online' && uris.join() === [...children].sort().join() && n.children.every((c) => c.state === 'online')) return n;
      if (Date.now() > end) throw new Error(`after "${what}": nexus did not converge: ${JSON.stringify(n)}`);
      await sleep(100);
    }
  };
  const childState = async (uri: string) => (await nexus()).children.find((c) => c.uri === uri)?.state;
  /** POST online until the child's agent serves it again (a restarted agent restores its share). */
  const onlineWhenReachable = async (uri: string) => {
    const end = Date.now() + CONVERGE_MS;
    for (;;) {
      try {
        return await answer(`POST online ${uri}`, ca.childOnline(NX, uri));
      } catch (e) {
        if ((e as Error).message.startsWith('HANG') || Date.now() > end) throw e;
        await sleep(200);
      }
    }
  };

  const io = new IoLoop(() => deviceUri);
  const steps: Array<[string, () => Promise<void>]> = [
    [
      'remove + re-add the nbd child',
      async () => {
        await answer('DELETE nbd child', ca.removeChild(NX, REMOTE));
        await sleep(300);
        await answer('POST nbd child back', ca.addChild(NX, REMOTE));
      },
    ],
    [
      'offline + online the nbd child',
      async () => {
        await answer('offline nbd child', ca.childOffline(NX, REMOTE));
        await sleep(300);
        await answer('online nbd child', ca.childOnline(NX, REMOTE));
      },
    ],
    [
      'offline + online the local child',
      async () => {
        await answer('offline local child', ca.childOffline(NX, local));
        await sleep(300);
        await answer('online local child', ca.childOnline(NX, local));
      },
    ],
    [
      'fault the local child and replace it',
      async () => {
        await answer('fault local child', ca.childFault(NX, local));
        await answer('add spare', ca.addChild(NX, spare));
        const end = Date.now() + CONVERGE_MS;
        while ((await childState(spare)) !== 'online') {
          if (Date.now() > end) throw new Error(`the spare was not rebuilt: ${JSON.stringify(await nexus())}`);
          await sleep(100);
        }
        await answer('remove the faulted child', ca.removeChild(NX, local));
        [local, spare] = [spare, local];
      },
    ],
    [
      'fault + online the nbd child',
      async () => {
        await answer('fault nbd child', ca.childFault(NX, REMOTE));
        await sleep(300);
        await answer('online nbd child', ca.childOnline(NX, REMOTE));
      },
    ],
    [
      'kill -9 and restart the remote agent',
      async () => {
        await b.kill9();
        // fio keeps writing: the remote child times out and is faulted
        const end = Date.now() + CONVERGE_MS;
        while ((await childState(REMOTE)) !== 'faulted') {
          if (Date.now() > end) throw new Error('the nbd child was not faulted after its agent died');
          await sleep(100);
        }
        await launch(b);
        cb = client(b);
        await onlineWhenReachable(REMOTE);
      },
    ],
    [
      'remove the nbd child while its agent is dead, restart it, re-add',
      async () => {
        await b.kill9();
        await sleep(500);
        await answer('DELETE nbd child (peer dead)', ca.removeChild(NX, REMOTE));
        await launch(b);
        cb = client(b);
        const end = Date.now() + CONVERGE_MS;
        for (;;) {
          try {
            await answer('POST nbd child back', ca.addChild(NX, REMOTE));
            break;
          } catch (e) {
            if ((e as Error).message.startsWith('HANG') || Date.now() > end) throw e;
            await sleep(200);
          }
        }
      },
    ],
    [
      'churn the nbd child mid-rebuild (add, offline, online, remove, add)',
      async () => {
        await answer('DELETE nbd child', ca.removeChild(NX, REMOTE));
        await answer('POST nbd child', ca.addChild(NX, REMOTE));
        await answer('offline nbd child (rebuilding)', ca.childOffline(NX, REMOTE));
        await answer('online nbd child', ca.childOnline(NX, REMOTE));
        await answer('DELETE nbd child (rebuilding)', ca.removeChild(NX, REMOTE));
        await answer('POST nbd child again', ca.addChild(NX, REMOTE));
        await answer('fault nbd child (rebuilding)', ca.childFault(NX, REMOTE));
        await answer('online nbd child again', ca.childOnline(NX, REMOTE));
      },
    ],
    [
      'freeze the remote agent (SIGSTOP), remove its child, thaw, re-add',
      async () => {
        b.proc!.kill('SIGSTOP');
        try {
          // fio's writes to the frozen peer time out (io_timeout_ms) and fault the child
          const end = Date.now() + CONVERGE_MS;
          while ((await childState(REMOTE)) !== 'faulted') {
            if (Date.now() > end) throw new Error('the nbd child was not faulted while its agent was frozen');
            await sleep(100);
          }
          await answer('DELETE nbd child (peer frozen)', ca.removeChild(NX, REMOTE));
        } finally {
          b.proc!.kill('SIGCONT');
        }
        await answer('POST nbd child back (peer thawed)', ca.addChild(NX, REMOTE));
      },
    ],
    [
      'freeze the remote agent (SIGSTOP) and offline its child with I/O in flight',
      async () => {
        b.proc!.kill('SIGSTOP');
        try {
          await sleep(300); // I/O to the frozen peer is in flight now
          await answer('offline nbd child (peer frozen)', ca.childOffline(NX, REMOTE));
        } finally {
          b.proc!.kill('SIGCONT');
        }
        await onlineWhenReachable(REMOTE);
      },
    ],
    [
      'restart the nexus agent while the remote agent is dead',
      async () => {
        await io.stop();
        readPaused = true;
        await b.kill9();
        await launch(a, true);
        ca = client(a);
        // The nexus may refuse to open without its in-sync nbd child (it might hold newer data):
        // then it is listed faulted, and must come back by itself once that child is reachable.
        await nexus();
        await launch(b);
        cb = client(b);
        const end = Date.now() + CONVERGE_MS;
        for (;;) {
          const n = await nexus();
          if (n.state !== 'faulted') break;
          if (Date.now() > end) throw new Error(`the nexus did not reopen once its nbd child was back: ${JSON.stringify(n)}`);
          await sleep(200);
        }
        if ((await childState(REMOTE)) !== 'online') await onlineWhenReachable(REMOTE);
        readPaused = false;
        io.start();
      },
    ],
    [
      'kill -9 and restart the nexus agent',
      async () => {
        await io.stop(); // its connection dies with the agent; runs before and after verify
        readPaused = true;
        await launch(a, true);
        ca = client(a);
        // the remote child is reopened (maybe out of sync): bring it back if it is not serving
        const n = await converge('restart of a (nexus reopened)', [local, REMOTE]).catch(async () => {
          const st = await childState(REMOTE);
          if (st === 'faulted' || st === 'offline') await onlineWhenReachable(REMOTE);
          const lst = await childState(local);
          if (lst === 'faulted' || lst === 'offline') await onlineWhenReachable(local);
          return converge('restart of a (after online)', [local, REMOTE]);
        });
        expect(n.deviceUri).toBe(deviceUri);
        readPaused = false;
        io.start();
      },
    ],
  ];

  // Reads keep coming while the children churn: each must answer within the deadline.
  let polling = true;
  const pollFailures: string[] = [];
  const poller = (async () => {
    while (polling) {
      try {
        await answer('background GET nexus', ca.getNexus(NX));
      } catch (e) {
        const m = (e as Error).message;
        // a refused connection while a is being restarted is expected; a hang is not
        if (m.startsWith('HANG')) pollFailures.push(m);
      }
      await sleep(50);
    }
  })();

  // Reads of the sentinel keep coming while the children churn: a read served by a child that
  // missed the latest sentinel write (stale) fails the pattern check. (Paused while a restarts.)
  let reading = true;
  let readPaused = false;
  let sentinelBusy = false;
  let sentinelGen = 0;
  let reads = 0;
  const readFailures: string[] = [];
  const reader = (async () => {
    while (reading) {
      if (readPaused || sentinelBusy) {
        await sleep(50);
        continue;
      }
      const gen = sentinelGen;
      const cmds = patterns.map((p, k) => `read -P ${p} ${FIO_REGION + k * CHUNK} ${CHUNK}`);
      const r = await qemuIo(deviceUri, cmds, 60000);
      const out = r.stdout + r.stderr;
      if (readPaused || sentinelBusy || gen !== sentinelGen) continue; // raced with a restart or a sentinel write
      if (/Pattern verification failed/i.test(out)) readFailures.push(`stale read during a step:\n${out.slice(-2000)}`);
      else if (r.code === 0) reads++;
    }
  })();

  io.start();
  const t0 = Date.now();
  const log: string[] = [];
  try {
    while (Date.now() - t0 < SOAK_SECONDS * 1000 || step < steps.length) {
      const [what, fn] = steps[step % steps.length];
      sentinelBusy = true;
      sentinelGen++;
      await writeSentinel();
      sentinelBusy = false;
      const s0 = Date.now();
      await fn();
      await converge(what, [local, REMOTE]);
      await answer('GET /v1/nexuses on a', ca.listNexuses());
      await answer('GET /v1/replicas on b', cb.listReplicas());
      await verifySentinel(what);
      if (io.failures.length) throw new Error(`after "${what}": ${io.failures.join('\n')}`);
      if (pollFailures.length) throw new Error(`during "${what}": ${pollFailures.join('\n')}`);
      if (readFailures.length) throw new Error(`during "${what}": ${readFailures.join('\n')}`);
      log.push(`${step} ${what}: ${Date.now() - s0} ms`);
      step++;
    }
    await io.stop();
    polling = false;
    reading = false;
    await poller;
    await reader;
    if (readFailures.length) throw new Error(readFailures.join('\n'));
    if (io.failures.length) throw new Error(io.failures.join('\n'));
    await verifySentinel('the end');
  } catch (e) {
    io.kill();
    polling = false;
    reading = false;
    const tail = (s: string) => s.split('\n').slice(-60).join('\n');
    throw new Error(
      `soak step ${step} failed: ${(e as Error).message}\n--- steps ---\n${log.join('\n')}\n--- agent a stderr ---\n${tail(a.stderr)}\n--- agent b stderr ---\n${tail(b.stderr)}`,
    );
  }
  console.log(`soak: ${step} steps, ${io.runs} verified fio runs, ${reads} sentinel reads in ${Math.round((Date.now() - t0) / 1000)} s\n${log.join('\n')}`);
  expect(io.runs).toBeGreaterThan(0);
});
