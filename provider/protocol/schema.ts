/**
 * The typed schema model: one description drives GetProviderSchema, the cty codec (the object type of a block)
 * and the generic plan logic (requiresReplace, computed values), so none of them can disagree.
 */
import { CtyType, Value } from './cty';
import { STRING_KIND_MARKDOWN } from './tfplugin6';

export interface AttributeSchema {
  type: CtyType;
  /** Markdown; required for every attribute (docs are generated from it). */
  description: string;
  required?: boolean;
  optional?: boolean;
  computed?: boolean;
  sensitive?: boolean;
  /** A change of this attribute replaces the object (the data path cannot change it in place). */
  requiresReplace?: boolean;
  /** Computed attribute whose prior value stays valid across an in-place update (not across a replace). */
  useStateForUnknown?: boolean;
  /** Value planned for an optional+computed attribute left out of the configuration. */
  default?: Value;
  /** Example value for the generated docs. */
  example?: string;
  /**
   * A nested attribute (protocol 6 `nested_type`, nesting SINGLE): `type` is then the object type of these
   * attributes (build both with nestedObject), and GetProviderSchema sends them instead of the type.
   */
  nested?: Record<string, AttributeSchema>;
}

/** The `type` and `nested` of a single nested attribute over `attributes` (the rest of the attribute is the caller's). */
export function nestedObject(attributes: Record<string, AttributeSchema>): Pick<AttributeSchema, 'type' | 'nested'> {
  return { type: ['object', Object.fromEntries(Object.entries(attributes).map(([k, a]) => [k, a.type]))], nested: attributes };
}

export interface BlockSchema {
  version?: number;
  description: string;
  attributes: Record<string, AttributeSchema>;
}

const objectTypes = new WeakMap<BlockSchema, CtyType>();
/** The object type of a block, computed once per schema object (every RPC needs it; schemas never change). */
export function objectType(b: BlockSchema): CtyType {
  let t = objectTypes.get(b);
  if (!t) {
    t = ['object', Object.fromEntries(Object.entries(b.attributes).map(([k, a]) => [k, a.type]))];
    objectTypes.set(b, t);
  }
  return t;
}

/** NestingMode of tfplugin6.Schema.Object. */
const NESTING_SINGLE = 1;

function protoAttributes(attributes: Record<string, AttributeSchema>): Record<string, unknown>[] {
  return Object.entries(attributes)
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([name, a]) => ({
      name,
      // exactly one of type and nested_type
      ...(a.nested ? { nested_type: { attributes: protoAttributes(a.nested), nesting: NESTING_SINGLE } } : { type: Buffer.from(JSON.stringify(a.type)) }),
      description: a.description,
      description_kind: STRING_KIND_MARKDOWN,
      required: !!a.required,
      optional: !!a.optional,
      computed: !!a.computed,
      sensitive: !!a.sensitive,
    }));
}

export function toProtoSchema(b: BlockSchema): Record<string, unknown> {
  return {
    version: b.version ?? 0,
    block: {
      version: b.version ?? 0,
      description: b.description,
      description_kind: STRING_KIND_MARKDOWN,
      attributes: protoAttributes(b.attributes),
    },
  };
}

/** Internal consistency of a schema (the same rules Terraform applies), checked by unit tests. */
export function checkSchema(name: string, b: BlockSchema): string[] {
  const errs: string[] = [];
  for (const [k, a] of Object.entries(b.attributes)) {
    if (a.nested) {
      errs.push(...checkSchema(`${name}.${k}`, { description: a.description, attributes: a.nested }));
      const t = nestedObject(a.nested).type;
      if (JSON.stringify(a.type) !== JSON.stringify(t)) errs.push(`${name}.${k}: type is not the object type of its nested attributes`);
    }
    if (!/^[a-z0-9_]+$/.test(k)) errs.push(`${name}.${k}: invalid attribute name`);
    if (a.required && (a.optional || a.computed)) errs.push(`${name}.${k}: required excludes optional/computed`);
    if (!a.required && !a.optional && !a.computed) errs.push(`${name}.${k}: one of required/optional/computed`);
    if (!a.description) errs.push(`${name}.${k}: missing description`);
    if (a.default !== undefined && !(a.optional && a.computed)) errs.push(`${name}.${k}: default needs optional+computed`);
  }
  return errs;
}

// ----------------------------------------------------------------------------------------- diagnostics
/** A path into a value: attribute names are strings, list indices numbers, map keys `{ key }`. */
export type PathStep = string | number | { key: string };

export interface Diag {
  severity: 'error' | 'warning';
  summary: string;
  detail?: string;
  path?: PathStep[];
}

export class Diagnostics {
  readonly items: Diag[] = [];
  error(summary: string, detail?: string, path?: PathStep[]): void {
    this.items.push({ severity: 'error', summary, detail, path });
  }
  warn(summary: string, detail?: string, path?: PathStep[]): void {
    this.items.push({ severity: 'warning', summary, detail, path });
  }
  hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }
  toProto(): Record<string, unknown>[] {
    return this.items.map((d) => ({
      severity: d.severity === 'error' ? 1 : 2,
      summary: d.summary,
      detail: d.detail ?? '',
      attribute: d.path && d.path.length ? pathToProto(d.path) : undefined,
    }));
  }
}

export function pathToProto(path: PathStep[]): Record<string, unknown> {
  return {
    steps: path.map((s) => (typeof s === 'number' ? { element_key_int: s } : typeof s === 'string' ? { attribute_name: s } : { element_key_string: s.key })),
  };
}
