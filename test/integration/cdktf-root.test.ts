/**
 * Issue 14 item 6: the repository root's `cdktf.json` (tracked, so a fresh clone has it) runs the quickstart app.
 * From the root, with the real cdktf CLI and terraform against three real agents: `cdktf synth`, then
 * `cdktf deploy --auto-approve` (examples/runner.ts's deploy, with the root as the app directory), data written
 * through the volume's nbd:// URI and read back by checksum, then `cdktf destroy` leaves the agents empty.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ExampleRun, cdktf, deploy, destroy } from '../../examples/runner';
import { VOLUME_SIZE, VOLUME_UUID } from '../../examples/quickstart/stack';
import { AgentProcess, MiB, ROOT } from '../helpers/agent';
import { ExampleCluster, expectAgentsEmpty, startExampleCluster } from '../helpers/cdktf-cluster';
import { nbdReadAll, qemuIoOk, sha256 } from '../helpers/nbd';

jest.setTimeout(600_000);

let cluster: ExampleCluster | undefined;
let agents: AgentProcess[];
let run: ExampleRun;

beforeAll(async () => {
  // examples/<example> is the app directory of runner.ts: '..' makes it the repository root
  cluster = await startExampleCluster({ prefix: 'mayastor-cdktf-root-', example: '..', stack: 'quickstart' });
  ({ agents, run } = cluster);
});

afterAll(async () => {
  await cluster?.stop();
});

test('cdktf.json at the root is tracked and runs the quickstart app in TypeScript', () => {
  const tracked = spawnSync('git', ['ls-files', '--error-unmatch', 'cdktf.json'], { cwd: ROOT, encoding: 'utf8' });
  expect(tracked.status).toBe(0);
  const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'cdktf.json'), 'utf8')) as Record<string, unknown>;
  expect(cfg.language).toBe('typescript');
  expect(cfg.app).toMatch(/examples\/quickstart\/main\.ts/);
  expect(cfg.terraformProviders).toEqual([]);
});

test('npx cdktf synth from the root writes the quickstart stack', async () => {
  const r = await cdktf(run, ['synth']);
  expect(r.code).toBe(0);
  const synth = JSON.parse(fs.readFileSync(path.join(run.workDir, 'cdktf.out', 'stacks', 'quickstart', 'cdk.tf.json'), 'utf8')) as {
    resource: Record<string, Record<string, unknown>>;
  };
  expect(Object.keys(synth.resource.mayastor_nexus ?? {})).toHaveLength(1);
  expect(Object.keys(synth.resource.mayastor_replica ?? {})).toHaveLength(3);
});

test('cdktf deploy --auto-approve, data through the volume by checksum, cdktf destroy', async () => {
  const { outputs } = await deploy(run);
  const uri = (outputs as Record<string, Record<string, string>>).volume['device-uri'];
  expect(uri).toMatch(new RegExp(`/${VOLUME_UUID}$`));
  await qemuIoOk(uri, ['write -P 0x3c 0 2M', 'write -P 0xc3 9M 1M', 'flush']);
  const want = Buffer.alloc(VOLUME_SIZE);
  want.fill(0x3c, 0, 2 * MiB);
  want.fill(0xc3, 9 * MiB, 10 * MiB);
  expect(sha256(nbdReadAll(uri, 2 * VOLUME_SIZE))).toBe(sha256(want));
  await destroy(run);
  await expectAgentsEmpty(agents);
});
