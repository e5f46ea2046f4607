/**
 * nexuses.ts - the nexus service (issue 4): RAID-1 volumes over child URIs, in the data path.
 *
 * PUT /v1/nexuses/{uuid} {sizeBytes, children, share}: new -> 201 (dp_nexus_create; share "nbd"
 * exports it as nbd://<advertise-host>:<port>/<uuid>); the same spec again -> 200; a different spec
 * -> 409 naming the field. "Same" compares against the *current* children (changed through the
 * children endpoints), as a set. Bad specs get 4xx and leave nothing behind (the data path undoes a
 * failed create; a failed share destroys the new nexus again). PATCH {sizeBytes, share} grows a
 * running nexus (its children first: replicas grow with PATCH /v1/replicas) and exports or unexports
 * it in place (unsharing disconnects its NBD clients cleanly; the data stays).
 *
 * allowedHosts (issue 14): who may connect to the nexus's share, with the replicas' rules (validateHosts: addresses
 * or CIDR prefixes for nbd, host NQNs for nvmf, a 400 naming the entry); set at PUT, changed by PATCH, restored with
 * the share at restart. [] (the default) admits every host.
 *
 * Persistence: state.json keeps {uuid, sizeBytes, children, share, allowedHosts}. At start, after pools are
 * imported and before shares are restored, each nexus is reopened with dp_nexus_open (the label
 * rules pick the children that serve). A nexus that cannot be reopened (e.g. only stale children
 * left) stays listed as "faulted" with the reason; a PUT of its spec retries the open, DELETE forgets it.
 */
import type { Nexus, NexusChild, Share } from '../api/types';
import type { Context } from './context';
import { badRequest, conflict, fromNative, notFound, unprocessable } from './errors';
import { NativeError } from './native';
import type { ReplicaService } from './replicas';
import type { ShareService } from './shares';
import type { NexusRecord } from './state';
import { MAX_NEXUS_CHILDREN, validateChildUri, validateFlag, validateHosts, validateNexusPatch, validateNexusSpec, validateUuid } from './validation';

/** A record's allowlist (absent in records written before it, and when everyone may connect: []). */
const hostsOf = (rec: NexusRecord): string[] => rec.allowedHosts ?? [];

interface Entry {
  rec: NexusRecord;
  /** Open in the data path. */
  open: boolean;
  /** Why it is not open. */
  error?: string;
  /** Not open: when the background reopen tries next (ms since the epoch). */
  retryAt?: number;
}

export type ChildAction = 'online' | 'offline' | 'fault';

