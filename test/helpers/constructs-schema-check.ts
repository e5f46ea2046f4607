/**
 * Checks the hand-written L1 bindings against a provider schema in `terraform providers schema -json` form, the
 * way `cdktf get` would have generated them: same class per resource/data source, config interfaces with exactly
 * the configurable attributes (required ones non-optional, types mapped like the generator maps them), a getter
 * for every attribute that returns a token for it, and synthesizeAttributes emitting exactly the snake_case
 * keys. Used by the unit test (against the provider's GetProviderSchema handler) and the integration test
 * (against the real terraform binary's view of the installed provider).
 *
 * Dev-only (a test helper, not shipped with the constructs): it loads `typescript` to read the config
 * interfaces and class members from the sources.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Construct } from 'constructs';
import { App, TerraformOutput, TerraformStack, Testing } from 'cdktf';
import { MayastorProvider } from '../../constructs/l1/provider';
import { Pool } from '../../constructs/l1/pool';
import { Replica } from '../../constructs/l1/replica';
import { Nexus } from '../../constructs/l1/nexus';
import { Snapshot } from '../../constructs/l1/snapshot';
import { VolumeSnapshot } from '../../constructs/l1/volume-snapshot';
import { DataMayastorReplica } from '../../constructs/l1/data-mayastor-replica';
import { DataMayastorNexus } from '../../constructs/l1/data-mayastor-nexus';
import { DataMayastorNode } from '../../constructs/l1/data-mayastor-node';
import { DataMayastorPools } from '../../constructs/l1/data-mayastor-pools';

/** The L1 sources (read as TypeScript, also when this runs compiled). */
const L1_SOURCES = path.resolve(__dirname, '../../constructs/l1');

export type SchemaType = string | [string, SchemaType] | [string, Record<string, SchemaType>] | unknown[];

export interface SchemaAttribute {
  /** Absent for a nested attribute (nested_type instead). */
  type?: SchemaType;
  /** A protocol 6 nested attribute (only nesting_mode "single" is modelled). */
  nested_type?: { attributes: Record<string, SchemaAttribute>; nesting_mode: string };
  required?: boolean;
  optional?: boolean;
  computed?: boolean;
  sensitive?: boolean;
}
export interface SchemaBlock {
  block: { attributes?: Record<string, SchemaAttribute>; block_types?: Record<string, unknown> };
}
/** One provider's entry of `terraform providers schema -json` (`provider_schemas["registry.terraform.io/mayastor/mayastor"]`). */
export interface ProviderSchemaJson {
  provider: SchemaBlock;
  resource_schemas?: Record<string, SchemaBlock>;
  data_source_schemas?: Record<string, SchemaBlock>;
}

type Ctor = new (scope: Construct, id: string, config: never) => Construct;

interface Binding {
  kind: 'provider' | 'resource' | 'data';
  tfType: string;
  file: string;
  className: string;
  configName: string;
  ctor: Ctor;
}

