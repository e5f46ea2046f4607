/**
 * replicas.ts - the replica service (logical volumes in a pool).
 *
 * PUT: new -> 201 with the object; the same spec again -> 200; a different spec -> 409 naming the
 * field (to grow a replica use PATCH). PATCH grows sizeBytes online (shrinking is 400) and changes
 * share/allowedHosts. share is "none", "nbd" or "nvmf" (iscsi: 422 not supported yet; nvmf without
 * --nvmf-listen: 422); the uri of an unshared replica is bdev:///<uuid>, of an NBD-shared one
 * nbd://<advertise-host>:<port>/<uuid>, of an NVMe/TCP-shared one nvmf://<advertise-host>:<port>/<nqn>.
 * allowedHosts are addresses for nbd, host NQNs for nvmf.
 * A replica a local nexus uses as a bdev:/// child cannot be destroyed (409).
 *
 * Sizes, thinness and allocation come from the pool metadata on disk; state.json only keeps the
 * share settings. On start-up, replicas are rebuilt from the imported pools: a replica on disk but not
 * in state.json (a crash right after create) is adopted with share "none"; a record whose replica is
 * gone from an online pool is dropped. The same happens whenever a pool comes (back) online through
 * PUT (imported after a fault, re-imported after a failure, adopted over a disk holding replicas):
 * its replicas are listed at once and their NBD shares re-created.
 *
 * The share and uri a replica reports are what is in effect: a replica whose spec says "nbd" but
 * whose export does not exist (its pool is faulted, re-sharing failed) reports share "none", its
 * bdev:/// uri and a `reason`; a PATCH or PUT asking for "nbd" then creates the export.
 *
 * Snapshots (issue 13, snapshots.ts): a PUT with {source: {snapshot}} creates a clone (thin, in the
 * snapshot's pool, of its size: a pool, sizeBytes or thin that differ are 422 naming the field); the
 * same PUT again is 200 while the snapshot is still in the replica's parent chain. POST .../revert
 * {snapshot} rolls a replica back in place (its uuid and incarnation stay): 409 while it is a nexus
 * child, a remote nexus's host holds its export's writer lease (dp_export_writer_lease: connected, or
 * within the writer grace after it dropped; the host named), or its export has connections (named); an export without connections is removed for the
 * revert and re-created after it. GET adds parent, incarnation and snapshotBytes. A clone of a
 * snapshot of a nexus child starts with a copy of that child's nexus label: it is marked released
 * (dp_nexus_label_release), so a new nexus over clones (a restored volume) needs no force.
 */
import type { Replica } from '../api/types';
import type { Context } from './context';
import type { SnapshotService } from './snapshots';
import { ApiError, badRequest, conflict, fromNative, notFound, unprocessable } from './errors';
import type { PoolService } from './pools';
import type { ShareService } from './shares';
import type { ReplicaRecord } from './state';
import {
  requireObject,
  validateBool,
  validateHosts,
  validateName,
  validateReplicaPatch,
  validateReplicaSpec,
  validateShare,
  validateSize,
  validateUuid,
} from './validation';

export class ReplicaService {
  private readonly records = new Map<string, ReplicaRecord>();
  /** Clones and reverts need the snapshot service (built with the routes, after this one). */
  snapshots: SnapshotService | undefined;

  /**
   * `usedBy`: the nexus on this node that has a replica as a child, if any (the nexus service answers; it is
   * built after this one, hence a function).
   */
  constructor(
    private readonly ctx: Context,
    private readonly pools: PoolService,
    private readonly shares: ShareService,
    private readonly usedBy: (uuid: string) => string | undefined,
  ) {
    pools.hooks = {
      closing: (pool) => this.poolClosing(pool),
      online: (pool) => this.poolOnline(pool),
    };
  }

  /** The export of a replica exists (over `share` when given). */
  private exported(uuid: string, share?: string): boolean {
    return this.shares.isShared(uuid, share);
  }

  /** A pool is about to be exported (re-import): remove its replicas' exports (the records keep the share). */
  private async poolClosing(pool: string): Promise<void> {
    for (const rec of this.records.values()) {
      if (rec.pool !== pool || !this.exported(rec.uuid)) continue;
      await this.shares!.unshare(rec.uuid).catch((e) => this.ctx.log.error('replica.unshare_failed', { replica: rec.uuid, error: (e as Error).message }));
    }
  }

