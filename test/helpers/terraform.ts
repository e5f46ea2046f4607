/**
 * The real `terraform` binary in a working directory, for the provider's acceptance suites: offline
 * (their own CLI config with a filesystem mirror), token from MAYASTOR_TOKEN, no plugin cache or TF_LOG;
 * HCL builders and the testbed (provider installed, agents running) those suites share.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
// type only: agent.ts (and the agent it loads) is imported by the suites that start agents, not by every user of this file
import type { AgentProcess } from './agent';

export const terraformBinary = process.env.TERRAFORM_BINARY_NAME || 'terraform';

/**
 * `npm run install-provider` into `work`: a filesystem mirror at work/mirror and the CLI config `cliConfig`.
 * `build`: compile the TypeScript first (suites that may run before `npm run build:ts`).
 */
export function installProvider(work: string, cliConfig: string, build = true): void {
  const script = path.resolve(__dirname, '..', '..', 'scripts', 'install-provider.js');
  const args = [script, ...(build ? [] : ['--no-build']), '--mirror', path.join(work, 'mirror'), '--cli-config', cliConfig];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`install-provider failed:\n${r.stdout}\n${r.stderr}`);
}

/** The pids of the provider daemons whose socket lies under `dir`, after killing them (SIGKILL) when `kill`. */
export function providerDaemons(dir: string, kill = false): number[] {
  // "[-]-daemon" so that pgrep/pkill do not read the pattern as an option
  if (kill) spawnSync('pkill', ['-KILL', '-f', `[-]-daemon ${dir}/`]);
  const r = spawnSync('pgrep', ['-f', `[-]-daemon ${dir}/`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

export interface TfResult {
  code: number;
  out: string;
}

export class TerraformDir {
  constructor(
    readonly dir: string,
    private readonly cliConfig: string,
    private readonly token: string,
  ) {}

  env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TF_CLI_CONFIG_FILE: this.cliConfig,
      TF_IN_AUTOMATION: '1',
      CHECKPOINT_DISABLE: '1',
      MAYASTOR_TOKEN: this.token,
    };
    delete env.TF_PLUGIN_CACHE_DIR;
    delete env.TF_LOG;
    return env;
  }

  /** Replace main.tf. */
  write(hcl: string): void {
    fs.writeFileSync(path.join(this.dir, 'main.tf'), hcl);
  }

  run(...args: string[]): TfResult {
    const r = spawnSync(terraformBinary, args, { cwd: this.dir, env: this.env(), encoding: 'utf8', timeout: 300_000 });
    if (r.error) throw r.error;
    return { code: r.status ?? -1, out: `${r.stdout}\n${r.stderr}` };
  }

  /** plan -detailed-exitcode must exit 0; the plan text is in the failure message otherwise. */
  expectNoChanges(): void {
    const r = this.run('plan', '-no-color', '-input=false', '-detailed-exitcode');
    if (r.code !== 0) throw new Error(`expected no changes, plan exited ${r.code}:\n${r.out}`);
  }
}

export function expectOk(r: TfResult): string {
  if (r.code !== 0) throw new Error(`terraform failed (${r.code}):\n${r.out}`);
  return r.out;
}

// ------------------------------------------------------------------------------------------ HCL
/** An HCL expression written as is (a reference such as `mayastor_pool.a.name`), not as a string. */
export class Expr {
  constructor(readonly text: string) {}
}
export const ref = (text: string): Expr => new Expr(text);
export type HclValue = string | number | boolean | Expr | HclValue[];

function hclValue(v: HclValue): string {
  if (v instanceof Expr) return v.text;
  if (Array.isArray(v)) return `[${v.map(hclValue).join(', ')}]`;
  // a JSON string is an HCL string; `${...}` in it interpolates, as the tests want
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** A block of attributes (those set to undefined are left out). */
export function hclBlock(head: string, attrs: Record<string, HclValue | undefined>): string {
  const set = Object.entries(attrs).filter((e): e is [string, HclValue] => e[1] !== undefined);
  const width = Math.max(0, ...set.map(([k]) => k.length));
  return `${head} {\n${set.map(([k, v]) => `  ${k.padEnd(width)} = ${hclValue(v)}`).join('\n')}\n}\n`;
}

export const resource = (type: string, name: string, attrs: Record<string, HclValue | undefined>): string => hclBlock(`resource "${type}" "${name}"`, attrs);
export const output = (name: string, value: HclValue): string => `output "${name}" { value = ${hclValue(value)} }\n`;

/** The required_providers block and the mayastor provider over `nodes` (node → agent URL), with further settings. */
export function providerHcl(nodes: Record<string, string>, settings: Record<string, HclValue> = {}): string {
  const map = ref(
    `{ ${Object.entries(nodes)
      .map(([n, url]) => `${n} = ${JSON.stringify(url)}`)
      .join(', ')} }`,
  );
  return `terraform {\n  required_providers {\n    mayastor = { source = "mayastor/mayastor" }\n  }\n}\n${hclBlock('provider "mayastor"', { nodes: map, ...settings })}`;
}

// ------------------------------------------------------------------------------------------ testbed
export interface TestbedNode {
  /** Disk files made under DATA_DIR/disks: file name → size in bytes. */
  disks?: Record<string, number>;
  /** Further agent flags (the testbed adds --token-file). */
  extraArgs?: string[];
}

/**
 * What the provider's acceptance suites set up: a work dir, the provider installed into its own mirror, real
 * agents (scripts/lib/agent-process.ts through test/helpers/agent.ts) sharing one token, and Terraform working
 * dirs under the work dir.
 */
export class ProviderTestbed {
  readonly agents: Record<string, AgentProcess> = {};
  readonly rc: string;
  readonly token = randomBytes(16).toString('hex');
  private readonly tokenFile: string;

  private constructor(readonly work: string) {
    this.rc = path.join(work, 'terraformrc');
    this.tokenFile = path.join(work, 'token');
  }

  /** `build`: compile the TypeScript before installing the provider (see installProvider). */
  static async start(prefix: string, nodes: Record<string, TestbedNode>, build = false): Promise<ProviderTestbed> {
    const { AgentProcess, makeDisk } = await import('./agent');
    const tb = new ProviderTestbed(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
    installProvider(tb.work, tb.rc, build);
    fs.writeFileSync(tb.tokenFile, tb.token + '\n', { mode: 0o600 });
    await Promise.all(
      Object.entries(nodes).map(([node, n]) => {
        const dataDir = path.join(tb.work, node);
        for (const [file, size] of Object.entries(n.disks ?? {})) makeDisk(path.join(dataDir, 'disks', file), size);
        return (tb.agents[node] = new AgentProcess({ node, dataDir, extraArgs: ['--token-file', tb.tokenFile, ...(n.extraArgs ?? [])] })).start();
      }),
    );
    return tb;
  }

  /** A disk file of a node's agent. */
  disk(node: string, file = 'd0.img'): string {
    return path.join(this.agents[node].opts.dataDir, 'disks', file);
  }

  /** The provider header over every agent of the testbed. */
  provider(settings: Record<string, HclValue> = {}): string {
    return providerHcl(Object.fromEntries(Object.entries(this.agents).map(([n, a]) => [n, a.url])), settings);
  }

  /** A Terraform working dir work/NAME, with `hcl` as its main.tf and `terraform init` done when given. */
  dir(name: string, hcl?: string): TerraformDir {
    const t = new TerraformDir(path.join(this.work, name), this.rc, this.token);
    fs.mkdirSync(t.dir, { recursive: true });
    if (hcl !== undefined) {
      t.write(hcl);
      expectOk(t.run('init', '-no-color', '-input=false'));
    }
    return t;
  }

  async stop(): Promise<void> {
    for (const a of Object.values(this.agents)) await a.kill9();
    fs.rmSync(this.work, { recursive: true, force: true });
  }
}
