/** data "mayastor_nexus": one nexus, by node and uuid, with every attribute of the resource (timeouts aside). */
import { DataSourceType } from '../protocol/framework';
import { SchemaOf } from '../protocol/model';
import { Mayastor } from './agent-clients';
import { dataSourceAttributes } from './attributes';
import { byUuidDataSource } from './by-uuid-data';
import { NexusModel, nexusSchema, toModel } from './nexus';

/** What the data source reads: the resource's model without its configuration-only `timeouts`. */
export type NexusDataModel = Omit<NexusModel, 'timeouts'>;

export const nexusDataSchema: SchemaOf<NexusDataModel> = {
  description:
    'Reads one nexus by node and uuid, whether Terraform manages it or not (e.g. a volume made by another configuration): ' +
    'its size, children and their states, share, allowed hosts and `device_uri`. A nexus that does not exist is an error naming the uuid and the node.',
  attributes: dataSourceAttributes(
    nexusSchema.attributes,
    { node: "Node whose agent runs the nexus (a key of the provider's `nodes` map).", uuid: 'UUID of the nexus.' },
    ['timeouts'],
  ) as SchemaOf<NexusDataModel>['attributes'],
};

export const nexusDataSource: DataSourceType<Mayastor> = byUuidDataSource({
  typeName: 'mayastor_nexus',
  noun: 'nexus',
  schema: nexusDataSchema,
  get: (c, uuid) => c.getNexus(uuid),
  toModel(node, n): NexusDataModel {
    const { timeouts: _t, ...model } = toModel(node, n);
    return model;
  },
});
