/** examples/hcl-quickstart with the real terraform against three real agents: apply, verify data, plan clean, destroy. */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir } from '../helpers/agent';
import { installProvider } from '../../examples/runner';

jest.setTimeout(600_000);

const TF = process.env.TERRAFORM_BINARY_NAME ?? 'terraform';

describe('examples/hcl-quickstart', () => {
  let dir: string;
  let work: string;
  let env: NodeJS.ProcessEnv;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    dir = tempDir('mayastor-hcl-qs-');
    const token = crypto.randomBytes(24).toString('hex');
    const nodes: Record<string, { url: string; disk: string }> = {};
    for (const name of ['node-a', 'node-b', 'node-c']) {
      const dataDir = path.join(dir, name);
      fs.mkdirSync(dataDir, { recursive: true });
      fs.writeFileSync(path.join(dataDir, 'token'), token + '\n', { mode: 0o600 });
      const disk = makeDisk(path.join(dataDir, 'disks', 'disk0.img'), 256 * MiB);
      const a = await new AgentProcess({ node: name, dataDir, extraArgs: ['--nbd-listen', '127.0.0.1:0'] }).start();
      agents.push(a);
      nodes[name] = { url: a.url, disk };
    }
    work = path.join(dir, 'work');
    fs.mkdirSync(work);
    const cli = installProvider(work);
    fs.copyFileSync(path.join(__dirname, '../../examples/hcl-quickstart/main.tf'), path.join(work, 'main.tf'));
    fs.writeFileSync(path.join(work, 'terraform.tfvars.json'), JSON.stringify({ nodes, nexus_node: 'node-b' }));
    env = { ...process.env, TF_CLI_CONFIG_FILE: cli, MAYASTOR_TOKEN: token, CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1' };
  });

  afterAll(async () => {
    for (const a of agents) await a.stop();
    if (dir) cleanup(dir);
  });

  function tf(args: string[]): { code: number | null; out: string; stdout: string } {
    const r = spawnSync(TF, [...args], { cwd: work, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    return { code: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
  }

  test('init, apply, data through the nexus, clean plan, destroy', async () => {
    expect(tf(['init', '-input=false', '-no-color']).code).toBe(0);
    const apply = tf(['apply', '-auto-approve', '-input=false', '-no-color']);
    if (apply.code !== 0) throw new Error(apply.out);
    expect(apply.out).toMatch(/7 added, 0 changed, 0 destroyed/);
    const uri = JSON.parse(tf(['output', '-json', 'device_uri']).stdout) as string;
    expect(uri).toMatch(/^nbd:\/\/127\.0\.0\.1:\d+\/5a1e0c3d-7f0b-4c2e-9d7a-0b1c2d3e4f50$/);

    for (const cmds of [['write -P 0x77 4M 2M', 'flush'], ['read -P 0x77 4M 2M']]) {
      const q = spawnSync('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri], { encoding: 'utf8' });
      expect(`${q.stdout}${q.stderr}`).not.toMatch(/fail|error/i);
      expect(q.status).toBe(0);
    }
    // the nexus runs on node-b: its own replica is local, the others come over nbd
    const nx = (await agents[1].client().listNexuses())[0];
    expect(nx.children.map((c) => c.uri.split(':')[0]).sort()).toEqual(['bdev', 'nbd', 'nbd']);
    expect(nx.children.every((c) => c.state === 'online')).toBe(true);

    const plan = tf(['plan', '-detailed-exitcode', '-input=false', '-no-color']);
    expect(plan.out).toMatch(/No changes/);
    expect(plan.code).toBe(0);

    const destroy = tf(['destroy', '-auto-approve', '-input=false', '-no-color']);
    if (destroy.code !== 0) throw new Error(destroy.out);
    for (const a of agents) {
      expect(await a.client().listReplicas()).toEqual([]);
      expect(await a.client().listPools()).toEqual([]);
    }
  });
});
