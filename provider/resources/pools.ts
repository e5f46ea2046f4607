/** data "mayastor_pools": every pool on a node. */
import { DataSourceType } from '../protocol/framework';
import { SchemaOf } from '../protocol/model';
import { typedDataSource } from '../protocol/typed';
import { Mayastor } from './agent-clients';
import { agentDiag } from './agent-errors';

/** What the data source reads (the schema below, field by field). */
export interface PoolsModel {
  node: string;
  pools: { name: string; uuid: string; disks: string[]; state: string; capacityBytes: number; usedBytes: number }[];
}

export const poolsSchema: SchemaOf<PoolsModel> = {
  description: 'Lists the pools of one node, whether Terraform manages them or not.',
  attributes: {
    node: { type: 'string', required: true, description: "Node name (a key of the provider's `nodes` map).", example: '"node-a"' },
    pools: {
      type: [
        'list',
        [
          'object',
          {
            name: 'string',
            uuid: 'string',
            disks: ['list', 'string'],
            state: 'string',
            capacity_bytes: 'number',
            used_bytes: 'number',
          },
        ],
      ],
      computed: true,
      description: 'The pools, sorted by name: `name`, `uuid`, `disks`, `state`, `capacity_bytes`, `used_bytes`.',
    },
  },
};

export const poolsDataSource: DataSourceType<Mayastor> = typedDataSource<Mayastor, PoolsModel, 'pools'>({
  typeName: 'mayastor_pools',
  schema: poolsSchema,
  async read(m, { node }, diags) {
    const c = m.reader(node, diags);
    if (!c) return null;
    try {
      const pools = (await c.listPools()).slice().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return {
        node,
        pools: pools.map((p) => ({
          name: p.name,
          uuid: p.uuid,
          disks: [...p.disks],
          state: p.state,
          capacityBytes: p.capacityBytes,
          usedBytes: p.usedBytes,
        })),
      };
    } catch (e) {
      agentDiag(diags, e, `List pools of node "${node}"`, node, 'node', []);
      return null;
    }
  },
});
