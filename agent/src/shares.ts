/**
 * shares.ts - the agent's targets: NBD and NVMe/TCP (DESIGN.md "Child and share URIs", issues 3 and 12).
 *
 * One listener per protocol and process: --nbd-listen (always) and --nvmf-listen (when given); port 0
 * picks a free port, reported in GET /v1/node. A replica or nexus with share "nbd" or "nvmf" becomes one
 * export, named after its uuid:
 *   nbd://<advertise-host>:<port>/<uuid>
 *   nvmf://<advertise-host>:<port>/nqn.2019-05.io.openebs:<uuid>   (agent/api grammar.ts nvmfNqn)
 * The NVMe namespace's uuid/NGUID is the replica or nexus uuid. A uuid has at most one export: sharing it
 * over the other protocol removes the first export (nbd <-> nvmf in place).
 * Unsharing disconnects the export's clients cleanly (outstanding I/O completes first).
 *
 * The protocols differ only in the rows of TARGETS (names, data-path calls, URI); the service is one.
 *
 * Before listening, the limits every target applies to its clients (--max-connections and the
 * rest, README "Limits") go to the data path (dp_target_set_limits).
 *
 * Several agents inside one process (tests) share the process-wide listeners: the first one starts
 * one, later ones reuse its port (-EALREADY), and a listener stops with the last agent using it.
 */
import { nvmfNqn } from '../api/grammar';
import type { Context } from './context';
import { HostPort, formatHostPort } from './config';
import { unprocessable } from './errors';
import { Datapath, NativeError } from './native';

export type Protocol = 'nbd' | 'nvmf';

interface Target {
  /** The flag that starts the listener (named in errors). */
  flag: string;
  /** What the listener binds, undefined when the agent was started without it. */
  listenAt(ctx: Context): HostPort | undefined;
  listen(dp: Datapath, at: HostPort, advertiseHost: string): Promise<void>;
  port(dp: Datapath): Promise<number | undefined>;
  /** The export name (NBD) or subsystem NQN (NVMe/TCP) of a uuid. */
  name(uuid: string): string;
  share(dp: Datapath, uuid: string, hostsCsv: string): Promise<void>;
  unshare(dp: Datapath, name: string): Promise<void>;
  connections(dp: Datapath, name: string): Promise<number | undefined>;
  shutdown(dp: Datapath): Promise<void>;
}

const TARGETS: Record<Protocol, Target> = {
  nbd: {
    flag: '--nbd-listen',
    listenAt: (ctx) => ctx.config.nbdListen,
    listen: (dp, at) => dp.nbdListen(at.host, at.port),
    port: (dp) => dp.nbdPort(),
    name: (uuid) => uuid,
    share: (dp, uuid, csv) => dp.nbdShare(uuid, uuid, csv),
    unshare: (dp, name) => dp.nbdUnshare(name),
    connections: (dp, name) => dp.nbdConnections(name),
    shutdown: (dp) => dp.nbdShutdown(),
  },
  nvmf: {
    flag: '--nvmf-listen',
    listenAt: (ctx) => ctx.config.nvmfListen,
    listen: (dp, at, advertiseHost) => dp.nvmfListen(at.host, at.port, advertiseHost),
    port: (dp) => dp.nvmfPort(),
    name: (uuid) => nvmfNqn(uuid),
    share: (dp, uuid, csv) => dp.nvmfShare(uuid, nvmfNqn(uuid), uuid, csv),
    unshare: (dp, name) => dp.nvmfUnshare(name),
    connections: (dp, name) => dp.nvmfConnections(name),
    shutdown: (dp) => dp.nvmfShutdown(),
  },
};

export const PROTOCOLS = Object.keys(TARGETS) as Protocol[];

const isProtocol = (s: string): s is Protocol => (PROTOCOLS as string[]).includes(s);

const listenerOwners: Record<Protocol, number> = { nbd: 0, nvmf: 0 };

export interface ExportConnections {
  protocol: Protocol;
  /** Export name (nbd) or subsystem NQN (nvmf). */
  name: string;
  connections: number;
}

export class ShareService {
  /** uuid -> the export this agent made for it. */
  private readonly exports = new Map<string, { protocol: Protocol; hostsCsv: string }>();
  /** Bound port of each running listener. */
  private readonly ports = new Map<Protocol, number>();

  constructor(private readonly ctx: Context) {}

  /** Start (or join) the process's listeners: NBD, and NVMe/TCP when --nvmf-listen was given. */
  async listen(): Promise<void> {
    await this.ctx.dp.targetSetLimits(this.ctx.config.limits);
    for (const p of PROTOCOLS) {
      const at = TARGETS[p].listenAt(this.ctx);
      if (at) await this.listenOne(p, at);
    }
  }