  /**
   * A pool came (back) online: its replicas as the data path lists them (dp_pool_replica_at) become
   * the records at once (new ones adopted with share "none", sizes and thinness from the metadata,
   * records gone from the pool dropped), and the NBD shares of its replicas are re-created.
   */
  private async poolOnline(pool: string): Promise<void> {
    const infos = await this.ctx.dp.poolReplicas(pool);
    const seen = new Set<string>();
    let changed = false;
    for (const info of infos) {
      seen.add(info.uuid);
      let rec = this.records.get(info.uuid);
      if (rec && rec.pool !== pool) {
        this.ctx.log.error('replica.duplicate', { replica: info.uuid, pool, alsoIn: rec.pool });
        continue;
      }
      if (!rec) {
        rec = { uuid: info.uuid, pool, share: 'none', allowedHosts: [], sizeBytes: info.sizeBytes, thin: info.thin };
        this.records.set(rec.uuid, rec);
        this.ctx.state.replicas.push(rec);
        this.ctx.log.warn('replica.adopted', { replica: info.uuid, pool });
        changed = true;
      }
      if (rec.sizeBytes !== info.sizeBytes || rec.thin !== info.thin) changed = true;
      rec.sizeBytes = info.sizeBytes;
      rec.thin = info.thin;
    }
    for (const rec of [...this.records.values()]) {
      if (rec.pool !== pool || seen.has(rec.uuid)) continue;
      this.ctx.log.warn('replica.vanished', { replica: rec.uuid, pool });
      this.records.delete(rec.uuid);
      this.ctx.state.replicas = this.ctx.state.replicas.filter((r) => r !== rec);
      changed = true;
    }
    if (changed) await this.ctx.store.save(this.ctx.state);
    for (const rec of this.records.values()) {
      if (rec.pool !== pool || rec.share === 'none' || this.exported(rec.uuid, rec.share)) continue;
      try {
        await this.applyShare(rec.uuid, 'nbd', rec.allowedHosts);
        this.ctx.log.info('replica.share_restored', { replica: rec.uuid, pool });
      } catch (e) {
        this.ctx.log.error('replica.share_restore_failed', { replica: rec.uuid, error: (e as Error).message });
      }
    }
  }

  /** Re-export the NBD-shared replicas after a restart (after nexuses are reopened). */
  async restoreShares(): Promise<void> {
    for (const rec of this.records.values()) {
      if (rec.share === 'none') continue;
      if (!this.pools.isOnline(rec.pool)) {
        this.ctx.log.warn('replica.share_not_restored', { replica: rec.uuid, reason: `pool '${rec.pool}' is faulted` });
        continue;
      }
      try {
        await this.applyShare(rec.uuid, rec.share, rec.allowedHosts);
      } catch (e) {
        this.ctx.log.error('replica.share_restore_failed', { replica: rec.uuid, error: (e as Error).message });
      }
    }
  }

  private async applyShare(uuid: string, share: string, allowedHosts: string[]): Promise<void> {
    const nexus = share !== 'none' ? this.usedBy(uuid) : undefined;
    if (nexus)
      throw conflict(
        `replica '${uuid}' is a child of nexus '${nexus}' on this node; exporting it would let clients write behind the nexus (one writer per device)`,
        'share',
      );
    try {
      await this.shares.apply(uuid, share, allowedHosts);
    } catch (e) {
      throw fromNative(e, `replica '${uuid}': share ${share}`);
    }
  }

  private uriOf(rec: ReplicaRecord): string {
    return this.shares.deviceUri(rec.uuid, rec.share);
  }

  async recover(): Promise<void> {
    const byUuid = new Map(this.ctx.state.replicas.map((r) => [r.uuid, r]));
    const keep: ReplicaRecord[] = [];
    const seenOnDisk = new Set<string>();
    for (const pool of this.pools.names()) {
      if (!this.pools.isOnline(pool)) continue;
      let infos;
      try {
        infos = await this.ctx.dp.poolReplicas(pool);
      } catch (e) {
        this.ctx.log.error('replica.list_failed', { pool, error: e as Error });
        continue;
      }
      for (const info of infos) {
        seenOnDisk.add(info.uuid);
        let rec = byUuid.get(info.uuid);
        if (!rec) {
          rec = { uuid: info.uuid, pool, share: 'none', allowedHosts: [], sizeBytes: info.sizeBytes, thin: info.thin };
          this.ctx.log.warn('replica.adopted', { replica: info.uuid, pool });
        }
        rec.pool = pool;
        rec.sizeBytes = info.sizeBytes;
        rec.thin = info.thin;
        keep.push(rec);
      }
    }
    for (const r of this.ctx.state.replicas) {
      if (seenOnDisk.has(r.uuid)) continue;
      if (this.pools.entry(r.pool) && !this.pools.isOnline(r.pool))
        keep.push(r); // faulted pool: keep the record
      else this.ctx.log.warn('replica.vanished', { replica: r.uuid, pool: r.pool });
    }
    this.ctx.state.replicas = keep;
    for (const r of keep) this.records.set(r.uuid, r);
    await this.ctx.store.save(this.ctx.state);
    this.ctx.log.info('replicas.recovered', { count: keep.length });
  }

