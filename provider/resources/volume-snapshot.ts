/**
 * mayastor_volume_snapshot: a consistent snapshot of a nexus. The nexus's agent pauses the volume (new I/O held,
 * in-flight I/O drained, every child flushed), snapshots every child's replica, and resumes; the pause has a
 * deadline after which the volume resumes by itself and the snapshot fails with nothing left half-made. The
 * resource holds the per-replica snapshots (`replicas`, `snapshot_uuids`): a restored volume is a nexus over
 * clones of them (`mayastor_replica.source_snapshot`). Everything is fixed at create except `deadline_ms` and
 * `timeouts`, which only bound the create and delete calls.
 */
import { randomUUID } from 'node:crypto';
import type { AgentClient, VolumeSnapshot } from '../../agent/api/client';
import { ResourceType } from '../protocol/framework';
import { SchemaOf, known } from '../protocol/model';
import { AttributeSchema, Diagnostics, nestedObject } from '../protocol/schema';
import { typedResource } from '../protocol/typed';
import { generatedUuidAttribute, idAttribute, keyAttribute, nodeAttribute } from './attributes';
import { Mayastor } from './agent-clients';
import { agentDiag, isAgentError } from './agent-errors';
import { NOT_ASKED, createWith, deleteOnNode, importFromNode, planImportId, readOnNode, refuseExisting } from './lifecycle';
import { explainDependents } from './snapshot';
import { TimeoutOp, Timeouts, checkTimeouts, timeoutMs, timeoutsAttribute } from './timeouts';
import { checkNodeAtPlan, checkUuid } from './validators';

/** One child's replica snapshot. */
export interface VolumeSnapshotReplica {
  child: string;
  /** The node of the replica when the nexus's agent knows it (its own children), else null. */
  node: string | null;
  replicaUuid: string;
  snapshotUuid: string;
}

/** create and delete only: nothing is ever updated on the agent. */
type SnapshotTimeouts = Omit<Timeouts, 'update'>;

/** A volume snapshot's attributes (the schema below, field by field). */
export interface VolumeSnapshotModel {
  id: string;
  node: string;
  nexusUuid: string;
  uuid: string;
  deadlineMs: number | null;
  replicas: VolumeSnapshotReplica[];
  snapshotUuids: Record<string, string>;
  createdAt: string;
  /** Configuration only: kept from state on refresh. */
  timeouts: SnapshotTimeouts | null;
}
type VolumeSnapshotOutputs = 'id' | 'uuid' | 'replicas' | 'snapshotUuids' | 'createdAt';

/** The shared timeouts attribute without `update` (the resource has no update that waits for anything). */
function createDeleteTimeouts(): AttributeSchema {
  const all = timeoutsAttribute({
    create: "How long taking the snapshot may take (the pause itself is bounded by `deadline_ms`). Default: the provider's `request_timeout_seconds`.",
    update: '',
    delete: "How long deleting the snapshots may take. Default: the provider's `request_timeout_seconds`.",
  });
  const { create, delete: del } = all.nested!;
  return { ...all, ...nestedObject({ create, delete: del }), example: '{ create = "2m", delete = "2m" }' };
}

export const volumeSnapshotSchema: SchemaOf<VolumeSnapshotModel> = {
  description:
    "A consistent snapshot of a volume (a nexus): the nexus pauses its I/O, every child's replica is snapshotted at the same point, " +
    'and the nexus resumes. `replicas` lists the per-replica snapshots; restore a volume as a nexus over clones of them ' +
    '(`mayastor_replica` with `source_snapshot = mayastor_volume_snapshot.NAME.snapshot_uuids[REPLICA_UUID]`, on the same node and pool). ' +
    'A child that is faulted, rebuilding, unreachable or reached over NBD makes the snapshot fail, naming it, with nothing left half-made. ' +
    'Destroying it deletes every per-replica snapshot; it fails, naming them, while clones depend on them.',
  attributes: {
    id: idAttribute('UUID'),
    node: nodeAttribute('Node whose agent runs the nexus.'),
    nexus_uuid: keyAttribute('UUID of the nexus to snapshot. Changing it replaces the snapshot.', 'mayastor_nexus.v.uuid'),
    uuid: generatedUuidAttribute('volume snapshot', '"9e1d2c3b-4a5f-4e6d-8c7b-0a1b2c3d4e5f"'),
    deadline_ms: {
      type: 'number',
      optional: true,
      description:
        'Longest time (milliseconds) the nexus may hold I/O while the replicas are snapshotted; past it the nexus resumes by itself ' +
        "and the snapshot fails cleanly. Default: the agent's. Used at create only; changing it changes nothing on the agent.",
    },
    replicas: {
      type: ['list', ['object', { child: 'string', node: 'string', replica_uuid: 'string', snapshot_uuid: 'string' }]],
      computed: true,
      useStateForUnknown: true,
      description:
        "The per-replica snapshots, one per child: the child's URI, its replica's node (null when the nexus's agent cannot tell: a remote " +
        "child names its replica's uuid only), the replica's uuid and its snapshot's uuid.",
    },
    snapshot_uuids: {
      type: ['map', 'string'],
      computed: true,
      useStateForUnknown: true,
      description: "Replica UUID → the UUID of that replica's snapshot: what a clone's `source_snapshot` takes.",
    },
    created_at: { type: 'string', computed: true, useStateForUnknown: true, description: 'When the snapshot was taken (RFC 3339).' },
    timeouts: createDeleteTimeouts(),
  },
};

