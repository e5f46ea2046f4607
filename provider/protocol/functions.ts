/**
 * Provider-defined functions (protocol 6.5+, Terraform ≥ 1.8): what a provider supplies for one function, its
 * GetProviderSchema/GetFunctions entry, and CallFunction's semantics (arguments decoded by parameter type, errors
 * as FunctionError naming the argument). Functions are pure: no client, no provider configuration (Terraform calls
 * them without ConfigureProvider, also during validate).
 */
import { CtyType, Value, decodeMsgpack, encodeMsgpack, isUnknown, UNKNOWN } from './cty';
import { STRING_KIND_MARKDOWN } from './tfplugin6';

export interface FunctionParam {
  name: string;
  type: CtyType;
  /** Markdown. */
  description: string;
  /** Pass null through to the function (default: Terraform refuses a null argument itself). */
  allowNull?: boolean;
}

export interface FunctionDef {
  /** Called as `provider::NAME::<name>(...)`. */
  name: string;
  summary: string;
  /** Markdown. */
  description: string;
  parameters: FunctionParam[];
  returns: CtyType;
  /** HCL for the docs' Example Usage (a configuration that calls the function). */
  example: string;
  /** The result for known arguments of the parameters' types; throws FunctionError for bad input. */
  call(args: Value[]): Value;
}

/** A bad argument (or a failure of the whole call when `argument` is undefined), as Terraform shows it. */
export class FunctionError extends Error {
  constructor(
    message: string,
    /** Index of the argument to blame. */
    readonly argument?: number,
  ) {
    super(message);
    this.name = 'FunctionError';
  }
}

export function toProtoFunction(f: FunctionDef): Record<string, unknown> {
  return {
    parameters: f.parameters.map((p) => ({
      name: p.name,
      type: Buffer.from(JSON.stringify(p.type)),
      allow_null_value: !!p.allowNull,
      allow_unknown_values: false,
      description: p.description,
      description_kind: STRING_KIND_MARKDOWN,
    })),
    return: { type: Buffer.from(JSON.stringify(f.returns)) },
    summary: f.summary,
    description: f.description,
    description_kind: STRING_KIND_MARKDOWN,
  };
}

type DV = { msgpack?: Uint8Array; json?: Uint8Array } | undefined;

/** CallFunction: the response object (result, or error) for a call of `f` with the request's arguments. */
export function callFunction(f: FunctionDef | undefined, name: string, args: DV[]): Record<string, unknown> {
  const fail = (e: FunctionError) => ({ error: { text: e.message, function_argument: e.argument } });
  if (!f) return fail(new FunctionError(`this provider has no function "${name}"`));
  if (args.length !== f.parameters.length) {
    return fail(new FunctionError(`${f.name} takes ${f.parameters.length} argument(s), got ${args.length}`));
  }
  const values: Value[] = [];
  for (const [i, p] of f.parameters.entries()) {
    let v: Value;
    try {
      const dv = args[i];
      v = dv?.msgpack && dv.msgpack.length ? decodeMsgpack(p.type, dv.msgpack) : null;
    } catch (e) {
      return fail(new FunctionError(`${p.name}: ${(e as Error).message}`, i));
    }
    if (v === null && !p.allowNull) return fail(new FunctionError('must not be null', i));
    // Terraform does not call with unknowns (allow_unknown_values is false); if it did, the result is unknown too
    if (isUnknown(v)) return { result: { msgpack: encodeMsgpack(f.returns, UNKNOWN) } };
    values.push(v);
  }
  try {
    return { result: { msgpack: encodeMsgpack(f.returns, f.call(values)) } };
  } catch (e) {
    if (e instanceof FunctionError) return fail(e);
    return fail(new FunctionError(`${f.name} failed: ${(e as Error)?.message ?? String(e)}`));
  }
}