  /** A replica with this uuid is recorded here. */
  has(uuid: string): boolean {
    return this.records.has(uuid);
  }

  /** uuids of the replicas recorded in a pool. */
  inPool(pool: string): string[] {
    return [...this.records.values()].filter((r) => r.pool === pool).map((r) => r.uuid);
  }

  uuids(): string[] {
    return [...this.records.keys()].sort();
  }

  private async toObject(rec: ReplicaRecord): Promise<Replica> {
    let sizeBytes = rec.sizeBytes;
    let thin = rec.thin;
    let allocatedBytes = 0;
    let lineage: Pick<Replica, 'parent' | 'incarnation' | 'snapshotBytes'> = {};
    if (this.pools.isOnline(rec.pool)) {
      try {
        const st = await this.ctx.dp.replicaStat(rec.uuid);
        sizeBytes = st.sizeBytes;
        thin = st.thin;
        allocatedBytes = st.allocatedBytes;
        lineage = { ...(st.parent ? { parent: st.parent } : {}), ...(st.incarnation ? { incarnation: st.incarnation } : {}), snapshotBytes: st.snapshotBytes };
      } catch (e) {
        throw fromNative(e, `replica '${rec.uuid}'`);
      }
    }
    // share and uri: what is in effect (the export exists), not only what was asked for
    const inEffect = rec.share !== 'none' && !this.exported(rec.uuid, rec.share) ? 'none' : rec.share;
    return {
      uuid: rec.uuid,
      pool: rec.pool,
      sizeBytes,
      thin,
      share: inEffect,
      allowedHosts: [...rec.allowedHosts],
      uri: this.uriOf(rec),
      allocatedBytes,
      ...lineage,
      ...(inEffect !== rec.share
        ? {
            reason: `share '${rec.share}' is not in effect (no export)${this.pools.isOnline(rec.pool) ? '' : `: pool '${rec.pool}' is faulted`}; PUT or PATCH the share to re-create it`,
          }
        : {}),
    };
  }

  async list(): Promise<Replica[]> {
    const out: Replica[] = [];
    for (const u of this.uuids()) {
      const rec = this.records.get(u);
      if (rec) out.push(await this.toObject(rec));
    }
    return out;
  }

  async get(uuidParam: string): Promise<Replica> {
    const uuid = validateUuid('uuid', uuidParam);
    const rec = this.records.get(uuid);
    if (!rec) throw notFound(`replica '${uuid}' does not exist`);
    return this.toObject(rec);
  }

