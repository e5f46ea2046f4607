/** datapath.ts - the data path as the agent calls it: one method per datapath.h function, errors as NativeError. */
import fs from 'node:fs';
import os from 'node:os';
import koffi from 'koffi';
import { ControlThread, OutMarker } from './control';
import {
  DP_NEXUS_FORCE,
  DP_NEXUS_MAX_CHILDREN,
  DP_NEXUS_RELEASE,
  DP_NEXUS_SNAP_CHILD_SIZE,
  DP_NEXUS_SNAP_SKIP_UNHEALTHY,
  Fn,
  MAIN_PROTOS,
  declareTypes,
  libraryPath,
} from './declarations';
import { NativeError } from './errors';
import { DEFAULT_WRITER_GRACE_MS, childInfo, nexusInfo, num, poolInfo, replicaInfo, snapChildren, snapshotInfo } from './types';
import type {
  CqHandle,
  DescHandle,
  IoOp,
  IoStats,
  NexusChildInfo,
  NexusInfo,
  NexusSnapChild,
  PoolInfo,
  ReplicaInfo,
  SnapshotInfo,
  TargetLimits,
  TargetStats,
  WriterLease,
} from './types';

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

  /** The host NQN our nvmf:// children connect with (for remote subsystems' allowed hosts). */
  nvmfHostNqn(): string {
    return String(this.main.dp_nvmf_host_nqn());
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

  // snapshots and clones (issue 13)

  /** Snapshot a replica (it may be open and busy); group: the volume snapshot it belongs to, "" for none. */
  async snapshotCreate(replica: string, snapshot: string, group = ''): Promise<void> {
    await this.control('dp_snapshot_create', [replica, snapshot, group]);
  }

  /** No children: freed; one child: merged into it; more: EBUSY naming them. */
  async snapshotDestroy(snapshot: string): Promise<void> {
    await this.control('dp_snapshot_destroy', [snapshot]);
  }

  async snapshotStat(snapshot: string): Promise<SnapshotInfo> {
    const r = await this.control('dp_snapshot_stat', [snapshot, { out: 'struct' } as OutMarker]);
    return snapshotInfo(r.outs[0] as Record<string, unknown>);
  }

  /** Every snapshot of a pool (dp_pool_snapshot_at until -ENOENT). */
  async poolSnapshots(pool: string): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (let i = 0; ; i++) {
      const r = await this.ctl.call('dp_pool_snapshot_at', [pool, i, { out: 'struct' } as OutMarker]);
      if (r.ret === -os.constants.errno.ENOENT) break;
      if (r.ret < 0) throw new NativeError('dp_pool_snapshot_at', r.ret, r.error);
      out.push(snapshotInfo(r.outs[0] as Record<string, unknown>));
      if (i > 1_000_000) break;
    }
    return out;
  }

  /** A new thin replica over a snapshot (its size, its pool). */
  async replicaClone(clone: string, snapshot: string): Promise<void> {
    await this.control('dp_replica_clone', [clone, snapshot]);
  }

  /** Roll a replica back to an ancestor snapshot in place (EBUSY while it is open). */
  async replicaRevert(replica: string, snapshot: string): Promise<void> {
    await this.control('dp_replica_revert', [replica, snapshot]);
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

  // NVMe/TCP target

  /** Start the NVMe/TCP listener (-EALREADY when this process already listens). */
  async nvmfListen(host: string, port: number, advertiseHost: string): Promise<void> {
    await this.control('dp_nvmf_listen', [host, port, advertiseHost]);
  }

  /** The bound NVMe/TCP port, or undefined when not listening. */
  async nvmfPort(): Promise<number | undefined> {
    const r = await this.ctl.call('dp_nvmf_port', []);
    return r.ret >= 0 ? r.ret : undefined;
  }

  /** Export `bdev` as subsystem `nqn` with one namespace whose uuid is `uuid`; allowedHostsCsv: host NQNs ("" = every host). */
  async nvmfShare(bdev: string, nqn: string, uuid: string, allowedHostsCsv: string): Promise<void> {
    await this.control('dp_nvmf_share', [bdev, nqn, uuid, allowedHostsCsv]);
  }

  async nvmfUnshare(nqn: string): Promise<void> {
    await this.control('dp_nvmf_unshare', [nqn]);
  }

  /** Host connections (admin and I/O queues) of a subsystem, or undefined when there is no such subsystem. */
  async nvmfConnections(nqn: string): Promise<number | undefined> {
    const r = await this.ctl.call('dp_nvmf_export_connections', [nqn]);
    return r.ret >= 0 ? r.ret : undefined;
  }

  async nvmfShutdown(): Promise<void> {
    await this.ctl.call('dp_nvmf_shutdown', []);
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
        writer_grace_ms: l.writerGraceMs ?? DEFAULT_WRITER_GRACE_MS,
        pad: 0,
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
      writerGraceMs: num(o.writer_grace_ms),
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
      writerLeases: num(o.writer_leases),
      writesRefused: num(o.writes_refused),
    };
  }

  /** The writer lease of the export serving `bdev` (a replica uuid or device name), if one holds it (dp_export_writer_lease). */
  async writerLease(bdev: string): Promise<WriterLease | undefined> {
    const r = await this.control('dp_export_writer_lease', [bdev, { out: 'struct' } as OutMarker]);
    if (r.ret !== 1) return undefined;
    const o = r.outs[0] as Record<string, unknown>;
    return { host: o.host as string, proto: o.proto as string, connected: num(o.connected) === 1, graceLeftMs: num(o.grace_left_ms) };
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

  /**
   * A consistent snapshot of a nexus (dp_nexus_snapshot): every healthy child's replica, taken while the volume's
   * I/O is held (at most deadlineMs). Returns one entry per child. On failure a NativeError (nothing is kept).
   */
  async nexusSnapshot(uuid: string, group: string, deadlineMs: number, skipUnhealthy: boolean): Promise<NexusSnapChild[]> {
    const size = DP_NEXUS_SNAP_CHILD_SIZE * DP_NEXUS_MAX_CHILDREN;
    const flags = skipUnhealthy ? DP_NEXUS_SNAP_SKIP_UNHEALTHY : 0;
    const r = await this.control('dp_nexus_snapshot', [uuid, group, deadlineMs, flags, { out: 'bytes', size } as OutMarker, DP_NEXUS_MAX_CHILDREN]);
    return snapChildren(r.outs[0] as Uint8Array, r.ret, DP_NEXUS_SNAP_CHILD_SIZE);
  }

  /** Destroy a volume snapshot's parts through the nexus's children (parts already gone count as done). */
  async nexusSnapshotDestroy(uuid: string, group: string): Promise<NexusSnapChild[]> {
    const size = DP_NEXUS_SNAP_CHILD_SIZE * DP_NEXUS_MAX_CHILDREN;
    const r = await this.control('dp_nexus_snapshot_destroy', [uuid, group, { out: 'bytes', size } as OutMarker, DP_NEXUS_MAX_CHILDREN]);
    return snapChildren(r.outs[0] as Uint8Array, r.ret, DP_NEXUS_SNAP_CHILD_SIZE);
  }

  /** Release the nexus label a device carries (a clone of a nexus child's snapshot): true if there was one to release. */
  async nexusLabelRelease(uri: string): Promise<boolean> {
    const r = await this.control('dp_nexus_label_release', [uri]);
    return r.ret === 1;
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
