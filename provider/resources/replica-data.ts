/** data "mayastor_replica": one replica, by node and uuid, with every attribute of the resource. */
import { DataSourceType } from '../protocol/framework';
import { SchemaOf } from '../protocol/model';
import { Mayastor } from './agent-clients';
import { dataSourceAttributes } from './attributes';
import { byUuidDataSource } from './by-uuid-data';
import { ReplicaModel, replicaSchema, toModel } from './replica';

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

export const replicaDataSource: DataSourceType<Mayastor> = byUuidDataSource({
  typeName: 'mayastor_replica',
  noun: 'replica',
  schema: replicaDataSchema,
  get: (c, uuid) => c.getReplica(uuid),
  toModel(node, r): ReplicaDataModel {
    const { sourceSnapshot: _s, ...model } = toModel(node, r);
    return model;
  },
});