  async put(uuidParam: string, body: unknown): Promise<{ status: number; replica: Replica }> {
    const uuid = validateUuid('uuid', uuidParam);
    if (body && typeof body === 'object' && !Array.isArray(body) && 'source' in body) return this.putClone(uuid, body as Record<string, unknown>);
    const spec = validateReplicaSpec(body);
    return this.ctx.lock.run(async () => {
      const existing = this.records.get(uuid);
      if (existing) {
        const cur = { ...(await this.toObject(existing)), share: existing.share };
        const diff =
          cur.pool !== spec.pool
            ? 'pool'
            : cur.sizeBytes !== spec.sizeBytes
              ? 'sizeBytes'
              : cur.thin !== spec.thin
                ? 'thin'
                : cur.share !== spec.share
                  ? 'share'
                  : JSON.stringify(cur.allowedHosts) !== JSON.stringify(spec.allowedHosts)
                    ? 'allowedHosts'
                    : undefined;
        if (diff) {
          const have = (cur as unknown as Record<string, unknown>)[diff];
          const want = (spec as unknown as Record<string, unknown>)[diff];
          throw conflict(
            `replica '${uuid}' already exists with ${diff} ${JSON.stringify(have)}; requested ${JSON.stringify(want)}` +
              (diff === 'sizeBytes' ? ' (grow it with PATCH)' : ''),
            diff,
          );
        }
        if (existing.share !== 'none' && !this.exported(uuid, existing.share)) {
          // the spec asks for an export that does not exist (its pool came back, a share failed): converge
          if (!this.pools.isOnline(existing.pool)) throw unprocessable('share', `pool '${existing.pool}' is faulted`);
          await this.applyShare(uuid, existing.share, existing.allowedHosts);
          this.ctx.log.info('replica.share_restored', { replica: uuid });
        }
        return { status: 200, replica: await this.toObject(existing) };
      }
      this.shares.check(spec.share); // a share this agent cannot make: 422 before anything is created
      const pool = this.pools.entry(spec.pool);
      if (!pool) throw unprocessable('pool', `pool '${spec.pool}' does not exist`);
      if (pool.state !== 'online') throw unprocessable('pool', `pool '${spec.pool}' is faulted: ${pool.reason}`);
      const dps = await this.pools.dataPathState(spec.pool).catch(() => undefined);
      if (dps?.state === 'failed') throw unprocessable('pool', `pool '${spec.pool}' is failed (${dps.reason}); PUT the pool again to re-import it`);
      try {
        await this.ctx.dp.replicaCreate(spec.pool, uuid, spec.sizeBytes, spec.thin);
      } catch (e) {
        const err = fromNative(e, `replica '${uuid}' in pool '${spec.pool}'`);
        if (err.status === 507) {
          throw new ApiError(507, 'no_space', `sizeBytes: ${err.message}`, 'sizeBytes');
        }
        throw err;
      }
      if (spec.share !== 'none') {
        try {
          await this.applyShare(uuid, spec.share, spec.allowedHosts);
        } catch (e) {
          // nothing half-created: the replica goes again
          await this.ctx.dp.replicaDestroy(uuid).catch((d) => this.ctx.log.error('replica.rollback_failed', { replica: uuid, error: d as Error }));
          throw e;
        }
      }
      const rec: ReplicaRecord = {
        uuid,
        pool: spec.pool,
        share: spec.share,
        allowedHosts: spec.allowedHosts,
        sizeBytes: spec.sizeBytes,
        thin: spec.thin,
      };
      this.records.set(uuid, rec);
      this.ctx.state.replicas.push(rec);
      await this.ctx.store.save(this.ctx.state);
      this.ctx.log.info('replica.created', { replica: uuid, pool: spec.pool, sizeBytes: spec.sizeBytes, thin: spec.thin });
      return { status: 201, replica: await this.toObject(rec) };
    });
  }