export class NexusService {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ctx: Context,
    private readonly replicas: ReplicaService,
    private readonly shares: ShareService,
  ) {}

  /**
   * dp_nexus_open with the recorded spec. A growth that the data path finished (or began: its labels roll it
   * forward) but state.json did not record yet is adopted here: the labels' size wins over a smaller record.
   */
  private async open(e: Entry): Promise<void> {
    await this.ctx.dp.nexusOpen(e.rec.uuid, e.rec.sizeBytes, e.rec.children);
    e.open = true;
    const { sizeBytes } = await this.ctx.dp.nexusStat(e.rec.uuid);
    if (sizeBytes > e.rec.sizeBytes) {
      this.ctx.log.warn('nexus.size_adopted', { nexus: e.rec.uuid, recorded: e.rec.sizeBytes, sizeBytes });
      e.rec.sizeBytes = sizeBytes;
      await this.ctx.store.save(this.ctx.state);
    }
  }

  private get records(): NexusRecord[] {
    if (!Array.isArray(this.ctx.state.nexuses)) this.ctx.state.nexuses = [];
    return this.ctx.state.nexuses;
  }

  /** Reopen the recorded nexuses (pools must be imported first). Never throws. */
  async recover(): Promise<void> {
    for (const rec of this.records) {
      const entry: Entry = { rec, open: false };
      this.entries.set(rec.uuid, entry);
      try {
        await this.open(entry);
        const st = await this.ctx.dp.nexusStat(rec.uuid);
        this.ctx.log.info('nexus.reopened', {
          nexus: rec.uuid,
          state: st.state,
          reason: st.reason,
          generation: st.generation,
        });
      } catch (e) {
        entry.error = (e as Error).message || String(e);
        this.ctx.log.error('nexus.reopen_failed', {
          nexus: rec.uuid,
          error: entry.error,
        });
      }
    }
    this.ctx.log.info('nexuses.recovered', {
      count: this.entries.size,
      open: [...this.entries.values()].filter((x) => x.open).length,
    });
  }

  private reopenTimer: NodeJS.Timeout | undefined;
  private reopenStopped = false;
  /** Next retry delay of a nexus that could not be reopened (doubles up to REOPEN_MAX_MS). */
  private reopenDelay = new Map<string, number>();

  /**
   * A nexus that could not be reopened at start (typically a remote child's agent was down, and
   * the label rules refuse to serve without it) is retried in the background with backoff
   * (1 s doubling to 30 s; $MAYASTOR_REOPEN_MS sets the first delay), so it comes back on its own
   * once its children are reachable again instead of staying faulted until someone PUTs its spec.
   */
  startReopening(): void {
    if (this.reopenTimer || this.reopenStopped) return;
    const first = Number(process.env.MAYASTOR_REOPEN_MS) > 0 ? Number(process.env.MAYASTOR_REOPEN_MS) : 1000;
    const tick = async () => {
      this.reopenTimer = undefined;
      let next = 30000;
      for (const [uuid, e] of this.entries) {
        if (this.reopenStopped) return;
        if (e.open) {
          this.reopenDelay.delete(uuid);
          continue;
        }
        const delay = this.reopenDelay.get(uuid) ?? first;
        const due = e.retryAt ?? 0;
        if (Date.now() < due) {
          next = Math.min(next, due - Date.now());
          continue;
        }
        await this.ctx.lock
          .run(async () => {
            const cur = this.entries.get(uuid);
            if (cur !== e || e.open || this.reopenStopped) return;
            try {
              await this.open(e);
            } catch (err) {
              const msg = (err as Error).message || String(err);
              if (msg !== e.error) this.ctx.log.warn('nexus.reopen_retry_failed', { nexus: uuid, error: msg });
              e.error = msg;
              return;
            }
            e.error = undefined;
            this.ctx.log.info('nexus.reopened', { nexus: uuid, retried: true });
            if (e.rec.share !== 'none' && !this.shares.isShared(uuid, e.rec.share)) {
              await this.shares
                .apply(uuid, e.rec.share, hostsOf(e.rec))
                .catch((err) => this.ctx.log.error('nexus.share_restore_failed', { nexus: uuid, error: (err as Error).message }));
            }
          })
          .catch(() => undefined);
        if (!e.open) {
          const d = Math.min(delay * 2, 30000);
          this.reopenDelay.set(uuid, d);
          e.retryAt = Date.now() + delay;
          next = Math.min(next, delay);
        }
      }
      if (!this.reopenStopped && [...this.entries.values()].some((x) => !x.open)) this.schedule(tick, next);
    };
    if ([...this.entries.values()].some((x) => !x.open)) this.schedule(tick, first);
  }

  private schedule(fn: () => Promise<void>, ms: number): void {
    this.reopenTimer = setTimeout(() => void fn(), Math.max(50, ms));
    this.reopenTimer.unref();
  }

  /** Stop the background reopening (shutdown). */
  stopReopening(): void {
    this.reopenStopped = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
  }

  /** Re-export the shared nexuses, NBD and NVMe/TCP (after recover()). */
  async restoreShares(): Promise<void> {
    for (const e of this.entries.values()) {
      if (!e.open || e.rec.share === 'none') continue;
      try {
        await this.shares.apply(e.rec.uuid, e.rec.share, hostsOf(e.rec));
      } catch (err) {
        this.ctx.log.error('nexus.share_restore_failed', {
          nexus: e.rec.uuid,
          error: (err as Error).message,
        });
      }
    }
  }

  /** The nexus that has bdev:///<replica> as a child, if any. */
  usedBy(replica: string): string | undefined {
    const uri = `bdev:///${replica}`;
    for (const e of this.entries.values()) if (e.rec.children.includes(uri)) return e.rec.uuid;
    return undefined;
  }

  uuids(): string[] {
    return [...this.entries.keys()].sort();
  }

  private deviceUri(rec: NexusRecord): string {
    return this.shares.deviceUri(rec.uuid, rec.share);
  }

  private async toObject(e: Entry): Promise<Nexus> {
    const base = {
      uuid: e.rec.uuid,
      sizeBytes: e.rec.sizeBytes,
      share: e.rec.share,
      allowedHosts: [...hostsOf(e.rec)],
      deviceUri: this.deviceUri(e.rec),
    };
    if (!e.open) {
      const reason = e.error ?? 'not open';
      return {
        ...base,
        state: 'faulted',
        reason,
        children: e.rec.children.map((uri) => ({
          uri,
          state: 'faulted',
          reason: 'the nexus could not be opened',
          rebuildProgress: 0,
        })),
      };
    }
    let st;
    let kids;
    try {
      // Stat and children are two calls: retry until the nexus state did not move in between,
      // so one answer never shows e.g. every child online and the nexus still degraded.
      for (let i = 0; ; i++) {
        st = await this.ctx.dp.nexusStat(e.rec.uuid);
        kids = await this.ctx.dp.nexusChildren(e.rec.uuid);
        const again = await this.ctx.dp.nexusStat(e.rec.uuid);
        if ((again.state === st.state && again.generation === st.generation && again.rebuilds === st.rebuilds) || i >= 4) {
          st = again;
          break;
        }
      }
    } catch (err) {
      throw fromNative(err, `nexus '${e.rec.uuid}'`, 'spec');
    }
    const children: NexusChild[] = kids.map((c) => {
      const o: NexusChild = {
        uri: c.uri,
        state: c.state,
        reason: c.reason,
        rebuildProgress: c.rebuildPercent,
      };
      if (c.rebuilding) {
        o.rebuildBytesDone = c.rebuildBytesDone;
        o.rebuildBytesTotal = c.rebuildBytesTotal;
        o.rebuildRate = c.rebuildRate;
      }
      return o;
    });
    return {
      ...base,
      sizeBytes: st.sizeBytes || e.rec.sizeBytes,
      state: st.state,
      reason: st.reason,
      children,
    };
  }

  private entry(uuidParam: string): Entry {
    const uuid = validateUuid('uuid', uuidParam);
    const e = this.entries.get(uuid);
    if (!e) throw notFound(`nexus '${uuid}' does not exist`);
    return e;
  }

  async list(): Promise<Nexus[]> {
    const out: Nexus[] = [];
    for (const u of this.uuids()) {
      const e = this.entries.get(u);
      if (e) out.push(await this.toObject(e));
    }
    return out;
  }

  async get(uuidParam: string): Promise<Nexus> {
    return this.toObject(this.entry(uuidParam));
  }

  /** Raw per-nexus data for /metrics. */
  async metricsData(): Promise<
    Array<{
      nexus: Nexus;
      io?: { reads: number; writes: number; flushes: number; errors: number };
    }>
  > {
    const out = [];
    for (const u of this.uuids()) {
      const e = this.entries.get(u);
      if (!e) continue;
      try {
        const nexus = await this.toObject(e);
        const io = e.open ? await this.ctx.dp.nexusStat(u).catch(() => undefined) : undefined;
        out.push({ nexus, io });
      } catch {
        /* skip */
      }
    }
    return out;
  }

  /**
   * Local checks the data path cannot phrase as well: bdev:/// children must be replicas here, and not
   * exported over NBD or NVMe/TCP (a child has one writer: the nexus; an export would let a client write behind it).
   * Children already owned by another nexus or a pool are refused by the data path's claims (409).
   */
  private checkLocalChild(field: string, uri: string): void {
    if (!uri.startsWith('bdev:///')) return;
    const r = uri.slice('bdev:///'.length);
    if (!this.replicas.uuids().includes(r)) throw unprocessable(field, `${field} '${uri}': replica '${r}' does not exist on this node`);
    if (this.shares.isShared(r))
      throw conflict(
        `${field} '${uri}': replica '${r}' is exported over ${this.shares.isShared(r, 'nvmf') ? 'NVMe/TCP' : 'NBD'}; a nexus child has one writer, set the replica's share to none first`,
        field,
      );
  }

  async put(uuidParam: string, body: unknown): Promise<{ status: number; nexus: Nexus }> {
    const uuid = validateUuid('uuid', uuidParam);
    const spec = validateNexusSpec(body, this.ctx.config.allowDisks);
    const hosts = spec.allowedHosts;
    return this.ctx.lock.run(async () => {
      const existing = this.entries.get(uuid);
      if (existing) {
        const rec = existing.rec;
        const same = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
        let diff: string | undefined;
        if (rec.sizeBytes !== spec.sizeBytes) diff = 'sizeBytes';
        else if (!same(rec.children, spec.children)) diff = 'children';
        else if (rec.share !== spec.share) diff = 'share';
        else if (JSON.stringify(hostsOf(rec)) !== JSON.stringify(hosts)) diff = 'allowedHosts';
        if (diff) {
          const have = diff === 'allowedHosts' ? hostsOf(rec) : (rec as unknown as Record<string, unknown>)[diff];
          const want = diff === 'allowedHosts' ? hosts : (spec as unknown as Record<string, unknown>)[diff];
          throw conflict(`nexus '${uuid}' already exists with ${diff} ${JSON.stringify(have)}; requested ${JSON.stringify(want)}`, diff);
        }
        if (!existing.open) {
          // A nexus that could not be reopened at start: try again.
          try {
            await this.open(existing);
          } catch (e) {
            existing.error = (e as Error).message || String(e);
            throw fromNative(e, `nexus '${uuid}' cannot be reopened`, 'spec');
          }
          existing.error = undefined;
          this.ctx.log.info('nexus.reopened', { nexus: uuid });
        }
        if (rec.share !== 'none' && !this.shares.isShared(uuid, rec.share)) {
          await this.shares.apply(uuid, rec.share, hostsOf(rec)).catch((e) => {
            throw fromNative(e, `nexus '${uuid}': share ${rec.share}`, 'spec');
          });
        }
        return { status: 200, nexus: await this.toObject(existing) };
      }
      this.shares.check(spec.share); // a share this agent cannot make: 422 before anything is created
      spec.children.forEach((uri, i) => this.checkLocalChild(`children[${i}]`, uri));
      try {
        await this.ctx.dp.nexusCreate(uuid, spec.sizeBytes, spec.children, spec.force);
      } catch (e) {
        throw fromNative(e, `nexus '${uuid}'`, 'spec');
      }
      if (spec.share !== 'none') {
        try {
          await this.shares.apply(uuid, spec.share, hosts);
        } catch (e) {
          await this.ctx.dp.nexusDestroy(uuid).catch((d) =>
            this.ctx.log.error('nexus.rollback_failed', {
              nexus: uuid,
              error: d as Error,
            }),
          );
          throw fromNative(e, `nexus '${uuid}': share ${spec.share}`, 'spec');
        }
      }
      const rec: NexusRecord = {
        uuid,
        sizeBytes: spec.sizeBytes,
        children: [...spec.children],
        share: spec.share,
        ...(hosts.length ? { allowedHosts: hosts } : {}),
      };
      const entry: Entry = { rec, open: true };
      this.entries.set(uuid, entry);
      this.records.push(rec);
      await this.ctx.store.save(this.ctx.state);
      this.ctx.log.info('nexus.created', {
        nexus: uuid,
        sizeBytes: spec.sizeBytes,
        children: spec.children,
        share: spec.share,
        allowedHosts: hosts,
      });
      return { status: 201, nexus: await this.toObject(entry) };
    });
  }

  async delete(uuidParam: string): Promise<void> {
    const e0 = this.entry(uuidParam);
    await this.ctx.lock.run(async () => {
      const uuid = e0.rec.uuid;
      const e = this.entries.get(uuid);
      if (!e) throw notFound(`nexus '${uuid}' does not exist`);
      if (e.open) {
        await this.shares.unshare(uuid).catch((err) => {
          throw fromNative(err, `nexus '${uuid}': unshare`, 'spec');
        });
        try {
          await this.ctx.dp.nexusDestroy(uuid, true); // deleted for good: the children are released
        } catch (err) {
          if (!(err instanceof NativeError && err.code === 'ENOENT')) {
            if (e.rec.share !== 'none') await this.shares.apply(uuid, e.rec.share, hostsOf(e.rec)).catch(() => undefined);
            throw fromNative(err, `nexus '${uuid}'`, 'spec');
          }
        }
      }
      this.entries.delete(uuid);
      this.ctx.state.nexuses = this.records.filter((r) => r.uuid !== uuid);
      await this.ctx.store.save(this.ctx.state);
      this.ctx.log.info('nexus.destroyed', { nexus: uuid });
    });
  }

  /**
   * PATCH /v1/nexuses/{uuid} {sizeBytes, share}: grow in place (never shrink), share or unshare in place;
   * the current values again change nothing.
   */
  async patch(uuidParam: string, body: unknown): Promise<Nexus> {
    const uuid = validateUuid('uuid', uuidParam);
    const patch = validateNexusPatch(body);
    return this.ctx.lock.run(async () => {
      const e = this.openEntry(uuid);
      if (patch.sizeBytes !== undefined && patch.sizeBytes !== e.rec.sizeBytes) {
        if (patch.sizeBytes < e.rec.sizeBytes) {
          throw badRequest('sizeBytes', `sizeBytes ${patch.sizeBytes} is smaller than the current size ${e.rec.sizeBytes}: a nexus cannot shrink`);
        }
        try {
          await this.ctx.dp.nexusResize(uuid, patch.sizeBytes);
        } catch (err) {
          throw fromNative(err, `sizeBytes ${patch.sizeBytes}`, 'spec');
        }
        // the data path has the new size (and a restart adopts it from the labels even if this save is lost)
        e.rec.sizeBytes = patch.sizeBytes;
        await this.ctx.store.save(this.ctx.state);
        this.ctx.log.info('nexus.resized', { nexus: uuid, sizeBytes: patch.sizeBytes });
      }
      const share = patch.share ?? e.rec.share;
      const hosts = this.patchHosts(e.rec, share, patch.allowedHosts);
      const hostsChanged = JSON.stringify(hosts) !== JSON.stringify(hostsOf(e.rec));
      if (share !== e.rec.share || (share !== 'none' && hostsChanged)) {
        try {
          await this.shares.apply(uuid, share, hosts);
        } catch (err) {
          throw fromNative(err, `nexus '${uuid}': share ${share}`, 'spec');
        }
        this.ctx.log.info('nexus.share_changed', { nexus: uuid, share, allowedHosts: hosts });
      }
      if (share !== e.rec.share || hostsChanged) {
        e.rec.share = share;
        if (hosts.length) e.rec.allowedHosts = hosts;
        else delete e.rec.allowedHosts;
        await this.ctx.store.save(this.ctx.state);
      }
      return this.toObject(e);
    });
  }

  /**
   * The allowlist a PATCH leaves: the one given (checked against the share in effect), else the current one, which
   * must suit a new share (addresses are for nbd, host NQNs for nvmf: a change of kind gives both in one PATCH).
   */
  private patchHosts(rec: NexusRecord, share: string, given: string[] | undefined): string[] {
    if (given !== undefined) return validateHosts('allowedHosts', given, share as Share);
    const cur = hostsOf(rec);
    if (share !== rec.share && share !== 'none') {
      try {
        validateHosts('allowedHosts', cur, share as Share);
      } catch {
        throw badRequest(
          'allowedHosts',
          `allowedHosts ${JSON.stringify(cur)} are for share '${rec.share}'; give allowedHosts for share '${share}' in the same PATCH`,
        );
      }
    }
    return cur;
  }

  private openEntry(uuidParam: string): Entry {
    const e = this.entry(uuidParam);
    if (!e.open) throw conflict(`nexus '${e.rec.uuid}' is faulted and not open (${e.error ?? 'unknown'}); PUT its spec again to retry, or DELETE it`);
    return e;
  }

  private childUriParam(v: unknown, field = 'uri'): string {
    if (v === undefined || v === '') throw badRequest(field, `${field} is required (the child URI)`);
    if (Array.isArray(v)) throw badRequest(field, `${field} must be given once`);
    return validateChildUri(field, v, this.ctx.config.allowDisks);
  }

  /** POST /v1/nexuses/{uuid}/children {uri, force?}: add a child and start its rebuild. */
  async addChild(uuidParam: string, body: unknown): Promise<Nexus> {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('body', 'the request body must be a JSON object {"uri": ...}');
    for (const k of Object.keys(body)) if (k !== 'uri' && k !== 'force') throw badRequest(k, `unknown field '${k}' (allowed: uri, force)`);
    const uri = this.childUriParam((body as Record<string, unknown>).uri);
    const force = validateFlag('force', (body as Record<string, unknown>).force);
    this.entry(uuidParam);
    return this.ctx.lock.run(async () => {
      const e = this.openEntry(uuidParam);
      const uuid = e.rec.uuid;
      if (e.rec.children.includes(uri)) throw conflict(`uri '${uri}' is already a child of nexus '${uuid}'`, 'uri');
      if (e.rec.children.length >= MAX_NEXUS_CHILDREN) throw unprocessable('uri', `nexus '${uuid}' already has ${MAX_NEXUS_CHILDREN} children`);
      this.checkLocalChild('uri', uri);
      try {
        await this.ctx.dp.nexusAddChild(uuid, uri, force);
      } catch (err) {
        throw fromNative(err, `nexus '${uuid}': add child '${uri}'`, 'spec');
      }
      e.rec.children.push(uri);
      await this.ctx.store.save(this.ctx.state);
      this.ctx.log.info('nexus.child_added', { nexus: uuid, child: uri });
      return this.toObject(e);
    });
  }

  /** DELETE /v1/nexuses/{uuid}/children?uri=... */
  async removeChild(uuidParam: string, uriParam: unknown): Promise<void> {
    const uri = this.childUriParam(uriParam);
    this.entry(uuidParam);
    await this.ctx.lock.run(async () => {
      const e = this.openEntry(uuidParam);
      const uuid = e.rec.uuid;
      if (!e.rec.children.includes(uri)) throw notFound(`uri '${uri}' is not a child of nexus '${uuid}'`);
      try {
        await this.ctx.dp.nexusRemoveChild(uuid, uri);
      } catch (err) {
        if (!(err instanceof NativeError && err.code === 'ENOENT')) throw fromNative(err, `nexus '${uuid}': remove child '${uri}'`, 'spec');
      }
      e.rec.children = e.rec.children.filter((c) => c !== uri);
      await this.ctx.store.save(this.ctx.state);
      this.ctx.log.info('nexus.child_removed', { nexus: uuid, child: uri });
    });
  }

  /**
   * POST /v1/nexuses/{uuid}/children/online|offline|fault?uri=...[&force=true]. A failed call changes no label;
   * `force` (online only) accepts a child that does not hold the newest generation as the source of a faulted nexus.
   */
  async childAction(uuidParam: string, action: string, uriParam: unknown, forceParam?: unknown): Promise<Nexus> {
    if (!['online', 'offline', 'fault'].includes(action)) throw notFound(`no child action '${action}' (online, offline, fault)`);
    const uri = this.childUriParam(uriParam);
    const force = validateFlag('force', forceParam);
    if (force && action !== 'online') throw badRequest('force', `force applies to online only, not ${action}`);
    this.entry(uuidParam);
    return this.ctx.lock.run(async () => {
      const e = this.openEntry(uuidParam);
      const uuid = e.rec.uuid;
      if (!e.rec.children.includes(uri)) throw notFound(`uri '${uri}' is not a child of nexus '${uuid}'`);
      try {
        if (action === 'online') await this.ctx.dp.nexusChildOnline(uuid, uri, force);
        else if (action === 'offline') await this.ctx.dp.nexusChildOffline(uuid, uri);
        else await this.ctx.dp.nexusChildFault(uuid, uri);
      } catch (err) {
        throw fromNative(err, `nexus '${uuid}': ${action} child '${uri}'`, 'spec');
      }
      this.ctx.log.info(`nexus.child_${action}`, { nexus: uuid, child: uri });
      return this.toObject(e);
    });
  }

  /** Shutdown: close every open nexus (labels marked clean; children keep their data). */
  async closeAll(): Promise<void> {
    for (const e of this.entries.values()) {
      if (!e.open) continue;
      try {
        await this.ctx.dp.nexusDestroy(e.rec.uuid);
        e.open = false;
      } catch (err) {
        this.ctx.log.error('nexus.close_failed', {
          nexus: e.rec.uuid,
          error: err as Error,
        });
      }
    }
  }
}
