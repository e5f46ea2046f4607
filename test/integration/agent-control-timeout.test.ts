/**
 * A native control call that blocks must not hang the HTTP API: with MAYASTOR_CONTROL_TIMEOUT_MS
 * set low, a POST whose data-path call blocks (adding an nbd:// child whose "server" accepts the
 * TCP connection and never says a word, with a long connect timeout) answers 504 naming the
 * operation; while the call is still stuck, further calls answer 503 naming it at once (instead of
 * queueing behind it); once it returns, the API works again and the nexus is unchanged.
 * Needs dist/ (`npx tsc -p tsconfig.json`).
 */
import net from 'node:net';
import path from 'node:path';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir, expectAgentError } from '../helpers/agent';
import { until } from '../helpers/nbd';

let dir: string;
let agent: AgentProcess | undefined;
let silent: net.Server | undefined;
const sockets: net.Socket[] = [];

afterAll(async () => {
  await agent?.kill9();
  for (const s of sockets) s.destroy();
  silent?.close();
  if (dir) cleanup(dir);
});

test('a blocking data-path call answers 504 naming it, later calls 503 until it returns, then all is well', async () => {
  dir = tempDir('mayastor-ctl-timeout-');
  // An "NBD server" that accepts and never answers: the client's handshake waits for its greeting.
  silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent!.listen(0, '127.0.0.1', r));
  const port = (silent.address() as net.AddressInfo).port;

  const dataDir = path.join(dir, 'a');
  makeDisk(path.join(dataDir, 'disks', 'd0.img'), 64 * MiB);
  process.env.MAYASTOR_CONTROL_TIMEOUT_MS = '500';
  try {
    agent = await new AgentProcess({ node: 'a', dataDir, extraArgs: ['--cluster-size', String(MiB)] }).start();
  } finally {
    delete process.env.MAYASTOR_CONTROL_TIMEOUT_MS;
  }
  const c = agent.client();
  await c.putPool('p', { disks: [path.join(dataDir, 'disks', 'd0.img')] });
  const R = 'eeeeeeee-0000-4000-8000-000000000001';
  const NX = 'eeeeeeee-0000-4000-8000-000000000002';
  await c.putReplica(R, { pool: 'p', sizeBytes: 9 * MiB, thin: false });
  await c.putNexus(NX, { sizeBytes: 8 * MiB, children: [`bdev:///${R}`], share: 'none' });

  // The native connect waits up to 8 s for the silent peer; the API gives up after 0.5 s.
  const stuckChild = `nbd://127.0.0.1:${port}/x?connect_timeout_ms=8000`;
  const e = await expectAgentError(c.addChild(NX, stuckChild), 504, 'dp_nexus_add_child');
  expect(e.code).toBe('timeout');
  // The worker is still inside that call: a read answers at once with 503 naming it.
  const busy = await expectAgentError(c.getNexus(NX), 503, 'dp_nexus_add_child');
  expect(busy.code).toBe('unavailable');
  await expectAgentError(c.listNexuses(), 503, 'dp_nexus_add_child');
  // health never touches the data path
  expect((await c.health()).status).toBeDefined();

  // When the native call returns (connect timed out), the API answers again; nothing was added.
  const n = await until(
    async () => {
      try {
        return await c.getNexus(NX);
      } catch (err) {
        if ((err as { status?: number }).status === 503) return undefined;
        throw err;
      }
    },
    'the stuck call to return',
    200,
    60000,
  );
  expect(n!.children.map((x) => x.uri)).toEqual([`bdev:///${R}`]);
  expect(n!.state).toBe('online');
  await until(async () => agent!.stderr.includes('datapath.late_result'), 'the late result to be logged');
  expect(await c.deleteNexus(NX)).toBe(true);
});
