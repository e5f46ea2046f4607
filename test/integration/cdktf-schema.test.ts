/**
 * The real terraform's view of the installed provider: `terraform providers schema -json` must match the L1
 * bindings (constructs/l1) exactly; the synthesized quickstart and the HCL quickstart pass `terraform validate`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Testing } from 'cdktf';
import { cleanup, tempDir } from '../helpers/agent';
import { installProvider } from '../../examples/runner';
import { ProviderSchemaJson, checkBindings } from '../helpers/constructs-schema-check';
import { QuickstartStack } from '../../examples/quickstart/stack';

Testing.setupJest();
jest.setTimeout(300_000);

const TF = process.env.TERRAFORM_BINARY_NAME ?? 'terraform';

describe('L1 bindings vs terraform providers schema -json', () => {
  let dir: string;
  let cliConfig: string;
  let env: NodeJS.ProcessEnv;
  const savedCli = process.env.TF_CLI_CONFIG_FILE;

  beforeAll(() => {
    dir = tempDir('mayastor-cdktf-schema-');
    cliConfig = installProvider(dir);
    env = { ...process.env, TF_CLI_CONFIG_FILE: cliConfig, CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1' };
  });
  afterAll(() => {
    if (savedCli === undefined) delete process.env.TF_CLI_CONFIG_FILE;
    else process.env.TF_CLI_CONFIG_FILE = savedCli;
    if (dir) cleanup(dir);
  });

  function tf(cwd: string, args: string[]): { code: number | null; out: string; stdout: string } {
    const r = spawnSync(TF, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    return { code: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
  }

  test('every resource, data source and attribute matches', () => {
    const work = path.join(dir, 'schema');
    fs.mkdirSync(work);
    fs.writeFileSync(path.join(work, 'main.tf.json'), JSON.stringify({ terraform: { required_providers: { mayastor: { source: 'mayastor/mayastor' } } } }));
    const init = tf(work, ['init', '-input=false', '-no-color']);
    expect(init.out).toMatch(/Terraform has been successfully initialized/);
    const schema = tf(work, ['providers', 'schema', '-json']);
    expect(schema.code).toBe(0);
    const all = JSON.parse(schema.stdout) as { provider_schemas: Record<string, ProviderSchemaJson> };
    const mine = all.provider_schemas['registry.terraform.io/mayastor/mayastor'];
    expect(mine).toBeDefined();
    expect(checkBindings(mine)).toEqual([]);
  });

  test('the synthesized quickstart stack is valid Terraform (terraform init + validate)', () => {
    process.env.TF_CLI_CONFIG_FILE = cliConfig;
    const stack = new QuickstartStack(Testing.app(), 'quickstart', {
      nodes: ['node-a', 'node-b', 'node-c'].map((name, i) => ({ name, url: `http://127.0.0.1:${9501 + i}`, disks: { data: `/q/${name}.img` } })),
      stateFile: path.join(dir, 'unused.tfstate'),
    });
    expect(Testing.fullSynth(stack)).toBeValidTerraform();
  });

  test('examples/hcl-quickstart passes terraform validate', () => {
    const work = path.join(dir, 'hcl');
    fs.mkdirSync(work);
    fs.copyFileSync(path.join(__dirname, '../../examples/hcl-quickstart/main.tf'), path.join(work, 'main.tf'));
    expect(tf(work, ['init', '-input=false', '-no-color']).code).toBe(0);
    const v = tf(work, ['validate', '-json']);
    const res = JSON.parse(v.stdout) as { valid: boolean; diagnostics: unknown[] };
    expect(res.diagnostics).toEqual([]);
    expect(res.valid).toBe(true);
    expect(tf(work, ['fmt', '-check', '-diff', 'main.tf']).code).toBe(0);
  });
});
