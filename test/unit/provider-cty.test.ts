import { encode as mpEncode, decode as mpDecode } from '@msgpack/msgpack';
import {
  CtyDecimal,
  CtyDynamic,
  CtyType,
  UNKNOWN,
  Value,
  decodeMsgpack,
  encodeMsgpack,
  fromJson,
  isWhollyKnown,
  parseJsonExact,
  parseType,
  toJson,
  typedEqual,
  valuesEqual,
} from '../../provider/protocol/cty';

const rt = (t: CtyType, v: Value) => decodeMsgpack(t, encodeMsgpack(t, v));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('cty msgpack: primitives', () => {
  test('strings, bools, small numbers round-trip', () => {
    expect(rt('string', 'héllo')).toBe('héllo');
    expect(rt('string', '')).toBe('');
    expect(rt('bool', true)).toBe(true);
    expect(rt('bool', false)).toBe(false);
    for (const n of [0, 1, -1, 127, 128, -32, -33, 65535, 2 ** 31 - 1, -(2 ** 31), 1.5, -0.25, 1e300]) expect(rt('number', n)).toBe(n);
  });

  test('null is msgpack nil and empty bytes decode as null', () => {
    expect(hex(encodeMsgpack('string', null))).toBe('c0');
    expect(decodeMsgpack('string', new Uint8Array())).toBeNull();
    expect(decodeMsgpack('number', undefined)).toBeNull();
    expect(rt(['list', 'string'], null)).toBeNull();
  });

  test('unknown is exactly d4 00 00 and any extension reads as unknown', () => {
    expect(hex(encodeMsgpack('string', UNKNOWN))).toBe('d40000');
    expect(decodeMsgpack('number', Buffer.from('d40000', 'hex'))).toBe(UNKNOWN);
    // refined unknown (ext 12 with a map payload {1: false}) → unknown
    const payload = Buffer.from('8101c2', 'hex'); // {1: false}: "definitely not null"
    const refined = Buffer.concat([Buffer.from([0xc7, payload.length, 12]), payload]);
    expect(decodeMsgpack('string', refined)).toBe(UNKNOWN);
  });

  test('large integers: exact int64/uint64 both ways, beyond as decimal text', () => {
    const big = 2n ** 53n + 1n;
    expect(rt('number', big)).toBe(big);
    expect(hex(encodeMsgpack('number', big))).toBe('cf' + big.toString(16).padStart(16, '0'));
    expect(rt('number', -(2n ** 62n))).toBe(-(2n ** 62n));
    expect(rt('number', 2n ** 64n - 1n)).toBe(2n ** 64n - 1n);
    // 10 GiB goes out as an integer, not a float
    expect(encodeMsgpack('number', 10 * 2 ** 30)[0]).toBe(0xcf);
    expect(rt('number', 10 * 2 ** 30)).toBe(10 * 2 ** 30);
    const huge = 2n ** 70n;
    expect(mpDecode(encodeMsgpack('number', huge))).toBe(huge.toString());
    expect(rt('number', huge)).toBe(huge);
  });

  test('numbers sent as decimal strings (go-cty big.Float) are parsed', () => {
    expect(decodeMsgpack('number', mpEncode('12345678901234567890123'))).toBe(12345678901234567890123n);
    expect(decodeMsgpack('number', mpEncode('42'))).toBe(42);
    expect(decodeMsgpack('number', mpEncode('0.1'))).toBe(0.1);
    const d = decodeMsgpack('number', mpEncode('0.10000000000000000000001'));
    expect(d).toBeInstanceOf(CtyDecimal);
    expect(hex(encodeMsgpack('number', d))).toBe(hex(mpEncode('0.10000000000000000000001')));
    expect(() => decodeMsgpack('number', mpEncode('abc'))).toThrow(/invalid number/);
  });

  test('type mismatches are errors naming the path', () => {
    const t: CtyType = ['object', { a: ['list', 'string'] }];
    expect(() => decodeMsgpack(t, mpEncode({ a: ['x', 1] }))).toThrow(/a\[1\]: string required/);
    expect(() => encodeMsgpack('bool', 'yes')).toThrow(/bool required/);
    expect(() => encodeMsgpack('number', NaN)).toThrow(/NaN/);
  });
});

