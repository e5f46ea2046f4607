/**
 * native.ts - the ONE place that declares the FFI surface of libdatapath.so
 * (agent/native/include/datapath.h) with koffi. Keep it organised by the header's sections;
 * later modules (NBD, nexus, ...) add their declarations to the tables below.
 *
 * Threading design (why control calls do not use koffi's `.async` directly):
 *  - dp_last_error() is per *thread*. koffi's `.async` runs a call on some libuv pool thread and a
 *    following dp_last_error() may run on another, so the message would be lost or wrong.
 *  - So every *control* call (dp_init, pools, replicas, desc open/close, stats) runs in one
 *    dedicated worker thread ("control thread") that makes the call synchronously and then reads
 *    dp_last_error() on the same OS thread. The event loop never blocks; control calls are
 *    serialised (one at a time), which also makes multi-step operations predictable.
 *  - The I/O path stays on the main thread: dp_io_submit() never blocks (it queues to a reactor)
 *    and dp_desc_size/block_size are plain reads. Completions are reaped by dp_cq_wait() through
 *    koffi `.async` (see blockdev.ts); dp_cq_wait needs no error message.
 *  - koffi 3 pointers are BigInts, so descriptor handles cross the thread boundary as bigint.
 *  - A native call can block (a reactor that never answers, a peer that never replies). So that the
 *    HTTP API cannot hang forever on one, every control call has a deadline (controlTimeoutMs():
 *    $MAYASTOR_CONTROL_TIMEOUT_MS, default 60 s; dp_init/dp_fini have none). A call past it is
 *    rejected with DatapathTimeoutError (HTTP 504 naming the operation). The worker thread is still
 *    inside that C call and cannot be interrupted, so until it returns every further call is
 *    rejected at once with DatapathBusyError (HTTP 503 naming the stuck operation) instead of
 *    queueing behind it; when the stuck call finally returns, its late result is dropped (logged
 *    through onLateResult) and calls flow again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';

// ---- declarations (data, shared by the main thread and the control thread) ------------------

/** Struct layouts, verbatim from datapath.h. char arrays decode as strings. */
const STRUCTS: Record<string, Record<string, string>> = {
  dp_pool_info: {
    name: 'char[128]', // DP_NAME_MAX
    uuid: 'char[37]', // DP_UUID_STR_LEN
    ndisks: 'uint32_t',
    replicas: 'uint32_t',
    cluster_size: 'uint64_t',
    capacity_bytes: 'uint64_t',
    used_bytes: 'uint64_t',
    state: 'uint32_t', // enum dp_pool_state
    reason: 'char[128]', // DP_POOL_REASON_MAX
  },
  dp_replica_info: {
    uuid: 'char[37]',
    pool: 'char[128]',
    size_bytes: 'uint64_t',
    allocated_bytes: 'uint64_t',
    thin: 'uint32_t',
    open_count: 'uint32_t',
  },
  dp_io_stats: {
    reads: 'uint64_t',
    writes: 'uint64_t',
    flushes: 'uint64_t',
    unmaps: 'uint64_t',
    bytes_read: 'uint64_t',
    bytes_written: 'uint64_t',
    errors: 'uint64_t',
  },
  dp_nexus_info: {
    uuid: 'char[37]',
    size_bytes: 'uint64_t',
    state: 'uint32_t',
    nchildren: 'uint32_t',
    block_size: 'uint32_t',
    rebuilds: 'uint32_t',
    generation: 'uint64_t',
    reason: 'char[128]', // DP_REASON_MAX
    reads: 'uint64_t',
    writes: 'uint64_t',
    flushes: 'uint64_t',
    errors: 'uint64_t',
  },
  dp_nexus_child_info: {
    uri: 'char[256]', // DP_URI_MAX
    state: 'uint32_t',
    rebuild_percent: 'uint32_t',
    reason: 'char[128]',
    rebuild_bytes_done: 'uint64_t',
    rebuild_bytes_total: 'uint64_t',
    rebuild_bytes_copied: 'uint64_t',
    rebuild_rate: 'uint64_t',
    rebuilding: 'uint32_t',
    pad: 'uint32_t',
    reads: 'uint64_t',
    writes: 'uint64_t',
    errors: 'uint64_t',
  },
  // target limits (issue 10)
  dp_target_limits: {
    max_connections: 'uint32_t',
    max_connections_per_export: 'uint32_t',
    handshake_timeout_ms: 'uint32_t',
    fd_headroom: 'uint32_t',
    conn_memory_budget: 'uint64_t',
    memory_budget: 'uint64_t',
  },
  dp_target_stats: {
    connections: 'uint64_t',
    handshakes: 'uint64_t',
    accepted: 'uint64_t',
    refused_max_connections: 'uint64_t',
    refused_max_connections_per_export: 'uint64_t',
    refused_fd_headroom: 'uint64_t',
    handshake_timeouts: 'uint64_t',
    accept_backoffs: 'uint64_t',
    memory_bytes: 'uint64_t',
    memory_waits: 'uint64_t',
  },
};
/** Opaque handle types. */
const OPAQUES = ['dp_desc', 'dp_cq'];

