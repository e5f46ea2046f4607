/**
 * pools.ts - the pool service. PUT is idempotent: a new pool answers 201, the same spec again
 * answers 200 with the object, a different spec (other disks) answers 409.
 *
 * A pool's identity on disk is its label (name + uuid). When PUT names disks that already carry a
 * label of the *same* pool name (the agent crashed between creating the pool and recording it, or
 * the disks moved from another agent), the pool is imported instead of created: reapplying converges.
 * A disk carrying another pool's label answers 409.
 *
 * Start-up recovery re-imports every pool of state.json; a pool whose disks cannot be opened is kept
 * as state "faulted" with the reason, and the others keep serving. PUT of the same spec retries the
 * import; DELETE of a faulted pool forgets it (its disks are not touched).
 *
 * The state GET reports is read from the data path (dp_pool_stat): "online", "failed" (a metadata
 * write failed: the data path allocates nothing more; the reason says what failed) or "faulted"
 * (not imported). PUT of the same spec of a failed pool re-imports it (export + import: the
 * metadata on disk is the last durable commit); whenever a pool comes (back) online through PUT,
 * the replica service is told (`hooks.online`): the pool's replicas are listed at once and their
 * NBD shares re-created.
 */
import type { Pool } from '../api/types';
import type { Context } from './context';
import { ApiError, badRequest, conflict, fromNative, notFound } from './errors';
import { NativeError, PoolInfo } from './native';
import type { PoolRecord } from './state';
import { checkDisk, validateName, validatePoolSpec } from './validation';

interface PoolEntry {
  record: PoolRecord;
  /** Imported in the data path ("online": it may still be failed there; see dataPathState) or not. */
  state: 'online' | 'faulted';
  reason?: string;
}

/** What the replica service does when a pool goes away and comes back (set by ReplicaService). */
export interface PoolHooks {
  /** Before a pool is exported to be re-imported: close what holds its replicas open (NBD shares). */
  closing(pool: string): Promise<void>;
  /** A pool came (back) online: list its replicas from the data path, re-create their shares. */
  online(pool: string): Promise<void>;
}

export class PoolService {
  private readonly pools = new Map<string, PoolEntry>();
  hooks: PoolHooks | undefined;

  constructor(private readonly ctx: Context) {}

  /**
   * Retry the pools that are faulted (start-up, after every share was restored: a pool on an nbd://
   * export of this agent can only be opened once that export exists), as long as one comes back.
   */
  async retryFaulted(): Promise<void> {
    for (let progress = true; progress;) {
      progress = false;
      for (const entry of this.pools.values()) {
        if (entry.state !== 'faulted') continue;
        await this.ctx.lock.run(async () => {
          if (entry.state !== 'faulted' || this.pools.get(entry.record.name) !== entry) return;
          if (!(await this.tryImport(entry))) return;
          progress = true;
          await this.cameOnline(entry.record.name);
        });
      }
    }
  }

  private async cameOnline(name: string): Promise<void> {
    try {
      await this.hooks?.online(name);
    } catch (e) {
      this.ctx.log.error('pool.online_hook_failed', { pool: name, error: (e as Error).message });
    }
  }

  /** The state in the data path of an imported pool: failed after a metadata write error. */
  async dataPathState(name: string): Promise<{ state: 'online' | 'failed' | 'faulted'; reason?: string }> {
    const entry = this.pools.get(name);
    if (!entry) return { state: 'faulted', reason: 'unknown pool' };
    if (entry.state !== 'online') return { state: 'faulted', reason: entry.reason };
    const st = await this.ctx.dp.poolStat(name);
    return st.state === 'failed' ? { state: 'failed', reason: st.reason } : { state: 'online' };
  }

  /** Export a failed pool and import it again (its replicas come back; shares are re-created). */
  private async reimport(entry: PoolEntry, why: string): Promise<void> {
    const name = entry.record.name;
    this.ctx.log.warn('pool.reimporting', { pool: name, reason: why });
    await this.hooks?.closing(name);
    try {
      await this.ctx.dp.poolExport(name);
    } catch (e) {
      await this.cameOnline(name); // still imported (failed): put the shares back
      const err = fromNative(e, `pool '${name}'`);
      throw new ApiError(err.status, err.code, `pool '${name}' is failed (${why}) and cannot be re-imported: ${err.message}`);
    }
    entry.state = 'faulted';
    entry.reason = `re-importing after: ${why}`;
    if (await this.tryImport(entry)) await this.cameOnline(name);
  }

  /** Re-import the pools of state.json (start-up). Never throws: failures fault the pool. */
  async recover(): Promise<void> {
    for (const record of this.ctx.state.pools) {
      const entry: PoolEntry = { record, state: 'online' };
      this.pools.set(record.name, entry);
      await this.tryImport(entry);
    }
  }