export const BINDINGS: Binding[] = [
  {
    kind: 'provider',
    tfType: 'mayastor',
    file: 'provider.ts',
    className: 'MayastorProvider',
    configName: 'MayastorProviderConfig',
    ctor: MayastorProvider as unknown as Ctor,
  },
  { kind: 'resource', tfType: 'mayastor_pool', file: 'pool.ts', className: 'Pool', configName: 'PoolConfig', ctor: Pool as unknown as Ctor },
  { kind: 'resource', tfType: 'mayastor_replica', file: 'replica.ts', className: 'Replica', configName: 'ReplicaConfig', ctor: Replica as unknown as Ctor },
  { kind: 'resource', tfType: 'mayastor_nexus', file: 'nexus.ts', className: 'Nexus', configName: 'NexusConfig', ctor: Nexus as unknown as Ctor },
  {
    kind: 'resource',
    tfType: 'mayastor_snapshot',
    file: 'snapshot.ts',
    className: 'Snapshot',
    configName: 'SnapshotConfig',
    ctor: Snapshot as unknown as Ctor,
  },
  {
    kind: 'resource',
    tfType: 'mayastor_volume_snapshot',
    file: 'volume-snapshot.ts',
    className: 'VolumeSnapshot',
    configName: 'VolumeSnapshotConfig',
    ctor: VolumeSnapshot as unknown as Ctor,
  },
  {
    kind: 'data',
    tfType: 'mayastor_node',
    file: 'data-mayastor-node.ts',
    className: 'DataMayastorNode',
    configName: 'DataMayastorNodeConfig',
    ctor: DataMayastorNode as unknown as Ctor,
  },
  {
    kind: 'data',
    tfType: 'mayastor_pools',
    file: 'data-mayastor-pools.ts',
    className: 'DataMayastorPools',
    configName: 'DataMayastorPoolsConfig',
    ctor: DataMayastorPools as unknown as Ctor,
  },
  {
    kind: 'data',
    tfType: 'mayastor_replica',
    file: 'data-mayastor-replica.ts',
    className: 'DataMayastorReplica',
    configName: 'DataMayastorReplicaConfig',
    ctor: DataMayastorReplica as unknown as Ctor,
  },
  {
    kind: 'data',
    tfType: 'mayastor_nexus',
    file: 'data-mayastor-nexus.ts',
    className: 'DataMayastorNexus',
    configName: 'DataMayastorNexusConfig',
    ctor: DataMayastorNexus as unknown as Ctor,
  },
];

/** The generator's property name of an attribute: camelCase, then its escapes (`node` → `nodeAttribute`). */
export function propertyName(tfName: string): string {
  const camel = tfName.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  let escape: (n: string) => string;
  try {
    // the real generator's rule, when cdktf-cli's generator is installed
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    escape = require('@cdktf/provider-generator/lib/get/generator/models/attribute-model').escapeAttributeName as (n: string) => string;
  } catch {
    escape = (n) => (n === 'node' ? 'nodeAttribute' : n);
  }
  return escape(camel);
}

/** The TypeScript type the generator uses for a config attribute of this cty type (whitespace-free). */
export function configTypeText(t: SchemaType): string | undefined {
  const j = JSON.stringify(t);
  switch (j) {
    case '"string"':
      return 'string';
    case '"number"':
      return 'number';
    case '"bool"':
      return 'boolean|cdktf.IResolvable';
    case '["list","string"]':
      return 'string[]';
    case '["set","string"]':
      return 'string[]';
    case '["list","number"]':
      return 'number[]';
    case '["map","string"]':
      return '{[key:string]:string}';
    default:
      return undefined;
  }
}

/** The cty type of an attribute (a single nested attribute is the object of its attributes). */
function attrType(a: SchemaAttribute): SchemaType {
  if (!a.nested_type) return a.type as SchemaType;
  return ['object', Object.fromEntries(Object.entries(a.nested_type.attributes).map(([k, n]) => [k, attrType(n)]))];
}

/** The generator's struct name for a nested attribute: the class name and the property, PascalCase (NexusTimeouts). */
function structName(className: string, prop: string): string {
  return className + prop[0].toUpperCase() + prop.slice(1);
}

function sample(a: SchemaAttribute): unknown {
  if (a.nested_type) return Object.fromEntries(Object.entries(a.nested_type.attributes).map(([k, n]) => [k, sample(n)]));
  switch (JSON.stringify(a.type)) {
    case '"string"':
      return 's';
    case '"number"':
      return 512;
    case '"bool"':
      return true;
    case '["list","string"]':
    case '["set","string"]':
      return ['a', 'b'];
    case '["list","number"]':
      return [1, 2];
    // a key that snake-casing would change: map keys must reach Terraform verbatim
    case '["map","string"]':
      return { 'node-a': 'v', nodeB: 'w' };
    default:
      return undefined;
  }
}

interface ParsedClass {
  configProps: Map<string, { optional: boolean; type: string }>;
  /** Other interfaces of the file (the structs of nested attributes), by name. */
  structs: Map<string, Map<string, { optional: boolean; type: string }>>;
  getters: Set<string>;
  staticType?: string;
}

