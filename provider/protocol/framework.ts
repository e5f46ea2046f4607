/**
 * What a provider implementation supplies, and the generic tfplugin6 semantics built on it: decoding requests,
 * the plan rules (proposed → planned with computed unknowns, requiresReplace), apply dispatch, state upgrade.
 * Resource code sees plain cty values (ObjectValue) and a Diagnostics collector; it never sees msgpack.
 */
import {
  CtyError,
  CtyType,
  ObjectValue,
  UNKNOWN,
  Value,
  decodeMsgpack,
  encodeMsgpack,
  fromJson,
  isUnknown,
  parseJsonExact,
  typedEqual,
  isWhollyKnown,
} from './cty';
import { BlockSchema, Diagnostics, PathStep, objectType, pathToProto, toProtoSchema } from './schema';
import { logger } from './log';
import { FunctionDef, callFunction, toProtoFunction } from './functions';

export interface PlanArgs {
  prior: ObjectValue | null;
  config: ObjectValue;
  /** Mutable planned state; the hook may refine values and add replace paths. */
  planned: ObjectValue;
  requiresReplace: Set<string>;
}

export interface ResourceType<C> {
  typeName: string;
  schema: BlockSchema;
  /** Static checks on the configuration (values may be unknown). */
  validate?(config: ObjectValue, diags: Diagnostics): void;
  /** Plan-time checks and refinements that may need the client (e.g. unknown node, shrink). */
  modifyPlan?(client: C | undefined, args: PlanArgs, diags: Diagnostics): Promise<void> | void;
  create(client: C, planned: ObjectValue, diags: Diagnostics): Promise<ObjectValue | null>;
  /** Returns null when the object no longer exists. */
  read(client: C, state: ObjectValue, diags: Diagnostics): Promise<ObjectValue | null>;
  update(client: C, prior: ObjectValue, planned: ObjectValue, diags: Diagnostics): Promise<ObjectValue | null>;
  delete(client: C, prior: ObjectValue, diags: Diagnostics): Promise<void>;
  importState?(client: C, id: string, diags: Diagnostics): Promise<ObjectValue | null>;
}

export interface DataSourceType<C> {
  typeName: string;
  schema: BlockSchema;
  validate?(config: ObjectValue, diags: Diagnostics): void;
  read(client: C, config: ObjectValue, diags: Diagnostics): Promise<ObjectValue | null>;
}

export interface ProviderDef<C> {
  schema: BlockSchema;
  resources: ResourceType<C>[];
  dataSources: DataSourceType<C>[];
  /** Provider-defined functions (pure: they never see the client). */
  functions?: FunctionDef[];
  validateConfig?(config: ObjectValue, diags: Diagnostics): void;
  configure(config: ObjectValue, terraformVersion: string, diags: Diagnostics): Promise<C | undefined> | C | undefined;
  /** StopProvider: abandon in-flight work. */
  stop?(): void;
}

type Req = Record<string, unknown>;
type DV = { msgpack?: Uint8Array; json?: Uint8Array } | undefined;

function decodeDV(t: CtyType, dv: DV): Value {
  if (!dv) return null;
  if (dv.msgpack && dv.msgpack.length) return decodeMsgpack(t, dv.msgpack);
  if (dv.json && dv.json.length) return fromJson(t, parseJsonExact(Buffer.from(dv.json).toString('utf8')));
  return null;
}
function encodeDV(t: CtyType, v: Value): { msgpack: Uint8Array } {
  return { msgpack: encodeMsgpack(t, v) };
}

function pathKey(p: PathStep[]): string {
  return JSON.stringify(p);
}

/**
 * get_provider_schema_optional: nothing here depends on GetProviderSchema having been called, so Terraform may
 * answer the later provider instances of a command from its schema cache (one RPC less per process).
 */
const SERVER_CAPABILITIES = { plan_destroy: false, get_provider_schema_optional: true };

/** The tfplugin6 handlers; each returns the response object for the protobuf encoder. */
export class ProviderService<C> {
  private client: C | undefined;
  private configured = false;
  private readonly resources = new Map<string, ResourceType<C>>();
  private readonly dataSources = new Map<string, DataSourceType<C>>();
  private readonly types = new Map<string, CtyType>();
  private readonly providerType: CtyType;

