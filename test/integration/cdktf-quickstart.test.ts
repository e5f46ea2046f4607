/**
 * `cdktf deploy` and `cdktf destroy` of examples/quickstart with the real cdktf CLI and terraform, against three
 * real agents, with the data verified through the volume's nbd:// URI (qemu-io, nbdinfo) and on the replicas.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir } from '../helpers/agent';
import { ExampleRun, deploy, destroy, installProvider, planExitCode, writeCluster } from '../../examples/runner';
import { VOLUME_SIZE, VOLUME_UUID } from '../../examples/quickstart/stack';

jest.setTimeout(600_000);

function qemuIo(uri: string, cmds: string[]): string {
  const r = spawnSync('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri], { encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0 || /fail|error/i.test(out)) throw new Error(`qemu-io ${cmds.join('; ')} on ${uri} failed (exit ${r.status}):\n${out}`);
  return out;
}

describe('cdktf deploy/destroy of examples/quickstart', () => {
  let dir: string;
  const agents: AgentProcess[] = [];
  let run: ExampleRun;
  let uri = '';

  beforeAll(async () => {
    dir = tempDir('mayastor-cdktf-qs-');
    const token = crypto.randomBytes(24).toString('hex');
    const nodes = [];
    for (const [i, name] of ['node-a', 'node-b', 'node-c'].entries()) {
      const dataDir = path.join(dir, name);
      fs.mkdirSync(dataDir, { recursive: true });
      // one token for the three agents: the provider has one
      fs.writeFileSync(path.join(dataDir, 'token'), token + '\n', { mode: 0o600 });
      const disk = makeDisk(path.join(dataDir, 'disks', 'disk0.img'), 256 * MiB);
      const a = await new AgentProcess({ node: name, dataDir, extraArgs: ['--nbd-listen', '127.0.0.1:0'] }).start();
      agents.push(a);
      nodes.push({ name, url: a.url, zone: `zone-${i}`, disks: { data: disk } });
    }
    const work = path.join(dir, 'work');
    fs.mkdirSync(work);
    installProvider(work);
    writeCluster(work, { nodes, stateFile: path.join(work, 'terraform.quickstart.tfstate') });
    run = { example: 'quickstart', stack: 'quickstart', workDir: work, token };
  });

  afterAll(async () => {
    for (const a of agents) await a.stop();
    if (dir) cleanup(dir);
  });

  test('deploy creates 3 pools, 3 replicas and a nexus; data written through nbd:// reads back', async () => {
    const { outputs } = await deploy(run);
    uri = (outputs as Record<string, Record<string, string>>).volume['device-uri'];
    expect(uri).toMatch(new RegExp(`^nbd://127\\.0\\.0\\.1:\\d+/${VOLUME_UUID}$`));

    const size = spawnSync('nbdinfo', ['--size', uri], { encoding: 'utf8' });
    expect(size.status).toBe(0);
    expect(Number(size.stdout.trim())).toBe(VOLUME_SIZE);

    qemuIo(uri, ['write -P 0x5a 0 1M', 'write -P 0xa5 17M 3M', 'flush']);
    qemuIo(uri, ['read -P 0x5a 0 1M', 'read -P 0xa5 17M 3M', 'read -P 0 1M 1M']);
    // a wrong pattern is detected (the check above is not vacuous)
    expect(() => qemuIo(uri, ['read -P 0x11 0 1M'])).toThrow(/Pattern verification failed/);

    // every agent has its pool and replica; the nexus on node-a has three online children
    for (const [i, a] of agents.entries()) {
      const c = a.client();
      expect((await c.listPools()).map((p) => p.name)).toEqual([`pool-node-${'abc'[i]}`]);
      const reps = await c.listReplicas();
      expect(reps).toHaveLength(1);
      expect(reps[0].sizeBytes).toBe(VOLUME_SIZE + MiB);
      expect(reps[0].share).toBe(i === 0 ? 'none' : 'nbd');
    }
    const nexus = await agents[0].client().getNexus(VOLUME_UUID);
    expect(nexus?.state).toBe('online');
    expect(nexus?.children.map((ch) => ch.state)).toEqual(['online', 'online', 'online']);
    expect(nexus?.children[0].uri).toMatch(/^bdev:\/\/\//);

    // the replicas on node-b and node-c hold the data themselves (after the 1 MiB nexus label)
    for (const a of agents.slice(1)) {
      const [rep] = await a.client().listReplicas();
      expect(rep.uri).toMatch(/^nbd:\/\//);
      qemuIo(rep.uri, ['read -P 0x5a 1M 1M', 'read -P 0xa5 18M 3M']);
    }

    // nothing left to do: terraform plan agrees with the agents
    const plan = planExitCode(run);
    expect(plan.output).toMatch(/No changes/);
    expect(plan.code).toBe(0);
  });

  test('a second deploy changes nothing and the data is still there', async () => {
    const { output } = await deploy(run);
    expect(output).toMatch(/0 added, 0 changed, 0 destroyed|No changes/);
    qemuIo(uri, ['read -P 0x5a 0 1M', 'read -P 0xa5 17M 3M']);
  });

  test('destroy removes the nexus, the replicas and the pools from every agent', async () => {
    await destroy(run);
    for (const a of agents) {
      const c = a.client();
      expect(await c.listNexuses()).toEqual([]);
      expect(await c.listReplicas()).toEqual([]);
      expect(await c.listPools()).toEqual([]);
    }
  });
});
