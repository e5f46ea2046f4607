/**
 * snapshots.ts - snapshots of replicas, their read-only shares, and consistent snapshots of nexuses (issue 13;
 * README "Snapshots", docs/openapi.json).
 *
 * A replica snapshot lives in its pool's metadata (the data path lists it again after a restart: no state is
 * kept for it here). What the pool does not carry is kept in DATA_DIR/snapshots.json: the share settings of
 * shared snapshots, and the records of volume (nexus) snapshots: which child, replica and part snapshot each holds.
 *
 * Volume snapshots: the data path pauses the nexus (new I/O held, in-flight I/O drained, every child flushed),
 * snapshots each healthy child's replica, and resumes (dp_nexus_snapshot). Local children (bdev:///) are
 * snapshotted in their pool; nvmf:// children through the NVMe/TCP connection the nexus already has to the
 * replica's target (a vendor admin command the target runs against the replica in its own pool): the nexus's
 * agent never calls the replica's agent, so no agent-to-agent credentials exist. nbd:// children cannot be
 * snapshotted (NBD has no such command): 422 naming the child. Each part's uuid is derived from the volume
 * snapshot's uuid and the replica (agent/api/snapshots.ts), so the replica's agent lists it under that uuid with
 * `group` = the volume snapshot. DELETE removes every part through the nexus (remote parts by the same vendor
 * path); when the nexus is gone, local parts are removed here and remote parts through their own agents
 * (DELETE /v1/replicas/{replica}/snapshots/{part}), which the 409 names.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Share, Snapshot, VolumeSnapshot, VolumeSnapshotPart } from '../api/types';
import { volumeSnapshotPartUuid } from '../api/snapshots';
import type { Context } from './context';
import { ApiError, badRequest, conflict, fromNative, notFound, unprocessable } from './errors';
import { NativeError, controlTimeoutMs, type SnapshotInfo } from './native';
import type { NexusService } from './nexuses';
import type { PoolService } from './pools';
import type { ReplicaService } from './replicas';
import type { ShareService } from './shares';
import { requireObject, validateBool, validateHosts, validateShare, validateUuid } from './validation';

interface ShareRecord {
  share: Share;
  allowedHosts: string[];
}

interface SnapshotsFile {
  shares: Record<string, ShareRecord>;
  volumes: Record<string, VolumeSnapshot>;
}

export const DEFAULT_DEADLINE_MS = 10000;
export const MAX_DEADLINE_MS = 600000;

const isNative = (e: unknown, ...codes: string[]) => e instanceof NativeError && codes.includes(e.code);

export class SnapshotService {
  private file: SnapshotsFile = { shares: {}, volumes: {} };
  private readonly path: string;

  constructor(
    private readonly ctx: Context,
    private readonly pools: PoolService,
    private readonly replicas: ReplicaService,
    private readonly nexuses: NexusService,
    private readonly shares: ShareService,
  ) {
    this.path = path.join(ctx.config.dataDir, 'snapshots.json');
  }

  /** Load snapshots.json and re-create the shares of snapshots that still exist. */
  async init(): Promise<void> {
    try {
      const raw = JSON.parse(fs.readFileSync(this.path, 'utf8')) as Partial<SnapshotsFile>;
      this.file = { shares: raw.shares ?? {}, volumes: raw.volumes ?? {} };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.ctx.log.error('snapshots.load_failed', { file: this.path, error: (e as Error).message });
    }
    for (const [uuid, s] of Object.entries(this.file.shares)) {
      if (s.share === 'none') continue;
      try {
        await this.ctx.dp.snapshotStat(uuid);
        await this.shares.apply(uuid, s.share, s.allowedHosts);
      } catch (e) {
        this.ctx.log.error('snapshot.share_restore_failed', { snapshot: uuid, error: (e as Error).message });
      }
    }
  }

  private async save(): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeFileSync(fd, JSON.stringify(this.file, null, 2));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.path);
  }

  // ---- replica snapshots -----------------------------------------------------------------------

  /** The snapshot's data-path record, or undefined when no snapshot has that uuid. */
  private async stat(uuid: string): Promise<SnapshotInfo | undefined> {
    try {
      return await this.ctx.dp.snapshotStat(uuid);
    } catch (e) {
      if (isNative(e, 'ENOENT', 'EINVAL')) return undefined;
      throw fromNative(e, `snapshot '${uuid}'`);
    }
  }

  private toObject(info: SnapshotInfo): Snapshot {
    const s = this.file.shares[info.uuid];
    const share: Share = s && s.share !== 'none' && this.shares.isShared(info.uuid, s.share) ? s.share : 'none';
    return {
      uuid: info.uuid,
      sourceReplica: info.source,
      pool: info.pool,
      sizeBytes: info.sizeBytes,
      referencedBytes: info.referencedBytes,
      createdAt: new Date(info.createTime * 1000).toISOString(),
      readyAsSource: true,
      group: info.group,
      children: info.children,
      share,
      allowedHosts: s ? [...s.allowedHosts] : [],
      uri: this.shares.deviceUri(info.uuid, share),
    };
  }

  /** Every snapshot in the online pools of this node. */
  private async all(): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (const pool of this.pools.names()) {
      if (!this.pools.isOnline(pool)) continue;
      try {
        out.push(...(await this.ctx.dp.poolSnapshots(pool)));
      } catch (e) {
        throw fromNative(e, `pool '${pool}': listing snapshots`);
      }
    }
    return out.sort((a, b) => a.createTime - b.createTime || a.uuid.localeCompare(b.uuid));
  }

  async list(): Promise<Snapshot[]> {
    return (await this.all()).map((i) => this.toObject(i));
  }

  async listOf(replicaParam: string): Promise<Snapshot[]> {
    const replica = validateUuid('uuid', replicaParam);
    if (!this.replicas.has(replica)) throw notFound(`replica '${replica}' does not exist`);
    return (await this.all()).filter((i) => i.source === replica).map((i) => this.toObject(i));
  }

  async get(uuidParam: string): Promise<Snapshot> {
    const uuid = validateUuid('snapshotUuid', uuidParam);
    const info = await this.stat(uuid);
    if (!info) throw notFound(`snapshot '${uuid}' does not exist`);
    return this.toObject(info);
  }

  /** A snapshot of `replica`, 404 naming what is missing. */
  private async ofReplica(replica: string, uuid: string): Promise<SnapshotInfo> {
    if (!this.replicas.has(replica)) throw notFound(`replica '${replica}' does not exist`);
    const info = await this.stat(uuid);
    if (!info || info.source !== replica) throw notFound(`snapshot '${uuid}' of replica '${replica}' does not exist`);
    return info;
  }

  async getOf(replicaParam: string, uuidParam: string): Promise<Snapshot> {
    const replica = validateUuid('uuid', replicaParam);
    const uuid = validateUuid('snapshotUuid', uuidParam);
    return this.toObject(await this.ofReplica(replica, uuid));
  }

  private parseShareBody(body: unknown, cur?: ShareRecord): ShareRecord | undefined {
    if (body === undefined || body === null || body === '') return undefined;
    const o = requireObject(body, ['share', 'allowedHosts']);
    if (o.share === undefined && o.allowedHosts === undefined) return undefined;
    const share = o.share === undefined ? (cur?.share ?? 'none') : validateShare('share', o.share);
    const allowedHosts =
      o.allowedHosts === undefined || o.allowedHosts === null
        ? o.share === undefined
          ? (cur?.allowedHosts ?? [])
          : []
        : validateHosts('allowedHosts', o.allowedHosts, share);
    return { share, allowedHosts };
  }

  /** Export a snapshot read-only (or unexport it with "none"), and remember it. */
  private async applyShare(uuid: string, s: ShareRecord): Promise<void> {
    try {
      await this.shares.apply(uuid, s.share, s.allowedHosts);
    } catch (e) {
      throw fromNative(e, `snapshot '${uuid}': share ${s.share}`);
    }
    if (s.share === 'none') delete this.file.shares[uuid];
    else this.file.shares[uuid] = s;
    await this.save();
  }

  /** PUT /v1/replicas/{uuid}/snapshots/{snapshotUuid}: 201 new, 200 the same again, 409 the uuid is taken. */
  async put(replicaParam: string, uuidParam: string, body: unknown): Promise<{ status: number; snapshot: Snapshot }> {
    const replica = validateUuid('uuid', replicaParam);
    const uuid = validateUuid('snapshotUuid', uuidParam);
    const want = this.parseShareBody(body);
    return this.ctx.lock.run(async () => {
      if (!this.replicas.has(replica)) throw notFound(`replica '${replica}' does not exist`);
      if (want) this.shares.check(want.share);
      const have = await this.stat(uuid);
      if (have) {
        if (have.source !== replica) throw conflict(`snapshot uuid '${uuid}' is taken by a snapshot of replica '${have.source}'`, 'snapshotUuid');
        if (want) await this.applyShare(uuid, want);
        return { status: 200, snapshot: this.toObject((await this.stat(uuid)) ?? have) };
      }
      if (this.replicas.has(uuid) || this.nexuses.uuids().includes(uuid))
        throw conflict(`uuid '${uuid}' is taken by a ${this.replicas.has(uuid) ? 'replica' : 'nexus'} on this node`, 'snapshotUuid');
      if (this.file.volumes[uuid]) throw conflict(`uuid '${uuid}' is taken by a volume snapshot of nexus '${this.file.volumes[uuid].nexus}'`, 'snapshotUuid');
      try {
        await this.ctx.dp.snapshotCreate(replica, uuid, '');
      } catch (e) {
        const err = fromNative(e, `snapshot '${uuid}' of replica '${replica}'`);
        throw err.status === 404 ? notFound(err.message) : err;
      }
      this.ctx.log.info('snapshot.created', { snapshot: uuid, replica });
      if (want && want.share !== 'none') {
        try {
          await this.applyShare(uuid, want);
        } catch (e) {
          await this.ctx.dp.snapshotDestroy(uuid).catch((d) => this.ctx.log.error('snapshot.rollback_failed', { snapshot: uuid, error: (d as Error).message }));
          throw e;
        }
      }
      const info = await this.stat(uuid);
      if (!info) throw new ApiError(500, 'internal', `snapshot '${uuid}' vanished after it was created`);
      return { status: 201, snapshot: this.toObject(info) };
    });
  }

  /** PATCH /v1/snapshots/{uuid} {share, allowedHosts}: a read-only export of the snapshot. */
  async patch(uuidParam: string, body: unknown): Promise<Snapshot> {
    const uuid = validateUuid('snapshotUuid', uuidParam);
    const want = this.parseShareBody(body ?? {}, this.file.shares[uuid]);
    return this.ctx.lock.run(async () => {
      const info = await this.stat(uuid);
      if (!info) throw notFound(`snapshot '${uuid}' does not exist`);
      if (want) await this.applyShare(uuid, want);
      return this.toObject(info);
    });
  }

  private async destroyOne(info: SnapshotInfo): Promise<void> {
    if (info.nchildren > 1)
      throw conflict(
        `snapshot '${info.uuid}' has ${info.nchildren} children (${info.children.join(', ')}${info.children.length < info.nchildren ? ', ...' : ''}); delete its clones first`,
      );
    const s = this.file.shares[info.uuid];
    if (s && s.share !== 'none')
      await this.shares.unshare(info.uuid).catch((e) => {
        throw fromNative(e, `snapshot '${info.uuid}': unshare`);
      });
    try {
      await this.ctx.dp.snapshotDestroy(info.uuid);
    } catch (e) {
      if (s && s.share !== 'none') await this.shares.apply(info.uuid, s.share, s.allowedHosts).catch(() => undefined);
      if (isNative(e, 'ENOENT')) return;
      throw fromNative(e, `snapshot '${info.uuid}'`);
    }
    if (s) {
      delete this.file.shares[info.uuid];
      await this.save();
    }
    this.ctx.log.info('snapshot.destroyed', { snapshot: info.uuid, replica: info.source });
  }

  /** DELETE /v1/snapshots/{uuid}: by uuid alone, so a snapshot whose replica was deleted first can still go. */
  async deleteByUuid(uuidParam: string): Promise<void> {
    const uuid = validateUuid('snapshotUuid', uuidParam);
    await this.ctx.lock.run(async () => {
      const info = await this.stat(uuid);
      if (!info) throw notFound(`snapshot '${uuid}' does not exist`);
      await this.destroyOne(info);
    });
  }

  async delete(replicaParam: string, uuidParam: string): Promise<void> {
    const replica = validateUuid('uuid', replicaParam);
    const uuid = validateUuid('snapshotUuid', uuidParam);
    await this.ctx.lock.run(async () => this.destroyOne(await this.ofReplica(replica, uuid)));
  }

  // ---- clones and revert (called by ReplicaService) ----------------------------------------------

  /** The snapshot a clone is made from, 422 naming the field when the request does not fit it. */
  async cloneSource(uuid: string, spec: { pool?: string; sizeBytes?: number; thin?: boolean }): Promise<SnapshotInfo> {
    const info = await this.stat(uuid);
    if (!info) throw unprocessable('source.snapshot', `source.snapshot: snapshot '${uuid}' does not exist on this node`);
    if (spec.pool !== undefined && spec.pool !== info.pool)
      throw unprocessable('pool', `pool: a clone lives in its snapshot's pool '${info.pool}', not '${spec.pool}'`);
    if (spec.sizeBytes !== undefined && spec.sizeBytes !== info.sizeBytes)
      throw unprocessable('sizeBytes', `sizeBytes: a clone has its snapshot's size ${info.sizeBytes}, not ${spec.sizeBytes} (grow it with PATCH afterwards)`);
    if (spec.thin === false) throw unprocessable('thin', "thin: a clone is thin (it shares its snapshot's clusters); omit thin or give true");
    return info;
  }

  /** Is `snapshot` in the parent chain that starts at `parent`? */
  async inChain(parent: string, snapshot: string): Promise<boolean> {
    for (let p = parent, n = 0; p && n < 1000; n++) {
      if (p === snapshot) return true;
      const info = await this.stat(p);
      p = info?.parent ?? '';
    }
    return false;
  }

  // ---- volume snapshots ------------------------------------------------------------------------

  private validateVolumeBody(body: unknown): { deadlineMs: number; skipUnhealthy: boolean } {
    if (body === undefined || body === null || body === '') return { deadlineMs: DEFAULT_DEADLINE_MS, skipUnhealthy: false };
    const o = requireObject(body, ['deadlineMs', 'skipUnhealthy']);
    let deadlineMs = DEFAULT_DEADLINE_MS;
    if (o.deadlineMs !== undefined) {
      if (typeof o.deadlineMs !== 'number' || !Number.isInteger(o.deadlineMs) || o.deadlineMs < 1 || o.deadlineMs > MAX_DEADLINE_MS)
        throw badRequest('deadlineMs', `deadlineMs must be an integer from 1 to ${MAX_DEADLINE_MS} (milliseconds the volume's I/O may be held)`);
      deadlineMs = o.deadlineMs;
      // the data-path call must end before the agent gives up on it (504), or the volume snapshot's outcome is unknown
      const limit = controlTimeoutMs() - 5000;
      if (deadlineMs > limit)
        throw unprocessable(
          'deadlineMs',
          `deadlineMs ${deadlineMs} exceeds what this agent waits for a data-path call (${limit} ms: MAYASTOR_CONTROL_TIMEOUT_MS - 5 s)`,
        );
    }
    return { deadlineMs, skipUnhealthy: o.skipUnhealthy === undefined ? false : validateBool('skipUnhealthy', o.skipUnhealthy) };
  }

  private static nodeOf(child: string): string | undefined {
    const m = /^(?:nvmf|nbd):\/\/([^/]+)\//.exec(child);
    return m ? m[1] : undefined;
  }

  private volume(nexus: string, uuid: string): VolumeSnapshot {
    const v = this.file.volumes[uuid];
    if (!v || v.nexus !== nexus) throw notFound(`volume snapshot '${uuid}' of nexus '${nexus}' does not exist`);
    return v;
  }

  async putVolume(nexusParam: string, uuidParam: string, body: unknown): Promise<{ status: number; snapshot: VolumeSnapshot }> {
    const nexus = validateUuid('uuid', nexusParam);
    const uuid = validateUuid('snapshotUuid', uuidParam);
    const opts = this.validateVolumeBody(body);
    return this.ctx.lock.run(async () => {
      if (!this.nexuses.uuids().includes(nexus)) throw notFound(`nexus '${nexus}' does not exist`);
      const have = this.file.volumes[uuid];
      if (have) {
        if (have.nexus !== nexus) throw conflict(`volume snapshot uuid '${uuid}' is taken by a snapshot of nexus '${have.nexus}'`, 'snapshotUuid');
        return { status: 200, snapshot: have };
      }
      if (this.replicas.has(uuid) || this.nexuses.uuids().includes(uuid) || (await this.stat(uuid)))
        throw conflict(`uuid '${uuid}' is taken by a replica, nexus or snapshot on this node`, 'snapshotUuid');
      let parts;
      try {
        parts = await this.ctx.dp.nexusSnapshot(nexus, uuid, opts.deadlineMs, opts.skipUnhealthy);
      } catch (e) {
        if (isNative(e, 'ENOENT')) throw notFound(`nexus '${nexus}' does not exist`);
        const err = fromNative(e, `nexus '${nexus}': volume snapshot '${uuid}'`, 'spec');
        this.ctx.log.warn('volume_snapshot.failed', { nexus, snapshot: uuid, error: err.message });
        throw err;
      }
      const replicas: VolumeSnapshotPart[] = parts.map((p) => {
        const node = SnapshotService.nodeOf(p.uri);
        return { child: p.uri, replica: p.replica, snapshot: p.snapshot, ...(node ? { node } : {}), ...(p.skipped ? { skipped: true } : {}) };
      });
      const v: VolumeSnapshot = { uuid, nexus, createdAt: new Date().toISOString(), replicas };
      this.file.volumes[uuid] = v;
      await this.save();
      this.ctx.log.info('volume_snapshot.created', { nexus, snapshot: uuid, parts: replicas.filter((r) => !r.skipped).length });
      return { status: 201, snapshot: v };
    });
  }

  async getVolume(nexusParam: string, uuidParam: string): Promise<VolumeSnapshot> {
    return this.volume(validateUuid('uuid', nexusParam), validateUuid('snapshotUuid', uuidParam));
  }

  async listVolume(nexusParam: string): Promise<VolumeSnapshot[]> {
    const nexus = validateUuid('uuid', nexusParam);
    return Object.values(this.file.volumes)
      .filter((v) => v.nexus === nexus)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * DELETE /v1/nexuses/{uuid}/snapshots/{snapshotUuid}: every part through the nexus (remote parts by the vendor
   * command); parts of children no longer in the nexus, or of a nexus that is gone, locally when they are here.
   * A part that cannot be deleted (clones of it, a remote part without its nexus) is 409 naming it; the record
   * stays until every part is gone.
   */
  async deleteVolume(nexusParam: string, uuidParam: string): Promise<void> {
    const nexus = validateUuid('uuid', nexusParam);
    const uuid = validateUuid('snapshotUuid', uuidParam);
    await this.ctx.lock.run(async () => {
      const v = this.volume(nexus, uuid);
      for (const p of v.replicas) {
        const info = p.skipped ? undefined : await this.stat(p.snapshot);
        if (info && info.nchildren > 1)
          throw conflict(
            `volume snapshot '${uuid}': part '${p.snapshot}' (replica '${p.replica}') has clones (${info.children.join(', ')}); delete them first`,
          );
      }
      const left: string[] = [];
      let viaNexus = false;
      let why = `nexus '${nexus}' is gone`;
      if (this.nexuses.uuids().includes(nexus)) {
        try {
          await this.ctx.dp.nexusSnapshotDestroy(nexus, uuid);
          viaNexus = true;
        } catch (e) {
          why = (e as Error).message;
          this.ctx.log.warn('volume_snapshot.destroy_via_nexus_failed', { nexus, snapshot: uuid, error: why });
        }
      }
      for (const p of v.replicas) {
        if (p.skipped) continue;
        const info = await this.stat(p.snapshot);
        if (info) await this.destroyOne(info);
        else if (!viaNexus && p.node) left.push(`${p.snapshot} (replica '${p.replica}' on ${p.node})`);
      }
      if (left.length)
        throw conflict(
          `volume snapshot '${uuid}': these parts were not deleted (${why}); delete them through their agents (DELETE /v1/replicas/{replica}/snapshots/{part}) or retry: ${left.join(', ')}`,
        );
      delete this.file.volumes[uuid];
      await this.save();
      this.ctx.log.info('volume_snapshot.destroyed', { nexus, snapshot: uuid });
    });
  }

  /** The uuid of a replica's part of a volume snapshot (the data path's rule). */
  static partUuid(group: string, replica: string): string {
    return volumeSnapshotPartUuid(group, replica);
  }
}
