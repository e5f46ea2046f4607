/** data "mayastor_node": what a node's agent reports about itself. */
import { DataSourceType } from '../protocol/framework';
import { SchemaOf } from '../protocol/model';
import { typedDataSource } from '../protocol/typed';
import { Mayastor } from './agent-clients';
import { agentDiag } from './agent-errors';

/** What the data source reads (the schema below, field by field). */
export interface NodeModel {
  node: string;
  url: string;
  name: string;
  version: string;
  datapathVersion: string;
  listeners: Record<string, string>;
  capabilities: string[];
  nvmfHostNqn: string;
}

export const nodeSchema: SchemaOf<NodeModel> = {
  description:
    "Reads a node's agent: its name, versions, listeners and capabilities. Handy to check a node is up and to find the address of its NBD/iSCSI/NVMe-oF targets.",
  attributes: {
    node: { type: 'string', required: true, description: "Node name (a key of the provider's `nodes` map).", example: '"node-a"' },
    url: { type: 'string', computed: true, description: "Agent URL from the provider's `nodes` map." },
    name: { type: 'string', computed: true, description: 'Name the agent reports (its `--node`).' },
    version: { type: 'string', computed: true, description: 'Agent version.' },
    datapath_version: { type: 'string', computed: true, description: 'Version of the native data path library.' },
    listeners: {
      type: ['map', 'string'],
      computed: true,
      description: 'Listener addresses by protocol, e.g. `{ http = "127.0.0.1:9500", nbd = "127.0.0.1:10809" }`.',
    },
    capabilities: { type: ['list', 'string'], computed: true, description: 'Capabilities of the agent, e.g. `nbd`, `nexus`.' },
    nvmf_host_nqn: {
      type: 'string',
      computed: true,
      description: "The host NQN this node's `nvmf://` children connect with: list it in a remote `nvmf` share's `allowed_hosts`.",
    },
  },
};

export const nodeDataSource: DataSourceType<Mayastor> = typedDataSource<Mayastor, NodeModel, Exclude<keyof NodeModel, 'node'>>({
  typeName: 'mayastor_node',
  schema: nodeSchema,
  async read(m, { node }, diags) {
    const c = m.reader(node, diags);
    if (!c) return null;
    try {
      const n = await c.node();
      return {
        node,
        url: m.opts.nodes?.[node] ?? '',
        name: n.name,
        version: n.version ?? '',
        datapathVersion: n.datapathVersion ?? '',
        listeners: { ...(n.listeners ?? {}) },
        capabilities: [...(n.capabilities ?? [])],
        nvmfHostNqn: n.nvmfHostNqn ?? '',
      };
    } catch (e) {
      agentDiag(diags, e, `Read node "${node}"`, node, 'node', []);
      return null;
    }
  },
});
