import fs from 'node:fs';
import path from 'node:path';
import { ApiError } from '../../agent/src/errors';
import {
  checkDisk,
  validateName,
  validateNexusPatch,
  validateNexusSpec,
  validatePoolSpec,
  validateReplicaPatch,
  validateReplicaSpec,
  validateSize,
  validateUuid,
} from '../../agent/src/validation';
import { cleanup, makeDisk, tempDir } from '../helpers/agent';

function fails(fn: () => unknown, status: number, field: string): ApiError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ApiError);
  const e = err as ApiError;
  expect(e.status).toBe(status);
  expect(e.field).toBe(field);
  expect(e.message).toContain(field);
  return e;
}

describe('names', () => {
  test('accepts ordinary names', () => {
    expect(validateName('name', 'pool-1')).toBe('pool-1');
    expect(validateName('name', 'a.b_c:d')).toBe('a.b_c:d');
  });
  test.each([['a/b'], ['/abs'], ['..'], [''], ['-x'], ['a b'], ['x'.repeat(128)], [7], [null]])('rejects %p', (v) => {
    fails(() => validateName('name', v), 400, 'name');
  });
  test('the message says "/" for slashes', () => {
    expect(fails(() => validateName('pool', 'a/b'), 400, 'pool').message).toContain("must not contain '/'");
  });
});

describe('uuids', () => {
  test('8-4-4-4-12, lower-cased', () => {
    expect(validateUuid('uuid', 'ABCDEF01-2345-6789-abcd-ef0123456789')).toBe('abcdef01-2345-6789-abcd-ef0123456789');
  });
  test.each([['not-a-uuid'], ['abcdef01-2345-6789-abcd-ef012345678'], ['abcdef0123456789abcdef0123456789'], ['gbcdef01-2345-6789-abcd-ef0123456789'], [42]])(
    'rejects %p',
    (v) => {
      fails(() => validateUuid('uuid', v), 400, 'uuid');
    },
  );
});

describe('sizes', () => {
  test('accepts multiples of 512 up to 2^53-1', () => {
    expect(validateSize('sizeBytes', 512)).toBe(512);
    expect(validateSize('sizeBytes', 2 ** 52)).toBe(2 ** 52);
  });
  test.each([[0], [-512], [NaN], ['1024'], [2 ** 53], [2 ** 60], [Infinity], [1.5], [513], [null], [true]])('rejects %p', (v) => {
    fails(() => validateSize('sizeBytes', v), 400, 'sizeBytes');
  });
});

describe('specs', () => {
  test('replica spec defaults', () => {
    expect(validateReplicaSpec({ pool: 'p', sizeBytes: 4096 })).toEqual({ pool: 'p', sizeBytes: 4096, thin: false, share: 'none', allowedHosts: [] });
  });
  test('replica spec errors name the field', () => {
    fails(() => validateReplicaSpec({ sizeBytes: 4096 }), 400, 'pool');
    fails(() => validateReplicaSpec({ pool: 'p' }), 400, 'sizeBytes');
    fails(() => validateReplicaSpec({ pool: 'p', sizeBytes: 4096, thin: 'yes' }), 400, 'thin');
    fails(() => validateReplicaSpec({ pool: 'p', sizeBytes: 4096, share: 'ftp' }), 400, 'share');
    fails(() => validateReplicaSpec({ pool: 'p', sizeBytes: 4096, allowedHosts: ['a b'] }), 400, 'allowedHosts[0]');
    fails(() => validateReplicaSpec({ pool: 'p', sizeBytes: 4096, colour: 'red' }), 400, 'colour');
    fails(() => validateReplicaSpec([]), 400, 'body');
    fails(() => validateReplicaSpec({ pool: 'a/b', sizeBytes: 4096 }), 400, 'pool');
  });
  test('replica spec with share nvmf: allowedHosts are host NQNs', () => {
    const hostNqn = 'nqn.2014-08.org.nvmexpress:uuid:0b6c6b8e-3a4f-4f36-9d0f-3a1c8b1e2d40';
    expect(validateReplicaSpec({ pool: 'p', sizeBytes: 4096, share: 'nvmf', allowedHosts: [hostNqn] })).toMatchObject({
      share: 'nvmf',
      allowedHosts: [hostNqn],
    });
    expect(fails(() => validateReplicaSpec({ pool: 'p', sizeBytes: 4096, share: 'nvmf', allowedHosts: ['10.0.0.1'] }), 400, 'allowedHosts[0]').message).toMatch(
      /NQN/,
    );
    fails(() => validateReplicaSpec({ pool: 'p', sizeBytes: 4096, share: 'nvmf', allowedHosts: [hostNqn, hostNqn] }), 400, 'allowedHosts[1]');
    fails(
      () => validateReplicaSpec({ pool: 'p', sizeBytes: 4096, share: 'nvmf', allowedHosts: ['nqn.2014-08.org.nvmexpress:uuid:x'] }),
      400,
      'allowedHosts[0]',
    );
    expect(fails(() => validateReplicaSpec({ pool: 'p', sizeBytes: 4096, share: 'nbd', allowedHosts: [hostNqn] }), 400, 'allowedHosts[0]').message).toMatch(
      /nvmf/,
    );
    expect(validateReplicaPatch({ share: 'nvmf', allowedHosts: [hostNqn] })).toEqual({ share: 'nvmf', allowedHosts: [hostNqn] });
    fails(() => validateReplicaPatch({ share: 'nvmf', allowedHosts: ['::1'] }), 400, 'allowedHosts[0]');
    expect(fails(() => validateReplicaSpec({ pool: 'p', sizeBytes: 4096, share: 'iscsi' }), 422, 'share').message).toMatch(/not supported yet/);
  });
  test('patch', () => {
    expect(validateReplicaPatch({ sizeBytes: 8192 })).toEqual({ sizeBytes: 8192 });
    fails(() => validateReplicaPatch({ sizeBytes: 0 }), 400, 'sizeBytes');
    fails(() => validateReplicaPatch({ pool: 'x' }), 400, 'pool');
  });
  test('pool spec', () => {
    expect(validatePoolSpec({ disks: ['/a', 'uring:///b'] }).disks).toEqual(['/a', 'uring:///b']);
    fails(() => validatePoolSpec({}), 400, 'disks');
    fails(() => validatePoolSpec({ disks: [] }), 400, 'disks');
    fails(() => validatePoolSpec({ disks: 'x' }), 400, 'disks');
    fails(() => validatePoolSpec({ disks: ['relative/path'] }), 400, 'disks[0]');
    fails(() => validatePoolSpec({ disks: ['/a', '/a'] }), 400, 'disks[1]');
    fails(() => validatePoolSpec({ disks: ['/a/../etc/passwd'] }), 400, 'disks[0]');
    expect(validatePoolSpec({ disks: ['nbd://host:10809/x', 'uring:///b?cache=buffered'] }).disks).toHaveLength(2);
    fails(() => validatePoolSpec({ disks: ['nbd://host'] }), 400, 'disks[0]');
    fails(() => validatePoolSpec({ disks: ['iscsi://host/x'] }), 400, 'disks[0]');
    fails(() => validatePoolSpec({ disks: ['uring:///b?cache=fast'] }), 400, 'disks[0]');
    fails(() => validatePoolSpec({ disks: ['aio:///b?size=1'] }), 400, 'disks[0]');
    fails(() => validatePoolSpec({ disks: [5] }), 400, 'disks[0]');
  });
});

