/** data "mayastor_nexus": one nexus, by node and uuid, with every attribute of the resource (timeouts aside). */
import { DataSourceType } from '../protocol/framework';
import { SchemaOf } from '../protocol/model';
import { typedDataSource } from '../protocol/typed';
import { Mayastor } from './agent-clients';
import { agentDiag } from './agent-errors';
import { dataSourceAttributes } from './attributes';
import { NexusModel, nexusSchema, toModel } from './nexus';
import { checkUuid } from './validators';

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

export const nexusDataSource: DataSourceType<Mayastor> = typedDataSource<Mayastor, NexusDataModel, Exclude<keyof NexusDataModel, 'node' | 'uuid'>>({
  typeName: 'mayastor_nexus',
  schema: nexusDataSchema,
  validate(config, diags) {
    checkUuid(diags, config.uuid, 'uuid');
  },
  async read(m, { node, uuid }, diags) {
    const c = m.reader(node, diags);
    if (!c) return null;
    try {
      const n = await c.getNexus(uuid);
      if (!n) {
        diags.error(
          `Nexus ${uuid} not found on node "${node}"`,
          `the agent on node "${node}" has no nexus ${uuid}; check the uuid and the node (data source mayastor_nexus reads an existing nexus, it creates none)`,
          ['uuid'],
        );
        return null;
      }
      const { timeouts: _t, ...model } = toModel(node, n);
      return model;
    } catch (e) {
      agentDiag(diags, e, `Read nexus ${uuid}`, node, 'uuid', []);
      return null;
    }
  },
});
