/**
 * mayastorctl and NVMe/TCP shares (issue 12): `node` shows the nvmf listener and the shares an agent makes,
 * `replica create --share nvmf --allowed-hosts HOSTNQN` prints the nvmf:// URI, a bad --share is a usage
 * error naming the choices, and an agent without --nvmf-listen answers 422 naming the flag.
 * In-process agents (the native build is needed).
 */
import path from 'node:path';
import { runCtl } from '../../agent/ctl/main';
import { nvmfNqn } from '../../agent/api/grammar';
import type { Agent } from '../../agent/src/main';
import { MiB, cleanup, makeDisk, startInProcess, tempDir } from '../helpers/agent';

const R = '34343434-0000-4000-8000-000000000001';
const HOSTNQN = 'nqn.2014-08.org.nvmexpress:uuid:34343434-aaaa-4bbb-8ccc-000000000001';

let dir: string;
let agent: Agent;

beforeAll(async () => {
  dir = tempDir('mayastor-ctl-nvmf-');
  makeDisk(path.join(dir, 'disks', 'd0.img'), 64 * MiB);
  ({ agent } = await startInProcess(dir, ['--cluster-size', String(MiB), '--nvmf-listen', '127.0.0.1:0'], 'ctl-nvmf'));
});

afterAll(async () => {
  await agent?.close();
  cleanup(dir);
});

async function ctl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCtl(['--url', agent.url, '--token', agent.token, ...args], { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

test('node shows the nvmf listener and the shares; replica create --share nvmf prints the nvmf:// URI', async () => {
  const node = await ctl(['node']);
  expect(node.code).toBe(0);
  expect(node.out).toMatch(/shares: none, nbd, nvmf/);
  const port = /nvmf\s+127\.0\.0\.1:(\d+)/.exec(node.out)?.[1];
  expect(Number(port)).toBeGreaterThan(0);
  expect((await ctl(['pool', 'create', 'p', path.join(dir, 'disks', 'd0.img')])).code).toBe(0);
  const r = await ctl(['replica', 'create', R, '--pool', 'p', '--size', '8MiB', '--share', 'nvmf', '--allowed-hosts', HOSTNQN]);
  expect(r.err).toBe('');
  expect(r.out).toContain(`nvmf://127.0.0.1:${port}/${nvmfNqn(R)}`);
  const bad = await ctl(['replica', 'set', R, '--allowed-hosts', '10.0.0.1']);
  expect(bad.code).toBe(1);
  expect(bad.err).toMatch(/allowedHosts\[0\] '10\.0\.0\.1' must be an NQN/);
  const back = await ctl(['replica', 'set', R, '--share', 'nbd', '--allowed-hosts', '127.0.0.1']);
  expect(back.out).toMatch(new RegExp(`nbd://127\\.0\\.0\\.1:\\d+/${R}`));
});

test('--share with an unknown value is a usage error listing the shares', async () => {
  const r = await ctl(['replica', 'set', R, '--share', 'smb']);
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/--share: 'smb' must be one of: none, nbd, nvmf/);
});
