/** provider::mayastor::replica_size through the real ProviderService and the protobuf codec (GetProviderSchema, GetFunctions, CallFunction). */
import { NEXUS_LABEL_BYTES, replicaSizeFor } from '../../agent/api/limits';
import { CtyDecimal, UNKNOWN, Value, decodeMsgpack, encodeMsgpack } from '../../provider/protocol/cty';
import { ProviderService } from '../../provider/protocol/framework';
import { decode, encode } from '../../provider/protocol/proto';
import * as pb from '../../provider/protocol/tfplugin6';
import { makeProvider } from '../../provider/provider';

const svc = new ProviderService(makeProvider({}));

/** A CallFunction round trip through the wire codec, as Terraform sees it. */
function call(name: string, ...args: Value[]): { result?: Value; error?: { text: string; function_argument?: number | bigint } } {
  const req = decode(pb.CallFunctionRequest, encode(pb.CallFunctionRequest, { name, arguments: args.map((a) => ({ msgpack: encodeMsgpack('number', a) })) }));
  const res = decode(pb.CallFunctionResponse, encode(pb.CallFunctionResponse, svc.callFunction(req))) as {
    result?: { msgpack: Uint8Array };
    error?: { text: string; function_argument?: number | bigint };
  };
  return { result: res.result ? decodeMsgpack('number', res.result.msgpack) : undefined, error: res.error };
}

test('GetProviderSchema and GetFunctions describe replica_size(volume_bytes number) number', () => {
  for (const res of [svc.getProviderSchema(), svc.getFunctions()]) {
    const back = decode(pb.GetFunctionsResponse, encode(pb.GetFunctionsResponse, { functions: res.functions })) as any;
    const f = back.functions.replica_size;
    expect(f.summary).toMatch(/label header/);
    expect(f.parameters).toHaveLength(1);
    expect(f.parameters[0].name).toBe('volume_bytes');
    expect(Buffer.from(f.parameters[0].type).toString()).toBe('"number"');
    expect(Buffer.from(f.return.type).toString()).toBe('"number"');
  }
  expect(svc.getMetadata().functions).toEqual([{ name: 'replica_size' }]);
});

test('the result is agent/api replicaSizeFor: the volume plus the nexus label header', () => {
  expect(call('replica_size', 33554432)).toEqual({ result: 33554432 + NEXUS_LABEL_BYTES, error: undefined });
  expect(call('replica_size', 512).result).toBe(replicaSizeFor(512));
  // an unknown argument (Terraform does not send one) gives an unknown result
  expect(call('replica_size', UNKNOWN).result).toBe(UNKNOWN);
});

test.each<[string, Value, RegExp]>([
  ['negative', -512, /must be a positive whole number of bytes, got -512/],
  ['zero', 0, /must be a positive whole number of bytes, got 0/],
  ['unaligned', 1000, /must be a multiple of 512 bytes, got 1000 \(nearest: 1024\)/],
  ['fractional', 1.5, /must be a positive whole number of bytes, got 1.5/],
  ['a decimal beyond float64', new CtyDecimal('1048576.000000000000000001'), /got 1048576.000000000000000001/],
  ['too large', 2n ** 60n + 7n, /^1152921504606846983 is too large/],
  ['too large once the header is added', Number.MAX_SAFE_INTEGER - 511, /its replica would be/],
  ['null', null, /must not be null/],
])('%s: a function error on argument 0', (_what, v, text) => {
  const r = call('replica_size', v);
  expect(r.result).toBeUndefined();
  expect(r.error!.text).toMatch(text);
  // explicit presence: argument 0 is on the wire, so Terraform names the parameter
  expect(Number(r.error!.function_argument)).toBe(0);
});

test('a wrong argument count or an unknown function is an error of the call, naming no argument', () => {
  expect(call('replica_size', 512, 512).error).toEqual({ text: 'replica_size takes 1 argument(s), got 2' });
  expect(call('nope').error).toEqual({ text: 'this provider has no function "nope"' });
});