/** Control functions: called in the control thread (blocking C calls). */
const CONTROL_PROTOS: Record<string, string> = {
  // library lifecycle
  dp_init: 'int dp_init(uint32_t reactors)',
  dp_fini: 'void dp_fini(void)',
  // pools
  dp_pool_create:
    'int dp_pool_create(const char *name, const char **disks, uint32_t ndisks, uint64_t cluster_size, _Out_ uint8_t *uuid_out)',
  dp_pool_import: 'int dp_pool_import(const char *name, const char **disks, uint32_t ndisks, _Out_ uint8_t *uuid_out)',
  dp_pool_export: 'int dp_pool_export(const char *name)',
  dp_pool_destroy: 'int dp_pool_destroy(const char *name)',
  dp_pool_stat: 'int dp_pool_stat(const char *name, _Out_ dp_pool_info *out)',
  dp_disk_probe: 'int dp_disk_probe(const char *disk, _Out_ dp_pool_info *out)',
  // replicas
  dp_replica_create: 'int dp_replica_create(const char *pool, const char *uuid, uint64_t size_bytes, uint32_t thin)',
  dp_replica_destroy: 'int dp_replica_destroy(const char *uuid)',
  dp_replica_resize: 'int dp_replica_resize(const char *uuid, uint64_t size_bytes)',
  dp_replica_stat: 'int dp_replica_stat(const char *uuid, _Out_ dp_replica_info *out)',
  dp_pool_replica_at: 'int dp_pool_replica_at(const char *pool, uint32_t index, _Out_ dp_replica_info *out)',
  // descriptors (open/close may wait on a reactor)
  dp_desc_open: 'int dp_desc_open(const char *target, _Out_ dp_desc **out)',
  dp_desc_close: 'void dp_desc_close(dp_desc *desc)',
  // statistics
  dp_io_stat: 'int dp_io_stat(const char *target, _Out_ dp_io_stats *out)',
  // NBD target
  dp_nbd_listen: 'int dp_nbd_listen(const char *host, uint16_t port)',
  dp_nbd_port: 'int dp_nbd_port(void)',
  dp_nbd_share: 'int dp_nbd_share(const char *bdev_name, const char *export_name, const char *allowed_hosts_csv)',
  dp_nbd_unshare: 'int dp_nbd_unshare(const char *export_name)',
  dp_nbd_export_connections: 'int dp_nbd_export_connections(const char *export_name)',
  dp_nbd_shutdown: 'void dp_nbd_shutdown(void)',
  // target limits (issue 10)
  dp_target_set_limits: 'int dp_target_set_limits(const dp_target_limits *limits)',
  dp_target_get_limits: 'int dp_target_get_limits(_Out_ dp_target_limits *out)',
  dp_target_stats_get: 'int dp_target_stats_get(_Out_ dp_target_stats *out)',
  // nexus
  dp_nexus_create: 'int dp_nexus_create(const char *uuid, uint64_t size, const char **children, uint32_t nchildren, uint32_t flags)',
  dp_nexus_open: 'int dp_nexus_open(const char *uuid, uint64_t size, const char **children, uint32_t nchildren)',
  dp_nexus_destroy: 'int dp_nexus_destroy(const char *uuid, uint32_t flags)',
  dp_nexus_stat: 'int dp_nexus_stat(const char *uuid, _Out_ dp_nexus_info *out)',
  dp_nexus_at: 'int dp_nexus_at(uint32_t index, _Out_ dp_nexus_info *out)',
  dp_nexus_child_at: 'int dp_nexus_child_at(const char *uuid, uint32_t index, _Out_ dp_nexus_child_info *out)',
  dp_nexus_add_child: 'int dp_nexus_add_child(const char *uuid, const char *uri, uint32_t flags)',
  dp_nexus_remove_child: 'int dp_nexus_remove_child(const char *uuid, const char *uri)',
  dp_nexus_child_offline: 'int dp_nexus_child_offline(const char *uuid, const char *uri)',
  dp_nexus_child_online: 'int dp_nexus_child_online(const char *uuid, const char *uri, uint32_t flags)',
  dp_nexus_child_fault: 'int dp_nexus_child_fault(const char *uuid, const char *uri)',
  dp_nexus_resize: 'int dp_nexus_resize(const char *uuid, uint64_t new_size)',
};