  constructor(private readonly def: ProviderDef<C>) {
    for (const r of def.resources) {
      this.resources.set(r.typeName, r);
      this.types.set(r.typeName, objectType(r.schema));
    }
    for (const d of def.dataSources) {
      this.dataSources.set(d.typeName, d);
      this.types.set(`data.${d.typeName}`, objectType(d.schema));
    }
    this.providerType = objectType(def.schema);
  }

  getMetadata(): Req {
    return {
      server_capabilities: SERVER_CAPABILITIES,
      resources: this.def.resources.map((r) => ({ type_name: r.typeName })),
      data_sources: this.def.dataSources.map((d) => ({ type_name: d.typeName })),
      functions: (this.def.functions ?? []).map((f) => ({ name: f.name })),
    };
  }

  getProviderSchema(): Req {
    return {
      provider: toProtoSchema(this.def.schema),
      resource_schemas: Object.fromEntries(this.def.resources.map((r) => [r.typeName, toProtoSchema(r.schema)])),
      data_source_schemas: Object.fromEntries(this.def.dataSources.map((d) => [d.typeName, toProtoSchema(d.schema)])),
      server_capabilities: SERVER_CAPABILITIES,
      functions: this.protoFunctions(),
    };
  }

  /** GetFunctions: the same definitions GetProviderSchema carries (OpenTofu asks for them on their own). */
  getFunctions(): Req {
    return { functions: this.protoFunctions(), diagnostics: [] };
  }

  /** CallFunction: needs no ConfigureProvider (Terraform calls functions during validate too). */
  callFunction(req: Req): Req {
    const name = (req.name as string) ?? '';
    return callFunction(
      (this.def.functions ?? []).find((f) => f.name === name),
      name,
      (req.arguments as DV[] | undefined) ?? [],
    );
  }

  private protoFunctions(): Record<string, unknown> {
    return Object.fromEntries((this.def.functions ?? []).map((f) => [f.name, toProtoFunction(f)]));
  }

  validateProviderConfig(req: Req): Req {
    const diags = new Diagnostics();
    const cfg = this.decodeOr(diags, this.providerType, req.config as DV);
    if (cfg && this.def.validateConfig) this.def.validateConfig(cfg as ObjectValue, diags);
    return { diagnostics: diags.toProto() };
  }

  validateResourceConfig(req: Req): Req {
    const diags = new Diagnostics();
    const r = this.resource(req.type_name as string, diags);
    if (r) {
      const cfg = this.decodeOr(diags, objectType(r.schema), req.config as DV);
      if (cfg && r.validate) r.validate(cfg as ObjectValue, diags);
    }
    return { diagnostics: diags.toProto() };
  }

  validateDataResourceConfig(req: Req): Req {
    const diags = new Diagnostics();
    const d = this.dataSource(req.type_name as string, diags);
    if (d) {
      const cfg = this.decodeOr(diags, objectType(d.schema), req.config as DV);
      if (cfg && d.validate) d.validate(cfg as ObjectValue, diags);
    }
    return { diagnostics: diags.toProto() };
  }

  async configureProvider(req: Req): Promise<Req> {
    const diags = new Diagnostics();
    const cfg = this.decodeOr(diags, this.providerType, req.config as DV);
    if (cfg) {
      this.client = await this.def.configure(cfg as ObjectValue, (req.terraform_version as string) ?? '', diags);
      this.configured = !diags.hasErrors();
    }
    return { diagnostics: diags.toProto() };
  }

  upgradeResourceState(req: Req): Req {
    const diags = new Diagnostics();
    const r = this.resource(req.type_name as string, diags);
    if (!r) return { diagnostics: diags.toProto() };
    const t = objectType(r.schema);
    const version = Number(req.version ?? 0);
    if (version > (r.schema.version ?? 0)) {
      diags.error(
        'Unsupported state version',
        `${r.typeName} state has version ${version}; this provider knows up to ${r.schema.version ?? 0}. Upgrade the provider.`,
      );
      return { diagnostics: diags.toProto() };
    }
    const raw = req.raw_state as { json?: Uint8Array; flatmap?: Record<string, string> } | undefined;
    let value: Value = null;
    try {
      if (raw?.json && raw.json.length) {
        // same object shape across versions so far: drop removed attributes, add new ones as null
        value = fromJson(t, parseJsonExact(Buffer.from(raw.json).toString('utf8')), true);
      } else if (raw?.flatmap && Object.keys(raw.flatmap).length) {
        diags.error('Unsupported state format', `${r.typeName}: flatmap (pre-0.12) state is not supported`);
      }
    } catch (e) {
      diags.error('Invalid stored state', `${r.typeName}: ${(e as Error).message}`);
    }
    return diags.hasErrors() ? { diagnostics: diags.toProto() } : { upgraded_state: encodeDV(t, value), diagnostics: diags.toProto() };
  }

