/**
 * mayastor_snapshot: a read-only, point-in-time snapshot of one replica, kept in the replica's pool (no data is
 * copied: the replica becomes a thin overlay over it). What it is is fixed at create (RequiresReplace); its read-only
 * export (share, allowed_hosts) changes in place. A clone is a `mayastor_replica` whose `source_snapshot` is this
 * snapshot's uuid. Destroying a snapshot that clones still depend on is refused by the agent (409), and the
 * diagnostic names the clones.
 */
import { randomUUID } from 'node:crypto';
import type { AgentClient, Share, Snapshot, SnapshotSpec } from '../../agent/api/client';
import { UNKNOWN } from '../protocol/cty';
import { ResourceType } from '../protocol/framework';
import { SchemaOf, known, sameValue } from '../protocol/model';
import { Diagnostics } from '../protocol/schema';
import { typedResource } from '../protocol/typed';
import { allowedHostsAttribute, generatedUuidAttribute, idAttribute, keyAttribute, nodeAttribute, shareAttribute } from './attributes';
import { Mayastor } from './agent-clients';
import { agentDiag, isAgentError } from './agent-errors';
import { NOT_ASKED, createWith, deleteOnNode, importFromNode, planImportId, readOnNode, refuseExisting } from './lifecycle';
import { checkNodeAtPlan, checkShare, checkUuid } from './validators';

/** A snapshot's attributes (the schema below, field by field). */
export interface SnapshotModel {
  id: string;
  node: string;
  replicaUuid: string;
  uuid: string;
  pool: string;
  sizeBytes: number;
  referencedBytes: number;
  createdAt: string;
  share: Share;
  allowedHosts: string[];
  uri: string;
}
/** What only the agent knows (and the uuid, when generated at create). */
type SnapshotOutputs = 'id' | 'uuid' | 'pool' | 'sizeBytes' | 'referencedBytes' | 'createdAt' | 'uri';

export const snapshotSchema: SchemaOf<SnapshotModel> = {
  description:
    "A snapshot of a replica: a read-only point-in-time copy kept in the replica's pool. Taking it copies no data (the replica " +
    'becomes a thin overlay over it) and the replica keeps serving I/O. A clone is a `mayastor_replica` with `source_snapshot` set ' +
    "to this snapshot's `uuid`. Destroying a snapshot that clones depend on fails, naming them (destroy the clones first); " +
    'destroying one that has none frees its space or merges it into the replica. ' +
    'For a consistent snapshot of every replica of a volume at once, use `mayastor_volume_snapshot`.',
  attributes: {
    id: idAttribute('UUID'),
    node: nodeAttribute("Node whose agent holds the replica (a key of the provider's `nodes` map)."),
    replica_uuid: keyAttribute('UUID of the replica to snapshot, on that node. Changing it replaces the snapshot.', 'mayastor_replica.a.uuid'),
    uuid: generatedUuidAttribute('snapshot', '"5a9c3e1d-2b4f-4c6a-8e0d-7f1a2b3c4d5e"'),
    pool: {
      type: 'string',
      computed: true,
      useStateForUnknown: true,
      description: "Name of the pool that holds the snapshot (the replica's pool); its clones are made in the same pool.",
    },
    size_bytes: {
      type: 'number',
      computed: true,
      useStateForUnknown: true,
      description: "Size in bytes: the replica's size when the snapshot was taken. A clone of the snapshot has this size.",
    },
    referenced_bytes: {
      type: 'number',
      computed: true,
      useStateForUnknown: true,
      description: 'Bytes of pool space the snapshot holds (the clusters the replica had written when it was taken).',
    },
    created_at: { type: 'string', computed: true, useStateForUnknown: true, description: 'When the snapshot was taken (RFC 3339).' },
    share: shareAttribute(
      'Read-only export of the snapshot: `none`, `nbd` or `nvmf` (the agent needs `--nvmf-listen`), e.g. to copy it off with `qemu-img convert` while the replica takes writes. Writes to the export fail. Changes in place. Default `none`.',
    ),
    allowed_hosts: allowedHostsAttribute(
      'Hosts allowed to connect to the export; empty allows any. For `nbd`: IP addresses or CIDR prefixes; for `nvmf`: host NQNs. Changes in place.',
    ),
    uri: {
      type: 'string',
      computed: true,
      useStateForUnknown: true,
      description: 'URI of the read-only export (e.g. `nbd://host:port/SNAPSHOT-UUID`); `bdev:///UUID` when not shared.',
    },
  },
};

function toModel(node: string, s: Snapshot): SnapshotModel {
  return {
    id: `${node}/${s.uuid}`,
    node,
    replicaUuid: s.sourceReplica,
    uuid: s.uuid,
    pool: s.pool,
    sizeBytes: s.sizeBytes,
    referencedBytes: s.referencedBytes,
    createdAt: s.createdAt,
    share: s.share,
    allowedHosts: [...(s.allowedHosts ?? [])],
    uri: s.uri,
  };
}