describe('disk allowlist', () => {
  let dir: string;
  let allow: string[];
  beforeAll(() => {
    dir = tempDir();
    allow = [path.join(dir, 'disks') + '/'];
    makeDisk(path.join(dir, 'disks/d0'), 1 << 20);
    makeDisk(path.join(dir, 'outside'), 1 << 20);
    fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'disks/link-out'));
    fs.symlinkSync(path.join(dir, 'disks/d0'), path.join(dir, 'disks/link-in'));
    fs.mkdirSync(path.join(dir, 'disks/subdir'));
    fs.writeFileSync(path.join(dir, 'disks/empty'), '');
  });
  afterAll(() => cleanup(dir));

  test('a disk inside the allowlist resolves to its real path', () => {
    expect(checkDisk('disks[0]', path.join(dir, 'disks/d0'), allow)).toBe(fs.realpathSync(path.join(dir, 'disks/d0')));
    expect(checkDisk('disks[0]', 'uring://' + path.join(dir, 'disks/d0'), allow)).toBe(fs.realpathSync(path.join(dir, 'disks/d0')));
    expect(checkDisk('disks[0]', path.join(dir, 'disks/link-in'), allow)).toBe(fs.realpathSync(path.join(dir, 'disks/d0')));
    // the cache option travels to the data path; the allowlist still applies to the path
    expect(checkDisk('disks[0]', 'aio://' + path.join(dir, 'disks/d0') + '?cache=buffered', allow)).toBe(
      'uring://' + fs.realpathSync(path.join(dir, 'disks/d0')) + '?cache=buffered',
    );
    // a remote export is not a local path: no allowlist, the URI goes through unchanged
    expect(checkDisk('disks[0]', 'nbd://127.0.0.1:10809/x', allow)).toBe('nbd://127.0.0.1:10809/x');
  });
  test('outside the allowlist, /etc/passwd, "..", symlinks out, missing, directories, empty files', () => {
    fails(() => checkDisk('disks[0]', path.join(dir, 'outside'), allow), 422, 'disks[0]');
    fails(() => checkDisk('disks[0]', '/etc/passwd', allow), 422, 'disks[0]');
    fails(() => checkDisk('disks[1]', dir + '/disks/../outside', allow), 400, 'disks[1]');
    fails(() => checkDisk('disks[0]', path.join(dir, 'disks/link-out'), allow), 422, 'disks[0]');
    fails(() => checkDisk('disks[0]', path.join(dir, 'disks/missing'), allow), 422, 'disks[0]');
    fails(() => checkDisk('disks[0]', path.join(dir, 'disks/subdir'), allow), 422, 'disks[0]');
    fails(() => checkDisk('disks[0]', path.join(dir, 'disks/empty'), allow), 422, 'disks[0]');
  });
  test('a prefix is not a partial directory match', () => {
    makeDisk(path.join(dir, 'disks-evil/d'), 1 << 20);
    fails(() => checkDisk('disks[0]', path.join(dir, 'disks-evil/d'), allow), 422, 'disks[0]');
  });
});

describe('nexus fields', () => {
  const child = 'bdev:///abcdef01-2345-6789-abcd-ef0123456789';
  test('an unknown field names itself and lists every allowed one, allowedHosts included', () => {
    expect(fails(() => validateNexusSpec({ sizeBytes: 1048576, children: [child], hosts: [] }, []), 400, 'hosts').message).toContain(
      'allowed: sizeBytes, children, share, allowedHosts, force',
    );
    expect(fails(() => validateNexusPatch({ hosts: [] }), 400, 'hosts').message).toContain('allowed: sizeBytes, share, allowedHosts');
  });
  test('allowedHosts entries are checked against the share', () => {
    expect(validateNexusPatch({ share: 'nbd', allowedHosts: ['127.0.0.1'] })).toEqual({ share: 'nbd', allowedHosts: ['127.0.0.1'] });
    fails(() => validateNexusPatch({ share: 'nbd', allowedHosts: ['not an address'] }), 400, 'allowedHosts[0]');
  });
});