function parseSource(file: string, className: string, configName: string): ParsedClass {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  const src = fs.readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, src, ts.ScriptTarget.ES2022, true);
  const out: ParsedClass = { configProps: new Map(), structs: new Map(), getters: new Set() };
  const members = (n: import('typescript').InterfaceDeclaration) => {
    const m = new Map<string, { optional: boolean; type: string }>();
    for (const p of n.members) {
      if (ts.isPropertySignature(p) && p.type) m.set(p.name.getText(sf), { optional: !!p.questionToken, type: p.type.getText(sf).replace(/\s+/g, '') });
    }
    return m;
  };
  let sawConfig = false;
  let sawClass = false;
  const visit = (n: import('typescript').Node): void => {
    if (ts.isInterfaceDeclaration(n) && n.name.text === configName) {
      sawConfig = true;
      out.configProps = members(n);
    } else if (ts.isInterfaceDeclaration(n)) {
      out.structs.set(n.name.text, members(n));
    }
    if (ts.isClassDeclaration(n) && n.name?.text === className) {
      sawClass = true;
      for (const m of n.members) {
        if (ts.isGetAccessorDeclaration(m)) out.getters.add(m.name.getText(sf));
        if (ts.isPropertyDeclaration(m) && m.name.getText(sf) === 'tfResourceType' && m.initializer && ts.isStringLiteral(m.initializer)) {
          out.staticType = m.initializer.text;
        }
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  if (!sawConfig) throw new Error(`${file}: interface ${configName} not found`);
  if (!sawClass) throw new Error(`${file}: class ${className} not found`);
  return out;
}

/** Meta-arguments inherited from cdktf.TerraformMetaArguments (not part of the provider schema). */
const PROVIDER_META = new Set(['alias']);

/**
 * Every divergence between the bindings and the schema, as readable lines ("mayastor_replica.size_bytes:
 * config property sizeBytes is optional, but the attribute is required"). Empty when they match.
 */
export function checkBindings(schema: ProviderSchemaJson, sourceDir = L1_SOURCES): string[] {
  const problems: string[] = [];
  const srcDir = sourceDir;
  const schemaTypes = new Map<string, { kind: Binding['kind']; block: SchemaBlock }>();
  schemaTypes.set('mayastor', { kind: 'provider', block: schema.provider });
  for (const [k, v] of Object.entries(schema.resource_schemas ?? {})) schemaTypes.set(k, { kind: 'resource', block: v });
  for (const [k, v] of Object.entries(schema.data_source_schemas ?? {})) schemaTypes.set(`data.${k}`, { kind: 'data', block: v });

  const key = (b: Binding): string => (b.kind === 'data' ? `data.${b.tfType}` : b.tfType);
  for (const k of schemaTypes.keys()) {
    if (!BINDINGS.some((b) => key(b) === k)) problems.push(`${k}: in the provider schema but has no L1 binding`);
  }

  for (const b of BINDINGS) {
    const where = key(b);
    const entry = schemaTypes.get(where);
    if (!entry) {
      problems.push(`${where}: L1 binding ${b.className} exists but the provider schema has no such ${b.kind}`);
      continue;
    }
    if (entry.block.block.block_types && Object.keys(entry.block.block.block_types).length) {
      problems.push(
        `${where}: the schema has nested blocks (${Object.keys(entry.block.block.block_types).join(', ')}); the binding check does not model them yet`,
      );
    }
    const attrs = entry.block.block.attributes ?? {};
    const parsed = parseSource(path.join(srcDir, b.file), b.className, b.configName);
    if (parsed.staticType !== b.tfType) problems.push(`${where}: ${b.className}.tfResourceType is ${JSON.stringify(parsed.staticType)}`);

    // config interface ↔ configurable attributes
    const expectedProps = new Set<string>();
    for (const [name, a] of Object.entries(attrs)) {
      const prop = propertyName(name);
      const configurable = !!a.required || !!a.optional;
      const cfg = parsed.configProps.get(prop);
      if (configurable) {
        expectedProps.add(prop);
        if (!cfg) {
          problems.push(`${where}.${name}: ${a.required ? 'required' : 'optional'} attribute has no config property ${prop} in ${b.configName}`);
        } else {
          const wantOptional = !a.required;
          if (cfg.optional !== wantOptional) {
            problems.push(
              `${where}.${name}: config property ${prop} is ${cfg.optional ? 'optional' : 'required'}, but the attribute is ${a.required ? 'required' : 'optional'}`,
            );
          }
          const want = a.nested_type ? structName(b.className, prop) : configTypeText(a.type as SchemaType);
          if (want === undefined) problems.push(`${where}.${name}: type ${JSON.stringify(a.type)} is not modelled by the binding check`);
          else if (cfg.type !== want)
            problems.push(`${where}.${name}: config property ${prop} has type ${cfg.type}, the schema type ${JSON.stringify(attrType(a))} needs ${want}`);
          if (a.nested_type) problems.push(...checkStruct(`${where}.${name}`, a, want ?? '', parsed));
        }
      } else if (cfg) {
        problems.push(`${where}.${name}: computed-only attribute must not be a config property (${prop} in ${b.configName})`);
      }
      if (!parsed.getters.has(prop)) problems.push(`${where}.${name}: ${b.className} has no getter ${prop}`);
      if (a.sensitive && b.kind !== 'provider')
        problems.push(`${where}.${name}: sensitive attribute (the binding check expects none outside the provider block)`);
    }
    for (const prop of parsed.configProps.keys()) {
      if (!expectedProps.has(prop) && !(b.kind === 'provider' && PROVIDER_META.has(prop))) {
        problems.push(`${where}: config property ${prop} of ${b.configName} matches no attribute of the schema`);
      }
    }

    // runtime: synthesized keys and getter tokens
    const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'l1-check-')) });
    const stack = new TerraformStack(app, 'check');
    if (b.kind !== 'provider') new MayastorProvider(stack, 'p', {});
    const config: Record<string, unknown> = {};
    for (const [name, a] of Object.entries(attrs)) if (a.required || a.optional) config[propertyName(name)] = sample(a);
    let inst: Construct;
    try {
      inst = new b.ctor(stack, 'x', config as never);
    } catch (e) {
      problems.push(`${where}: constructing ${b.className} failed: ${(e as Error).message}`);
      continue;
    }
    // every getter's value goes into an output, so its synthesized reference can be inspected
    const getterProblems = new Map<string, string>();
    if (b.kind !== 'provider') {
      for (const name of Object.keys(attrs)) {
        const prop = propertyName(name);
        const v = (inst as unknown as Record<string, unknown>)[prop];
        if (v === undefined) continue; // reported as a missing getter
        try {
          new TerraformOutput(stack, `o_${name}`, { value: v });
        } catch (e) {
          getterProblems.set(name, (e as Error).message);
        }
      }
    }
    const tf = JSON.parse(Testing.synth(stack)) as Record<string, Record<string, Record<string, Record<string, unknown>>>>;
    const body =
      b.kind === 'provider'
        ? (tf.provider?.mayastor as unknown as Record<string, unknown>[] | undefined)?.[0]
        : b.kind === 'resource'
          ? Object.values(tf.resource?.[b.tfType] ?? {})[0]
          : Object.values(tf.data?.[b.tfType] ?? {})[0];
    if (!body) {
      problems.push(`${where}: ${b.className} synthesized no ${b.kind} block`);
      continue;
    }
    const meta = new Set(['//', 'provider', 'depends_on', 'count', 'for_each', 'lifecycle', 'provisioner', 'connection', 'alias']);
    const synthKeys = Object.keys(body)
      .filter((k) => !meta.has(k))
      .sort();
    const wantKeys = Object.entries(attrs)
      .filter(([, a]) => a.required || a.optional)
      .map(([n]) => n)
      .sort();
    if (JSON.stringify(synthKeys) !== JSON.stringify(wantKeys)) {
      problems.push(`${where}: synthesizeAttributes emits [${synthKeys.join(', ')}], the configurable attributes are [${wantKeys.join(', ')}]`);
    }
    for (const [name, a] of Object.entries(attrs)) {
      if (!(a.required || a.optional)) continue;
      const got = JSON.stringify(body[name]);
      const want = JSON.stringify(sample(a));
      if (got !== want) problems.push(`${where}.${name}: set to ${want}, synthesized as ${got}`);
    }
    if (b.kind !== 'provider') {
      const outputs = (tf.output ?? {}) as unknown as Record<string, { value: unknown }>;
      for (const name of Object.keys(attrs)) {
        const prop = propertyName(name);
        if (!parsed.getters.has(prop)) continue;
        const ref = `${b.kind === 'data' ? 'data.' : ''}${b.tfType}.x.${name}`;
        const failed = getterProblems.get(name);
        if (failed !== undefined) {
          problems.push(`${where}.${name}: getter ${prop} is not a usable value: ${failed}`);
          continue;
        }
        const resolved = outputs[`o_${name}`]?.value;
        if (typeof resolved !== 'string' || resolved !== `\${${ref}}`) {
          problems.push(`${where}.${name}: getter ${prop} resolves to ${JSON.stringify(resolved)}, not a reference to ${ref}`);
        }
      }
    }
  }
  return problems;
}