  /** PUT with {source: {snapshot}}: a clone of a snapshot (see the header). */
  private async putClone(uuid: string, body: Record<string, unknown>): Promise<{ status: number; replica: Replica }> {
    const o = requireObject(body, ['source', 'pool', 'sizeBytes', 'thin', 'share', 'allowedHosts']);
    const src = o.source;
    if (!src || typeof src !== 'object' || Array.isArray(src)) throw badRequest('source', 'source must be an object {"snapshot": "<uuid>"}');
    const so = requireObject(src, ['snapshot']);
    if (!('snapshot' in so)) throw badRequest('source.snapshot', 'source.snapshot is required');
    const snapshot = validateUuid('source.snapshot', so.snapshot);
    const pool = o.pool === undefined ? undefined : validateName('pool', o.pool);
    const sizeBytes = o.sizeBytes === undefined ? undefined : validateSize('sizeBytes', o.sizeBytes);
    const thin = o.thin === undefined ? undefined : validateBool('thin', o.thin);
    const share = o.share === undefined ? 'none' : validateShare('share', o.share);
    const allowedHosts = o.allowedHosts === undefined || o.allowedHosts === null ? [] : validateHosts('allowedHosts', o.allowedHosts, share);
    const snaps = this.snapshots;
    if (!snaps) throw new ApiError(500, 'internal', 'clones: the snapshot service is not running');
    return this.ctx.lock.run(async () => {
      const existing = this.records.get(uuid);
      if (existing) {
        const cur = await this.toObject(existing);
        if (!cur.parent || !(await snaps.inChain(cur.parent, snapshot)))
          throw conflict(`replica '${uuid}' already exists and is not a clone of source.snapshot '${snapshot}'`, 'source');
        return { status: 200, replica: cur };
      }
      this.shares.check(share);
      const info = await snaps.cloneSource(snapshot, { pool, sizeBytes, thin });
      if (!this.pools.isOnline(info.pool)) throw unprocessable('pool', `pool '${info.pool}' is faulted`);
      try {
        await this.ctx.dp.replicaClone(uuid, snapshot);
      } catch (e) {
        const err = fromNative(e, `clone '${uuid}' of snapshot '${snapshot}'`);
        if (err.status === 507) throw new ApiError(507, 'no_space', `sizeBytes: ${err.message}`, 'sizeBytes');
        throw err;
      }
      // a clone of a nexus child's snapshot carries that child's nexus label: released, a new nexus takes it (restore)
      try {
        if (await this.ctx.dp.nexusLabelRelease(`bdev:///${uuid}`)) this.ctx.log.info('replica.clone_label_released', { replica: uuid });
      } catch (e) {
        await this.ctx.dp.replicaDestroy(uuid).catch((d) => this.ctx.log.error('replica.rollback_failed', { replica: uuid, error: d as Error }));
        throw fromNative(e, `clone '${uuid}': releasing the nexus label it carries`);
      }
      if (share !== 'none') {
        try {
          await this.applyShare(uuid, share, allowedHosts);
        } catch (e) {
          await this.ctx.dp.replicaDestroy(uuid).catch((d) => this.ctx.log.error('replica.rollback_failed', { replica: uuid, error: d as Error }));
          throw e;
        }
      }
      const rec: ReplicaRecord = { uuid, pool: info.pool, share, allowedHosts, sizeBytes: info.sizeBytes, thin: true };
      this.records.set(uuid, rec);
      this.ctx.state.replicas.push(rec);
      await this.ctx.store.save(this.ctx.state);
      this.ctx.log.info('replica.cloned', { replica: uuid, snapshot, pool: info.pool });
      return { status: 201, replica: await this.toObject(rec) };
    });
  }

  /** POST /v1/replicas/{uuid}/revert {snapshot}: roll back in place (see the header). */
  async revert(uuidParam: string, body: unknown): Promise<Replica> {
    const uuid = validateUuid('uuid', uuidParam);
    const o = requireObject(body ?? {}, ['snapshot']);
    if (!('snapshot' in o)) throw badRequest('snapshot', 'snapshot is required');
    const snapshot = validateUuid('snapshot', o.snapshot);
    return this.ctx.lock.run(async () => {
      const rec = this.records.get(uuid);
      if (!rec) throw notFound(`replica '${uuid}' does not exist`);
      if (!this.pools.isOnline(rec.pool)) throw conflict(`replica '${uuid}': pool '${rec.pool}' is faulted`);
      const nexus = this.usedBy(uuid);
      if (nexus) throw conflict(`replica '${uuid}' is a child of nexus '${nexus}'; remove it from the nexus (or delete the nexus) before reverting it`);
      // a remote nexus holding the export's writer lease may come back within the grace to a rolled-back replica
      const lease = await this.ctx.dp.writerLease(uuid);
      if (lease) {
        const state = lease.connected ? 'connected' : `${Math.ceil(lease.graceLeftMs / 1000)} s grace left`;
        throw conflict(
          `replica '${uuid}' serves nexus host ${lease.host} (writer lease over ${lease.proto}, ${state}); revert after the nexus is deleted or the grace passes`,
        );
      }
      const exported = this.exported(uuid);
      if (exported) {
        const conns = (await this.shares.connections()).filter((c) => c.name === uuid || c.name.endsWith(`:${uuid}`));
        const n = conns.reduce((a, c) => a + c.connections, 0);
        if (n > 0)
          throw conflict(
            `replica '${uuid}' is exported (${conns.map((c) => `${c.protocol} ${c.name}`).join(', ')}) with ${n} connection(s); disconnect them or unshare it before reverting`,
          );
        await this.applyShare(uuid, 'none', []);
      }
      try {
        await this.ctx.dp.replicaRevert(uuid, snapshot);
      } catch (e) {
        const err = fromNative(e, `replica '${uuid}': revert to snapshot '${snapshot}'`);
        if (exported) await this.applyShare(uuid, rec.share, rec.allowedHosts).catch(() => undefined);
        throw err.status === 404 ? unprocessable('snapshot', err.message) : err;
      }
      if (exported) await this.applyShare(uuid, rec.share, rec.allowedHosts);
      this.ctx.log.info('replica.reverted', { replica: uuid, snapshot });
      return this.toObject(rec);
    });
  }

