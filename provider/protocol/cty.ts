/**
 * cty values on the wire: msgpack (DynamicValue.msgpack) and JSON (DynamicValue.json, RawState.json),
 * driven by the cty type, following go-cty's cty/msgpack and cty/json.
 *
 * JS representation of a cty value:
 *   null → null; unknown → UNKNOWN; string → string; bool → boolean;
 *   number → number (when exactly representable) or bigint (integers beyond 2^53) or CtyDecimal (other decimals);
 *   list/set/tuple → array; map/object → plain object; dynamic → { type, value } (DynamicValue wrapper).
 */
import { Encoder, Decoder, ExtensionCodec, ExtData } from '@msgpack/msgpack';

export type CtyType =
  | 'string'
  | 'number'
  | 'bool'
  | 'dynamic'
  | ['list', CtyType]
  | ['set', CtyType]
  | ['map', CtyType]
  | ['object', { [name: string]: CtyType }]
  | ['tuple', CtyType[]];

/** The unknown value. Compare with `isUnknown(v)`. */
export const UNKNOWN: unique symbol = Symbol.for('cty.unknown');
export type Unknown = typeof UNKNOWN;

/** A decimal number that is neither a safe JS number nor an integer: kept as its decimal text. */
export class CtyDecimal {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** A value of type `dynamic` carries its concrete type. */
export class CtyDynamic {
  constructor(
    readonly type: CtyType,
    readonly value: Value,
  ) {}
}

export type Value = null | Unknown | string | boolean | number | bigint | CtyDecimal | CtyDynamic | Value[] | { [k: string]: Value };
export type ObjectValue = { [k: string]: Value };

export function isUnknown(v: unknown): v is Unknown {
  return v === UNKNOWN;
}

/** True when v and everything inside it is known. */
export function isWhollyKnown(v: Value): boolean {
  if (v === UNKNOWN) return false;
  if (Array.isArray(v)) return v.every(isWhollyKnown);
  if (v instanceof CtyDynamic) return isWhollyKnown(v.value);
  if (v !== null && typeof v === 'object' && !(v instanceof CtyDecimal)) return Object.values(v).every(isWhollyKnown);
  return true;
}

export class CtyError extends Error {
  constructor(
    readonly path: (string | number)[],
    message: string,
  ) {
    super(path.length ? `${formatPath(path)}: ${message}` : message);
  }
}

export function formatPath(path: (string | number)[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? p : `.${p}`;
  return s;
}

// ------------------------------------------------------------------------------------------- msgpack
const extensionCodec = new ExtensionCodec();
// UNKNOWN writes as d4 00 00; every extension decodes to an ExtData (no decoders registered), read as unknown.
extensionCodec.register({
  type: 0,
  encode: (input: unknown) => (input === UNKNOWN ? new Uint8Array([0]) : null),
  decode: () => UNKNOWN,
});

const encoder = new Encoder({ extensionCodec, useBigInt64: true, ignoreUndefined: false });
const decoder = new Decoder({ extensionCodec, useBigInt64: true });

function typeJson(t: CtyType): Uint8Array {
  return Buffer.from(JSON.stringify(t), 'utf8');
}

/** Numbers: int when an exact int64, else float64 when exact, else decimal text (go-cty's rule). */
function numberToWire(v: Value, path: (string | number)[]): unknown {
  if (typeof v === 'number') {
    if (Number.isNaN(v)) throw new CtyError(path, 'NaN is not a cty number');
    // large integers go out as msgpack int64/uint64, not float64 (the encoder's choice with useBigInt64)
    if (Number.isSafeInteger(v) && (v >= 2 ** 32 || v < -(2 ** 31))) return BigInt(v);
    return v;
  }
  if (typeof v === 'bigint') {
    if (v >= -(2n ** 63n) && v < 2n ** 64n) return v;
    return v.toString();
  }
  if (v instanceof CtyDecimal) return v.text;
  throw new CtyError(path, `number required, got ${describe(v)}`);
}

function numberFromWire(raw: unknown, path: (string | number)[]): Value {
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'bigint') {
    return raw >= BigInt(Number.MIN_SAFE_INTEGER) && raw <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(raw) : raw;
  }
  if (typeof raw === 'string') return parseDecimal(raw, path);
  throw new CtyError(path, `number required, got ${describe(raw)}`);
}

export function parseDecimal(text: string, path: (string | number)[] = []): Value {
  const s = text.trim();
  if (/^[-+]?\d+$/.test(s)) {
    const b = BigInt(s);
    return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
  }
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) {
    const n = Number(s);
    // keep the text when the double is not exact, so precision is not silently lost
    return String(n) === s.replace(/^\+/, '') ? n : new CtyDecimal(s);
  }
  if (s === 'Infinity' || s === '+Infinity') return Infinity;
  if (s === '-Infinity') return -Infinity;
  throw new CtyError(path, `invalid number ${JSON.stringify(text)}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === UNKNOWN) return 'unknown';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v;
}

function toWire(t: CtyType, v: Value, path: (string | number)[]): unknown {
  if (v === null || v === undefined) return null;
  if (v === UNKNOWN) return UNKNOWN;
  if (t === 'dynamic') {
    if (!(v instanceof CtyDynamic)) throw new CtyError(path, 'dynamic value needs its type (CtyDynamic)');
    if (v.value === UNKNOWN && v.type === 'dynamic') return UNKNOWN;
    return [typeJson(v.type), toWire(v.type, v.value, path)];
  }
  if (t === 'string') {
    if (typeof v !== 'string') throw new CtyError(path, `string required, got ${describe(v)}`);
    return v;
  }
  if (t === 'bool') {
    if (typeof v !== 'boolean') throw new CtyError(path, `bool required, got ${describe(v)}`);
    return v;
  }
  if (t === 'number') return numberToWire(v, path);
  switch (t[0]) {
    case 'list':
    case 'set': {
      if (!Array.isArray(v)) throw new CtyError(path, `${t[0]} required, got ${describe(v)}`);
      return v.map((e, i) => toWire(t[1], e, [...path, i]));
    }
    case 'tuple': {
      if (!Array.isArray(v) || v.length !== t[1].length) throw new CtyError(path, `tuple of ${t[1].length} required`);
      return v.map((e, i) => toWire(t[1][i], e, [...path, i]));
    }
    case 'map': {
      if (typeof v !== 'object' || Array.isArray(v)) throw new CtyError(path, `map required, got ${describe(v)}`);
      const out: Record<string, unknown> = {};
      for (const [k, e] of Object.entries(v)) out[k] = toWire(t[1], e as Value, [...path, k]);
      return out;
    }
    case 'object': {
      if (typeof v !== 'object' || Array.isArray(v)) throw new CtyError(path, `object required, got ${describe(v)}`);
      const obj = v as ObjectValue;
      for (const k of Object.keys(obj)) if (!(k in t[1])) throw new CtyError([...path, k], 'unsupported attribute');
      const out: Record<string, unknown> = {};
      // every attribute is emitted, null when absent: go-cty requires the exact attribute count
      for (const [k, at] of Object.entries(t[1])) out[k] = toWire(at, obj[k] ?? null, [...path, k]);
      return out;
    }
  }
  throw new CtyError(path, `unsupported type ${JSON.stringify(t)}`);
}

function fromWire(t: CtyType, raw: unknown, path: (string | number)[]): Value {
  if (raw === null || raw === undefined) return null;
  if (raw === UNKNOWN || raw instanceof ExtData) return UNKNOWN;
  if (t === 'dynamic') {
    if (!Array.isArray(raw) || raw.length !== 2 || !(raw[0] instanceof Uint8Array)) {
      throw new CtyError(path, 'dynamic value must be [type, value]');
    }
    const ty = parseType(Buffer.from(raw[0]).toString('utf8'), path);
    return new CtyDynamic(ty, fromWire(ty, raw[1], path));
  }
  if (t === 'string') {
    if (typeof raw !== 'string') throw new CtyError(path, `string required, got ${describe(raw)}`);
    return raw;
  }
  if (t === 'bool') {
    if (typeof raw !== 'boolean') throw new CtyError(path, `bool required, got ${describe(raw)}`);
    return raw;
  }
  if (t === 'number') return numberFromWire(raw, path);
  switch (t[0]) {
    case 'list':
    case 'set': {
      if (!Array.isArray(raw)) throw new CtyError(path, `${t[0]} required, got ${describe(raw)}`);
      const out = raw.map((e, i) => fromWire(t[1], e, [...path, i]));
      return t[0] === 'set' ? dedupe(out) : out;
    }
    case 'tuple': {
      if (!Array.isArray(raw) || raw.length !== t[1].length) throw new CtyError(path, `tuple of ${t[1].length} required`);
      return raw.map((e, i) => fromWire(t[1][i], e, [...path, i]));
    }
    case 'map': {
      if (!isPlainMap(raw)) throw new CtyError(path, `map required, got ${describe(raw)}`);
      const out: ObjectValue = {};
      for (const [k, e] of Object.entries(raw)) out[k] = fromWire(t[1], e, [...path, k]);
      return out;
    }
    case 'object': {
      if (!isPlainMap(raw)) throw new CtyError(path, `object required, got ${describe(raw)}`);
      const out: ObjectValue = {};
      for (const k of Object.keys(raw)) if (!(k in t[1])) throw new CtyError([...path, k], 'unsupported attribute');
      for (const [k, at] of Object.entries(t[1])) out[k] = fromWire(at, (raw as Record<string, unknown>)[k], [...path, k]);
      return out;
    }
  }
  throw new CtyError(path, `unsupported type ${JSON.stringify(t)}`);
}

function isPlainMap(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && !(raw instanceof Uint8Array) && !(raw instanceof ExtData);
}

function dedupe(items: Value[]): Value[] {
  const seen = new Set<string>();
  const out: Value[] = [];
  for (const it of items) {
    if (it === UNKNOWN) {
      out.push(it);
      continue;
    }
    const key = stableKey(it);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(it);
    }
  }
  return out;
}

function stableKey(v: Value): string {
  return JSON.stringify(v, (_k, x) => {
    if (typeof x === 'bigint') return `${x}n`;
    if (x instanceof CtyDecimal) return `${x.text}d`;
    if (x && typeof x === 'object' && !Array.isArray(x)) return Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return x;
  });
}

/** Encode a value of type t to msgpack bytes. */
export function encodeMsgpack(t: CtyType, v: Value): Uint8Array {
  return encoder.encode(toWire(t, v, []));
}

/** Decode msgpack bytes of type t. Empty bytes mean null. */
export function decodeMsgpack(t: CtyType, bytes: Uint8Array | undefined | null): Value {
  if (!bytes || bytes.length === 0) return null;
  let raw: unknown;
  try {
    raw = decoder.decode(bytes);
  } catch (e) {
    throw new CtyError([], (e as Error).message);
  }
  return fromWire(t, raw, []);
}

export function parseType(text: string, path: (string | number)[] = []): CtyType {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new CtyError(path, `invalid type JSON ${text}`);
  }
  return checkType(j, path);
}

function checkType(j: unknown, path: (string | number)[]): CtyType {
  if (j === 'string' || j === 'number' || j === 'bool' || j === 'dynamic') return j;
  if (Array.isArray(j)) {
    if ((j[0] === 'list' || j[0] === 'set' || j[0] === 'map') && j.length === 2) return [j[0], checkType(j[1], path)];
    if (j[0] === 'object' && (j.length === 2 || j.length === 3) && isPlainMap(j[1])) {
      return ['object', Object.fromEntries(Object.entries(j[1]).map(([k, at]) => [k, checkType(at, path)]))];
    }
    if (j[0] === 'tuple' && j.length === 2 && Array.isArray(j[1])) return ['tuple', j[1].map((e) => checkType(e, path))];
  }
  throw new CtyError(path, `invalid type ${JSON.stringify(j)}`);
}

// ---------------------------------------------------------------------------------------------- JSON
/** Decode the JSON form (DynamicValue.json, RawState.json). With `lenient`, unknown object keys are dropped
 *  and missing ones become null (what UpgradeResourceState needs). */
export function fromJson(t: CtyType, j: unknown, lenient = false, path: (string | number)[] = []): Value {
  if (j === null || j === undefined) return null;
  if (t === 'dynamic') {
    if (!isPlainMap(j) || !('type' in j)) throw new CtyError(path, 'dynamic JSON value needs "type" and "value"');
    const ty = checkType(j.type, path);
    return new CtyDynamic(ty, fromJson(ty, j.value, lenient, path));
  }
  if (t === 'string') {
    if (typeof j === 'string') return j;
    if (lenient && (typeof j === 'number' || typeof j === 'boolean')) return String(j);
    throw new CtyError(path, `string required, got ${describe(j)}`);
  }
  if (t === 'bool') {
    if (typeof j === 'boolean') return j;
    if (lenient && (j === 'true' || j === 'false')) return j === 'true';
    throw new CtyError(path, `bool required, got ${describe(j)}`);
  }
  if (t === 'number') {
    if (typeof j === 'number') return j;
    if (typeof j === 'string') return parseDecimal(j, path);
    throw new CtyError(path, `number required, got ${describe(j)}`);
  }
  switch (t[0]) {
    case 'list':
    case 'set': {
      if (!Array.isArray(j)) throw new CtyError(path, `${t[0]} required, got ${describe(j)}`);
      const out = j.map((e, i) => fromJson(t[1], e, lenient, [...path, i]));
      return t[0] === 'set' ? dedupe(out) : out;
    }
    case 'tuple': {
      if (!Array.isArray(j) || j.length !== t[1].length) throw new CtyError(path, `tuple of ${t[1].length} required`);
      return j.map((e, i) => fromJson(t[1][i], e, lenient, [...path, i]));
    }
    case 'map': {
      if (!isPlainMap(j)) throw new CtyError(path, `map required, got ${describe(j)}`);
      return Object.fromEntries(Object.entries(j).map(([k, e]) => [k, fromJson(t[1], e, lenient, [...path, k])]));
    }
    case 'object': {
      if (!isPlainMap(j)) throw new CtyError(path, `object required, got ${describe(j)}`);
      if (!lenient) for (const k of Object.keys(j)) if (!(k in t[1])) throw new CtyError([...path, k], 'unsupported attribute');
      const out: ObjectValue = {};
      for (const [k, at] of Object.entries(t[1])) out[k] = fromJson(at, j[k], lenient, [...path, k]);
      return out;
    }
  }
  throw new CtyError(path, `unsupported type ${JSON.stringify(t)}`);
}

/** Parse JSON text keeping integers beyond 2^53 exact (they become bigint). */
export function parseJsonExact(text: string): unknown {
  // Integer literals with 16+ digits are quoted before JSON.parse, then re-read as exact decimals by fromJson.
  // Most states have none: skip the (costly) rewrite unless 16 digits in a row appear anywhere.
  if (!/\d{16}/.test(text)) return JSON.parse(text);
  // Whole number tokens only (a long fraction such as 0.30000000000000004 must not be split); fromJson turns the
  // quoted text back into an exact number, bigint or decimal.
  const quoted = text.replace(/("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/g, (m, str) =>
    str || !/\d{16}/.test(m.replace('.', '')) ? m : `"${m}"`,
  );
  return JSON.parse(quoted);
}

export function toJson(t: CtyType, v: Value, path: (string | number)[] = []): unknown {
  if (v === null) return null;
  if (v === UNKNOWN) throw new CtyError(path, 'unknown values cannot be written as JSON');
  if (t === 'dynamic') {
    const d = v as CtyDynamic;
    return { type: d.type, value: toJson(d.type, d.value, path) };
  }
  if (t === 'number') {
    if (typeof v === 'bigint' || v instanceof CtyDecimal) return v.toString();
    return v;
  }
  if (t === 'string' || t === 'bool') return v;
  switch (t[0]) {
    case 'list':
    case 'set':
      return (v as Value[]).map((e, i) => toJson(t[1], e, [...path, i]));
    case 'tuple':
      return (v as Value[]).map((e, i) => toJson(t[1][i], e, [...path, i]));
    case 'map':
      return Object.fromEntries(Object.entries(v as ObjectValue).map(([k, e]) => [k, toJson(t[1], e, [...path, k])]));
    case 'object':
      return Object.fromEntries(Object.entries(t[1]).map(([k, at]) => [k, toJson(at, (v as ObjectValue)[k] ?? null, [...path, k])]));
  }
  return v;
}

/** Equality that knows the type: set elements compare regardless of order. */
export function typedEqual(t: CtyType, a: Value, b: Value): boolean {
  if (a === null || b === null || a === UNKNOWN || b === UNKNOWN) return a === b;
  if (typeof t !== 'string') {
    if (t[0] === 'set' && Array.isArray(a) && Array.isArray(b)) {
      if (a.length !== b.length) return false;
      const ka = a.map(stableKey).sort(),
        kb = b.map(stableKey).sort();
      return ka.every((k, i) => k === kb[i]);
    }
    if (t[0] === 'object' && typeof a === 'object' && typeof b === 'object') {
      const ao = a as ObjectValue,
        bo = b as ObjectValue;
      return Object.entries(t[1]).every(([k, at]) => typedEqual(at, ao[k] ?? null, bo[k] ?? null));
    }
  }
  return valuesEqual(a, b);
}

/** Deep equality of two cty values (arrays compared in order; use typedEqual for sets). */
export function valuesEqual(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === UNKNOWN || b === UNKNOWN) return false;
  if (typeof a === 'number' || typeof a === 'bigint' || a instanceof CtyDecimal) {
    if (typeof b === 'number' || typeof b === 'bigint' || b instanceof CtyDecimal) return String(a) === String(b);
    return false;
  }
  return stableKey(a) === stableKey(b);
}
