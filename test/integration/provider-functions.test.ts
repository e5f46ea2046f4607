/**
 * provider::mayastor::replica_size with the real `terraform` (≥ 1.8: provider-defined functions): the value in an
 * output, as a replica's size_bytes beside a nexus, and bad inputs as Terraform's "Invalid function argument"
 * naming the parameter. Functions need no agent: the provider is not even configured with nodes for the outputs.
 */
import { MiB } from '../helpers/agent';
import { ProviderTestbed, TerraformDir, expectOk, providerHcl } from '../helpers/terraform';

jest.setTimeout(180_000);

let tb: ProviderTestbed;
let tfd: TerraformDir;

const header = providerHcl({});
/** Terraform's output with its line wrapping undone. */
const flat = (out: string) => out.replace(/\s*\n\s*│?\s*/g, ' ');
const call = (arg: string) => `${header}variable "v" {}\noutput "x" { value = provider::mayastor::replica_size(${arg}) }\n`;

beforeAll(async () => {
  tb = await ProviderTestbed.start('mayastor-provider-functions-', {}, true);
  tfd = tb.dir('tf', call('33554432'));
}, 180_000);

afterAll(async () => {
  await tb?.stop();
});

test('replica_size(33554432) is 32 MiB plus the 1 MiB label header', () => {
  tfd.write(`${header}output "x" { value = provider::mayastor::replica_size(33554432) }\n`);
  expectOk(tfd.run('apply', '-no-color', '-input=false', '-auto-approve'));
  expect(JSON.parse(expectOk(tfd.run('output', '-json', 'x')))).toBe(33 * MiB);
});

test('terraform validate checks a literal argument; a string that is a number converts', () => {
  tfd.write(call('var.v'));
  expect(expectOk(tfd.run('plan', '-no-color', '-input=false', '-var', 'v=1073741824'))).toMatch(/x = (\d+ -> )?1074790400/);
  tfd.write(`${header}output "x" { value = provider::mayastor::replica_size(1000) }\n`);
  const v = tfd.run('validate', '-no-color');
  expect(v.code).toBe(1);
  expect(v.out).toMatch(/Invalid function argument/);
  expect(flat(v.out)).toMatch(/Invalid value for "volume_bytes" parameter: must be a multiple of 512 bytes, got 1000 \(nearest: 1024\)/);
});

test.each([
  ['negative', '-512', /Invalid value for "volume_bytes" parameter: must be a positive whole number of bytes, got -512/],
  ['unaligned', '1000', /Invalid value for "volume_bytes" parameter: must be a multiple of 512 bytes, got 1000 \(nearest: 1024\)/],
  ['fractional', '1536.5', /Invalid value for "volume_bytes" parameter: must be a positive whole number of bytes, got 1536.5/],
  ['not a number', 'lots', /Invalid value for "volume_bytes" parameter: a number is required/],
])('%s: Invalid function argument naming volume_bytes', (_what, value, message) => {
  tfd.write(call('var.v'));
  const r = tfd.run('plan', '-no-color', '-input=false', '-var', `v=${value}`);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/Error: Invalid function argument/);
  expect(flat(r.out)).toMatch(message);
});