/** The export part of a spec: none when the snapshot is not shared (the agent's default). */
function exportSpec(share: Share | null, allowedHosts: string[] | null): SnapshotSpec {
  return !share || share === 'none' ? {} : { share, allowedHosts: allowedHosts ?? [] };
}

/**
 * A delete the agent refused because clones (or later snapshots of clones) still depend on the snapshot: a
 * diagnostic naming them and what to do. false for any other failure (the generic diagnostic then).
 */
export function explainDependents(diags: Diagnostics, e: unknown, what: string, node: string, attr: string): boolean {
  if (!isAgentError(e) || e.status !== 409) return false;
  diags.error(
    `Cannot destroy ${what} on node "${node}": clones depend on it`,
    `${e.message}. A snapshot is deleted only once no clone depends on it: destroy the clones (mayastor_replica with source_snapshot ` +
      'set to it) first, or keep the snapshot. Nothing was deleted.',
    [attr],
  );
  return true;
}

/**
 * CreateResource with the ownership rule every resource follows (see lifecycle.createOnNode): only a snapshot this
 * call creates belongs to this state; one that is there already (made by another state or a tool) is refused. The
 * agent's PUT answers 201 and 200 alike through the client, so the snapshot is looked up first (a retried PUT whose
 * first attempt created it still counts as this call's).
 */
async function createSnapshot(
  c: AgentClient,
  diags: Diagnostics,
  node: string,
  replica: string,
  uuid: string,
  spec: SnapshotSpec,
): Promise<Snapshot | undefined> {
  const there = await c.findSnapshot(uuid);
  if (!there) return c.putSnapshot(replica, uuid, spec);
  return refuseExisting(diags, 'mayastor_snapshot', node, `snapshot ${uuid} (of replica ${there.sourceReplica})`, uuid, 'uuid');
}

export const snapshotResource: ResourceType<Mayastor> = typedResource<Mayastor, SnapshotModel, SnapshotOutputs>({
  typeName: 'mayastor_snapshot',
  schema: snapshotSchema,

  validate(config, diags) {
    checkUuid(diags, config.uuid, 'uuid');
    checkUuid(diags, config.replicaUuid, 'replica_uuid');
    checkShare(diags, config.share);
  },

  modifyPlan(m, { prior, planned, requiresReplace }, diags) {
    checkNodeAtPlan(m, planned.node, diags);
    planImportId(planned, planned.uuid);
    // the export's address changes with its protocol; allowed_hosts alone leaves it
    if (prior && requiresReplace.size === 0 && !sameValue(prior.share, planned.share)) planned.uri = UNKNOWN;
  },

  create(m, planned, diags) {
    const node = planned.node,
      uuid = known(planned.uuid) ?? randomUUID();
    return createWith(
      m,
      diags,
      node,
      async (c) => {
        const s = await createSnapshot(c, diags, node, planned.replicaUuid, uuid, exportSpec(planned.share, planned.allowedHosts));
        return s ? toModel(node, s) : null;
      },
      (e) => {
        // a missing replica (404) or anything about it is the replica_uuid's; a uuid taken by another object is the uuid's
        const attr = isAgentError(e) && e.status === 409 ? 'uuid' : 'replica_uuid';
        agentDiag(diags, e, `Create snapshot ${uuid} of replica ${planned.replicaUuid}`, node, attr, []);
      },
    );
  },

  read: (m, state, diags) =>
    readOnNode(
      state,
      state.node,
      diags,
      `snapshot ${state.uuid}`,
      'uuid',
      // by its uuid on the node, not under the replica: a snapshot outlives the replica it was taken of
      async () => m.reader(state.node, diags)?.findSnapshot(state.uuid) ?? NOT_ASKED,
      toModel,
    ),

  // only the export changes in place
  async update(m, prior, planned, diags) {
    const c = m.client(planned.node, diags);
    if (!c) return prior;
    const share = planned.share ?? 'none';
    try {
      return toModel(planned.node, await c.patchSnapshot(prior.uuid, { share, allowedHosts: share === 'none' ? [] : (planned.allowedHosts ?? []) }));
    } catch (e) {
      agentDiag(diags, e, `Update snapshot ${prior.uuid}`, planned.node, 'share', ['share', 'allowed_hosts']);
      return prior;
    }
  },

  delete: (m, { node, uuid }, diags) =>
    deleteOnNode(
      m,
      node,
      uuid,
      diags,
      'snapshot',
      'uuid',
      async (c, key) => {
        // by uuid: also a snapshot whose replica was deleted first (it still holds pool space)
        await c.deleteSnapshotByUuid(key);
      },
      (e, n, key) => explainDependents(diags, e, `snapshot ${key}`, n, 'uuid'),
    ),

  importState: (m, id, diags) => importFromNode(m, id, diags, 'mayastor_snapshot', 'snapshot', 'uuid', (c, key) => c.findSnapshot(key), toModel),
});