describe('cty msgpack: collections and structures', () => {
  const obj: CtyType = [
    'object',
    {
      name: 'string',
      size: 'number',
      tags: ['map', 'string'],
      hosts: ['list', 'string'],
      set: ['set', 'number'],
      nested: ['object', { deep: ['list', ['object', { x: 'bool' }]] }],
      tup: ['tuple', ['string', 'number']],
    },
  ];

  test('nested maps, lists, objects, tuples round-trip', () => {
    const v = {
      name: 'r1',
      size: 4096,
      tags: { a: '1', b: '2' },
      hosts: ['h1', 'h2'],
      set: [1, 2],
      nested: { deep: [{ x: true }, { x: false }] },
      tup: ['a', 3],
    };
    expect(rt(obj, v)).toEqual(v);
  });

  test('every object attribute is emitted, null when absent', () => {
    const bytes = encodeMsgpack(obj, { name: 'r1' });
    const raw = mpDecode(bytes) as Record<string, unknown>;
    expect(Object.keys(raw).sort()).toEqual(['hosts', 'name', 'nested', 'set', 'size', 'tags', 'tup']);
    expect(raw.size).toBeNull();
  });

  test('unknown and null inside collections and objects survive', () => {
    const v = { name: UNKNOWN, size: null, tags: { a: UNKNOWN }, hosts: [UNKNOWN, 'x'], set: null, nested: UNKNOWN, tup: ['a', UNKNOWN] };
    const back = rt(obj, v) as Record<string, Value>;
    expect(back).toEqual(v);
    expect(isWhollyKnown(back)).toBe(false);
    expect(isWhollyKnown(rt(obj, { name: 'x' }))).toBe(true);
  });

  test('empty collections are not null', () => {
    expect(rt(['list', 'string'], [])).toEqual([]);
    expect(rt(['map', 'number'], {})).toEqual({});
  });

  test('sets drop duplicates', () => {
    expect(decodeMsgpack(['set', 'string'], mpEncode(['a', 'b', 'a']))).toEqual(['a', 'b']);
  });

  test('unknown attributes are rejected', () => {
    expect(() => decodeMsgpack(['object', { a: 'string' }], mpEncode({ a: 'x', b: 'y' }))).toThrow(/b: unsupported attribute/);
    expect(() => encodeMsgpack(['object', { a: 'string' }], { b: 'y' })).toThrow(/unsupported attribute/);
  });

  test('dynamic values carry their type as JSON bytes', () => {
    const v = new CtyDynamic(['list', 'number'], [1, 2]);
    const raw = mpDecode(encodeMsgpack('dynamic', v)) as [Uint8Array, unknown];
    expect(Buffer.from(raw[0]).toString()).toBe('["list","number"]');
    expect(rt('dynamic', v)).toEqual(v);
    expect(hex(encodeMsgpack('dynamic', UNKNOWN))).toBe('d40000');
    expect(rt('dynamic', new CtyDynamic('string', UNKNOWN))).toEqual(new CtyDynamic('string', UNKNOWN));
  });
});

describe('cty JSON', () => {
  test('parseType accepts schema type JSON', () => {
    expect(parseType('"string"')).toBe('string');
    expect(parseType('["map",["object",{"a":"number"}]]')).toEqual(['map', ['object', { a: 'number' }]]);
    expect(() => parseType('["bogus","x"]')).toThrow(/invalid type/);
  });

  test('strict decode rejects unknown attributes; lenient drops them and fills nulls', () => {
    const t: CtyType = ['object', { a: 'string', b: 'number' }];
    expect(() => fromJson(t, { a: 'x', gone: 1 })).toThrow(/gone: unsupported attribute/);
    expect(fromJson(t, { a: 'x', gone: 1 }, true)).toEqual({ a: 'x', b: null });
  });

  test('large integers in JSON state stay exact', () => {
    const j = parseJsonExact('{"a":"12345678901234567890","b":12345678901234567890,"c":1.5}');
    expect(fromJson(['object', { a: 'string', b: 'number', c: 'number' }], j)).toEqual({ a: '12345678901234567890', b: 12345678901234567890n, c: 1.5 });
  });

  test('toJson is the inverse of fromJson and refuses unknowns', () => {
    const t: CtyType = ['object', { n: 'number', l: ['list', 'string'], d: 'dynamic' }];
    const v = { n: 2n ** 60n, l: ['x'], d: new CtyDynamic('bool', true) };
    const j = toJson(t, v);
    expect(j).toEqual({ n: (2n ** 60n).toString(), l: ['x'], d: { type: 'bool', value: true } });
    expect(fromJson(t, j)).toEqual(v);
    expect(() => toJson('string', UNKNOWN)).toThrow(/unknown/);
  });

  test('typedEqual ignores set order, not list order', () => {
    expect(typedEqual(['set', 'string'], ['a', 'b'], ['b', 'a'])).toBe(true);
    expect(typedEqual(['list', 'string'], ['a', 'b'], ['b', 'a'])).toBe(false);
    expect(typedEqual(['object', { s: ['set', 'number'], n: 'string' }], { s: [1, 2], n: 'x' }, { s: [2, 1], n: 'x' })).toBe(true);
    expect(typedEqual(['set', 'string'], ['a'], ['a', 'b'])).toBe(false);
  });

  test('valuesEqual compares numbers by value and sets by content', () => {
    expect(valuesEqual(1024, 1024n)).toBe(true);
    expect(valuesEqual({ a: ['x'] }, { a: ['x'] })).toBe(true);
    expect(valuesEqual({ a: ['x'] }, { a: ['y'] })).toBe(false);
    expect(valuesEqual(UNKNOWN, UNKNOWN)).toBe(true);
    expect(valuesEqual(null, 'x')).toBe(false);
  });
});