  async readResource(req: Req): Promise<Req> {
    const diags = new Diagnostics();
    const r = this.resource(req.type_name as string, diags);
    if (!r) return { diagnostics: diags.toProto() };
    const t = objectType(r.schema);
    const current = this.decodeOr(diags, t, req.current_state as DV) as ObjectValue | null;
    if (!current || !this.needClient(diags)) return { new_state: encodeDV(t, current), diagnostics: diags.toProto(), private: req.private };
    let next: ObjectValue | null = current;
    try {
      next = await r.read(this.client as C, current, diags);
    } catch (e) {
      this.internal(diags, `read ${r.typeName}`, e);
    }
    // on error keep the state exactly as it was: a failed refresh must never damage state
    if (diags.hasErrors()) next = current;
    if (next) this.assertKnown(next, diags, r.typeName);
    return { new_state: encodeDV(t, diags.hasErrors() ? current : next), diagnostics: diags.toProto(), private: req.private };
  }

  async planResourceChange(req: Req): Promise<Req> {
    const diags = new Diagnostics();
    const r = this.resource(req.type_name as string, diags);
    if (!r) return { diagnostics: diags.toProto() };
    const t = objectType(r.schema);
    const prior = this.decodeOr(diags, t, req.prior_state as DV) as ObjectValue | null;
    const proposed = this.decodeOr(diags, t, req.proposed_new_state as DV) as ObjectValue | null;
    const config = this.decodeOr(diags, t, req.config as DV) as ObjectValue | null;
    if (diags.hasErrors()) return { diagnostics: diags.toProto() };
    if (!proposed || !config) {
      // destroy: plan null
      return { planned_state: encodeDV(t, null), diagnostics: diags.toProto(), planned_private: req.prior_private };
    }
    const planned: ObjectValue = { ...proposed };
    const replace = new Set<string>();
    const attrs = r.schema.attributes;
    if (prior) {
      for (const [k, a] of Object.entries(attrs)) {
        if (a.requiresReplace && !typedEqual(a.type, prior[k] ?? null, planned[k] ?? null)) replace.add(k);
      }
    }
    const changed = !prior || !typedEqual(t, prior, planned);
    if (changed) {
      for (const [k, a] of Object.entries(attrs)) {
        if (!a.computed || (config[k] !== null && config[k] !== undefined)) continue;
        if (a.default !== undefined) planned[k] = a.default;
        else if (prior && replace.size === 0 && a.useStateForUnknown) planned[k] = prior[k] ?? null;
        else planned[k] = UNKNOWN;
      }
    }
    if (r.modifyPlan) {
      try {
        await r.modifyPlan(this.configured ? this.client : undefined, { prior, config, planned, requiresReplace: replace }, diags);
      } catch (e) {
        this.internal(diags, `plan ${r.typeName}`, e);
      }
    }
    if (diags.hasErrors()) return { diagnostics: diags.toProto() };
    return {
      planned_state: encodeDV(t, planned),
      requires_replace: [...replace].map((k) => pathToProto([k])),
      planned_private: req.prior_private,
      diagnostics: diags.toProto(),
    };
  }

  async applyResourceChange(req: Req): Promise<Req> {
    const diags = new Diagnostics();
    const r = this.resource(req.type_name as string, diags);
    if (!r) return { diagnostics: diags.toProto() };
    const t = objectType(r.schema);
    const prior = this.decodeOr(diags, t, req.prior_state as DV) as ObjectValue | null;
    const planned = this.decodeOr(diags, t, req.planned_state as DV) as ObjectValue | null;
    if (diags.hasErrors() || !this.needClient(diags)) return { new_state: encodeDV(t, prior), diagnostics: diags.toProto() };
    const client = this.client as C;
    let result: ObjectValue | null = null;
    try {
      if (!planned) {
        if (prior) await r.delete(client, prior, diags);
        result = diags.hasErrors() ? prior : null;
      } else if (!prior) {
        result = await r.create(client, planned, diags);
      } else {
        result = await r.update(client, prior, planned, diags);
        if (diags.hasErrors() && !result) result = prior;
      }
    } catch (e) {
      this.internal(diags, `apply ${r.typeName}`, e);
      result = prior;
    }
    if (result && planned && !diags.hasErrors()) {
      // configuration-owned (non-computed) values are exactly what was planned
      for (const [k, a] of Object.entries(r.schema.attributes)) if (!a.computed) result[k] = planned[k] ?? null;
      this.assertKnown(result, diags, r.typeName);
    }
    if (result && !isWhollyKnown(result)) {
      // never store unknowns: fall back to the prior object (or nothing) so state stays valid
      result = prior;
    }
    return { new_state: encodeDV(t, result), diagnostics: diags.toProto(), private: req.planned_private };
  }

