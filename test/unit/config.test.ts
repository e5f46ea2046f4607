import path from 'node:path';
import { ConfigError, parseArgs, parseHostPort } from '../../agent/src/config';

describe('agent command line', () => {
  test('defaults', () => {
    const c = parseArgs(['--data-dir', '/var/lib/m'], {});
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 9500 });
    expect(c.nbdListen).toEqual({ host: '127.0.0.1', port: 10809 });
    expect(c.allowDisks).toEqual(['/var/lib/m/disks/']);
    expect(c.reactors).toBe(1);
    expect(c.tokenFile).toBeUndefined();
    expect(c.clusterSize).toBe(0);
  });
  test('every flag, both spellings, repeatable --allow-disk', () => {
    const c = parseArgs(
      [
        '--node=n1',
        '--listen',
        '0.0.0.0:9600',
        '--data-dir',
        'rel/dir',
        '--token-file',
        '/etc/tok',
        '--nbd-listen',
        '[::1]:10810',
        '--iscsi-listen',
        '127.0.0.1:3260',
        '--nvmf-listen',
        '127.0.0.1:4420',
        '--allow-disk',
        '/dev/sd',
        '--allow-disk=/data/disks/',
        '--reactors',
        '2',
        '--cluster-size',
        '1048576',
      ],
      {},
    );
    expect(c.node).toBe('n1');
    expect(c.listen).toEqual({ host: '0.0.0.0', port: 9600 });
    expect(c.dataDir).toBe(path.resolve('rel/dir'));
    expect(c.nbdListen).toEqual({ host: '::1', port: 10810 });
    expect(c.iscsiListen?.port).toBe(3260);
    expect(c.nvmfListen?.port).toBe(4420);
    expect(c.allowDisks).toEqual(['/dev/sd', '/data/disks/']);
    expect(c.reactors).toBe(2);
    expect(c.clusterSize).toBe(1048576);
  });
  const bad: [string[], string][] = [
    [[], '--data-dir'],
    [['--data-dir', '/d', '--listen', 'nope'], '--listen'],
    [['--data-dir', '/d', '--listen', '1.2.3.4:70000'], '--listen'],
    [['--data-dir', '/d', '--reactors', '0'], '--reactors'],
    [['--data-dir', '/d', '--reactors', 'x'], '--reactors'],
    [['--data-dir', '/d', '--allow-disk', 'relative'], '--allow-disk'],
    [['--data-dir', '/d', '--allow-disk', '/'], '--allow-disk'],
    [['--data-dir', '/d', '--allow-disk', '/a/../b'], '--allow-disk'],
    [['--data-dir', '/d', '--node', 'a/b'], '--node'],
    [['--data-dir', '/d', '--bogus', 'x'], '--bogus'],
    [['--data-dir', '/d', '--listen'], '--listen'],
    [['--data-dir', '/d', '--data-dir', '/e'], '--data-dir'],
    [['--data-dir', '/d', '--cluster-size', '3000'], '--cluster-size'],
    [['--data-dir', '/d', '--log-level', 'loud'], '--log-level'],
  ];
  test.each(bad)('%p fails naming %s', (argv, flag) => {
    let err: unknown;
    try {
      parseArgs(argv, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).flag).toBe(flag);
    expect((err as Error).message).toContain(flag);
  });
  test('host:port', () => {
    expect(parseHostPort('--x', 'localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(() => parseHostPort('--x', '::1:80')).toThrow(/--x/);
  });
});

describe('limits against abuse (issue 10)', () => {
  test('defaults', () => {
    expect(parseArgs(['--data-dir', '/d'], {}).limits).toEqual({
      maxConnections: 1024,
      maxConnectionsPerExport: 128,
      handshakeTimeoutMs: 10000,
      connMemoryBudget: 64 * 2 ** 20,
      memoryBudget: 2 ** 30,
      fdHeadroom: 64,
      writerGraceMs: 30000,
    });
  });
  test('every flag, sizes with units', () => {
    const c = parseArgs(
      [
        '--data-dir=/d',
        '--max-connections',
        '10',
        '--max-connections-per-export=2',
        '--handshake-timeout-ms',
        '500',
        '--conn-memory-budget',
        '8MiB',
        '--memory-budget=1G',
        '--fd-headroom',
        '0',
        '--writer-grace-ms=2000',
      ],
      {},
    );
    expect(c.limits).toEqual({
      maxConnections: 10,
      maxConnectionsPerExport: 2,
      handshakeTimeoutMs: 500,
      connMemoryBudget: 8 * 2 ** 20,
      memoryBudget: 2 ** 30,
      fdHeadroom: 0,
      writerGraceMs: 2000,
    });
    expect(parseArgs(['--data-dir=/d', '--conn-memory-budget', '2097152'], {}).limits.connMemoryBudget).toBe(2097152);
  });
  test('--writer-grace-ms: 0 (the lease ends with the last connection) up to 24 h', () => {
    expect(parseArgs(['--data-dir=/d', '--writer-grace-ms', '0'], {}).limits.writerGraceMs).toBe(0);
    expect(parseArgs(['--data-dir=/d', '--writer-grace-ms', '86400000'], {}).limits.writerGraceMs).toBe(86400000);
  });
  const bad: [string[], string, RegExp][] = [
    [['--max-connections', '0'], '--max-connections', /integer from 1/],
    [['--max-connections', 'many'], '--max-connections', /integer/],
    [['--max-connections-per-export', '-1'], '--max-connections-per-export', /integer/],
    [['--handshake-timeout-ms', '1.5'], '--handshake-timeout-ms', /integer/],
    [['--handshake-timeout-ms', '0'], '--handshake-timeout-ms', /from 1/],
    [['--fd-headroom', 'x'], '--fd-headroom', /integer/],
    [['--conn-memory-budget', '64 parsecs'], '--conn-memory-budget', /size/],
    [['--conn-memory-budget', '512KiB'], '--conn-memory-budget', /minimum of 1MiB/],
    [['--memory-budget', '32MiB'], '--memory-budget', /below --conn-memory-budget/],
    [['--memory-budget', '2MiB', '--conn-memory-budget', '4MiB'], '--memory-budget', /below --conn-memory-budget/],
    [['--writer-grace-ms', '-1'], '--writer-grace-ms', /integer from 0 to 86400000/],
    [['--writer-grace-ms', '86400001'], '--writer-grace-ms', /integer from 0 to 86400000/],
    [['--writer-grace-ms', '2.5'], '--writer-grace-ms', /integer/],
    [['--writer-grace-ms', '30s'], '--writer-grace-ms', /integer/],
    [['--writer-grace-ms', ''], '--writer-grace-ms', /integer/],
    [['--writer-grace-ms'], '--writer-grace-ms', /needs a value/],
    [['--writer-grace-ms', '1', '--writer-grace-ms', '2'], '--writer-grace-ms', /more than once/],
  ];
  test.each(bad)('%p fails naming %s', (argv, flag, why) => {
    let err: unknown;
    try {
      parseArgs(['--data-dir', '/d', ...argv], {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).flag).toBe(flag);
    expect((err as Error).message).toMatch(why);
  });
  test('usage names the flags and their defaults', () => {
    let err: unknown;
    try {
      parseArgs(['--help'], {});
    } catch (e) {
      err = e;
    }
    for (const f of [
      '--max-connections 1024',
      '--max-connections-per-export 128',
      '--handshake-timeout-ms 10000',
      '--conn-memory-budget 64MiB',
      '--memory-budget 1GiB',
      '--fd-headroom 64',
      '--writer-grace-ms 30000',
    ]) {
      expect((err as Error).message).toContain(f);
    }
  });
});
