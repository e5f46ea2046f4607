/** mayastor_pool: a pool on one node's disks. Every input is fixed for the pool's life (RequiresReplace). */
import type { Pool } from '../../agent/api/client';
import { ResourceType } from '../protocol/framework';
import { SchemaOf, known } from '../protocol/model';
import { typedResource } from '../protocol/typed';
import { idAttribute, keyAttribute, nodeAttribute } from './attributes';
import { Mayastor } from './agent-clients';
import { agentDiag } from './agent-errors';
import { createModel, deleteOnNode, importFromNode, inListing, readOnNode } from './lifecycle';
import { checkName, checkNodeAtPlan } from './validators';

/** A pool's attributes (the schema below, field by field). */
export interface PoolModel {
  id: string;
  node: string;
  name: string;
  disks: string[];
  uuid: string;
  state: string;
  capacityBytes: number;
  usedBytes: number;
}
/** What only the agent knows: unknown in a plan until apply. */
type PoolOutputs = 'id' | 'uuid' | 'state' | 'capacityBytes' | 'usedBytes';

export const poolSchema: SchemaOf<PoolModel> = {
  description:
    'A storage pool on one node: a crash-safe logical-volume store on the given disks, from which replicas are carved. ' +
    'Destroying a pool that still holds replicas fails. ' +
    'Creating a pool that already exists on its node (made by another Terraform state or by hand) fails: import it instead.',
  attributes: {
    id: idAttribute('NAME'),
    node: nodeAttribute("Name of the node (a key of the provider's `nodes` map) whose agent owns the pool."),
    name: keyAttribute('Pool name, unique on its node.', '"pool-a"'),
    disks: {
      type: ['list', 'string'],
      required: true,
      requiresReplace: true,
      description:
        "Disks the pool claims: absolute paths of files or block devices, or `uring:///path` / `aio:///path` URIs. They must lie under one of the agent's `--allow-disk` prefixes. Changing them replaces the pool.",
      example: '["/var/lib/mayastor/disks/a.img"]',
    },
    uuid: { type: 'string', computed: true, description: 'UUID the agent gave the pool.' },
    state: { type: 'string', computed: true, description: 'Pool state reported by the agent: `online` or `faulted`.' },
    capacity_bytes: { type: 'number', computed: true, description: 'Usable capacity of the pool in bytes.' },
    used_bytes: { type: 'number', computed: true, description: 'Bytes allocated to replicas.' },
  },
};

function toModel(node: string, p: Pool): PoolModel {
  return {
    id: `${node}/${p.name}`,
    node,
    name: p.name,
    disks: [...p.disks],
    uuid: p.uuid,
    state: p.state,
    capacityBytes: p.capacityBytes,
    usedBytes: p.usedBytes,
  };
}

export const poolResource: ResourceType<Mayastor> = typedResource<Mayastor, PoolModel, PoolOutputs>({
  typeName: 'mayastor_pool',
  schema: poolSchema,

  validate(config, diags) {
    checkName(diags, config.name, 'name', 'pool name');
    const disks = known(config.disks);
    if (disks && disks.every((d) => typeof d === 'string')) {
      if (disks.length === 0) diags.error('Invalid disks', 'a pool needs at least one disk', ['disks']);
      disks.forEach((d, i) => {
        if (!(d.startsWith('/') || /^(uring|aio):\/\/\//.test(d))) {
          diags.error('Invalid disks', `disk "${d}" must be an absolute path or a uring:///path or aio:///path URI`, ['disks', i]);
        }
      });
      const dup = disks.find((d, i) => disks.indexOf(d) !== i);
      if (dup) diags.error('Invalid disks', `disk "${dup}" is listed twice`, ['disks']);
    }
  },

  modifyPlan(m, { planned }, diags) {
    checkNodeAtPlan(m, planned.node, diags);
    const node = known(planned.node),
      name = known(planned.name);
    if (node !== undefined && name !== undefined) planned.id = `${node}/${name}`;
  },

  create: (m, { node, name, disks }, diags) =>
    createModel<Pool, PoolModel>(m, diags, node, 'pools', name, { disks }, toModel, (e) =>
      agentDiag(diags, e, `Create pool "${name}"`, node, 'disks', ['disks', 'name']),
    ),

  read: (m, state, diags) =>
    readOnNode(
      state,
      state.node,
      diags,
      `pool "${state.name}"`,
      'name',
      inListing<Pool>(m, state.node, 'pools', diags, (p) => p.name, state.name),
      toModel,
    ),

  async update(_m, prior, _planned, diags) {
    // every input requires replacement; nothing can reach here with a real change
    diags.error('Pool cannot change in place', `pool "${prior.name}": node, name and disks require replacement`);
    return prior;
  },

  delete: (m, { node, name }, diags) =>
    deleteOnNode(
      m,
      node,
      name,
      diags,
      'pool',
      'name',
      (c, name) => c.deletePool(name),
      (e, node, name) => {
        const ae = e as { status?: number; message?: string };
        if (ae?.status !== 409) return false;
        diags.error(
          `Pool "${name}" on node "${node}" still holds replicas`,
          `${ae.message}. Destroy the replicas in this pool first (or remove them from the agent) before destroying the pool.`,
          ['name'],
        );
        return true;
      },
    ),

  importState: (m, id, diags) => importFromNode(m, id, diags, 'mayastor_pool', 'pool', 'name', (c, key) => c.getPool(key), toModel),
});
