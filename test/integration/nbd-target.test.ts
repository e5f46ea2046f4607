/*
 * NBD target and nbd:// child bdev, driven by Debian's real clients (nbdinfo, qemu-io,
 * qemu-img, fio's nbd engine) against agent/native's dp-nbd-serve. The checks themselves
 * live in nbd-target.sh (one shell step per "must show" item); this runs it.
 */
import { spawnSync } from 'child_process';
import { existsSync } from 'fs';
import * as path from 'path';

const root = path.resolve(__dirname, '../..');
const build = process.env.DP_BUILD ?? path.join(root, 'agent/native/build');

describe('NBD target (real clients)', () => {
  beforeAll(() => {
    // BUILD relative to the Makefile, as `npm run build` gives it: the .d files name their targets by it, and
    // an absolute spelling would leave later relative builds blind to header changes
    const rel = path.relative(path.join(root, 'agent/native'), build);
    const r = spawnSync('make', ['-C', path.join(root, 'agent/native'), `BUILD=${rel}`, 'all', `${rel}/dp-nbd-serve-asan`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`native build failed:\n${r.stdout}\n${r.stderr}`);
  }, 600_000);

  test('nbdinfo, qemu-io, qemu-img, fio, hostile frames, thin holes, remote nbd:// child', () => {
    expect(existsSync(path.join(build, 'dp-nbd-serve'))).toBe(true);
    const r = spawnSync('bash', [path.join(root, 'test/integration/nbd-target.sh')], {
      encoding: 'utf8',
      env: { ...process.env, BUILD: build },
      timeout: 600_000,
    });
    if (r.status !== 0) {
      throw new Error(`nbd-target.sh failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    }
    expect(r.stdout).toContain('all NBD integration checks passed');
  }, 660_000);
});
