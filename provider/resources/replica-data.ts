/** data "mayastor_replica": one replica, by node and uuid, with every attribute of the resource. */
import type { Replica } from '../../agent/api/client';
import { DataSourceType } from '../protocol/framework';
import { SchemaOf } from '../protocol/model';
import { typedDataSource } from '../protocol/typed';
import { Mayastor } from './agent-clients';
import { agentDiag } from './agent-errors';
import { dataSourceAttributes } from './attributes';
import { ReplicaModel, replicaSchema } from './replica';
import { checkUuid } from './validators';

/** What the data source reads: the resource's attributes, but the clone source (configuration only: the agent reports none). */
export type ReplicaDataModel = Omit<ReplicaModel, 'sourceSnapshot'>;

export const replicaDataSchema: SchemaOf<ReplicaDataModel> = {
  description:
    'Reads one replica by node and uuid, whether Terraform manages it or not (e.g. made by another configuration): ' +
    'its pool, size, thin, share, allowed hosts, `uri` and allocation. A replica that does not exist is an error naming the uuid and the node.',
  attributes: dataSourceAttributes(
    replicaSchema.attributes,
    { node: "Node whose agent holds the replica (a key of the provider's `nodes` map).", uuid: 'UUID of the replica.' },
    ['source_snapshot'],
  ) as SchemaOf<ReplicaDataModel>['attributes'],
};

function toModel(node: string, r: Replica): ReplicaDataModel {
  return {
    id: `${node}/${r.uuid}`,
    node,
    pool: r.pool,
    uuid: r.uuid,
    sizeBytes: r.sizeBytes,
    thin: r.thin,
    share: r.share,
    allowedHosts: [...(r.allowedHosts ?? [])],
    uri: r.uri,
    allocatedBytes: r.allocatedBytes,
  };
}

export const replicaDataSource: DataSourceType<Mayastor> = typedDataSource<Mayastor, ReplicaDataModel, Exclude<keyof ReplicaDataModel, 'node' | 'uuid'>>({
  typeName: 'mayastor_replica',
  schema: replicaDataSchema,
  validate(config, diags) {
    checkUuid(diags, config.uuid, 'uuid');
  },
  async read(m, { node, uuid }, diags) {
    const c = m.reader(node, diags);
    if (!c) return null;
    try {
      const r = await c.getReplica(uuid);
      if (!r) {
        diags.error(
          `Replica ${uuid} not found on node "${node}"`,
          `the agent on node "${node}" has no replica ${uuid}; check the uuid and the node (data source mayastor_replica reads an existing replica, it creates none)`,
          ['uuid'],
        );
        return null;
      }
      return toModel(node, r);
    } catch (e) {
      agentDiag(diags, e, `Read replica ${uuid}`, node, 'uuid', []);
      return null;
    }
  },
});
