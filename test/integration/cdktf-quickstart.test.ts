/**
 * `cdktf deploy` and `cdktf destroy` of examples/quickstart with the real cdktf CLI and terraform, against three
 * real agents, with the data verified through the volume's nbd:// URI (qemu-io, nbdinfo) and on the replicas.
 */
import { spawnSync } from 'node:child_process';
import { AgentProcess, MiB } from '../helpers/agent';
import { ExampleCluster, expectAgentsEmpty, startExampleCluster } from '../helpers/cdktf-cluster';
import { qemuIoOk } from '../helpers/nbd';
import { ExampleRun, deploy, destroy, planExitCode } from '../../examples/runner';
import { VOLUME_SIZE, VOLUME_UUID } from '../../examples/quickstart/stack';

jest.setTimeout(600_000);

describe('cdktf deploy/destroy of examples/quickstart', () => {
  let cluster: ExampleCluster | undefined;
  let agents: AgentProcess[];
  let run: ExampleRun;
  let uri = '';

  beforeAll(async () => {
    cluster = await startExampleCluster({
      prefix: 'mayastor-cdktf-qs-',
      example: 'quickstart',
      stack: 'quickstart',
      agentArgs: ['--nbd-listen', '127.0.0.1:0'],
    });
    ({ agents, run } = cluster);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  test('deploy creates 3 pools, 3 replicas and a nexus; data written through nbd:// reads back', async () => {
    const { outputs } = await deploy(run);
    uri = (outputs as Record<string, Record<string, string>>).volume['device-uri'];
    expect(uri).toMatch(new RegExp(`^nbd://127\\.0\\.0\\.1:\\d+/${VOLUME_UUID}$`));

    const size = spawnSync('nbdinfo', ['--size', uri], { encoding: 'utf8' });
    expect(size.status).toBe(0);
    expect(Number(size.stdout.trim())).toBe(VOLUME_SIZE);

    await qemuIoOk(uri, ['write -P 0x5a 0 1M', 'write -P 0xa5 17M 3M', 'flush']);
    await qemuIoOk(uri, ['read -P 0x5a 0 1M', 'read -P 0xa5 17M 3M', 'read -P 0 1M 1M']);
    // a wrong pattern is detected (the check above is not vacuous)
    await expect(qemuIoOk(uri, ['read -P 0x11 0 1M'])).rejects.toThrow(/Pattern verification failed/);

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
      await qemuIoOk(rep.uri, ['read -P 0x5a 1M 1M', 'read -P 0xa5 18M 3M']);
    }

    // nothing left to do: terraform plan agrees with the agents
    const plan = planExitCode(run);
    expect(plan.output).toMatch(/No changes/);
    expect(plan.code).toBe(0);
  });

  test('a second deploy changes nothing and the data is still there', async () => {
    const { output } = await deploy(run);
    expect(output).toMatch(/0 added, 0 changed, 0 destroyed|No changes/);
    await qemuIoOk(uri, ['read -P 0x5a 0 1M', 'read -P 0xa5 17M 3M']);
  });

  test('destroy removes the nexus, the replicas and the pools from every agent', async () => {
    await destroy(run);
    await expectAgentsEmpty(agents);
  });
});
