/**
 * examples/migration with the real cdktf CLI, terraform and an agent: a volume moves from the `legacy` pool to the
 * `fresh` pool in two deploys (add the new replica as a child and let it rebuild, then drop the old one) while a
 * client keeps reading it. The data is identical before and after, the nexus is never replaced, and the legacy
 * pool ends up empty.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir } from '../helpers/agent';
import { nbdReadAll, sha256 } from '../helpers/nbd';
import { ExampleRun, deploy, destroy, installProvider, planExitCode, writeCluster } from '../../examples/runner';
import { FRESH_REPLICA_UUID, LEGACY_REPLICA_UUID, NEXUS_UUID, VOLUME_SIZE } from '../../examples/migration/stack';

jest.setTimeout(600_000);

function qemuIo(uri: string, cmds: string[]): void {
  const r = spawnSync('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri], { encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0 || /fail|error/i.test(out)) throw new Error(`qemu-io ${cmds.join('; ')} on ${uri} failed (exit ${r.status}):\n${out}`);
}

/** sha256 of the whole volume, read with nbdcopy. */
function checksum(uri: string): string {
  const b = nbdReadAll(uri, 2 * VOLUME_SIZE);
  expect(b.length).toBe(VOLUME_SIZE);
  return sha256(b);
}

/** A client that keeps verifying a pattern through the volume until stopped. */
class Reader {
  ok = 0;
  failures: string[] = [];
  private stopped = false;
  private current?: ChildProcess;
  private done: Promise<void>;
  constructor(uri: string) {
    this.done = (async () => {
      while (!this.stopped) {
        await new Promise<void>((resolve) => {
          const p = spawn('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 1M', '-c', 'read -P 0xc3 9M 2M', uri], { stdio: ['ignore', 'pipe', 'pipe'] });
          this.current = p;
          let out = '';
          p.stdout.on('data', (d: Buffer) => (out += d.toString()));
          p.stderr.on('data', (d: Buffer) => (out += d.toString()));
          p.once('close', (code) => {
            if (code === 0 && !/fail|error/i.test(out)) this.ok++;
            else this.failures.push(`exit ${code}: ${out.trim()}`);
            resolve();
          });
        });
      }
    })();
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

describe('examples/migration: legacy pool → fresh pool without downtime', () => {
  let dir: string;
  let agent: AgentProcess;
  let run: ExampleRun;

  beforeAll(async () => {
    dir = tempDir('mayastor-cdktf-mig-');
    const token = crypto.randomBytes(24).toString('hex');
    const dataDir = path.join(dir, 'node-a');
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'token'), token + '\n', { mode: 0o600 });
    const legacy = makeDisk(path.join(dataDir, 'disks', 'legacy.img'), 128 * MiB);
    const fresh = makeDisk(path.join(dataDir, 'disks', 'fresh.img'), 128 * MiB);
    agent = await new AgentProcess({ node: 'node-a', dataDir, extraArgs: ['--nbd-listen', '127.0.0.1:0'] }).start();
    const work = path.join(dir, 'work');
    fs.mkdirSync(work);
    installProvider(work);
    writeCluster(work, { nodes: [{ name: 'node-a', url: agent.url, disks: { legacy, fresh } }], stateFile: path.join(work, 'terraform.migration.tfstate') });
    run = { example: 'migration', stack: 'migration', workDir: work, token };
  });

  afterAll(async () => {
    await agent?.stop();
    if (dir) cleanup(dir);
  });

  test('data identical before and after, nexus kept online, legacy pool empty', async () => {
    const phase = (p: string): ExampleRun => ({ ...run, env: { MIGRATION_PHASE: p } });
    const c = agent.client();

    // 1. the starting point: the volume lives on the legacy pool
    const first = await deploy(phase('legacy'));
    const uri = (first.outputs as Record<string, string>).device_uri;
    expect(uri).toMatch(new RegExp(`^nbd://127\\.0\\.0\\.1:\\d+/${NEXUS_UUID}$`));
    qemuIo(uri, ['write -P 0x5a 0 1M', 'write -P 0xc3 9M 2M', 'write -P 0x3c 30M 2M', 'flush']);
    const before = checksum(uri);
    expect((await c.getNexus(NEXUS_UUID))?.children.map((ch) => ch.uri)).toEqual([`bdev:///${LEGACY_REPLICA_UUID}`]);

    const reader = new Reader(uri);
    try {
      // 2. add the fresh replica as a second child: deploy returns once it is rebuilt
      const both = await deploy(phase('both'));
      expect(both.output).not.toMatch(/must be replaced/);
      expect(both.output).toMatch(/1 added, 1 changed, 0 destroyed/);
      const nx = await c.getNexus(NEXUS_UUID);
      expect(nx?.children.map((ch) => [ch.uri, ch.state])).toEqual([
        [`bdev:///${LEGACY_REPLICA_UUID}`, 'online'],
        [`bdev:///${FRESH_REPLICA_UUID}`, 'online'],
      ]);
      expect(checksum(uri)).toBe(before);

      // 3. drop the legacy child, then its replica
      const fresh = await deploy(phase('fresh'));
      expect(fresh.output).toMatch(/0 added, 1 changed, 1 destroyed/);
      expect((fresh.outputs as Record<string, string>).device_uri).toBe(uri);
    } finally {
      await reader.stop();
    }
    expect(reader.failures).toEqual([]);
    expect(reader.ok).toBeGreaterThan(0);

    const nx = await c.getNexus(NEXUS_UUID);
    expect(nx?.state).toBe('online');
    expect(nx?.children.map((ch) => [ch.uri, ch.state])).toEqual([[`bdev:///${FRESH_REPLICA_UUID}`, 'online']]);
    expect(checksum(uri)).toBe(before);

    // the legacy pool is still there, and empty
    const reps = await c.listReplicas();
    expect(reps.map((r) => [r.uuid, r.pool])).toEqual([[FRESH_REPLICA_UUID, 'fresh']]);
    const legacyPool = await c.getPool('legacy');
    expect(legacyPool?.usedBytes).toBe(0);

    expect(planExitCode(phase('fresh')).code).toBe(0);

    await destroy(phase('fresh'));
    expect(await c.listNexuses()).toEqual([]);
    expect(await c.listReplicas()).toEqual([]);
    expect(await c.listPools()).toEqual([]);
  });
});
