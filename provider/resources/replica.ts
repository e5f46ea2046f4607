/**
 * mayastor_replica: a logical volume carved from a pool. node, pool, uuid and thin are fixed (RequiresReplace; a uuid
 * left out of the configuration is generated at create and kept);
 * size_bytes grows in place (a shrink is rejected at plan); share and allowed_hosts change in place.
 * With source_snapshot (RequiresReplace) it is a clone: a thin replica over a snapshot of the same pool.
 */
import { randomUUID } from 'node:crypto';
import type { AgentClient, Replica, ReplicaPatch, Share, Snapshot } from '../../agent/api/client';
import { UNKNOWN, isUnknown } from '../protocol/cty';
import { ResourceType } from '../protocol/framework';
import { SchemaOf, known, sameValue } from '../protocol/model';
import { typedResource } from '../protocol/typed';
import { allowedHostsAttribute, generatedUuidAttribute, idAttribute, nodeAttribute, shareAttribute } from './attributes';
import { Mayastor } from './agent-clients';
import { agentDiag, isAgentError } from './agent-errors';
import { createModel, deleteOnNode, importFromNode, inListing, planImportId, readOnNode } from './lifecycle';
import { Diagnostics } from '../protocol/schema';
import { checkName, checkNodeAtPlan, checkShare, checkSize, checkUuid } from './validators';

/** A replica's attributes (the schema below, field by field). */
export interface ReplicaModel {
  id: string;
  node: string;
  pool: string;
  uuid: string;
  sizeBytes: number;
  thin: boolean;
  share: Share;
  allowedHosts: string[];
  uri: string;
  allocatedBytes: number;
  /** Configuration (the agent reports a parent, not the clone's source): kept from state on refresh. */
  sourceSnapshot: string | null;
}
/** What only the agent knows (and the uuid, when generated at create): unknown in a plan until apply. */
type ReplicaOutputs = 'id' | 'uuid' | 'uri' | 'allocatedBytes';

const REPLICA_FIELDS = ['size_bytes', 'share', 'allowed_hosts', 'pool', 'thin'];

export const replicaSchema: SchemaOf<ReplicaModel> = {
  description:
    'A replica: a volume carved out of a pool, thin or thick, optionally shared over a block protocol so that a ' +
    'nexus on another node can use it. It grows in place; it never shrinks. ' +
    'Creating a replica that already exists on its node (made by another Terraform state or by hand) fails: import it instead.',
  attributes: {
    id: idAttribute('UUID'),
    node: nodeAttribute("Node whose agent holds the pool (a key of the provider's `nodes` map)."),
    pool: { type: 'string', required: true, requiresReplace: true, description: 'Name of the pool on that node.', example: 'mayastor_pool.a.name' },
    uuid: generatedUuidAttribute('replica', '"0f8e3c2a-6a49-4b7e-9d4c-1f0e2a3b4c5d"'),
    size_bytes: {
      type: 'number',
      required: true,
      description:
        'Size in bytes, a multiple of 512. Growing it resizes the replica in place; shrinking is rejected at plan time. ' +
        'A replica that backs a nexus child holds the volume plus the nexus label header: `provider::mayastor::replica_size(VOLUME_BYTES)`.',
      example: '1073741824',
    },
    thin: {
      type: 'bool',
      optional: true,
      computed: true,
      default: false,
      requiresReplace: true,
      description: 'Thin provisioning: space is allocated on first write. Changing it replaces the replica. Default `false`.',
      example: 'true',
    },
    share: shareAttribute(
      'How the replica is exported: `none` (reachable only by a nexus on the same node, as `bdev:///UUID`), `nbd`, or `nvmf` (NVMe/TCP, subsystem `nqn.2019-05.io.openebs:UUID`; the agent needs `--nvmf-listen`). `iscsi` is not supported yet. Changes in place. Default `none`.',
    ),
    allowed_hosts: allowedHostsAttribute(
      "Hosts allowed to connect when shared; empty allows any. For `nbd`: IP addresses or CIDR prefixes; for `nvmf`: host NQNs (a node's own is the `nvmf_host_nqn` of data source `mayastor_node`). Changes in place.",
    ),
    uri: {
      type: 'string',
      computed: true,
      useStateForUnknown: true,
      description: 'URI a nexus uses to reach the replica: `bdev:///UUID` when not shared, else the protocol URI (e.g. `nbd://host:port/export`).',
    },
    allocated_bytes: {
      type: 'number',
      computed: true,
      description:
        'Bytes actually allocated in the pool (less than size_bytes for a thin replica until written). Known at plan for a thick replica that does not grow.',
    },
    source_snapshot: {
      type: 'string',
      optional: true,
      requiresReplace: true,
      description:
        "UUID of a snapshot (`mayastor_snapshot`, or an entry of a `mayastor_volume_snapshot`'s `snapshot_uuids`) on the same node: the replica is " +
        "a clone of it, made in the snapshot's pool (`pool` must name it), thin (`thin` is planned `true`), and sized like it " +
        "(`size_bytes` equal to the snapshot's). It reads what the snapshot holds and takes writes without touching it. Changing it replaces the replica.",
    },
  },
};

