/**
 * The real `terraform` binary in a working directory, for the provider's acceptance suites: offline
 * (their own CLI config with a filesystem mirror), token from MAYASTOR_TOKEN, no plugin cache or TF_LOG.
 */
import { spawnSync } from 'node:child_process';

export const terraformBinary = process.env.TERRAFORM_BINARY_NAME || 'terraform';

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