/** A nested attribute's struct interface: exactly its attributes, all optional ones optional, types mapped. */
function checkStruct(where: string, a: SchemaAttribute, name: string, parsed: ParsedClass): string[] {
  const nt = a.nested_type!;
  if (nt.nesting_mode !== 'single') return [`${where}: nesting mode ${nt.nesting_mode} is not modelled by the binding check`];
  const struct = parsed.structs.get(name);
  if (!struct) return [`${where}: no interface ${name} for the nested attribute`];
  const problems: string[] = [];
  for (const [k, n] of Object.entries(nt.attributes)) {
    const prop = propertyName(k);
    const m = struct.get(prop);
    const want = configTypeText(n.type as SchemaType);
    if (!(n.required || n.optional)) continue;
    if (!m) problems.push(`${where}.${k}: ${name} has no property ${prop}`);
    else if (m.optional !== !n.required) problems.push(`${where}.${k}: ${name}.${prop} is ${m.optional ? 'optional' : 'required'}`);
    else if (m.type !== want) problems.push(`${where}.${k}: ${name}.${prop} has type ${m.type}, needs ${want}`);
  }
  for (const prop of struct.keys()) {
    if (!Object.keys(nt.attributes).some((k) => propertyName(k) === prop)) problems.push(`${where}: ${name}.${prop} matches no nested attribute`);
  }
  return problems;
}

