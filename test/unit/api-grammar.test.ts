/**
 * One grammar (agent/api/grammar.ts): the same sample names and URIs go to the agent's validation and to the
 * provider's validators, and both give the same verdict (valid, or refused). Also the house rule that the
 * provider, the constructs, the benches, mayastorctl and agent/api itself never import the agent's internals.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkName, checkShare, checkUuid } from '../../provider/resources/validators';
import { Diagnostics } from '../../provider/protocol/schema';
import { nexusResource } from '../../provider/resources/nexus';
import { validateChildUri, validateHosts, validateName, validateShare, validateUuid } from '../../agent/src/validation';
import { NBD_DEFAULT_PORT, NEXUS_LABEL_BYTES, NEXUS_MAX_CHILDREN, NQN_MAX_BYTES, NVMF_DEFAULT_PORT } from '../../agent/api/limits';
import { hostNqnProblem, nqnProblem, nvmfNqn, uuidOfNqn } from '../../agent/api/grammar';

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
  ['nvmf', true],
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
  ['nvmf://h:4420/nqn.2026-01.io.x:n', true],
  [`nvmf://10.0.0.2:${NVMF_DEFAULT_PORT}/nqn.2019-05.io.openebs:${U}`, true],
  [`nvmf://storage-b/nqn.2019-05.io.openebs:${U}`, true], // no port: 4420, as the data path has it
  [`nvmf://[fd00::2]:4421/nqn.2014-08.org.nvmexpress:uuid:${U}?io_timeout_ms=2000&connect_timeout_ms=500`, true],
  ['nvmf://h:4420/nqn.2026-01.io.x:n?queues=4&io_timeout_ms=2000', true],
  ['nvmf://h:4420/nqn.2026-01.io.x:n?queues=16', true],
  ['nvmf://h:4420/nqn.2026-01.io.x:n?queues=0', false],
  ['nvmf://h:4420/nqn.2026-01.io.x:n?queues=17', false],
  ['nvmf://h:4420/nqn.2026-01.io.x:n?io_timeout_ms=0', false],
  ['nvmf://h:4420/nqn.2026-01.io.x:n?timeout=5', false],
  ['nvmf://h:4420/', false],
  ['nvmf://h:70000/nqn.2026-01.io.x:n', false],
  [`nvmf://h:4420/${U}`, false], // a bare uuid is no NQN
  ['nvmf://h:4420/nqn.2026-13.io.x:n', false], // month 13
  [`nvmf://h:4420/nqn.2014-08.org.nvmexpress:uuid:nope`, false],
  [`nvmf://h/nqn.2026-01.io.x:${'n'.repeat(NQN_MAX_BYTES - 'nqn.2026-01.io.x:'.length + 1)}`, false], // 224 bytes
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

test('one NQN rule: nqn.2019-05.io.openebs:<uuid>, lower case, and back', () => {
  expect(nvmfNqn(U.toUpperCase())).toBe(`nqn.2019-05.io.openebs:${U}`);
  expect(nqnProblem(nvmfNqn(U))).toBeUndefined();
  expect(uuidOfNqn(nvmfNqn(U))).toBe(U);
  expect(uuidOfNqn('nqn.2026-01.io.x:n')).toBeUndefined();
});

test.each([
  [`nqn.2014-08.org.nvmexpress:uuid:${U}`, true],
  ['nqn.2026-01.com.example:host-1', true],
  ['nqn.2026-01.com.example', true],
  ['*', true],
  ['', false],
  ['10.0.0.5', false],
  ['nqn.2026-01.com.example:has space', false],
  ['nqn.26-01.com.example:x', false],
  [`nqn.2026-01.com.example:${'x'.repeat(NQN_MAX_BYTES)}`, false],
])('host NQN %s (valid: %s)', (nqn, valid) => {
  expect(hostNqnProblem(nqn) === undefined).toBe(valid);
});

test('allowedHosts: host NQNs for nvmf, addresses for nbd, each refusal naming the entry', () => {
  const hostNqn = `nqn.2014-08.org.nvmexpress:uuid:${U}`;
  expect(validateHosts('allowedHosts', [hostNqn, '*'], 'nvmf')).toEqual([hostNqn, '*']);
  expect(() => validateHosts('allowedHosts', [hostNqn, '10.0.0.5'], 'nvmf')).toThrow(/allowedHosts\[1\] '10.0.0.5' must be an NQN.*not by address/);
  expect(() => validateHosts('allowedHosts', ['nqn.2026-01.x:a b'], 'nvmf')).toThrow(/allowedHosts\[0\]/);
  expect(() => validateHosts('allowedHosts', [hostNqn], 'nbd')).toThrow(/allowedHosts\[0\] .* must be an IP address/);
  expect(() => validateHosts('allowedHosts', ['bogus'], undefined)).toThrow(/allowedHosts\[0\] 'bogus'/);
  expect(validateHosts('allowedHosts', ['10.0.0.0/8', hostNqn], undefined)).toEqual(['10.0.0.0/8', hostNqn]); // checked again against the share
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
  const proto = fs.readFileSync(path.join(ROOT, 'agent/native/src/nvmf/proto.h'), 'utf8');
  expect(Number(/#define NVMF_NQN_MAX (\d+)/.exec(proto)![1])).toBe(NQN_MAX_BYTES);
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
