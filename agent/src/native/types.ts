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
  /** The snapshot it overlays ("" if none). */
  parent: string;
  /** Random at create (a re-created replica has another). */
  incarnation: string;
  /** Bytes held by its snapshot chain. */
  snapshotBytes: number;
}

/** dp_snapshot_info. */
export interface SnapshotInfo {
  uuid: string;
  /** The replica it was taken of. */
  source: string;
  /** The snapshot below it ("" if none). */
  parent: string;
  pool: string;
  /** The volume snapshot it belongs to ("" if none). */
  group: string;
  sizeBytes: number;
  referencedBytes: number;
  /** Unix seconds. */
  createTime: number;
  nchildren: number;
  /** The first few children (dp_snapshot_info.children, comma separated). */
  children: string[];
}

/** One child's entry of dp_nexus_snapshot / dp_nexus_snapshot_destroy (dp_nexus_snap_child). */
export interface NexusSnapChild {
  uri: string;
  replica: string;
  snapshot: string;
  skipped: boolean;
  /** 0 or -errno. */
  status: number;
  reason: string;
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

/** dp_writer_lease: the host whose nexus holds the writer lease of a device's export (issue 10). */
export interface WriterLease {
  /** An IP address (NBD) or a host NQN (NVMe/TCP). */
  host: string;
  /** The protocol of the export holding it: "nbd" or "nvmf". */
  proto: string;
  /** The host has a connection to the export now. */
  connected: boolean;
  /** Not connected: the lease ends in this many ms (the writer grace left). */
  graceLeftMs: number;
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
    parent: String(o.parent ?? ''),
    incarnation: String(o.incarnation ?? ''),
    snapshotBytes: num(o.snapshot_bytes ?? 0),
  };
}

export function snapshotInfo(o: Record<string, unknown>): SnapshotInfo {
  const children = String(o.children ?? '');
  return {
    uuid: o.uuid as string,
    source: String(o.source ?? ''),
    parent: String(o.parent ?? ''),
    pool: String(o.pool ?? ''),
    group: String(o.group ?? ''),
    sizeBytes: num(o.size_bytes),
    referencedBytes: num(o.referenced_bytes),
    createTime: num(o.create_time),
    nchildren: num(o.nchildren),
    children: children ? children.split(',') : [],
  };
}

/** Decode `n` dp_nexus_snap_child entries (datapath.h pins the offsets: uri 0, replica 256, snapshot 320,
 * skipped 360, status 364, reason 368; 496 bytes each). */
export function snapChildren(buf: Uint8Array, n: number, size: number): NexusSnapChild[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const str = (off: number, len: number) => {
    const s = b.subarray(off, off + len);
    const z = s.indexOf(0);
    return s.subarray(0, z < 0 ? len : z).toString('utf8');
  };
  const out: NexusSnapChild[] = [];
  for (let i = 0; i < n && (i + 1) * size <= b.length; i++) {
    const o = i * size;
    out.push({
      uri: str(o, 256),
      replica: str(o + 256, 64),
      snapshot: str(o + 320, 37),
      skipped: b.readUInt32LE(o + 360) !== 0,
      status: b.readInt32LE(o + 364),
      reason: str(o + 368, 128),
    });
  }
  return out;
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
