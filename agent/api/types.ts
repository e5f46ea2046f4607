/**
 * Types of the agent HTTP API objects (DESIGN.md "Agent HTTP API").
 * Shared by the agent (server side), the typed client (client.ts), mayastorctl and the
 * Terraform provider. JSON is camelCase; sizes are bytes as numbers (<= 2^53).
 */

/** Every share value the API knows (future protocols included), for typing clients. */
export type Share = 'none' | 'nbd' | 'iscsi' | 'nvmf';

/**
 * online; failed: imported but a metadata write failed (allocations fail with EIO until the pool is
 * re-imported by a PUT of its spec); faulted: not imported (its disks could not be opened).
 */
export type PoolState = 'online' | 'failed' | 'faulted';

export interface Pool {
  name: string;
  uuid: string;
  disks: string[];
  state: PoolState;
  capacityBytes: number;
  usedBytes: number;
  /** Why the pool is failed or faulted (only then). */
  reason?: string;
}

export interface PoolSpec {
  disks: string[];
}

export interface Replica {
  uuid: string;
  pool: string;
  sizeBytes: number;
  thin: boolean;
  share: Share;
  allowedHosts: string[];
  /** bdev:///<uuid> for share "none"; a protocol URI once shared. */
  uri: string;
  allocatedBytes: number;
  /** Set when the share asked for is not in effect (share then reads "none"): why, and the way back. */
  reason?: string;
  /** The snapshot this replica overlays (its last snapshot, or the snapshot it was cloned from); absent when none. */
  parent?: string;
  /** Random at create: a replica deleted and created again under the same uuid has another (snapshots and reverts keep it). */
  incarnation?: string;
  /** Bytes held by its snapshot chain (parent, its parent, ...). */
  snapshotBytes?: number;
}

export interface ReplicaSpec {
  pool: string;
  sizeBytes: number;
  thin?: boolean;
  share?: Share;
  allowedHosts?: string[];
}

export interface ReplicaPatch {
  sizeBytes?: number;
  share?: Share;
  allowedHosts?: string[];
}

export interface NexusPatch {
  /** grow only */
  sizeBytes?: number;
  share?: Share;
  /** Who may connect to the share (as for replicas); [] admits every host. */
  allowedHosts?: string[];
}

export type NexusState = 'online' | 'degraded' | 'faulted';
export type NexusChildState = 'online' | 'degraded' | 'faulted' | 'offline';

export interface NexusChild {
  uri: string;
  /** online (in sync), degraded (rebuilding: takes writes, never read), faulted, offline. */
  state: NexusChildState;
  /** Why the child is not online ("" when it is). */
  reason?: string;
  /** 0..100; 100 once in sync. */
  rebuildProgress?: number;
  /** While a rebuild runs: bytes of the nexus range processed, the total, and bytes/s. */
  rebuildBytesDone?: number;
  rebuildBytesTotal?: number;
  rebuildRate?: number;
}

export interface Nexus {
  uuid: string;
  sizeBytes: number;
  state: NexusState;
  /** Why the nexus is degraded or faulted ("" when online). */
  reason?: string;
  share: Share;
  /** Who may connect to the share: addresses or CIDR prefixes (nbd), host NQNs (nvmf); [] admits every host. */
  allowedHosts: string[];
  /** bdev:///<uuid> when not shared; nbd://host:port/<uuid> with share "nbd". */
  deviceUri: string;
  children: NexusChild[];
}

export interface NexusSpec {
  sizeBytes: number;
  children: string[];
  share?: Share;
  /** Who may connect to the share (as for replicas); default [] (every host). */
  allowedHosts?: string[];
  /** Take children labelled by another nexus that did not release them (it is gone for good). Not part of the spec. */
  force?: boolean;
}

export interface Health {
  status: 'ok';
  node: string;
  version: string;
}

