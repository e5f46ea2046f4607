/** cty values from the host's msgpack bytes (through @msgpack/msgpack): hostile input fails as a cty error. */
import { encode as mpEncode } from '@msgpack/msgpack';
import { CtyError, UNKNOWN, decodeMsgpack, encodeMsgpack, fromJson, parseJsonExact } from '../../provider/protocol/cty';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('decodeMsgpack', () => {
  test('unknown is d4 00 00 both ways; refined unknowns (other extensions) read as unknown', () => {
    expect(hex(encodeMsgpack('string', UNKNOWN))).toBe('d40000');
    for (const h of ['d40000', 'd50c0000', 'c7030c8101c2']) expect(decodeMsgpack('string', Buffer.from(h, 'hex'))).toBe(UNKNOWN);
  });

  test('a "__proto__" key is refused with a cty error: no prototype pollution', () => {
    expect(() => decodeMsgpack(['map', 'bool'], Buffer.from('81a95f5f70726f746f5f5fc3', 'hex'))).toThrow(CtyError);
  });

  test('hostile input is refused with a cty error, never a crash or a huge allocation', () => {
    for (const h of ['c1', '92', 'dd7fffffff', 'df7fffffff', 'a5616263', 'c6ffffffff', 'cb3ff8']) {
      expect(() => decodeMsgpack(['list', 'string'], Buffer.from(h, 'hex'))).toThrow(CtyError);
    }
    expect(() => decodeMsgpack('dynamic', Buffer.alloc(200000, 0x91))).toThrow(CtyError);
    expect(decodeMsgpack(['list', 'number'], mpEncode([1, 2]))).toEqual([1, 2]);
  });
});

describe('parseJsonExact', () => {
  test('long fractions stay numbers; long integers stay exact', () => {
    const j = parseJsonExact('{"a":0.30000000000000004,"b":12345678901234567890,"c":"12345678901234567890","d":-1e5}');
    const v = fromJson(['object', { a: 'number', b: 'number', c: 'string', d: 'number' }], j);
    expect(v).toEqual({ a: 0.30000000000000004, b: 12345678901234567890n, c: '12345678901234567890', d: -100000 });
  });
});