  async patch(uuidParam: string, body: unknown): Promise<Replica> {
    const uuid = validateUuid('uuid', uuidParam);
    const patch = validateReplicaPatch(body);
    return this.ctx.lock.run(async () => {
      const rec = this.records.get(uuid);
      if (!rec) throw notFound(`replica '${uuid}' does not exist`);
      if (patch.sizeBytes !== undefined) {
        const cur = await this.toObject(rec);
        if (patch.sizeBytes < cur.sizeBytes) {
          throw badRequest('sizeBytes', `sizeBytes ${patch.sizeBytes} is smaller than the current size ${cur.sizeBytes}: replicas cannot shrink`);
        }
        if (patch.sizeBytes > cur.sizeBytes) {
          if (!this.pools.isOnline(rec.pool)) throw unprocessable('pool', `pool '${rec.pool}' is faulted`);
          try {
            await this.ctx.dp.replicaResize(uuid, patch.sizeBytes);
          } catch (e) {
            const err = fromNative(e, `replica '${uuid}'`);
            if (err.status === 507) throw new ApiError(507, 'no_space', `sizeBytes: ${err.message}`, 'sizeBytes');
            throw err;
          }
          rec.sizeBytes = patch.sizeBytes;
          this.ctx.log.info('replica.resized', { replica: uuid, sizeBytes: patch.sizeBytes });
        }
      }
      const share = patch.share ?? rec.share;
      const hosts = patch.allowedHosts ?? rec.allowedHosts;
      if (patch.allowedHosts !== undefined)
        validateHosts('allowedHosts', hosts, share); // nbd wants addresses, nvmf host NQNs
      else if (share !== rec.share && share !== 'none') {
        try {
          validateHosts('allowedHosts', hosts, share);
        } catch {
          throw badRequest(
            'allowedHosts',
            `allowedHosts ${JSON.stringify(hosts)} are for share '${rec.share}'; give allowedHosts for share '${share}' in the same PATCH`,
          );
        }
      }
      const missing = share !== 'none' && !this.exported(uuid, share); // asked for, not in effect: re-create it
      if (share !== rec.share || missing || (share !== 'none' && JSON.stringify(hosts) !== JSON.stringify(rec.allowedHosts))) {
        if (share !== 'none' && !this.pools.isOnline(rec.pool)) throw unprocessable('share', `pool '${rec.pool}' is faulted`);
        await this.applyShare(uuid, share, hosts);
        this.ctx.log.info('replica.share_changed', { replica: uuid, share, allowedHosts: hosts });
      }
      rec.share = share;
      rec.allowedHosts = hosts;
      await this.ctx.store.save(this.ctx.state);
      return this.toObject(rec);
    });
  }

  async delete(uuidParam: string): Promise<void> {
    const uuid = validateUuid('uuid', uuidParam);
    await this.ctx.lock.run(async () => {
      const rec = this.records.get(uuid);
      if (!rec) throw notFound(`replica '${uuid}' does not exist`);
      if (!this.pools.isOnline(rec.pool)) {
        throw conflict(`replica '${uuid}': pool '${rec.pool}' is faulted; the replica cannot be destroyed until it is back`);
      }
      const nexus = this.usedBy(uuid);
      if (nexus) throw conflict(`replica '${uuid}' is a child of nexus '${nexus}' (bdev:///${uuid}); remove it from the nexus first`);
      if (rec.share !== 'none') await this.applyShare(uuid, 'none', []);
      try {
        await this.ctx.dp.replicaDestroy(uuid);
      } catch (e) {
        const err = fromNative(e, `replica '${uuid}'`);
        if (err.status !== 404) {
          if (rec.share !== 'none') await this.applyShare(uuid, rec.share, rec.allowedHosts).catch(() => undefined);
          throw err;
        }
        // gone on disk already: just forget it
      }
      this.records.delete(uuid);
      this.ctx.state.replicas = this.ctx.state.replicas.filter((r) => r.uuid !== uuid);
      await this.ctx.store.save(this.ctx.state);
      this.ctx.log.info('replica.destroyed', { replica: uuid, pool: rec.pool });
    });
  }
}
