/**
 * `npm run quickstart` then `npm run quickstart:down` (scripts/quickstart.sh), in a private directory and on free
 * ports. The build step is skipped (MAYASTOR_QUICKSTART_SKIP_BUILD=1): `npm test` has just built the tree.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ROOT, cleanup, tempDir } from '../helpers/agent';
import { alive } from '../../scripts/lib/agent-process';

jest.setTimeout(600_000);

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function freeBase(): Promise<number> {
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    const ports = [0, 1, 2, 1310, 1311, 1312].map((d) => base + d);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
}

function sh(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('bash', [path.join(ROOT, 'scripts', 'quickstart.sh'), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.once('close', (code) => resolve({ code, out }));
  });
}

describe('npm run quickstart / quickstart:down', () => {
  let parent: string;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let pids: number[] = [];

  beforeAll(async () => {
    parent = tempDir('mayastor-quickstart-');
    dir = path.join(parent, 'qs');
    env = { ...process.env, MAYASTOR_QUICKSTART_DIR: dir, MAYASTOR_QUICKSTART_PORT: String(await freeBase()), MAYASTOR_QUICKSTART_SKIP_BUILD: '1' };
  });

  afterAll(() => {
    // only if the test failed half-way: stop the agents this test started (by their recorded pids)
    for (const pid of pids) {
      if (!alive(pid)) continue;
      try {
        if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    cleanup(parent);
  });

  test('up: deploys, verifies data through nbd://, prints the URI and leaves the agents running', async () => {
    const r = await sh(['up'], env);
    if (r.code !== 0) throw new Error(`quickstart up failed (exit ${r.code}):\n${r.out}`);
    expect(r.out).toMatch(/==> \[[\d.]+s\] Starting 3 agents/);
    expect(r.out).toMatch(/cdktf deploy of examples\/quickstart/);
    expect(r.out).toMatch(/read back and verified both patterns/);
    expect(r.out).toMatch(/mayastorctl nexus list/);
    const m = /\n {2}(nbd:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]{36})\n/.exec(r.out);
    expect(m).not.toBeNull();
    const uri = m![1];

    pids = ['node-a', 'node-b', 'node-c'].map((n) => Number(fs.readFileSync(path.join(dir, `${n}.pid`), 'utf8').trim()));
    for (const pid of pids) expect(alive(pid)).toBe(true);
    // the volume is still served after the script exited
    const q = spawnSync('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 1M', uri], { encoding: 'utf8' });
    expect(`${q.stdout}${q.stderr}`).not.toMatch(/fail/i);
    expect(q.status).toBe(0);
  });

  test('up again is idempotent: it reuses the running agents and changes nothing', async () => {
    const r = await sh(['up'], env);
    if (r.code !== 0) throw new Error(`second quickstart up failed (exit ${r.code}):\n${r.out}`);
    expect((r.out.match(/already running/g) ?? []).length).toBe(3);
    expect(r.out).toMatch(/0 added, 0 changed, 0 destroyed|No changes/);
  });

  test('down: destroys the stack, stops the agents and removes the directory', async () => {
    const r = await sh(['down'], env);
    if (r.code !== 0) throw new Error(`quickstart down failed (exit ${r.code}):\n${r.out}`);
    expect(r.out).toMatch(/Destroy complete! Resources: 7 destroyed/);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
  });

  test('down with nothing running is a no-op that succeeds', async () => {
    const r = await sh(['down'], env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/nothing to destroy/);
  });
});