function toModel(node: string, s: VolumeSnapshot, prior: Pick<VolumeSnapshotModel, 'deadlineMs' | 'timeouts'>): VolumeSnapshotModel {
  const replicas = s.replicas.map((r) => ({
    child: r.child,
    // the nexus's own children are on its node; a remote child's agent names only its address (host:port)
    node: r.node === undefined ? node : null,
    replicaUuid: r.replica,
    snapshotUuid: r.snapshot,
  }));
  return {
    id: `${node}/${s.uuid}`,
    node,
    nexusUuid: s.nexus,
    uuid: s.uuid,
    deadlineMs: prior.deadlineMs,
    replicas,
    snapshotUuids: Object.fromEntries(replicas.map((r) => [r.replicaUuid, r.snapshotUuid])),
    createdAt: s.createdAt,
    timeouts: prior.timeouts,
  };
}

/** `p`, or a diagnostic from `late()` once `op`'s configured timeout passes first. */
async function bounded<T>(p: Promise<T>, timeouts: SnapshotTimeouts | null, op: TimeoutOp, late: () => void): Promise<T | undefined> {
  const ms = timeoutMs(timeouts ? { update: null, ...timeouts } : null, op, 0);
  if (!ms) return p;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<typeof LATE>((r) => (timer = setTimeout(() => r(LATE), ms)));
  try {
    const v = await Promise.race([p, expired]);
    if (v === LATE) {
      p.catch(() => undefined);
      late();
      return undefined;
    }
    return v as T;
  } finally {
    clearTimeout(timer);
  }
}
const LATE: unique symbol = Symbol('late');

/**
 * A refused snapshot of an unhealthy volume: the agent answers 422 naming the child (faulted, rebuilding,
 * unreachable, or a protocol that cannot snapshot); the diagnostic is on nexus_uuid and quotes it.
 */
function explainRefused(diags: Diagnostics, e: unknown, node: string, nexus: string, uuid: string): boolean {
  // a 422 about the request itself (deadlineMs beyond what the agent waits for) is not about a child
  if (!isAgentError(e) || e.status !== 422 || /^deadlineMs\b/.test(e.agentMessage)) return false;
  diags.error(
    `Cannot snapshot nexus ${nexus} on node "${node}"`,
    `${e.message}. Snapshot ${uuid} was not taken and nothing was left behind. Repair the child (or remove it from the nexus) and apply again.`,
    ['nexus_uuid'],
  );
  return true;
}

/** ImportResourceState by NODE/UUID: the volume snapshot is looked up under every nexus of the node. */
async function findOnNode(c: AgentClient, uuid: string): Promise<VolumeSnapshot | undefined> {
  for (const n of await c.listNexuses()) {
    const s = await c.getNexusSnapshot(n.uuid, uuid);
    if (s) return s;
  }
  return undefined;
}

/**
 * The snapshot's PUT, with the ownership rule (only a snapshot this call takes is this state's: the client answers
 * 201 and 200 alike, so it looks first) and `timeouts.create`. Undefined with a diagnostic when refused or late.
 */
