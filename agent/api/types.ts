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
  /** bdev:///<uuid> when not shared; nbd://host:port/<uuid> with share "nbd". */
  deviceUri: string;
  children: NexusChild[];
}

export interface NexusSpec {
  sizeBytes: number;
  children: string[];
  share?: Share;
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
