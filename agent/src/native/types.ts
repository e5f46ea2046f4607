/** types.ts - the data path's values as the agent sees them, and the decoders of koffi's structs into them. */

export enum IoOp {
  READ = 0,
  WRITE = 1,
  FLUSH = 2,
  UNMAP = 3,
  WRITE_ZEROES = 4,
}

// ---- public types ---------------------------------------------------------------------------

export interface PoolInfo {
  name: string;
  uuid: string;
  ndisks: number;
  replicas: number;
  clusterSize: number;
  capacityBytes: number;
  usedBytes: number;
  /** The pool's state in the data path: "failed" after a metadata write error (dp_pool_state). */
  state: 'online' | 'failed';
  /** Why it failed ("" when online). */
  reason: string;
}

export interface ReplicaInfo {
  uuid: string;
  pool: string;
  sizeBytes: number;
  allocatedBytes: number;
  thin: boolean;
  openCount: number;
}

export interface IoStats {
  reads: number;
  writes: number;
  flushes: number;
  unmaps: number;
  bytesRead: number;
  bytesWritten: number;
  errors: number;
}

export type NexusState = 'online' | 'degraded' | 'faulted';
export type ChildState = 'online' | 'degraded' | 'faulted' | 'offline';
const NEXUS_STATES: NexusState[] = ['online', 'degraded', 'faulted'];
const CHILD_STATES: ChildState[] = ['online', 'degraded', 'faulted', 'offline'];

export interface NexusInfo {
  uuid: string;
  sizeBytes: number;
  state: NexusState;
  nchildren: number;
  blockSize: number;
  rebuilds: number;
  generation: number;
  reason: string;
  reads: number;
  writes: number;
  flushes: number;
  errors: number;
}

export interface NexusChildInfo {
  uri: string;
  state: ChildState;
  rebuildPercent: number;
  reason: string;
  rebuildBytesDone: number;
  rebuildBytesTotal: number;
  rebuildBytesCopied: number;
  rebuildRate: number;
  rebuilding: boolean;
  reads: number;
  writes: number;
  errors: number;
}

/** dp_target_limits (issue 10): what every target protocol allows its clients. */
export interface TargetLimits {
  maxConnections: number;
  maxConnectionsPerExport: number;
  handshakeTimeoutMs: number;
  fdHeadroom: number;
  connMemoryBudget: number;
  memoryBudget: number;
  /** How long an export serving a nexus child stays writable only by the nexus's host after its last
   * connection drops (ms; default DEFAULT_WRITER_GRACE_MS when not given). */
  writerGraceMs?: number;
}

/** The data path's default for TargetLimits.writerGraceMs (DP_TARGET_DEF_WRITER_GRACE_MS). */
export const DEFAULT_WRITER_GRACE_MS = 30000;

/** dp_target_stats (issue 10). */
export interface TargetStats {
  connections: number;
  handshakes: number;
  accepted: number;
  refusedMaxConnections: number;
  refusedMaxConnectionsPerExport: number;
  refusedFdHeadroom: number;
  handshakeTimeouts: number;
  acceptBackoffs: number;
  memoryBytes: number;
  memoryWaits: number;
  /** Exports now writable only by the host of the nexus they serve a child to. */
  writerLeases: number;
  /** Writes, unmaps and write-zeroes refused (EPERM) because another host holds the export's writer lease. */
  writesRefused: number;
}

/** Handle of an open descriptor (a koffi 3 pointer). */
export type DescHandle = bigint;
export type CqHandle = bigint;

export const num = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : (v as number));

export function poolInfo(o: Record<string, unknown>): PoolInfo {
  return {
    name: o.name as string,
    uuid: o.uuid as string,
    ndisks: num(o.ndisks),
    replicas: num(o.replicas),
    clusterSize: num(o.cluster_size),
    capacityBytes: num(o.capacity_bytes),
    usedBytes: num(o.used_bytes),
    state: num(o.state) === 1 ? 'failed' : 'online',
    reason: String(o.reason ?? ''),
  };
}

export function replicaInfo(o: Record<string, unknown>): ReplicaInfo {
  return {
    uuid: o.uuid as string,
    pool: o.pool as string,
    sizeBytes: num(o.size_bytes),
    allocatedBytes: num(o.allocated_bytes),
    thin: num(o.thin) !== 0,
    openCount: num(o.open_count),
  };
}

export function nexusInfo(o: Record<string, unknown>): NexusInfo {
  return {
    uuid: o.uuid as string,
    sizeBytes: num(o.size_bytes),
    state: NEXUS_STATES[num(o.state)] ?? 'faulted',
    nchildren: num(o.nchildren),
    blockSize: num(o.block_size),
    rebuilds: num(o.rebuilds),
    generation: num(o.generation),
    reason: String(o.reason ?? ''),
    reads: num(o.reads),
    writes: num(o.writes),
    flushes: num(o.flushes),
    errors: num(o.errors),
  };
}

export function childInfo(o: Record<string, unknown>): NexusChildInfo {
  return {
    uri: o.uri as string,
    state: CHILD_STATES[num(o.state)] ?? 'faulted',
    rebuildPercent: num(o.rebuild_percent),
    reason: String(o.reason ?? ''),
    rebuildBytesDone: num(o.rebuild_bytes_done),
    rebuildBytesTotal: num(o.rebuild_bytes_total),
    rebuildBytesCopied: num(o.rebuild_bytes_copied),
    rebuildRate: num(o.rebuild_rate),
    rebuilding: num(o.rebuilding) !== 0,
    reads: num(o.reads),
    writes: num(o.writes),
    errors: num(o.errors),
  };
}
