/**
 * One grammar (agent/api/grammar.ts): the same sample names and URIs go to the agent's validation and to the
 * provider's validators, and both give the same verdict (valid, or refused). Also the house rule that the
 * provider, the constructs, the benches, mayastorctl and agent/api itself never import the agent's internals.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkName, checkShare, checkUuid } from '../../provider/resources/common';
import { Diagnostics } from '../../provider/protocol/schema';
import { nexusResource } from '../../provider/resources/nexus';
import { validateChildUri, validateName, validateShare, validateUuid } from '../../agent/src/validation';
import { NBD_DEFAULT_PORT, NEXUS_LABEL_BYTES, NEXUS_MAX_CHILDREN } from '../../agent/api/limits';

const ROOT = path.resolve(__dirname, '../..');
const U = '0b6c6b8e-3a4f-4f36-9d0f-3a1c8b1e2d40';

/** true when the agent's validation accepts v */
function agentAccepts(check: (v: string) => unknown, v: string): boolean {
  try {
    check(v);
    return true;
  } catch {
    return false;
  }
}

function providerAccepts(check: (d: Diagnostics, v: string) => void, v: string): boolean {
  const d = new Diagnostics();
  check(d, v);
  return !d.hasErrors();
}

const poolNames: [string, boolean][] = [
  ['pool-a', true],
  ['db:1', true], // the agent always took it; the provider and the constructs refused it
  ['a.b_c-d', true],
  ['x'.repeat(127), true],
  ['x'.repeat(128), false],
  ['-p', false],
  ['a/b', false],
  ['a b', false],
  ['..', false],
];

test.each(poolNames)('pool name %s: agent and provider agree (valid: %s)', (name, valid) => {
  expect(agentAccepts((v) => validateName('name', v), name)).toBe(valid);
  expect(providerAccepts((d, v) => checkName(d, v, 'name', 'pool name'), name)).toBe(valid);
});

test.each([
  [U, true],
  [U.toUpperCase(), true],
  ['not-a-uuid', false],
  [U.slice(0, 35), false],
])('uuid %s: agent and provider agree (valid: %s)', (uuid, valid) => {
  expect(agentAccepts((v) => validateUuid('uuid', v), uuid)).toBe(valid);
  expect(providerAccepts((d, v) => checkUuid(d, v, 'uuid'), uuid)).toBe(valid);
});

test.each([
  ['none', true],
  ['nbd', true],
  ['iscsi', false], // known, not built yet: both refuse it
  ['nvmf', false],
  ['smb', false],
])('share %s: agent and provider agree (valid: %s)', (share, valid) => {
  expect(agentAccepts((v) => validateShare('share', v), share)).toBe(valid);
  expect(providerAccepts((d, v) => checkShare(d, v), share)).toBe(valid);
});

const childUris: [string, boolean][] = [
  [`bdev:///${U}`, true],
  ['bdev:///nope', false],
  [`nbd://127.0.0.1:${NBD_DEFAULT_PORT}/${U}`, true],
  [`nbd://storage-b/${U}`, true], // no port: 10809, as the data path has it
  [`nbd://[::1]:10810/${U}?io_timeout_ms=2000`, true],
  ['nbd://h:1/', false],
  ['nbd://h:99999/x', false],
  ['uring://DISK', true],
  ['uring://DISK?cache=buffered', true],
  ['uring://relative', false],
  ['aio:///a/../b', false],
  ['malloc:///m0?size_mb=64', true],
  ['iscsi://h:3260/iqn.2026-01.io.x:t/0', false], // not built yet
  ['nvmf://h:4420/nqn.2026-01.io.x:n', false],
  ['ftp://h:1/x', false],
  ['just-text', false],
];

/** The provider's nexus validation of one child URI. */
function providerChildAccepts(uri: string): boolean {
  const d = new Diagnostics();
  nexusResource.validate!({ node: 'a', uuid: U, size_bytes: 1 << 20, children: [uri], share: 'none' } as never, d);
  return !d.hasErrors();
}

/** A file child must exist for the agent (it checks its allowlist and the file): one in a temp dir. */
const disk = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mayastor-grammar-')), 'd.img');
fs.writeFileSync(disk, Buffer.alloc(4096));
afterAll(() => fs.rmSync(path.dirname(disk), { recursive: true, force: true }));

test.each(childUris)('child %s: agent and provider agree (valid: %s)', (sample, valid) => {
  const uri = sample.replace('DISK', disk);
  // the agent also checks uring:// and aio:// paths against its allowlist: give it the whole filesystem
  expect(agentAccepts((v) => validateChildUri('children[0]', v, ['/']), uri)).toBe(valid);
  expect(providerChildAccepts(uri)).toBe(valid);
});

test('the limits mirror datapath.h', () => {
  const h = fs.readFileSync(path.join(ROOT, 'agent/native/include/datapath.h'), 'utf8');
  expect(Number(/#define DP_NEXUS_MAX_CHILDREN (\d+)/.exec(h)![1])).toBe(NEXUS_MAX_CHILDREN);
  expect(
    /#define DP_NEXUS_HEADER_BYTES \((\d+) \* (\d+)\)/
      .exec(h)!
      .slice(1)
      .reduce((a, b) => a * Number(b), 1),
  ).toBe(NEXUS_LABEL_BYTES);
});

/** Every import of a TypeScript file under `dir`. */
function importsUnder(dir: string): { file: string; spec: string }[] {
  const out: { file: string; spec: string }[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'cdktf.out') walk(p);
      else if (e.isFile() && p.endsWith('.ts')) {
        const src = fs.readFileSync(p, 'utf8');
        for (const m of src.matchAll(/(?:from\s+|require\(\s*|import\(\s*)['"]([^'"]+)['"]/g)) out.push({ file: path.relative(ROOT, p), spec: m[1] });
      }
    }
  };
  walk(path.join(ROOT, dir));
  return out;
}

const resolved = (i: { file: string; spec: string }) =>
  i.spec.startsWith('.') ? path.relative(ROOT, path.resolve(ROOT, path.dirname(i.file), i.spec)) : i.spec;

test.each(['provider', 'constructs', 'bench', 'agent/ctl', 'agent/api'])('%s never imports agent/src', (dir) => {
  const bad = importsUnder(dir).filter((i) => resolved(i).startsWith('agent/src'));
  expect(bad).toEqual([]);
});

test('agent/api imports nothing else of the project, nor fastify, koffi or node:fs', () => {
  const bad = importsUnder('agent/api').filter((i) => {
    const r = resolved(i);
    return (i.spec.startsWith('.') && !r.startsWith('agent/api')) || ['fastify', 'koffi', 'node:fs', 'fs'].includes(i.spec);
  });
  expect(bad).toEqual([]);
});