  private async listenOne(p: Protocol, at: HostPort): Promise<void> {
    const t = TARGETS[p];
    try {
      await t.listen(this.ctx.dp, at, this.ctx.config.advertiseHost);
    } catch (e) {
      if (!(e instanceof NativeError && e.code === 'EALREADY')) throw new Error(`${t.flag} ${formatHostPort(at)}: ${(e as Error).message}`);
      this.ctx.log.warn(`${p}.listener_shared`, { reason: 'another agent in this process already listens' });
    }
    const port = await t.port(this.ctx.dp);
    if (port === undefined) throw new Error(`${t.flag} ${formatHostPort(at)}: the listener did not report its port`);
    this.ports.set(p, port);
    listenerOwners[p]++;
    this.ctx.log.info(`${p}.listening`, { address: this.address(p), limits: this.ctx.config.limits });
  }

  /** The protocols this agent can share over (its listeners run). */
  protocols(): Protocol[] {
    return PROTOCOLS.filter((p) => this.ports.has(p));
  }

  /** "host:port" of a protocol's listener (the real port when the flag asked for 0), undefined when it does not run. */
  address(p: Protocol = 'nbd'): string | undefined {
    const port = this.ports.get(p);
    const at = TARGETS[p].listenAt(this.ctx);
    return port === undefined || !at ? undefined : formatHostPort({ host: at.host, port });
  }

  /** The URI another node uses to reach the export of `uuid` over `p`. */
  uri(uuid: string, p: Protocol = 'nbd'): string {
    const host = this.ctx.config.advertiseHost;
    const h = host.includes(':') ? `[${host}]` : host;
    const port = this.ports.get(p) ?? TARGETS[p].listenAt(this.ctx)?.port;
    return `${p}://${h}:${port}/${TARGETS[p].name(uuid)}`;
  }

  /** The URI of a replica or nexus with `share`: its export when it is shared and exported so, else bdev:///UUID. */
  deviceUri(uuid: string, share: string): string {
    return isProtocol(share) && this.isShared(uuid, share) ? this.uri(uuid, share) : `bdev:///${uuid}`;
  }

  /** `uuid` has an export (over `p`, when given). */
  isShared(uuid: string, p?: string): boolean {
    const e = this.exports.get(uuid);
    return e !== undefined && (p === undefined || e.protocol === p);
  }

  /** 422 naming the flag when this agent cannot share over `share` (its listener does not run). */
  check(share: string): void {
    if (share === 'none') return;
    if (!isProtocol(share)) throw unprocessable('share', `share '${share}' is not supported by this agent`);
    if (!this.ports.has(share)) {
      throw unprocessable(
        'share',
        `share '${share}' needs the agent started with ${TARGETS[share].flag} HOST:PORT (this agent shares over: ${this.protocols().join(', ')})`,
      );
    }
  }

  /**
   * Apply `share` to `uuid`: "none" removes its export; "nbd"/"nvmf" exports it (idempotent; a new allowedHosts
   * list replaces the old one; an export over the other protocol is removed first). A protocol whose listener
   * does not run is 422 naming its flag.
   */
  async apply(uuid: string, share: string, allowedHosts: string[]): Promise<void> {
    if (share === 'none') return this.unshare(uuid);
    this.check(share);
    if (!isProtocol(share)) return;
    const cur = this.exports.get(uuid);
    if (cur && cur.protocol !== share) await this.unshare(uuid);
    const hostsCsv = allowedHosts.join(',');
    await TARGETS[share].share(this.ctx.dp, uuid, hostsCsv);
    this.exports.set(uuid, { protocol: share, hostsCsv });
    this.ctx.log.info(`${share}.shared`, { export: TARGETS[share].name(uuid), bdev: uuid, allowedHosts: hostsCsv || '*' });
  }

  /** Remove the export of `uuid`, whatever its protocol (its clients are disconnected). No export: nothing to do. */
  async unshare(uuid: string): Promise<void> {
    const e = this.exports.get(uuid);
    if (!e) return;
    const t = TARGETS[e.protocol];
    try {
      await t.unshare(this.ctx.dp, t.name(uuid));
    } catch (err) {
      if (!(err instanceof NativeError && err.code === 'ENOENT')) throw err;
    }
    this.exports.delete(uuid);
    this.ctx.log.info(`${e.protocol}.unshared`, { export: t.name(uuid) });
  }

  /** Connections per export of this agent. */
  async connections(): Promise<ExportConnections[]> {
    const out: ExportConnections[] = [];
    for (const [uuid, e] of this.exports) {
      const name = TARGETS[e.protocol].name(uuid);
      const n = await TARGETS[e.protocol].connections(this.ctx.dp, name).catch(() => undefined);
      if (n !== undefined) out.push({ protocol: e.protocol, name, connections: n });
    }
    return out;
  }

  /** Shutdown: remove this agent's exports; the last agent of the process stops each listener. */
  async close(): Promise<void> {
    for (const uuid of [...this.exports.keys()]) {
      await this.unshare(uuid).catch((e) => this.ctx.log.error('share.unshare_failed', { uuid, error: e as Error }));
    }
    for (const p of [...this.ports.keys()]) {
      this.ports.delete(p);
      listenerOwners[p]--;
      if (listenerOwners[p] === 0) await TARGETS[p].shutdown(this.ctx.dp);
    }
  }
}