  async importResourceState(req: Req): Promise<Req> {
    const diags = new Diagnostics();
    const r = this.resource(req.type_name as string, diags);
    if (!r) return { diagnostics: diags.toProto() };
    if (!r.importState) {
      diags.error('Import not supported', `${r.typeName} cannot be imported`);
      return { diagnostics: diags.toProto() };
    }
    if (!this.needClient(diags)) return { diagnostics: diags.toProto() };
    const t = objectType(r.schema);
    let state: ObjectValue | null = null;
    try {
      state = await r.importState(this.client as C, (req.id as string) ?? '', diags);
    } catch (e) {
      this.internal(diags, `import ${r.typeName}`, e);
    }
    if (diags.hasErrors() || !state) {
      if (!diags.hasErrors()) diags.error('Cannot import non-existent remote object', `${r.typeName} "${req.id}" was not found`);
      return { diagnostics: diags.toProto() };
    }
    return { imported_resources: [{ type_name: r.typeName, state: encodeDV(t, state) }], diagnostics: diags.toProto() };
  }

  async readDataSource(req: Req): Promise<Req> {
    const diags = new Diagnostics();
    const d = this.dataSource(req.type_name as string, diags);
    if (!d) return { diagnostics: diags.toProto() };
    const t = objectType(d.schema);
    const config = this.decodeOr(diags, t, req.config as DV) as ObjectValue | null;
    if (!config || !this.needClient(diags)) return { diagnostics: diags.toProto() };
    let state: ObjectValue | null = null;
    try {
      state = await d.read(this.client as C, config, diags);
    } catch (e) {
      this.internal(diags, `read data ${d.typeName}`, e);
    }
    if (diags.hasErrors() || !state) return { diagnostics: diags.toProto() };
    this.assertKnown(state, diags, d.typeName);
    return { state: encodeDV(t, state), diagnostics: diags.toProto() };
  }

  stopProvider(): Req {
    try {
      this.def.stop?.();
    } catch (e) {
      return { Error: (e as Error).message };
    }
    return {};
  }

  // --------------------------------------------------------------------------------------------- helpers
  private resource(name: string, diags: Diagnostics): ResourceType<C> | undefined {
    const r = this.resources.get(name);
    if (!r) diags.error('Unknown resource type', `this provider has no resource type "${name}"`);
    return r;
  }
  private dataSource(name: string, diags: Diagnostics): DataSourceType<C> | undefined {
    const d = this.dataSources.get(name);
    if (!d) diags.error('Unknown data source', `this provider has no data source "${name}"`);
    return d;
  }
  private decodeOr(diags: Diagnostics, t: CtyType, dv: DV): Value {
    try {
      return decodeDV(t, dv);
    } catch (e) {
      const path = e instanceof CtyError ? (e.path.filter((p) => typeof p === 'string' || typeof p === 'number') as PathStep[]) : undefined;
      diags.error('Invalid value from Terraform', (e as Error).message, path);
      return null;
    }
  }
  private needClient(diags: Diagnostics): boolean {
    if (this.configured) return true;
    diags.error('Provider not configured', 'ConfigureProvider was not called or failed; see the earlier diagnostics');
    return false;
  }
  private assertKnown(v: ObjectValue, diags: Diagnostics, what: string): void {
    if (!isWhollyKnown(v)) diags.error('Provider produced an unknown value', `${what}: the result contains unknown values (provider bug)`);
  }
  private internal(diags: Diagnostics, what: string, e: unknown): void {
    logger.error(`${what} failed`, { error: (e as Error)?.stack ?? String(e) });
    diags.error(`Provider error during ${what}`, (e as Error)?.message ?? String(e));
  }
}

export { isUnknown, pathKey };
