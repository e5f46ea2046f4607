/** data "mayastor_pools": every pool on a node. */
import { DataSourceType } from '../protocol/framework';
import { BlockSchema, str } from '../protocol/schema';
import { Mayastor, agentDiag } from './common';

export const poolsSchema: BlockSchema = {
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

export const poolsDataSource: DataSourceType<Mayastor> = {
  typeName: 'mayastor_pools',
  schema: poolsSchema,
  async read(m, config, diags) {
    const node = str(config.node)!;
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
          capacity_bytes: p.capacityBytes,
          used_bytes: p.usedBytes,
        })),
      };
    } catch (e) {
      agentDiag(diags, e, `List pools of node "${node}"`, node, 'node', []);
      return null;
    }
  },
};
