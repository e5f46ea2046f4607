/**
 * Runs the example apps with the real cdktf CLI and terraform, the way a user would, for the integration tests:
 * installs the provider into a private filesystem mirror, writes the cluster file, and wraps
 * `cdktf deploy|destroy --auto-approve --skip-provider-lock` with private output and state locations.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Cluster } from './cluster';
import { REPO_ROOT } from './cluster';

export interface ExampleRun {
  /** examples/<name> */
  example: string;
  stack: string;
  /** Private working directory: cluster file, mirror, CLI config, cdktf.out, outputs. */
  workDir: string;
  token: string;
  env?: NodeJS.ProcessEnv;
}

export interface CommandResult {
  code: number | null;
  output: string;
}

/** Installs the provider (already built in dist/) into workDir/mirror and returns the CLI config path. */
export function installProvider(workDir: string): string {
  const cliConfig = path.join(workDir, 'terraformrc');
  const r = spawnSync(
    process.execPath,
    [path.join(REPO_ROOT, 'scripts', 'install-provider.js'), '--no-build', '--mirror', path.join(workDir, 'mirror'), '--cli-config', cliConfig],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`install-provider failed (${r.status}): ${r.stdout}${r.stderr}`);
  return cliConfig;
}

export function writeCluster(workDir: string, cluster: Cluster): string {
  const f = path.join(workDir, 'cluster.json');
  fs.writeFileSync(f, JSON.stringify(cluster, null, 2));
  return f;
}

function env(run: ExampleRun): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TF_CLI_CONFIG_FILE: path.join(run.workDir, 'terraformrc'),
    MAYASTOR_TOKEN: run.token,
    MAYASTOR_CLUSTER_FILE: path.join(run.workDir, 'cluster.json'),
    CHECKPOINT_DISABLE: '1',
    CDKTF_DISABLE_PLUGIN_CACHE_ENV: 'true',
    DISABLE_VERSION_CHECK: 'true',
    CI: '1',
    FORCE_COLOR: '0',
    ...run.env,
  };
}

/** `cdktf <args> --output workDir/cdktf.out` in examples/<example>; resolves with the exit code and output. */
export function cdktf(run: ExampleRun, args: string[]): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(REPO_ROOT, 'node_modules', '.bin', 'cdktf'), [...args, '--output', path.join(run.workDir, 'cdktf.out')], {
      cwd: path.join(REPO_ROOT, 'examples', run.example),
      env: env(run),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    p.stdout.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr.on('data', (d: Buffer) => (output += d.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, output }));
  });
}

/** deploy; throws with the CLI's output when it fails; returns the stack's outputs (nested by construct path). */
export async function deploy(run: ExampleRun): Promise<{ outputs: Record<string, unknown>; output: string }> {
  const outputsFile = path.join(run.workDir, `outputs-${Date.now()}.json`);
  const r = await cdktf(run, [
    'deploy',
    run.stack,
    '--auto-approve',
    '--skip-provider-lock',
    '--outputs-file',
    outputsFile,
    '--outputs-file-include-sensitive-outputs',
  ]);
  if (r.code !== 0) throw new Error(`cdktf deploy of examples/${run.example} failed (exit ${r.code}):\n${r.output}`);
  const all = JSON.parse(fs.readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, unknown>>;
  return { outputs: all[run.stack] ?? {}, output: r.output };
}

export async function destroy(run: ExampleRun): Promise<string> {
  const r = await cdktf(run, ['destroy', run.stack, '--auto-approve', '--skip-provider-lock']);
  if (r.code !== 0) throw new Error(`cdktf destroy of examples/${run.example} failed (exit ${r.code}):\n${r.output}`);
  return r.output;
}

/** `terraform plan -detailed-exitcode` in the synthesized stack dir: 0 = no changes, 2 = changes. */
export function planExitCode(run: ExampleRun): CommandResult {
  const dir = path.join(run.workDir, 'cdktf.out', 'stacks', run.stack);
  const r = spawnSync(process.env.TERRAFORM_BINARY_NAME ?? 'terraform', ['plan', '-detailed-exitcode', '-input=false', '-no-color'], {
    cwd: dir,
    env: env(run),
    encoding: 'utf8',
  });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}