  /** Import a faulted pool; true once it is online. */
  private async tryImport(entry: PoolEntry): Promise<boolean> {
    const { record } = entry;
    try {
      const uuid = await this.ctx.dp.poolImport(record.name, record.devices);
      if (record.uuid && uuid !== record.uuid) {
        await this.ctx.dp.poolExport(record.name).catch(() => undefined);
        throw new Error(`pool '${record.name}': disks carry pool uuid ${uuid}, state.json expects ${record.uuid}`);
      }
      entry.state = 'online';
      entry.reason = undefined;
      this.ctx.log.info('pool.imported', { pool: record.name, uuid, disks: record.disks });
      return true;
    } catch (e) {
      entry.state = 'faulted';
      entry.reason = (e as Error).message || String(e);
      this.ctx.log.error('pool.faulted', { pool: record.name, disks: record.disks, reason: entry.reason });
      return false;
    }
  }

  isOnline(name: string): boolean {
    return this.pools.get(name)?.state === 'online';
  }

  entry(name: string): PoolEntry | undefined {
    return this.pools.get(name);
  }

  names(): string[] {
    return [...this.pools.keys()].sort();
  }

  async stat(name: string): Promise<PoolInfo | undefined> {
    if (!this.isOnline(name)) return undefined;
    return this.ctx.dp.poolStat(name);
  }

  private async toObject(entry: PoolEntry): Promise<Pool> {
    const { record } = entry;
    if (entry.state === 'online') {
      try {
        const st = await this.ctx.dp.poolStat(record.name);
        return {
          name: record.name,
          uuid: st.uuid || record.uuid,
          disks: [...record.disks],
          state: st.state,
          capacityBytes: st.capacityBytes,
          usedBytes: st.usedBytes,
          ...(st.state === 'failed'
            ? { reason: `${st.reason || 'metadata write failed'}; allocations fail with EIO until it is re-imported (PUT the pool again)` }
            : {}),
        };
      } catch (e) {
        entry.state = 'faulted';
        entry.reason = (e as Error).message;
        this.ctx.log.error('pool.faulted', { pool: record.name, reason: entry.reason });
      }
    }
    return {
      name: record.name,
      uuid: record.uuid,
      disks: [...record.disks],
      state: 'faulted',
      capacityBytes: 0,
      usedBytes: 0,
      reason: entry.reason ?? 'unknown',
    };
  }

  async list(): Promise<Pool[]> {
    const out: Pool[] = [];
    for (const name of this.names()) out.push(await this.toObject(this.pools.get(name)!));
    return out;
  }

  async get(nameParam: string): Promise<Pool> {
    const name = validateName('name', nameParam);
    const entry = this.pools.get(name);
    if (!entry) throw notFound(`pool '${name}' does not exist`);
    return this.toObject(entry);
  }

