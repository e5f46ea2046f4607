/**
 * Issue 14: every diagnostic for bad input names its attribute. A table over wrong types, unaligned and negative
 * sizes, an unknown node, a missing and a wrong token, an agent that is down, a disk outside the allowlist, nexus
 * children of different sizes and a full pool, run with the real `terraform` against a real agent. Rows that fail at
 * plan share one plan, rows that fail at apply share one apply (each row its own resource, independent of the
 * others); the token rows are one plan each. A row passes when Terraform prints its error with the row's resource
 * and the source line of the attribute (Terraform shows that line only when the diagnostic carries the attribute
 * path), and the summary or detail says what is wrong.
 */
import path from 'node:path';
import { MiB } from '../helpers/agent';
import { ProviderTestbed, TerraformDir, expectOk, ref, resource } from '../helpers/terraform';

jest.setTimeout(300_000);

interface Row {
  name: string;
  /** The resource address whose error this is ("mayastor_replica.unaligned"). */
  address: string;
  /** The attribute the diagnostic must point at. */
  attr: string;
  /** What the message must say. */
  says: RegExp;
  hcl: string;
}

let tb: ProviderTestbed;

/** The "Error:" blocks of terraform's output. */
function errorBlocks(out: string): string[] {
  return out.split(/\n(?=Error: )/).filter((b) => b.startsWith('Error: '));
}

function checkRows(out: string, rows: Row[]): void {
  const blocks = errorBlocks(out);
  const problems: string[] = [];
  for (const r of rows) {
    const [type, name] = r.address.split('.');
    const mine = blocks.filter((b) => b.includes(`with ${r.address},`) || b.includes(`in resource "${type}" "${name}"`));
    const hit = mine.find((b) => new RegExp(`\\n\\s*\\d+:\\s+${r.attr}\\s+=`).test(b) && r.says.test(b.replace(/\s+/g, ' ')));
    if (!hit)
      problems.push(`row "${r.name}": no error on ${r.address} pointing at ${r.attr} saying ${r.says}; its errors:\n${mine.join('\n---\n') || '(none)'}`);
  }
  if (problems.length) throw new Error(problems.join('\n\n') + `\n\nwhole output:\n${out}`);
}

/** Runs `terraform plan` or `apply` in `t`, which must fail (exit 1) with every row's error. */
function expectRowsFail(t: TerraformDir, cmd: 'plan' | 'apply', rows: Row[]): void {
  const r = t.run(cmd, '-no-color', '-input=false', ...(cmd === 'apply' ? ['-auto-approve'] : []));
  expect(r.code).toBe(1);
  checkRows(r.out, rows);
}

beforeAll(async () => {
  tb = await ProviderTestbed.start('mayastor-diags-', { a: { disks: { 'd0.img': 64 * MiB, 'd1.img': 64 * MiB } } });
});

afterAll(async () => {
  await tb?.stop();
});

test('validation rows: wrong types, unaligned and negative sizes, a bad child URI', () => {
  const pool = resource('mayastor_pool', 'p', { node: 'a', name: 'p', disks: [tb.disk('a', 'd0.img')] });
  const rows: Row[] = [
    {
      name: 'wrong type (size_bytes a string)',
      address: 'mayastor_replica.wrong_type',
      attr: 'size_bytes',
      says: /Incorrect attribute value type|a number is required/,
      hcl: resource('mayastor_replica', 'wrong_type', { node: 'a', pool: 'p', size_bytes: 'lots' }),
    },
    {
      name: 'wrong type (thin a list)',
      address: 'mayastor_replica.wrong_bool',
      attr: 'thin',
      says: /Incorrect attribute value type|bool required/,
      hcl: resource('mayastor_replica', 'wrong_bool', { node: 'a', pool: 'p', size_bytes: MiB, thin: ref('[true]') }),
    },
    {
      name: 'unaligned size',
      address: 'mayastor_replica.unaligned',
      attr: 'size_bytes',
      says: /Invalid size_bytes.*multiple of 512/,
      hcl: resource('mayastor_replica', 'unaligned', { node: 'a', pool: 'p', size_bytes: 1000 }),
    },
    {
      name: 'negative size',
      address: 'mayastor_replica.negative',
      attr: 'size_bytes',
      says: /Invalid size_bytes.*positive/,
      hcl: resource('mayastor_replica', 'negative', { node: 'a', pool: 'p', size_bytes: -4096 }),
    },
    {
      name: 'negative nexus size',
      address: 'mayastor_nexus.negative',
      attr: 'size_bytes',
      says: /Invalid size_bytes.*positive/,
      hcl: resource('mayastor_nexus', 'negative', { node: 'a', size_bytes: -512, children: ['malloc:///m0?size_mb=8'] }),
    },
    {
      name: 'bad child URI',
      address: 'mayastor_nexus.bad_child',
      attr: 'children',
      says: /Invalid child URI/,
      hcl: resource('mayastor_nexus', 'bad_child', { node: 'a', size_bytes: MiB, children: ['ftp://x/y'] }),
    },
  ];
  expectRowsFail(tb.dir('plan-rows', tb.provider() + pool + rows.map((r) => r.hcl).join('')), 'plan', rows);
});