export function toModel(node: string, r: Replica, sourceSnapshot: string | null = null): ReplicaModel {
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
    sourceSnapshot,
  };
}

/**
 * The snapshot a replica was cloned from, for import: the snapshot that lists it (or its own snapshots, which sit
 * between it and its source) as a child and was taken of another replica; null for a replica that is no clone.
 */
export async function cloneSource(c: AgentClient, replica: string): Promise<string | null> {
  const snaps: Snapshot[] = await c.listSnapshots();
  let at = replica;
  for (let hops = 0; hops <= snaps.length; hops++) {
    const parent = snaps.find((s) => s.children.includes(at));
    if (!parent) return null;
    if (parent.sourceReplica !== replica) return parent.uuid;
    at = parent.uuid;
  }
  return null;
}

/** The agent's clone refusals start with the field at fault ("pool: a clone lives in its snapshot's pool ..."). */
const CLONE_FIELDS: [RegExp, string][] = [
  [/^source(\.snapshot)?:/, 'source_snapshot'],
  [/^pool:/, 'pool'],
  [/^sizeBytes:/, 'size_bytes'],
  [/^thin:/, 'thin'],
];

/** A clone's create refused for its snapshot, pool, size or thin: a diagnostic on that attribute. */
function cloneFailure(diags: Diagnostics, e: unknown, uuid: string, node: string, source: string): boolean {
  if (!isAgentError(e) || (e.status !== 404 && e.status !== 422 && e.status !== 507)) return false;
  const attr = CLONE_FIELDS.find(([re]) => re.test(e.agentMessage))?.[1];
  if (!attr) return false;
  diags.error(`Create replica ${uuid} failed on node "${node}"`, `clone of snapshot ${source}: ${e.message}`, [attr]);
  return true;
}