  async put(nameParam: string, body: unknown): Promise<{ status: number; pool: Pool }> {
    const name = validateName('name', nameParam);
    const spec = validatePoolSpec(body);
    return this.ctx.lock.run(async () => {
      const existing = this.pools.get(name);
      if (existing) {
        const same = existing.record.disks.length === spec.disks.length && existing.record.disks.every((d, i) => d === spec.disks[i]);
        if (!same) {
          throw conflict(`pool '${name}' already exists with disks ${JSON.stringify(existing.record.disks)}; requested ${JSON.stringify(spec.disks)}`, 'disks');
        }
        if (existing.state === 'faulted') {
          if (await this.tryImport(existing)) await this.cameOnline(name);
        } else {
          let st: PoolInfo | undefined;
          try {
            st = await this.ctx.dp.poolStat(name);
          } catch (e) {
            throw fromNative(e, `pool '${name}'`);
          }
          if (st.state === 'failed') await this.reimport(existing, st.reason || 'metadata write failed');
        }
        return { status: 200, pool: await this.toObject(existing) };
      }

      const allow = this.ctx.config.allowDisks;
      const devices = spec.disks.map((d, i) => checkDisk(`disks[${i}]`, d, allow));
      devices.forEach((dev, i) => {
        const j = devices.indexOf(dev);
        if (j !== i) throw badRequest(`disks[${i}]`, `disks[${i}] '${spec.disks[i]}' is the same file as disks[${j}] ('${dev}')`);
      });
      for (const [i, dev] of devices.entries()) {
        for (const other of this.pools.values()) {
          if (other.record.devices.includes(dev)) {
            throw conflict(`disks[${i}] '${spec.disks[i]}' is already in pool '${other.record.name}'`, `disks[${i}]`);
          }
        }
      }
      // Labels on the disks: none -> create; all of this pool's name and one uuid -> import.
      const labels: (PoolInfo | undefined)[] = [];
      for (const [i, dev] of devices.entries()) {
        try {
          labels.push(await this.ctx.dp.diskProbe(dev));
        } catch (e) {
          const msg = e instanceof NativeError ? e.message : String(e);
          // EBUSY: another owner holds it (a nexus here, or another process's lock): a conflict, not a bad disk
          if (e instanceof NativeError && e.code === 'EBUSY') throw conflict(`disks[${i}] '${spec.disks[i]}': ${msg}`, `disks[${i}]`);
          throw new ApiError(422, 'unprocessable', `disks[${i}] '${spec.disks[i]}' cannot be read: ${msg}`, `disks[${i}]`);
        }
      }
      for (const [i, l] of labels.entries()) {
        if (l && l.name !== name) {
          throw conflict(`disks[${i}] '${spec.disks[i]}' is already in pool '${l.name}' (uuid ${l.uuid})`, `disks[${i}]`);
        }
      }
      const labelled = labels.filter((l): l is PoolInfo => l !== undefined);
      let uuid: string;
      let adopted = false;
      try {
        if (labelled.length > 0) {
          const uuids = new Set(labelled.map((l) => l.uuid));
          if (labelled.length !== labels.length || uuids.size !== 1) {
            const i = labels.findIndex((l) => l === undefined || l.uuid !== labelled[0].uuid);
            throw conflict(
              `disks[${i}] '${spec.disks[i]}' does not belong with the other disks: some carry pool '${name}' (uuid ${labelled[0].uuid}) and some do not`,
              `disks[${i}]`,
            );
          }
          uuid = await this.ctx.dp.poolImport(name, devices);
          adopted = true;
        } else {
          uuid = await this.ctx.dp.poolCreate(name, devices, this.ctx.config.clusterSize);
        }
      } catch (e) {
        const err = fromNative(e, `pool '${name}'`);
        // Name the field when the data path's message names one of the disks.
        const i = devices.findIndex((d) => err.message.includes(d));
        if (i >= 0 && err.status < 500) throw new ApiError(err.status, err.code, `disks[${i}]: ${err.message}`, `disks[${i}]`);
        throw err;
      }
      const record: PoolRecord = { name, uuid, disks: [...spec.disks], devices };
      const entry: PoolEntry = { record, state: 'online' };
      this.ctx.state.pools.push(record);
      try {
        await this.ctx.store.save(this.ctx.state);
      } catch (e) {
        this.ctx.state.pools = this.ctx.state.pools.filter((p) => p !== record);
        await this.ctx.dp.poolExport(name).catch(() => undefined);
        throw new ApiError(500, 'internal', `pool '${name}': created on disk but state.json could not be written: ${(e as Error).message}`);
      }
      this.pools.set(name, entry);
      this.ctx.log.info(adopted ? 'pool.adopted' : 'pool.created', { pool: name, uuid, disks: spec.disks });
      if (adopted) await this.cameOnline(name); // its replicas are listed at once
      return { status: 201, pool: await this.toObject(entry) };
    });
  }

  /** Destroy a pool (wipes its labels). 409 while it holds replicas. `replicasOf` names them. */
  async delete(nameParam: string, replicasOf: (pool: string) => string[]): Promise<void> {
    const name = validateName('name', nameParam);
    await this.ctx.lock.run(async () => {
      const entry = this.pools.get(name);
      if (!entry) throw notFound(`pool '${name}' does not exist`);
      const held = replicasOf(name);
      if (entry.state === 'online') {
        let count = held.length;
        try {
          count = Math.max(count, (await this.ctx.dp.poolStat(name)).replicas);
        } catch {
          /* stat failure: fall through to destroy, which reports it */
        }
        if (count > 0) {
          throw conflict(`pool '${name}' still holds ${count} replica(s)${held.length ? ` (${held.join(', ')})` : ''}; destroy them first`);
        }
        try {
          await this.ctx.dp.poolDestroy(name);
        } catch (e) {
          throw fromNative(e, `pool '${name}'`);
        }
      }
      this.pools.delete(name);
      this.ctx.state.pools = this.ctx.state.pools.filter((p) => p.name !== name);
      this.ctx.state.replicas = this.ctx.state.replicas.filter((r) => r.pool !== name);
      await this.ctx.store.save(this.ctx.state);
      this.ctx.log.info(entry.state === 'online' ? 'pool.destroyed' : 'pool.forgotten', { pool: name });
    });
  }

  /** Close every online pool without touching the disks (shutdown). */
  async exportAll(): Promise<void> {
    for (const entry of this.pools.values()) {
      if (entry.state !== 'online') continue;
      try {
        await this.ctx.dp.poolExport(entry.record.name);
        this.ctx.log.info('pool.exported', { pool: entry.record.name });
      } catch (e) {
        this.ctx.log.error('pool.export_failed', { pool: entry.record.name, error: e as Error });
      }
    }
  }
}
