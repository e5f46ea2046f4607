/**
 * Resources and data sources written against typed models (see model.ts): the adapter decodes every value the
 * framework hands over into the resource's model in this one place, and encodes the model it gets back, the way
 * terraform-plugin-framework's `req.Plan.Get(ctx, &model)` / `resp.State.Set(ctx, model)` do.
 */
import { ObjectValue } from './cty';
import { DataSourceType, ResourceType } from './framework';
import { Draft, Planned, SchemaOf, applyChanges, decodeModel, encodeModel } from './model';
import { Diagnostics } from './schema';

export interface TypedPlanArgs<M> {
  /** null when the object is being created. */
  prior: M | null;
  config: Draft<M>;
  /** The planned object: refine its fields in place (e.g. mark an output unknown). */
  planned: Draft<M>;
  requiresReplace: Set<string>;
}

/** A resource over model M whose computed-only attributes are `Out`. */
export interface TypedResource<C, M, Out extends keyof M> {
  typeName: string;
  schema: SchemaOf<M>;
  validate?(config: Draft<M>, diags: Diagnostics): void;
  modifyPlan?(client: C | undefined, args: TypedPlanArgs<M>, diags: Diagnostics): Promise<void> | void;
  create(client: C, planned: Planned<M, Out>, diags: Diagnostics): Promise<M | null>;
  /** null when the object no longer exists. */
  read(client: C, state: M, diags: Diagnostics): Promise<M | null>;
  update(client: C, prior: M, planned: Planned<M, Out>, diags: Diagnostics): Promise<M | null>;
  delete(client: C, prior: M, diags: Diagnostics): Promise<void>;
  importState?(client: C, id: string, diags: Diagnostics): Promise<M | null>;
}

export interface TypedDataSource<C, M, Out extends keyof M> {
  typeName: string;
  schema: SchemaOf<M>;
  validate?(config: Draft<M>, diags: Diagnostics): void;
  read(client: C, config: Planned<M, Out>, diags: Diagnostics): Promise<M | null>;
}

export function typedResource<C, M, Out extends keyof M>(r: TypedResource<C, M, Out>): ResourceType<C> {
  const s = r.schema;
  const decode = <T>(v: ObjectValue) => decodeModel<T>(s, v);
  /** A model handed back unchanged keeps the exact value it came from. */
  const encode = (m: M | null, from?: { value: ObjectValue; model: unknown }): ObjectValue | null =>
    m === null ? null : from && m === from.model ? from.value : encodeModel(s, m);
  return {
    typeName: r.typeName,
    schema: s,
    validate: r.validate && ((config, diags) => r.validate!(decode<Draft<M>>(config), diags)),
    modifyPlan:
      r.modifyPlan &&
      (async (client, { prior, config, planned, requiresReplace }, diags) => {
        const before = decode<Draft<M>>(planned),
          after = decode<Draft<M>>(planned);
        await r.modifyPlan!(client, { prior: prior && decode<M>(prior), config: decode<Draft<M>>(config), planned: after, requiresReplace }, diags);
        applyChanges(s, planned, before, after);
      }),
    create: async (client, planned, diags) => encode(await r.create(client, decode<Planned<M, Out>>(planned), diags)),
    read: async (client, state, diags) => {
      const model = decode<M>(state);
      return encode(await r.read(client, model, diags), { value: state, model });
    },
    update: async (client, prior, planned, diags) => {
      const model = decode<M>(prior);
      return encode(await r.update(client, model, decode<Planned<M, Out>>(planned), diags), { value: prior, model });
    },
    delete: (client, prior, diags) => r.delete(client, decode<M>(prior), diags),
    importState: r.importState && (async (client, id, diags) => encode(await r.importState!(client, id, diags))),
  };
}

export function typedDataSource<C, M, Out extends keyof M>(d: TypedDataSource<C, M, Out>): DataSourceType<C> {
  return {
    typeName: d.typeName,
    schema: d.schema,
    validate: d.validate && ((config, diags) => d.validate!(decodeModel<Draft<M>>(d.schema, config), diags)),
    read: async (client, config, diags) => {
      const m = await d.read(client, decodeModel<Planned<M, Out>>(d.schema, config), diags);
      return m === null ? null : encodeModel(d.schema, m);
    },
  };
}