async function takeSnapshot(
  c: AgentClient,
  diags: Diagnostics,
  node: string,
  nexus: string,
  uuid: string,
  deadlineMs: number | null,
  timeouts: SnapshotTimeouts | null,
): Promise<VolumeSnapshot | undefined> {
  if (await c.getNexusSnapshot(nexus, uuid)) return refuseExisting(diags, 'mayastor_volume_snapshot', node, `snapshot ${uuid} of nexus ${nexus}`, uuid, 'uuid');
  return bounded(c.putNexusSnapshot(nexus, uuid, deadlineMs ? { deadlineMs } : {}), timeouts, 'create', () =>
    diags.error(
      `Snapshot ${uuid} of nexus ${nexus} did not finish on node "${node}"`,
      `no answer within ${timeouts?.create} (timeouts.create). The agent resumes the nexus at its deadline and removes a snapshot it could not finish; ` +
        `if it did finish, import it: terraform import mayastor_volume_snapshot.NAME ${node}/${uuid}`,
      ['timeouts', 'create'],
    ),
  );
}

export const volumeSnapshotResource: ResourceType<Mayastor> = typedResource<Mayastor, VolumeSnapshotModel, VolumeSnapshotOutputs>({
  typeName: 'mayastor_volume_snapshot',
  schema: volumeSnapshotSchema,

  validate(config, diags) {
    checkUuid(diags, config.uuid, 'uuid');
    checkUuid(diags, config.nexusUuid, 'nexus_uuid');
    const t = known(config.timeouts);
    checkTimeouts(diags, t ? { update: null, ...t } : null);
    const d = known(config.deadlineMs);
    if (d !== undefined && (!Number.isSafeInteger(d) || d < 1))
      diags.error('Invalid deadline_ms', `deadline_ms must be a positive whole number of milliseconds, got ${d}`, ['deadline_ms']);
  },

  modifyPlan(m, { planned }, diags) {
    checkNodeAtPlan(m, planned.node, diags);
    planImportId(planned, planned.uuid);
  },

  create(m, planned, diags) {
    const node = planned.node,
      nexus = planned.nexusUuid,
      uuid = known(planned.uuid) ?? randomUUID();
    return createWith(
      m,
      diags,
      node,
      async (c) => {
        const made = await takeSnapshot(c, diags, node, nexus, uuid, planned.deadlineMs ?? null, planned.timeouts);
        return made ? toModel(node, made, { deadlineMs: planned.deadlineMs ?? null, timeouts: planned.timeouts }) : null;
      },
      (e) => {
        // the agent bounds deadlineMs itself (its limit is not part of agent/api): its refusal names the field first
        const attr = !isAgentError(e) ? 'nexus_uuid' : e.status === 409 ? 'uuid' : /^deadlineMs\b/.test(e.agentMessage) ? 'deadline_ms' : 'nexus_uuid';
        if (!explainRefused(diags, e, node, nexus, uuid)) agentDiag(diags, e, `Snapshot nexus ${nexus}`, node, attr, []);
      },
    );
  },

  read: (m, state, diags) =>
    readOnNode(
      state,
      state.node,
      diags,
      `volume snapshot ${state.uuid}`,
      'uuid',
      async () => {
        const c = m.reader(state.node, diags);
        return c ? c.getNexusSnapshot(state.nexusUuid, state.uuid) : NOT_ASKED;
      },
      (node, s) => toModel(node, s, state),
    ),

  // deadline_ms and timeouts only bound create and delete: an update stores them and asks the agent nothing
  update: async (_m, prior, planned) => ({ ...prior, deadlineMs: planned.deadlineMs ?? null, timeouts: planned.timeouts }),

  async delete(m, { node, nexusUuid, uuid, timeouts }, diags) {
    await bounded(
      deleteOnNode(
        m,
        node,
        uuid,
        diags,
        'volume snapshot',
        'uuid',
        (c, key) => c.deleteNexusSnapshot(nexusUuid, key),
        (e, n, key) => explainDependents(diags, e, `volume snapshot ${key}`, n, 'uuid'),
      ),
      timeouts,
      'delete',
      () =>
        diags.error(
          `Destroy volume snapshot ${uuid} did not finish on node "${node}"`,
          `no answer from the agent within ${timeouts?.delete} (timeouts.delete); the snapshots may still be deleted: run destroy again`,
          ['uuid'],
        ),
    );
  },

  importState: (m, id, diags) =>
    importFromNode(
      m,
      id,
      diags,
      'mayastor_volume_snapshot',
      'volume snapshot',
      'uuid',
      findOnNode,
      (node, s) => toModel(node, s, { deadlineMs: null, timeouts: null }),
      (node, uuid) => `no nexus on node "${node}" has volume snapshot ${uuid}`,
    ),
});
