/**
 * Typed models of resource values, as terraform-plugin-framework's tfsdk structs: each resource declares one
 * interface (camelCase fields, plain TypeScript types) and this codec, driven by the block schema, turns a cty
 * object into that model and back. Resource code reads and writes models; it never touches untyped values.
 *
 * Names: an attribute `size_bytes` is the field `sizeBytes`, at every depth of nested objects (map keys, such
 * as child URIs, stay as they are). Numbers are JS numbers (sizes fit in 2^53).
 *
 * Null and unknown: state is wholly known (`M`). Before apply, Terraform may send null (unset) or unknown
 * (known after apply) for any attribute and any element (`Draft<M>`). At apply, the inputs are known and only
 * the computed outputs may still be unknown (`Planned<M, Outputs>`).
 */
import { CtyDecimal, CtyType, ObjectValue, Unknown, Value, isUnknown } from './cty';
import { AttributeSchema, BlockSchema } from './schema';

/** An attribute Terraform may leave unset (null) or not know yet (UNKNOWN). */
export type Maybe<T> = T | null | Unknown;

type Loose<T> = Maybe<T extends readonly (infer E)[] ? Loose<E>[] : T extends object ? { [K in keyof T]: Loose<T[K]> } : T>;
/** A configuration or plan before apply: any value, at any depth, may be null or unknown. */
export type Draft<M> = { [K in keyof M]: Loose<M[K]> };
/** A plan at apply (or a data source's configuration): inputs known, the computed `Out` fields maybe not. */
export type Planned<M, Out extends keyof M> = Omit<M, Out> & { [K in Out]: Maybe<M[K]> };

/** `size_bytes` → `sizeBytes`. */
type Camel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
/** A schema whose attributes are exactly the model's fields (checked by the compiler). */
export type SchemaOf<M> = Omit<BlockSchema, 'attributes'> & { attributes: { [K in keyof M as K extends string ? Snake<K> : never]: AttributeSchema } };
type Snake<S extends string> = S extends `${infer C}${infer R}` ? `${C extends Lowercase<C> ? C : `_${Lowercase<C>}`}${Snake<R>}` : S;
export type { Camel };

export function camel(attr: string): string {
  return attr.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** The value of a known attribute, else undefined (null and unknown alike). */
export function known<T>(v: Maybe<T>): T | undefined {
  return v === null || isUnknown(v) ? undefined : v;
}

/**
 * Rebuilds a value of type `t` element by element, with `obj` for objects and `num` for numbers; null and
 * unknown stay as they are. Both directions of the codec are this walk.
 */
function walk(t: CtyType, v: unknown, obj: (attrs: Record<string, CtyType>, v: never) => unknown, num: (v: never) => unknown): unknown {
  if (v === null || v === undefined || isUnknown(v)) return v ?? null;
  if (t === 'number') return num(v as never);
  if (typeof t === 'string') return v;
  const each = (e: unknown, et: CtyType) => walk(et, e, obj, num);
  switch (t[0]) {
    case 'list':
    case 'set':
      return (v as unknown[]).map((e) => each(e, t[1]));
    case 'tuple':
      return (v as unknown[]).map((e, i) => each(e, t[1][i]));
    case 'map':
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, e]) => [k, each(e, t[1])]));
    case 'object':
      return obj(t[1], v as never);
  }
}

const toNumber = (v: number | bigint | CtyDecimal): number => (typeof v === 'number' ? v : Number(v instanceof CtyDecimal ? v.text : v));
const fromCty = (t: CtyType, v: Value | undefined): unknown => walk(t, v, fromObject, toNumber);
const toCty = (t: CtyType, v: unknown): Value => walk(t, v, toObject, (n: number) => n) as Value;

function fromObject(attrs: Record<string, CtyType>, v: ObjectValue): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, at] of Object.entries(attrs)) out[camel(k)] = fromCty(at, v[k]);
  return out;
}

function toObject(attrs: Record<string, CtyType>, m: Record<string, unknown>): ObjectValue {
  const out: ObjectValue = {};
  for (const [k, at] of Object.entries(attrs)) out[k] = toCty(at, m[camel(k)]);
  return out;
}

const attrTypes = (s: BlockSchema): Record<string, CtyType> => Object.fromEntries(Object.entries(s.attributes).map(([k, a]) => [k, a.type]));

/** The model of a block value (an attribute missing from `v` is null). */
export function decodeModel<M>(schema: BlockSchema, v: ObjectValue): M {
  return fromObject(attrTypes(schema), v) as M;
}

/** The block value of a model (a field left undefined is null). */
export function encodeModel<M>(schema: BlockSchema, m: M): ObjectValue {
  return toObject(attrTypes(schema), m as Record<string, unknown>);
}

/**
 * Writes into `v` the attributes whose model field differs from `before` (a plan hook's refinements), leaving
 * every other value exactly as Terraform sent it.
 */
export function applyChanges<M>(schema: BlockSchema, v: ObjectValue, before: M, after: M): void {
  const b = before as Record<string, unknown>,
    a = after as Record<string, unknown>;
  for (const [k, attr] of Object.entries(schema.attributes)) {
    const f = camel(k);
    if (!sameValue(b[f], a[f])) v[k] = toCty(attr.type, a[f]);
  }
}

/** Deep equality of model values (lists in order). */
export function sameValue(x: unknown, y: unknown): boolean {
  if (x === y) return true;
  if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((e, i) => sameValue(e, y[i]));
  if (x && y && typeof x === 'object' && typeof y === 'object' && !Array.isArray(x) && !Array.isArray(y)) {
    const kx = Object.keys(x),
      ky = Object.keys(y);
    return kx.length === ky.length && kx.every((k) => sameValue((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]));
  }
  return false;
}
