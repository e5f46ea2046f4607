/**
 * Issue 14 item 9: examples/tftest (a module and its tests/replica.tftest.hcl) run by the real `terraform test`
 * against a real agent, offline through the testbed's filesystem mirror: every run block passes (apply with asserts,
 * an in-place growth, plan-only runs whose bad sizes are expected failures), and terraform test destroys what it
 * made (the agent is empty after).
 */
import fs from 'node:fs';
import path from 'node:path';
import { MiB, ROOT } from '../helpers/agent';
import { ProviderTestbed, expectOk } from '../helpers/terraform';

jest.setTimeout(300_000);

let tb: ProviderTestbed;

beforeAll(async () => {
  tb = await ProviderTestbed.start('mayastor-tftest-', { 'node-a': { disks: { 'disk0.img': 128 * MiB } } });
});

afterAll(async () => {
  await tb?.stop();
});

test('terraform test passes every run block of examples/tftest and leaves nothing behind', async () => {
  const t = tb.dir('tftest');
  fs.cpSync(path.join(ROOT, 'examples', 'tftest'), t.dir, { recursive: true });
  expectOk(t.run('init', '-no-color', '-input=false'));
  const r = t.run('test', '-no-color', `-var=nodes={ node-a = { url = "${tb.agents['node-a'].url}", disk = "${tb.disk('node-a', 'disk0.img')}" } }`);
  const out = expectOk(r);
  for (const run of ['pool_and_replica', 'grows_in_place', 'unaligned_size_is_refused', 'negative_size_is_refused']) {
    expect(out).toMatch(new RegExp(`run "${run}"\\.\\.\\. pass`));
  }
  expect(out).toMatch(/Success! 4 passed, 0 failed/);
  const c = tb.agents['node-a'].client();
  expect(await c.listReplicas()).toEqual([]);
  expect(await c.listPools()).toEqual([]);
});

test('a failing assert fails terraform test, naming the run and the message', () => {
  const t = tb.dir('tftest-fail');
  fs.cpSync(path.join(ROOT, 'examples', 'tftest'), t.dir, { recursive: true });
  const hcl = path.join(t.dir, 'tests', 'replica.tftest.hcl');
  fs.writeFileSync(hcl, fs.readFileSync(hcl, 'utf8').replace('var.volume_bytes + 1048576', 'var.volume_bytes'));
  expectOk(t.run('init', '-no-color', '-input=false'));
  const r = t.run('test', '-no-color', `-var=nodes={ node-a = { url = "${tb.agents['node-a'].url}", disk = "${tb.disk('node-a', 'disk0.img')}" } }`);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/run "pool_and_replica"\.\.\. fail/);
  expect(r.out).toMatch(/replica_size did not add the 1 MiB nexus label/);
});