/** The GetProviderSchema handler's answer (tfplugin6 objects, types as JSON bytes) in `providers schema -json` form. */
export function fromGetProviderSchema(resp: Record<string, unknown>): ProviderSchemaJson {
  interface ProtoAttr {
    name: string;
    type?: Uint8Array | string;
    nested_type?: { attributes: ProtoAttr[]; nesting: number };
    required: boolean;
    optional: boolean;
    computed: boolean;
    sensitive: boolean;
  }
  const NESTING = ['invalid', 'single', 'list', 'set', 'map'];
  const convAttrs = (list: ProtoAttr[]): Record<string, SchemaAttribute> => {
    const attributes: Record<string, SchemaAttribute> = {};
    for (const a of list) {
      attributes[a.name] = {
        ...(a.nested_type
          ? { nested_type: { attributes: convAttrs(a.nested_type.attributes), nesting_mode: NESTING[a.nested_type.nesting] ?? 'invalid' } }
          : { type: JSON.parse(typeof a.type === 'string' ? a.type : Buffer.from(a.type ?? '').toString('utf8')) as SchemaType }),
        required: a.required || undefined,
        optional: a.optional || undefined,
        computed: a.computed || undefined,
        sensitive: a.sensitive || undefined,
      };
    }
    return attributes;
  };
  const conv = (s: unknown): SchemaBlock => ({ block: { attributes: convAttrs((s as { block: { attributes: ProtoAttr[] } }).block.attributes) } });
  const map = (m: unknown): Record<string, SchemaBlock> =>
    Object.fromEntries(Object.entries((m ?? {}) as Record<string, unknown>).map(([k, v]) => [k, conv(v)]));
  return { provider: conv(resp.provider), resource_schemas: map(resp.resource_schemas), data_source_schemas: map(resp.data_source_schemas) };
}
