/**
 * The real `terraform` binary in a working directory, for the provider's acceptance suites: offline
 * (their own CLI config with a filesystem mirror), token from MAYASTOR_TOKEN, no plugin cache or TF_LOG.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

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
