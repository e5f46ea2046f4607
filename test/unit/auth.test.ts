import fs from 'node:fs';
import path from 'node:path';
import { checkBearer, loadOrCreateToken } from '../../agent/src/auth';
import { cleanup, tempDir } from '../helpers/agent';

describe('token', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => cleanup(dir));

  test('created at DATA_DIR/token with mode 0600 and reused', () => {
    const a = loadOrCreateToken(dir);
    expect(a.file).toBe(path.join(dir, 'token'));
    expect(fs.statSync(a.file).mode & 0o777).toBe(0o600);
    expect(a.token).toMatch(/^[0-9a-f]{64}$/);
    expect(loadOrCreateToken(dir).token).toBe(a.token);
  });
  test('--token-file wins; bad files are errors', () => {
    const f = path.join(dir, 'tok');
    fs.writeFileSync(f, 'secret-token-123\n');
    expect(loadOrCreateToken(dir, f).token).toBe('secret-token-123');
    expect(fs.existsSync(path.join(dir, 'token'))).toBe(false);
    expect(() => loadOrCreateToken(dir, path.join(dir, 'missing'))).toThrow(/--token-file/);
    fs.writeFileSync(f, 'short');
    expect(() => loadOrCreateToken(dir, f)).toThrow(/at least 8/);
  });
  test('bearer check', () => {
    expect(checkBearer('Bearer abcdefgh', 'abcdefgh')).toBe(true);
    expect(checkBearer('bearer abcdefgh', 'abcdefgh')).toBe(true);
    expect(checkBearer('Bearer abcdefgX', 'abcdefgh')).toBe(false);
    expect(checkBearer('abcdefgh', 'abcdefgh')).toBe(false);
    expect(checkBearer('Basic abcdefgh', 'abcdefgh')).toBe(false);
    expect(checkBearer(undefined, 'abcdefgh')).toBe(false);
    expect(checkBearer('Bearer ', 'abcdefgh')).toBe(false);
  });
});
