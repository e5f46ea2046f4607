/**
 * The cluster the cdktf example tests deploy to: three real agents (node-a, node-b, node-c in zones 0-2, one
 * 256 MiB disk each, one token: the provider has one) and a private work directory set up for examples/runner.ts
 * (provider mirror, CLI config, cluster file, state file).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ExampleRun, installProvider, writeCluster } from '../../examples/runner';
import { AgentProcess, MiB, cleanup, makeDisk, tempDir } from './agent';

export interface ExampleCluster {
  dir: string;
  agents: AgentProcess[];
  run: ExampleRun;
  /** Stops the agents and removes the directory (for afterAll). */
  stop(): Promise<void>;
}

export interface ExampleClusterOptions {
  /** Prefix of the temporary directory. */
  prefix: string;
  /** examples/<example> is the cdktf app directory ('..' for the repository root). */
  example: string;
  stack: string;
  /** Extra agent arguments (e.g. an NBD listener). */
  agentArgs?: string[];
}

/** Starts the three agents and prepares the work directory; on a failed start, what was started is stopped. */
export async function startExampleCluster(opts: ExampleClusterOptions): Promise<ExampleCluster> {
  const dir = tempDir(opts.prefix);
  const agents: AgentProcess[] = [];
  const stop = async () => {
    for (const a of agents) await a.stop();
    cleanup(dir);
  };
  try {
    const token = crypto.randomBytes(24).toString('hex');
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
    const nodes = [];
    for (const [i, name] of ['node-a', 'node-b', 'node-c'].entries()) {
      const dataDir = path.join(dir, name);
      const disk = makeDisk(path.join(dataDir, 'disks', 'disk0.img'), 256 * MiB);
      const a = await new AgentProcess({ node: name, dataDir, extraArgs: ['--token-file', tokenFile, ...(opts.agentArgs ?? [])] }).start();
      agents.push(a);
      nodes.push({ name, url: a.url, zone: `zone-${i}`, disks: { data: disk } });
    }
    const work = path.join(dir, 'work');
    fs.mkdirSync(work);
    installProvider(work);
    writeCluster(work, { nodes, stateFile: path.join(work, `terraform.${opts.stack}.tfstate`) });
    return { dir, agents, run: { example: opts.example, stack: opts.stack, workDir: work, token }, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** After a destroy: no nexus, replica or pool is left on any agent. */
export async function expectAgentsEmpty(agents: AgentProcess[]): Promise<void> {
  for (const a of agents) {
    const c = a.client();
    expect(await c.listNexuses()).toEqual([]);
    expect(await c.listReplicas()).toEqual([]);
    expect(await c.listPools()).toEqual([]);
  }
}
