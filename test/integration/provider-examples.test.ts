/**
 * Plan hygiene over every HCL example: each folder under examples/ holding `.tf` files is applied with the real
 * `terraform` against three real agents (as the quickstart tests run them), then `plan -detailed-exitcode` must
 * exit 0 and a second apply must change nothing, then destroy. An example gets the variables the quickstart's
 * take when it declares them (`nodes`: node → { url, disk }; `nexus_node`); any other variable needs a default.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MiB } from '../helpers/agent';
import { ProviderTestbed, expectOk } from '../helpers/terraform';

jest.setTimeout(600_000);

const EXAMPLES = path.resolve(__dirname, '../../examples');
const APPLY = ['-no-color', '-input=false', '-auto-approve'];

/** Folders under examples/ (at any depth) with at least one .tf file. */
function hclExamples(dir = EXAMPLES): string[] {
  const here = fs.readdirSync(dir, { withFileTypes: true });
  const found = here.some((e) => e.isFile() && e.name.endsWith('.tf')) ? [dir] : [];
  return found.concat(
    ...here.filter((e) => e.isDirectory() && e.name !== 'node_modules' && !e.name.startsWith('.')).map((e) => hclExamples(path.join(dir, e.name))),
  );
}

const examples = hclExamples().map((d) => path.relative(EXAMPLES, d));
let tb: ProviderTestbed;

beforeAll(async () => {
  const node = { disks: { 'd0.img': 256 * MiB }, extraArgs: ['--nbd-listen', '127.0.0.1:0'] };
  tb = await ProviderTestbed.start('mayastor-provider-examples-', { 'node-a': node, 'node-b': node, 'node-c': node }, true);
}, 180_000);

afterAll(async () => {
  await tb?.stop();
});

test('examples/ holds at least the HCL quickstart', () => {
  expect(examples).toContain('hcl-quickstart');
});

test.each(examples)('examples/%s: apply, then plan is empty and a re-apply changes nothing; destroy', (example) => {
  const src = path.join(EXAMPLES, example);
  const tfd = tb.dir(example.replace(/[\\/]/g, '-'));
  const hcl = fs
    .readdirSync(src)
    .filter((f) => f.endsWith('.tf'))
    .map((f) => {
      fs.copyFileSync(path.join(src, f), path.join(tfd.dir, f));
      return fs.readFileSync(path.join(src, f), 'utf8');
    })
    .join('\n');
  const declares = (v: string) => new RegExp(`variable\\s+"${v}"`).test(hcl);
  const vars: Record<string, unknown> = {};
  if (declares('nodes')) vars.nodes = Object.fromEntries(Object.entries(tb.agents).map(([n, a]) => [n, { url: a.url, disk: tb.disk(n) }]));
  if (declares('nexus_node')) vars.nexus_node = 'node-b';
  fs.writeFileSync(path.join(tfd.dir, 'terraform.tfvars.json'), JSON.stringify(vars));

  expectOk(tfd.run('init', '-no-color', '-input=false'));
  expectOk(tfd.run('apply', ...APPLY));
  tfd.expectNoChanges();
  expect(expectOk(tfd.run('apply', ...APPLY))).toMatch(/0 added, 0 changed, 0 destroyed/);
  expectOk(tfd.run('destroy', ...APPLY));
  expect(expectOk(tfd.run('state', 'list')).trim()).toBe('');
});
