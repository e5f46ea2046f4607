/** The provider daemon's side of the launcher protocol: request parsing and frames, under hostile input. */
import { FrameType, MAX_PAYLOAD, encodeFrames, parseRequest } from '../../provider/daemon';

const body = (...parts: string[]) => Buffer.from(parts.map((p) => p + '\0').join(''));

describe('parseRequest', () => {
  test('reads cwd, the arguments and the environment', () => {
    const r = parseRequest(body('/work', '2', '--debug', 'x y', 'A=1', 'B=a=b', 'EMPTY=', 'junk', '=noname'));
    expect(r.cwd).toBe('/work');
    expect(r.args).toEqual(['--debug', 'x y']);
    expect({ ...r.env }).toEqual({ A: '1', B: 'a=b', EMPTY: '' });
  });
  test('an environment key cannot reach Object.prototype', () => {
    const r = parseRequest(body('/', '0', '__proto__=x', 'constructor=y'));
    expect(r.env.__proto__).toBe('x');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
  test.each([
    ['empty', Buffer.alloc(0), /NUL-terminated/],
    ['not NUL-terminated', Buffer.from('/\x000'), /NUL-terminated/],
    ['no argument count', body('/'), /cwd and argument count/],
    ['argument count not a number', body('/', 'two'), /argument count "two" is not a number/],
    ['argument count too large', body('/', '99999'), /is not a number/],
    ['fewer arguments than announced', body('/', '3', 'a'), /announces 3 arguments but carries 1/],
  ])('rejects a request that is %s', (_what, buf, re) => {
    expect(() => parseRequest(buf)).toThrow(re);
  });
});

describe('encodeFrames', () => {
  test('type, little-endian length, payload', () => {
    const b = Buffer.concat(encodeFrames(FrameType.Stdout, Buffer.from('hi')));
    expect([...b]).toEqual([1, 2, 0, 0, 0, 0x68, 0x69]);
  });
  test('an empty payload is one frame', () => {
    expect([...Buffer.concat(encodeFrames(FrameType.Retry, Buffer.alloc(0)))]).toEqual([4, 0, 0, 0, 0]);
  });
  test('payloads longer than the launcher accepts are split', () => {
    const frames = encodeFrames(FrameType.Stderr, Buffer.alloc(MAX_PAYLOAD * 2 + 3, 7));
    const lengths = frames.filter((_, i) => i % 2 === 0).map((h) => h.readUInt32LE(1));
    expect(lengths).toEqual([MAX_PAYLOAD, MAX_PAYLOAD, 3]);
  });
});