/** Main-thread functions: never block (dp_cq_wait is only ever called through `.async`). */
const MAIN_PROTOS: Record<string, string> = {
  dp_last_error: 'const char *dp_last_error(void)',
  dp_version: 'const char *dp_version(void)',
  // the agent's pid file lock (flock; never blocks)
  dp_lock_file: 'int dp_lock_file(const char *path)',
  dp_unlock_file: 'int dp_unlock_file(int fd, const char *path)',
  dp_desc_size: 'uint64_t dp_desc_size(dp_desc *desc)',
  dp_desc_block_size: 'uint32_t dp_desc_block_size(dp_desc *desc)',
  dp_cq_create: 'dp_cq *dp_cq_create(void)',
  dp_cq_destroy: 'void dp_cq_destroy(dp_cq *cq)',
  dp_io_submit:
    'int dp_io_submit(dp_desc *desc, dp_cq *cq, uint32_t op, void *buf, uint64_t offset, uint64_t length, uint64_t tag)',
  dp_cq_wait: 'int dp_cq_wait(dp_cq *cq, _Out_ uint64_t *tags, _Out_ int32_t *results, uint32_t max, int32_t timeout_ms)',
  dp_cq_wake: 'void dp_cq_wake(dp_cq *cq)',
};

export const DP_UUID_STR_LEN = 37;
export const DP_NAME_MAX = 128;
/** datapath.h: dp_nexus_create/add_child/child_online flag; dp_nexus_destroy flag. */
export const DP_NEXUS_FORCE = 0x1;
export const DP_NEXUS_RELEASE = 0x1;

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
}

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
}

/** Handle of an open descriptor (a koffi 3 pointer). */
export type DescHandle = bigint;
export type CqHandle = bigint;

const ERRNO_NAMES: Record<number, string> = {};
for (const [k, v] of Object.entries(os.constants.errno)) if (!(v in ERRNO_NAMES)) ERRNO_NAMES[v] = k;

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `E${errno}`;
}

/** A data-path call that returned a negative errno. `message` is dp_last_error() when set. */
export class NativeError extends Error {
  /** positive errno, e.g. 28 */
  readonly errno: number;
  /** errno name, e.g. "ENOSPC" */
  readonly code: string;
  readonly fn: string;
  constructor(fn: string, rc: number, detail: string) {
    const errno = -rc;
    const code = errnoName(errno);
    super(detail || `${fn} failed: ${code}`);
    this.name = 'NativeError';
    this.errno = errno;
    this.code = code;
    this.fn = fn;
  }
}

/** Default deadline of one control call (ms). */
export const DEFAULT_CONTROL_TIMEOUT_MS = 60000;

