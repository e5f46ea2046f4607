/**
 * The data sources that read one object of a resource by node and uuid (mayastor_replica, mayastor_nexus): the
 * same validation, lookup and "not found" wording for each; only the noun, the agent call and the mapping differ.
 */
import type { AgentClient } from '../../agent/api/client';
import { DataSourceType } from '../protocol/framework';
import { SchemaOf } from '../protocol/model';
import { typedDataSource } from '../protocol/typed';
import { Mayastor } from './agent-clients';
import { agentDiag } from './agent-errors';
import { checkUuid } from './validators';

export interface ByUuidDataSpec<T, M> {
  typeName: string;
  /** What the object is called in diagnostics ("replica", "nexus"). */
  noun: string;
  schema: SchemaOf<M>;
  /** The agent's object, undefined when the node has none with that uuid. */
  get: (c: AgentClient, uuid: string) => Promise<T | undefined>;
  /** The resource's mapping, without its configuration-only fields. */
  toModel: (node: string, obj: T) => M;
}

/** A data source whose configuration is `node` and `uuid`, every other attribute computed from the agent's object. */
export function byUuidDataSource<T, M extends { node: string; uuid: string }>(spec: ByUuidDataSpec<T, M>): DataSourceType<Mayastor> {
  const { typeName, noun } = spec;
  const Noun = noun[0].toUpperCase() + noun.slice(1);
  return typedDataSource<Mayastor, M, Exclude<keyof M, 'node' | 'uuid'>>({
    typeName,
    schema: spec.schema,
    validate(config, diags) {
      checkUuid(diags, config.uuid as string | null, 'uuid');
    },
    async read(m, config, diags) {
      // node and uuid are required configuration, so always known here (the compiler cannot see it through Planned<M, ...>)
      const { node, uuid } = config as unknown as Pick<M, 'node' | 'uuid'>;
      const c = m.reader(node, diags);
      if (!c) return null;
      try {
        const obj = await spec.get(c, uuid);
        if (!obj) {
          diags.error(
            `${Noun} ${uuid} not found on node "${node}"`,
            `the agent on node "${node}" has no ${noun} ${uuid}; check the uuid and the node (data source ${typeName} reads an existing ${noun}, it creates none)`,
            ['uuid'],
          );
          return null;
        }
        return spec.toModel(node, obj);
      } catch (e) {
        agentDiag(diags, e, `Read ${noun} ${uuid}`, node, 'uuid', []);
        return null;
      }
    },
  });
}