export const replicaResource: ResourceType<Mayastor> = typedResource<Mayastor, ReplicaModel, ReplicaOutputs>({
  typeName: 'mayastor_replica',
  schema: replicaSchema,

  validate(config, diags) {
    checkUuid(diags, config.uuid, 'uuid');
    checkUuid(diags, config.sourceSnapshot, 'source_snapshot');
    if (config.sourceSnapshot !== null && config.thin === false) {
      diags.error('Invalid thin', 'a clone (source_snapshot set) is always thin: remove thin = false, or set thin = true', ['thin']);
    }
    checkName(diags, config.pool, 'pool', 'pool name');
    checkSize(diags, config.sizeBytes);
    checkShare(diags, config.share);
  },

  modifyPlan(m, { prior, config, planned, requiresReplace }, diags) {
    checkNodeAtPlan(m, planned.node, diags);
    // a clone is thin: planned so when thin is left out (an explicit false is refused by validate)
    if (config.sourceSnapshot !== null && config.thin === null) planned.thin = true;
    planImportId(planned, planned.uuid);
    if (!prior || requiresReplace.size > 0) return;
    const before = known(prior.sizeBytes),
      after = known(planned.sizeBytes);
    if (before !== undefined && after !== undefined && after < before) {
      diags.error(
        'Replica cannot shrink',
        `replica ${prior.uuid} on node "${prior.node}" is ${before} bytes; size_bytes ${after} would shrink it and lose data. ` +
          'Replicas only grow in place; to make it smaller, create a new replica.',
        ['size_bytes'],
      );
    }
    // the URI changes with the share; a growth or an allowed_hosts change leaves it alone
    if (!sameValue(prior.share, planned.share)) planned.uri = UNKNOWN;
    // a thick replica holds its whole size from create on, so its allocation moves only when it grows; a thin
    // replica's moves with every write, so the agent's count after apply is the honest value
    // (the framework planned it unknown when anything changes; a plan that changes nothing keeps the state's)
    const steadyAllocation = prior.thin === false && known(planned.thin) === false && before === after;
    if (isUnknown(planned.allocatedBytes) && steadyAllocation) planned.allocatedBytes = prior.allocatedBytes;
  },

  create: (m, planned, diags) => {
    const uuid = known(planned.uuid) ?? randomUUID();
    return createModel<Replica, ReplicaModel>(
      m,
      diags,
      planned.node,
      'replicas',
      uuid,
      {
        pool: planned.pool,
        sizeBytes: planned.sizeBytes,
        thin: planned.thin ?? false,
        share: planned.share ?? 'none',
        allowedHosts: planned.allowedHosts ?? [],
        ...(planned.sourceSnapshot ? { source: { snapshot: planned.sourceSnapshot } } : {}),
      },
      (node, r) => toModel(node, r, planned.sourceSnapshot ?? null),
      (e) =>
        (planned.sourceSnapshot && cloneFailure(diags, e, uuid, planned.node, planned.sourceSnapshot)) ||
        agentDiag(diags, e, `Create replica ${uuid}`, planned.node, 'uuid', REPLICA_FIELDS),
    );
  },

  // one GET /v1/replicas per node serves the whole refresh (see Mayastor.listing)
  read: (m, state, diags) =>
    readOnNode(
      state,
      state.node,
      diags,
      `replica ${state.uuid}`,
      'uuid',
      inListing<Replica>(m, state.node, 'replicas', diags, (r) => r.uuid, state.uuid),
      (node, r) => toModel(node, r, state.sourceSnapshot),
    ),

  async update(m, prior, planned, diags) {
    // an update keeps the uuid (a different one replaces the object)
    const node = planned.node,
      uuid = prior.uuid;
    const c = m.client(node, diags);
    if (!c) return prior;
    const patch: ReplicaPatch = {};
    if (!sameValue(prior.sizeBytes, planned.sizeBytes)) patch.sizeBytes = planned.sizeBytes;
    if (!sameValue(prior.share, planned.share)) patch.share = planned.share;
    if (!sameValue(prior.allowedHosts, planned.allowedHosts)) patch.allowedHosts = planned.allowedHosts ?? [];
    try {
      const r = Object.keys(patch).length ? await c.patchReplica(uuid, patch) : await c.getReplica(uuid);
      if (!r) {
        diags.error(`Replica ${uuid} disappeared on node "${node}"`, 'the replica was deleted while it was being updated; run plan again to re-create it', [
          'uuid',
        ]);
        return prior;
      }
      return toModel(node, r, prior.sourceSnapshot);
    } catch (e) {
      agentDiag(diags, e, `Update replica ${uuid}`, node, Object.keys(patch).length === 1 && patch.share ? 'share' : 'size_bytes', REPLICA_FIELDS);
      return prior;
    }
  },

  delete: (m, { node, uuid }, diags) => deleteOnNode(m, node, uuid, diags, 'replica', 'uuid', (c, uuid) => c.deleteReplica(uuid)),

  // a clone's source_snapshot comes from the node's snapshots (the replica itself only knows its parent)
  importState: (m, id, diags) =>
    importFromNode(
      m,
      id,
      diags,
      'mayastor_replica',
      'replica',
      'uuid',
      async (c, key) => {
        const r = await c.getReplica(key);
        // only a replica with a parent can be a clone (a plain one never asks for the snapshots)
        return r && { r, source: r.parent ? await cloneSource(c, key) : null };
      },
      (node, { r, source }) => toModel(node, r, source),
    ),
});