test('plan rows once validation passes: an unknown node on every resource', () => {
  const rows: Row[] = [
    {
      name: 'unknown node (replica)',
      address: 'mayastor_replica.unknown_node',
      attr: 'node',
      says: /Unknown node "zz".*known nodes: a/,
      hcl: resource('mayastor_replica', 'unknown_node', { node: 'zz', pool: 'p', size_bytes: MiB }),
    },
    {
      name: 'unknown node (pool)',
      address: 'mayastor_pool.unknown_node',
      attr: 'node',
      says: /Unknown node "yy"/,
      hcl: resource('mayastor_pool', 'unknown_node', { node: 'yy', name: 'q', disks: ['/tmp/q.img'] }),
    },
    {
      name: 'unknown node (nexus)',
      address: 'mayastor_nexus.unknown_node',
      attr: 'node',
      says: /Unknown node "xx"/,
      hcl: resource('mayastor_nexus', 'unknown_node', { node: 'xx', size_bytes: MiB, children: ['malloc:///m1?size_mb=8'] }),
    },
  ];
  expectRowsFail(tb.dir('plan-node-rows', tb.provider() + rows.map((r) => r.hcl).join('')), 'plan', rows);
});

test('apply-time rows: a disk outside the allowlist, a bad allowed_hosts entry, an agent that is down, a full pool, children of different sizes', () => {
  const rows: Row[] = [
    {
      name: 'disk outside the allowlist',
      address: 'mayastor_pool.outside',
      attr: 'disks',
      says: /allow/i,
      hcl: resource('mayastor_pool', 'outside', { node: 'a', name: 'outside', disks: [path.join(tb.work, 'elsewhere.img')] }),
    },
    {
      name: 'nexus allowed_hosts entry that is no address',
      address: 'mayastor_nexus.bad_hosts',
      attr: 'allowed_hosts',
      says: /allowedHosts\[0\].*IP address or a CIDR prefix/,
      hcl: resource('mayastor_nexus', 'bad_hosts', {
        node: 'a',
        size_bytes: MiB,
        children: ['malloc:///h1?size_mb=4'],
        share: 'nbd',
        allowed_hosts: ['no such host!'],
      }),
    },
    {
      name: 'agent down',
      address: 'mayastor_pool.down',
      attr: 'node',
      says: /Agent on node "down" is unreachable/,
      hcl: resource('mayastor_pool', 'down', { node: 'down', name: 'down', disks: ['/tmp/x.img'] }),
    },
    {
      name: 'full pool',
      address: 'mayastor_replica.too_big',
      attr: 'size_bytes',
      says: /space|no_space|507/i,
      hcl: resource('mayastor_replica', 'too_big', { node: 'a', pool: ref('mayastor_pool.p.name'), size_bytes: 512 * MiB }),
    },
    {
      name: 'children of different sizes',
      address: 'mayastor_nexus.mixed',
      attr: 'children',
      says: /child|children/i,
      hcl:
        resource('mayastor_replica', 'small', { node: 'a', pool: ref('mayastor_pool.p.name'), size_bytes: 4 * MiB }) +
        resource('mayastor_replica', 'large', { node: 'a', pool: ref('mayastor_pool.p.name'), size_bytes: 9 * MiB }) +
        resource('mayastor_nexus', 'mixed', { node: 'a', size_bytes: 8 * MiB, children: ref('[mayastor_replica.small.uri, mayastor_replica.large.uri]') }),
    },
  ];
  const pool = resource('mayastor_pool', 'p', { node: 'a', name: 'p', disks: [tb.disk('a', 'd1.img')] });
  const provider = tb.provider().replace(/nodes\s*=\s*\{/, 'nodes = { down = "http://127.0.0.1:1",');
  const t = tb.dir('apply-rows', provider + pool + rows.map((r) => r.hcl).join(''));
  expectRowsFail(t, 'apply', rows);
  expectOk(t.run('destroy', '-no-color', '-input=false', '-auto-approve'));
});

test('token rows: missing and wrong token name the node and the provider token', () => {
  const body = tb.provider({ retries: 0 }) + resource('mayastor_pool', 'p', { node: 'a', name: 'tok', disks: [tb.disk('a', 'd0.img')] });
  for (const [name, token, says] of [
    ['missing token', '', /an Authorization: Bearer <token> header is required/],
    ['wrong token', 'not-the-token-123', /the bearer token is wrong/],
  ] as const) {
    const t = new TerraformDir(path.join(tb.work, name.replace(' ', '-')), tb.rc, token);
    tb.dir(name.replace(' ', '-'), body);
    expectRowsFail(t, 'apply', [
      { name, address: 'mayastor_pool.p', attr: 'node', says: new RegExp(`rejected the token.*${says.source}.*provider's token`), hcl: '' },
    ]);
  }
});
