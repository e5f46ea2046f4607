import { X509Certificate } from 'node:crypto';
import { decode, encode } from '../../provider/protocol/proto';
import * as pb from '../../provider/protocol/tfplugin6';
import { checkClientCert, generateServerCert } from '../../provider/protocol/cert';
import { Diagnostics, pathToProto, toProtoSchema, objectType } from '../../provider/protocol/schema';

describe('protobuf codec', () => {
  test('round-trips nested messages, maps, repeated fields and int64', () => {
    const msg = {
      provider: toProtoSchema({ description: 'p', attributes: { a: { type: 'string', optional: true, description: 'A' } } }),
      resource_schemas: { r1: { version: 3, block: { attributes: [], description: 'x' } } },
      diagnostics: [{ severity: 1, summary: 's', detail: 'd', attribute: pathToProto(['x', 2, { key: 'k' }]) }],
      server_capabilities: { plan_destroy: false },
    };
    const back = decode(pb.GetProviderSchemaResponse, encode(pb.GetProviderSchemaResponse, msg));
    expect((back.resource_schemas as any).r1.version).toBe(3);
    expect((back.diagnostics as any)[0].attribute.steps).toEqual([{ attribute_name: 'x' }, { element_key_int: 2 }, { element_key_string: 'k' }]);
    const attr = (back.provider as any).block.attributes[0];
    expect(attr.name).toBe('a');
    expect(Buffer.from(attr.type).toString()).toBe('"string"');
    expect(attr.optional).toBe(true);
    expect(attr.required).toBeUndefined(); // proto3 defaults are not sent
  });

  test('large and negative int64 survive', () => {
    const big = 2n ** 60n + 7n;
    const m = decode(pb.AttributePathStep, encode(pb.AttributePathStep, { element_key_int: big }));
    expect(m.element_key_int).toBe(big);
    const n = decode(pb.AttributePathStep, encode(pb.AttributePathStep, { element_key_int: -5 }));
    expect(n.element_key_int).toBe(-5);
  });

  test('unknown fields are skipped, map<string,string> decodes', () => {
    // RawState with flatmap {a: "1"} plus an unknown field 9 (varint) and 10 (fixed64)
    const known = encode(pb.RawState, { json: Buffer.from('{}'), flatmap: { a: '1' } });
    const extra = Buffer.from([9 << 3, 0x96, 0x01, (10 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8]);
    const m = decode(pb.RawState, Buffer.concat([extra, known]));
    expect(Buffer.from(m.json as Uint8Array).toString()).toBe('{}');
    expect(m.flatmap).toEqual({ a: '1' });
  });

  test('hostile input is rejected, not crashed on', () => {
    expect(() => decode(pb.DynamicValue, Buffer.from([0x0a, 0x05, 0x01]))).toThrow(/length beyond/);
    expect(() => decode(pb.DynamicValue, Buffer.from([0x18, 0xff]))).toThrow(/truncated varint/);
    expect(() => decode(pb.DynamicValue, Buffer.from([0x0b]))).toThrow(/wire type/);
    expect(() => decode(pb.DynamicValue, Buffer.from([0x08, 0x01]))).toThrow(/wire type mismatch/);
  });
});

describe('AutoMTLS certificate', () => {
  test('server certificate is what go-plugin verifies: SAN localhost, CA, serverAuth, valid now', () => {
    const c = generateServerCert();
    const x = new X509Certificate(c.certPem);
    expect(x.subjectAltName).toContain('DNS:localhost');
    expect(x.ca).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(new Date(x.validFrom).getTime()).toBeLessThan(Date.now() - 30_000);
    expect(x.raw.equals(c.der)).toBe(true);
    expect(x.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
  });

  test('client certificate check accepts a self-signed cert and rejects garbage', () => {
    expect(() => checkClientCert(generateServerCert().certPem)).not.toThrow();
    expect(() => checkClientCert('not a cert')).toThrow(/PLUGIN_CLIENT_CERT: not a PEM certificate/);
    const old = generateServerCert(new Date(Date.now() - 20 * 365 * 24 * 3600_000));
    expect(() => checkClientCert(old.certPem)).toThrow(/not valid now/);
  });
});

describe('diagnostics and schema', () => {
  test('diagnostics carry severity and attribute path', () => {
    const d = new Diagnostics();
    d.error('bad', 'very bad', ['size_bytes']);
    d.warn('meh');
    expect(d.hasErrors()).toBe(true);
    expect(d.toProto()).toEqual([
      { severity: 1, summary: 'bad', detail: 'very bad', attribute: { steps: [{ attribute_name: 'size_bytes' }] } },
      { severity: 2, summary: 'meh', detail: '', attribute: undefined },
    ]);
  });
  test('objectType follows the attributes', () => {
    expect(objectType({ description: '', attributes: { a: { type: ['list', 'string'], required: true, description: 'x' } } })).toEqual([
      'object',
      { a: ['list', 'string'] },
    ]);
  });
});

describe('stderr log lines', () => {
  test('are hclog JSON that go-plugin parses (6-digit fraction timestamp, @level, @message)', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { log } = require('../../provider/protocol/log');
    const lines: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((s: any) => {
      lines.push(String(s));
      return true;
    });
    try {
      log('error', 'boom', { node: 'a', big: 2n ** 70n });
    } finally {
      spy.mockRestore();
    }
    const j = JSON.parse(lines[0]);
    expect(j['@level']).toBe('error');
    expect(j['@message']).toBe('boom');
    expect(j['@timestamp']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(j.node).toBe('a');
    expect(j.big).toBe((2n ** 70n).toString());
  });
});