/** The deadline of control calls: $MAYASTOR_CONTROL_TIMEOUT_MS (ms, > 0), else 60 s. */
export function controlTimeoutMs(): number {
  const v = Number(process.env.MAYASTOR_CONTROL_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_CONTROL_TIMEOUT_MS;
}

/** A control call that did not return within its deadline (HTTP 504). */
export class DatapathTimeoutError extends Error {
  readonly status = 504;
  readonly code = 'timeout';
  constructor(readonly fn: string, readonly timeoutMs: number) {
    super(`data path operation ${fn} did not complete within ${timeoutMs} ms (it may still finish; retry later)`);
    this.name = 'DatapathTimeoutError';
  }
}

/** A control call refused because an earlier one is stuck in the data path (HTTP 503). */
export class DatapathBusyError extends Error {
  readonly status = 503;
  readonly code = 'unavailable';
  constructor(readonly fn: string, readonly stuckFn: string, readonly stuckForMs: number) {
    super(`data path busy: ${stuckFn} has not returned for ${Math.round(stuckForMs / 1000)} s, so ${fn} cannot run now; retry later`);
    this.name = 'DatapathBusyError';
  }
}

// ---- library loading ------------------------------------------------------------------------

/** Where libdatapath.so is: $MAYASTOR_DATAPATH_LIB, else the shipping build next to the sources. */
export function libraryPath(): string {
  const env = process.env.MAYASTOR_DATAPATH_LIB;
  if (env) return path.resolve(env);
  const candidates = [
    path.resolve(__dirname, '../native/build/libdatapath.so'), // agent/src (ts-jest)
    path.resolve(__dirname, '../../../agent/native/build/libdatapath.so'), // dist/agent/src
  ];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  return candidates[0];
}

type Fn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

function declareTypes(k: typeof koffi): void {
  for (const o of OPAQUES) {
    try {
      k.opaque(o);
    } catch {
      /* already declared (module reloaded in the same process) */
    }
  }
  for (const [name, fields] of Object.entries(STRUCTS)) {
    try {
      k.struct(name, fields);
    } catch {
      /* already declared */
    }
  }
}

// ---- control thread ---------------------------------------------------------------------------

/**
 * Code of the control thread. Out-parameters are described by markers in the args:
 *   {out:'struct'} -> an object koffi fills;  {out:'uuid'} -> 37-byte buffer returned as string;
 *   {out:'ptr'}    -> one-element array receiving a pointer.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const koffi = require(workerData.koffiPath);
const lib = koffi.load(workerData.libPath);
for (const o of workerData.opaques) { try { koffi.opaque(o); } catch {} }
for (const [n, f] of Object.entries(workerData.structs)) { try { koffi.struct(n, f); } catch {} }
const fns = {};
for (const [n, p] of Object.entries(workerData.protos)) fns[n] = lib.func(p);
const lastError = lib.func('const char *dp_last_error(void)');
parentPort.on('message', (m) => {
  const outs = [];
  const args = m.args.map((a) => {
    if (a && typeof a === 'object' && !Array.isArray(a) && a.out) {
      const v = a.out === 'struct' ? {} : a.out === 'uuid' ? Buffer.alloc(${DP_UUID_STR_LEN}) : [null];
      outs.push([a.out, v]);
      return v;
    }
    return a;
  });
  try {
    const ret = fns[m.fn](...args);
    const error = typeof ret === 'number' && ret < 0 ? String(lastError() || '') : '';
    const outVals = outs.map(([kind, v]) => kind === 'uuid' ? v.subarray(0, Math.max(0, v.indexOf(0))).toString('latin1')
      : kind === 'ptr' ? v[0] : v);
    parentPort.postMessage({ id: m.id, ret: ret === undefined ? 0 : ret, error, outs: outVals });
  } catch (e) {
    parentPort.postMessage({ id: m.id, throw: String(e && e.message || e) });
  }
});
`;

interface Pending {
  fn: string;
  resolve: (v: { ret: number; outs: unknown[]; error: string }) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/** Calls without a deadline: library start/stop (dp_fini joins the reactors). */
const NO_DEADLINE = new Set(['dp_init', 'dp_fini']);

type OutMarker = { out: 'struct' | 'uuid' | 'ptr' };

class ControlThread {
  private worker: Worker;
  private pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | undefined;
  /** Calls that timed out but are still running in the worker (id -> fn, start). */
  private stuck = new Map<number, { fn: string; since: number }>();
  /** Told when a timed-out call returns after all (its result is dropped). */
  onLateResult: ((fn: string, ms: number, ret: number, error: string) => void) | undefined;

  constructor(libPath: string) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        koffiPath: require.resolve('koffi'),
        libPath,
        structs: STRUCTS,
        opaques: OPAQUES,
        protos: CONTROL_PROTOS,
      },
    });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; ret: number; error: string; outs: unknown[]; throw?: string }) => {
      const late = this.stuck.get(m.id);
      if (late) {
        this.stuck.delete(m.id);
        this.onLateResult?.(late.fn, Date.now() - late.since, m.ret, m.throw ?? m.error);
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (p.timer) clearTimeout(p.timer);
      if (this.pending.size === 0 && this.stuck.size === 0) this.worker.unref();
      if (m.throw !== undefined) p.reject(new Error(`datapath control thread: ${m.throw}`));
      else p.resolve({ ret: m.ret, outs: m.outs, error: m.error });
    });
    const fail = (e: Error) => {
      this.dead = e;
      for (const p of this.pending.values()) {
        if (p.timer) clearTimeout(p.timer);
        p.reject(e);
      }
      this.pending.clear();
      this.stuck.clear();
    };
    this.worker.on('error', (e) => fail(new Error(`datapath control thread failed: ${e.message}`)));
    this.worker.on('exit', (code) => fail(new Error(`datapath control thread exited (${code})`)));
  }

  call(fn: string, args: unknown[], timeoutMs = controlTimeoutMs()): Promise<{ ret: number; outs: unknown[]; error: string }> {
    if (this.dead) return Promise.reject(this.dead);
    // The worker runs one call at a time: behind a stuck call this one would wait just as long.
    for (const s of this.stuck.values()) {
      if (!NO_DEADLINE.has(fn)) return Promise.reject(new DatapathBusyError(fn, s.fn, Date.now() - s.since));
    }
    const id = this.nextId++;
    const since = Date.now();
    return new Promise((resolve, reject) => {
      const p: Pending = { fn, resolve, reject };
      if (!NO_DEADLINE.has(fn)) {
        p.timer = setTimeout(() => {
          if (!this.pending.delete(id)) return;
          if (this.pending.size === 0) this.worker.unref();
          this.stuck.set(id, { fn, since });
          reject(new DatapathTimeoutError(fn, timeoutMs));
        }, timeoutMs);
        p.timer.unref();
      }
      this.pending.set(id, p);
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ id, fn, args });
    });
  }

  /** The call the worker is stuck in (timed out, not yet returned), if any. */
  stuckCall(): { fn: string; forMs: number } | undefined {
    for (const s of this.stuck.values()) return { fn: s.fn, forMs: Date.now() - s.since };
    return undefined;
  }

  async terminate(): Promise<void> {
    this.dead = new Error('datapath is shut down');
    await this.worker.terminate();
  }
}