export interface NodeInfo {
  name: string;
  version: string;
  datapathVersion: string;
  /** e.g. { http: "127.0.0.1:9500", nbd: "127.0.0.1:10809", nvmf: "127.0.0.1:4420" } (nvmf only with --nvmf-listen) */
  listeners: Record<string, string>;
  /** The shares this agent makes: 'none', 'nbd', and 'nvmf' when it runs an NVMe/TCP listener. */
  shares: Share[];
  /** The host NQN this node's nvmf:// children connect with: what a remote nvmf share's allowedHosts must list. */
  nvmfHostNqn: string;
  capabilities: string[];
}

/** Error codes of the `{"error":{"code","message"}}` body. */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'not_found'
  | 'conflict'
  | 'unprocessable'
  | 'no_space'
  | 'internal'
  /** 503: the data path is stuck in an earlier operation (named in the message); retry later */
  | 'unavailable'
  /** 504: a data-path operation (named in the message) did not complete in time */
  | 'timeout';

export interface ErrorBody {
  error: { code: ErrorCode | string; message: string };
}

// ---- snapshots and clones (issue 13) ---------------------------------------------------------------

/**
 * A snapshot of a replica (GET /v1/snapshots, /v1/replicas/{uuid}/snapshots/{snapshotUuid}): read-only, in the
 * replica's pool, kept in the pool metadata (a restart lists it again). A clone (a replica whose source is a
 * snapshot) reads through it.
 */
export interface Snapshot {
  uuid: string;
  /** The replica it was taken of. */
  sourceReplica: string;
  pool: string;
  sizeBytes: number;
  /** Bytes of clusters the snapshot holds itself. */
  referencedBytes: number;
  /** RFC 3339. */
  createdAt: string;
  /** Always true: a snapshot can be the source of a clone at once. */
  readyAsSource: true;
  /** The volume snapshot it belongs to (a nexus snapshot's uuid); "" for a snapshot of this replica alone. */
  group: string;
  /** Replicas, clones and snapshots whose parent it is. */
  children: string[];
  /** Read-only export: "none", "nbd" or "nvmf". */
  share: Share;
  allowedHosts: string[];
  /** bdev:///<uuid>, or the export's URI once shared. */
  uri: string;
}

/** PUT /v1/replicas/{uuid}/snapshots/{snapshotUuid} body (optional) and PATCH /v1/snapshots/{uuid}. */
export interface SnapshotSpec {
  share?: Share;
  allowedHosts?: string[];
}

/** PUT /v1/replicas/{uuid} with `source`: a clone of a snapshot (same pool, thin, the snapshot's size). */
export interface CloneSpec {
  source: { snapshot: string };
  /** Optional; if given, the snapshot's pool. */
  pool?: string;
  /** Optional; if given, the snapshot's size. */
  sizeBytes?: number;
  /** Optional; if given, true (a clone is thin). */
  thin?: boolean;
  share?: Share;
  allowedHosts?: string[];
}

/** POST /v1/replicas/{uuid}/revert body. */
export interface RevertSpec {
  snapshot: string;
}

/** PUT /v1/nexuses/{uuid}/snapshots/{snapshotUuid} body (optional). */
export interface VolumeSnapshotSpec {
  /** How long the volume's I/O may be held (default 10000, 1..600000): past it the volume resumes and the snapshot fails. */
  deadlineMs?: number;
  /** Skip faulted/rebuilding/offline children instead of failing. */
  skipUnhealthy?: boolean;
}

/** One replica's part of a volume snapshot. */
export interface VolumeSnapshotPart {
  /** The nexus child URI. */
  child: string;
  /** The replica's uuid (its identity as the child reports it). */
  replica: string;
  /** The part's snapshot uuid: v5(group, replica), see README "Snapshots". */
  snapshot: string;
  /** The node holding it, for nvmf:// and nbd:// children (host:port of the child URI); absent for local ones. */
  node?: string;
  /** True when the child was unhealthy and skipped (skipUnhealthy). */
  skipped?: boolean;
}

/** A consistent snapshot of a nexus (a volume): one snapshot per replica, all taken while its I/O was held. */
export interface VolumeSnapshot {
  uuid: string;
  nexus: string;
  /** RFC 3339. */
  createdAt: string;
  replicas: VolumeSnapshotPart[];
}