// ---- the binding ------------------------------------------------------------------------------

const num = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : (v as number));

function poolInfo(o: Record<string, unknown>): PoolInfo {
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

function replicaInfo(o: Record<string, unknown>): ReplicaInfo {
  return {
    uuid: o.uuid as string,
    pool: o.pool as string,
    sizeBytes: num(o.size_bytes),
    allocatedBytes: num(o.allocated_bytes),
    thin: num(o.thin) !== 0,
    openCount: num(o.open_count),
  };
}

function nexusInfo(o: Record<string, unknown>): NexusInfo {
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

function childInfo(o: Record<string, unknown>): NexusChildInfo {
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

/**
 * The loaded data path. One per process (the C library is process-global): get it with
 * `Datapath.load()`; `init(reactors)` starts the reactors, `fini()` stops them.
 */
export class Datapath {
  private static instance: Datapath | undefined;
  readonly libPath: string;
  private readonly main: Record<string, Fn> = {};
  private ctl: ControlThread;
  private initialised = false;

  private constructor(libPath: string) {
    if (!fs.existsSync(libPath)) {
      throw new Error(`datapath library not found at ${libPath} (build it with 'make -C agent/native' or set MAYASTOR_DATAPATH_LIB)`);
    }
    this.libPath = libPath;
    declareTypes(koffi);
    const lib = koffi.load(libPath);
    for (const [n, p] of Object.entries(MAIN_PROTOS)) this.main[n] = lib.func(p) as unknown as Fn;
    this.ctl = new ControlThread(libPath);
  }

  static load(libPath = libraryPath()): Datapath {
    if (!Datapath.instance) Datapath.instance = new Datapath(libPath);
    return Datapath.instance;
  }

  /** The loaded instance, if any. */
  static current(): Datapath | undefined {
    return Datapath.instance;
  }

  get isInitialised(): boolean {
    return this.initialised;
  }

  /** The control call stuck past its deadline (the data path is not answering), if any. */
  stuckCall(): { fn: string; forMs: number } | undefined {
    return this.ctl.stuckCall();
  }

  /** Called when a control call that timed out returns after all (its result was dropped). */
  set onLateResult(f: ((fn: string, ms: number, ret: number, error: string) => void) | undefined) {
    this.ctl.onLateResult = f;
  }

  private async control(fn: string, args: unknown[]): Promise<{ ret: number; outs: unknown[] }> {
    const r = await this.ctl.call(fn, args);
    if (r.ret < 0) throw new NativeError(fn, r.ret, r.error);
    return r;
  }

  // library lifecycle

  async init(reactors = 1): Promise<void> {
    if (this.initialised) return;
    await this.control('dp_init', [reactors]);
    this.initialised = true;
  }

  /** Stop the reactors (dp_fini) and the control thread. The instance cannot be reused. */
  async fini(): Promise<void> {
    if (this.initialised) await this.ctl.call('dp_fini', []);
    this.initialised = false;
    await this.ctl.terminate();
    Datapath.instance = undefined;
  }

  version(): string {
    return String(this.main.dp_version());
  }

  /**
   * Hold `file` under an exclusive flock for the life of the process (dp_lock_file) and write our pid
   * into it. Returns the fd; a NativeError EBUSY naming the holder's pid when another process holds it.
   */
  lockFile(file: string): number {
    const fd = Number(this.main.dp_lock_file(file));
    if (fd < 0) throw new NativeError('dp_lock_file', fd, this.lastError());
    return fd;
  }

  /** Release a dp_lock_file lock, unlinking `file` first (undefined: keep it). */
  unlockFile(fd: number, file?: string): void {
    this.main.dp_unlock_file(fd, file ?? null);
  }

  /** dp_last_error() of the main thread (after a main-thread call such as dp_io_submit). */
  lastError(): string {
    return String(this.main.dp_last_error() ?? '');
  }

  // pools

  async poolCreate(name: string, disks: string[], clusterSize = 0): Promise<string> {
    const r = await this.control('dp_pool_create', [name, disks, disks.length, clusterSize, { out: 'uuid' } as OutMarker]);
    return r.outs[0] as string;
  }

  async poolImport(name: string, disks: string[]): Promise<string> {
    const r = await this.control('dp_pool_import', [name, disks, disks.length, { out: 'uuid' } as OutMarker]);
    return r.outs[0] as string;
  }

  async poolExport(name: string): Promise<void> {
    await this.control('dp_pool_export', [name]);
  }

  async poolDestroy(name: string): Promise<void> {
    await this.control('dp_pool_destroy', [name]);
  }

  async poolStat(name: string): Promise<PoolInfo> {
    const r = await this.control('dp_pool_stat', [name, { out: 'struct' } as OutMarker]);
    return poolInfo(r.outs[0] as Record<string, unknown>);
  }

  /** The pool label on a disk (name, uuid, clusterSize), or undefined when it carries none. */
  async diskProbe(disk: string): Promise<PoolInfo | undefined> {
    const r = await this.control('dp_disk_probe', [disk, { out: 'struct' } as OutMarker]);
    return r.ret === 1 ? poolInfo(r.outs[0] as Record<string, unknown>) : undefined;
  }

  // replicas

  async replicaCreate(pool: string, uuid: string, sizeBytes: number, thin: boolean): Promise<void> {
    await this.control('dp_replica_create', [pool, uuid, sizeBytes, thin ? 1 : 0]);
  }

  async replicaDestroy(uuid: string): Promise<void> {
    await this.control('dp_replica_destroy', [uuid]);
  }

  async replicaResize(uuid: string, sizeBytes: number): Promise<void> {
    await this.control('dp_replica_resize', [uuid, sizeBytes]);
  }

  async replicaStat(uuid: string): Promise<ReplicaInfo> {
    const r = await this.control('dp_replica_stat', [uuid, { out: 'struct' } as OutMarker]);
    return replicaInfo(r.outs[0] as Record<string, unknown>);
  }

  /** Every replica of a pool (dp_pool_replica_at until -ENOENT). */
  async poolReplicas(pool: string): Promise<ReplicaInfo[]> {
    const out: ReplicaInfo[] = [];
    for (let i = 0; ; i++) {
      const r = await this.ctl.call('dp_pool_replica_at', [pool, i, { out: 'struct' } as OutMarker]);
      if (r.ret === -os.constants.errno.ENOENT) break;
      if (r.ret < 0) throw new NativeError('dp_pool_replica_at', r.ret, r.error);
      out.push(replicaInfo(r.outs[0] as Record<string, unknown>));
      if (i > 1_000_000) break;
    }
    return out;
  }

  // descriptors

  async descOpen(target: string): Promise<DescHandle> {
    const r = await this.control('dp_desc_open', [target, { out: 'ptr' } as OutMarker]);
    return r.outs[0] as DescHandle;
  }

  async descClose(desc: DescHandle): Promise<void> {
    await this.ctl.call('dp_desc_close', [desc]);
  }

  descSize(desc: DescHandle): number {
    return num(this.main.dp_desc_size(desc));
  }

  descBlockSize(desc: DescHandle): number {
    return num(this.main.dp_desc_block_size(desc));
  }

  cqCreate(): CqHandle {
    const cq = this.main.dp_cq_create() as CqHandle | null;
    if (!cq) throw new Error(`dp_cq_create failed: ${this.lastError() || 'out of memory'}`);
    return cq;
  }

  cqDestroy(cq: CqHandle): void {
    this.main.dp_cq_destroy(cq);
  }

  /** Queue one request (main thread, never blocks). Returns 0 or a negative errno. */
  ioSubmit(desc: DescHandle, cq: CqHandle, op: IoOp, buf: Buffer | null, offset: number, length: number, tag: number): number {
    return this.main.dp_io_submit(desc, cq, op, buf, offset, length, tag) as number;
  }

  /** dp_cq_wait on a libuv pool thread; tags/results must stay referenced until it settles. */
  cqWait(cq: CqHandle, tags: BigUint64Array, results: Int32Array, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.main.dp_cq_wait.async(cq, tags, results, Math.min(tags.length, results.length), timeoutMs, (err: Error | null, n: number) =>
        err ? reject(err) : resolve(n),
      );
    });
  }

  cqWake(cq: CqHandle): void {
    this.main.dp_cq_wake(cq);
  }

  // NBD target

  /** Start the NBD listener (-EALREADY when this process already listens). */
  async nbdListen(host: string, port: number): Promise<void> {
    await this.control('dp_nbd_listen', [host, port]);
  }

  /** The bound NBD port, or undefined when not listening. */
  async nbdPort(): Promise<number | undefined> {
    const r = await this.ctl.call('dp_nbd_port', []);
    return r.ret >= 0 ? r.ret : undefined;
  }

  async nbdShare(bdev: string, exportName: string, allowedHostsCsv: string): Promise<void> {
    await this.control('dp_nbd_share', [bdev, exportName, allowedHostsCsv]);
  }

  async nbdUnshare(exportName: string): Promise<void> {
    await this.control('dp_nbd_unshare', [exportName]);
  }

  /** Clients attached to an export, or undefined when there is no such export. */
  async nbdConnections(exportName: string): Promise<number | undefined> {
    const r = await this.ctl.call('dp_nbd_export_connections', [exportName]);
    return r.ret >= 0 ? r.ret : undefined;
  }

  async nbdShutdown(): Promise<void> {
    await this.ctl.call('dp_nbd_shutdown', []);
  }

  // target limits (issue 10)

  /** dp_target_set_limits: the limits every target protocol applies to its clients. */
  async targetSetLimits(l: TargetLimits): Promise<void> {
    await this.control('dp_target_set_limits', [
      {
        max_connections: l.maxConnections,
        max_connections_per_export: l.maxConnectionsPerExport,
        handshake_timeout_ms: l.handshakeTimeoutMs,
        fd_headroom: l.fdHeadroom,
        conn_memory_budget: l.connMemoryBudget,
        memory_budget: l.memoryBudget,
      },
    ]);
  }

  /** The limits in force in the data path. */
  async targetLimits(): Promise<TargetLimits> {
    const r = await this.control('dp_target_get_limits', [{ out: 'struct' } as OutMarker]);
    const o = r.outs[0] as Record<string, unknown>;
    return {
      maxConnections: num(o.max_connections),
      maxConnectionsPerExport: num(o.max_connections_per_export),
      handshakeTimeoutMs: num(o.handshake_timeout_ms),
      fdHeadroom: num(o.fd_headroom),
      connMemoryBudget: num(o.conn_memory_budget),
      memoryBudget: num(o.memory_budget),
    };
  }

  /** Connections, refusals by reason, handshake timeouts, accept backoffs, memory held (dp_target_stats_get). */
  async targetStats(): Promise<TargetStats> {
    const r = await this.control('dp_target_stats_get', [{ out: 'struct' } as OutMarker]);
    const o = r.outs[0] as Record<string, unknown>;
    return {
      connections: num(o.connections),
      handshakes: num(o.handshakes),
      accepted: num(o.accepted),
      refusedMaxConnections: num(o.refused_max_connections),
      refusedMaxConnectionsPerExport: num(o.refused_max_connections_per_export),
      refusedFdHeadroom: num(o.refused_fd_headroom),
      handshakeTimeouts: num(o.handshake_timeouts),
      acceptBackoffs: num(o.accept_backoffs),
      memoryBytes: num(o.memory_bytes),
      memoryWaits: num(o.memory_waits),
    };
  }

  // nexus

  /** `force`: take children labelled by another nexus that did not release them (DP_NEXUS_FORCE). */
  async nexusCreate(uuid: string, sizeBytes: number, children: string[], force = false): Promise<void> {
    await this.control('dp_nexus_create', [uuid, sizeBytes, children, children.length, force ? DP_NEXUS_FORCE : 0]);
  }

  async nexusOpen(uuid: string, sizeBytes: number, children: string[]): Promise<void> {
    await this.control('dp_nexus_open', [uuid, sizeBytes, children, children.length]);
  }

  /** `release`: the nexus is deleted for good, its children are free for another owner (DP_NEXUS_RELEASE); else a shutdown. */
  async nexusDestroy(uuid: string, release = false): Promise<void> {
    await this.control('dp_nexus_destroy', [uuid, release ? DP_NEXUS_RELEASE : 0]);
  }

  async nexusStat(uuid: string): Promise<NexusInfo> {
    const r = await this.control('dp_nexus_stat', [uuid, { out: 'struct' } as OutMarker]);
    return nexusInfo(r.outs[0] as Record<string, unknown>);
  }

  /** Every nexus open in the data path (dp_nexus_at until -ENOENT). */
  async nexusList(): Promise<NexusInfo[]> {
    const out: NexusInfo[] = [];
    for (let i = 0; i < 100_000; i++) {
      const r = await this.ctl.call('dp_nexus_at', [i, { out: 'struct' } as OutMarker]);
      if (r.ret === -os.constants.errno.ENOENT) break;
      if (r.ret < 0) throw new NativeError('dp_nexus_at', r.ret, r.error);
      out.push(nexusInfo(r.outs[0] as Record<string, unknown>));
    }
    return out;
  }

  /** The children of a nexus (dp_nexus_child_at until -ENOENT). */
  async nexusChildren(uuid: string): Promise<NexusChildInfo[]> {
    const out: NexusChildInfo[] = [];
    for (let i = 0; i < 1000; i++) {
      const r = await this.ctl.call('dp_nexus_child_at', [uuid, i, { out: 'struct' } as OutMarker]);
      if (r.ret === -os.constants.errno.ENOENT && i > 0) break;
      if (r.ret < 0) {
        if (r.ret === -os.constants.errno.ENOENT) break; // no children, or the nexus is gone
        throw new NativeError('dp_nexus_child_at', r.ret, r.error);
      }
      out.push(childInfo(r.outs[0] as Record<string, unknown>));
    }
    return out;
  }

  async nexusAddChild(uuid: string, uri: string, force = false): Promise<void> {
    await this.control('dp_nexus_add_child', [uuid, uri, force ? DP_NEXUS_FORCE : 0]);
  }

  async nexusRemoveChild(uuid: string, uri: string): Promise<void> {
    await this.control('dp_nexus_remove_child', [uuid, uri]);
  }

  async nexusChildOffline(uuid: string, uri: string): Promise<void> {
    await this.control('dp_nexus_child_offline', [uuid, uri]);
  }

  /** `force`: with no healthy child, accept this one as the source although it is not the newest (DP_NEXUS_FORCE). */
  async nexusChildOnline(uuid: string, uri: string, force = false): Promise<void> {
    await this.control('dp_nexus_child_online', [uuid, uri, force ? DP_NEXUS_FORCE : 0]);
  }

  async nexusChildFault(uuid: string, uri: string): Promise<void> {
    await this.control('dp_nexus_child_fault', [uuid, uri]);
  }

  /** Grow the nexus to sizeBytes (its children must be grown first). */
  async nexusResize(uuid: string, sizeBytes: number): Promise<void> {
    await this.control('dp_nexus_resize', [uuid, sizeBytes]);
  }

  // statistics

  async ioStat(target: string): Promise<IoStats> {
    const r = await this.control('dp_io_stat', [target, { out: 'struct' } as OutMarker]);
    const o = r.outs[0] as Record<string, unknown>;
    return {
      reads: num(o.reads),
      writes: num(o.writes),
      flushes: num(o.flushes),
      unmaps: num(o.unmaps),
      bytesRead: num(o.bytes_read),
      bytesWritten: num(o.bytes_written),
      errors: num(o.errors),
    };
  }
}
