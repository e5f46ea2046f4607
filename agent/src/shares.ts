/**
 * shares.ts - the agent's NBD target (DESIGN.md "Child and share URIs", issue 3).
 *
 * One listener per process (--nbd-listen; port 0 picks a free port, reported in GET /v1/node).
 * Replicas and nexuses with share "nbd" become one export each, named by their uuid:
 *   nbd://<advertise-host>:<port>/<uuid>
 * Unsharing disconnects the export's clients cleanly (dp_nbd_unshare waits for outstanding I/O).
 *
 * Before listening, the limits every target applies to its clients (--max-connections and the
 * rest, README "Limits") go to the data path (dp_target_set_limits).
 *
 * Several agents inside one process (tests) share the process-wide listener: the first one starts
 * it, later ones reuse its port (dp_nbd_listen -> -EALREADY), and the listener stops with the last.
 */
import type { Context } from './context';
import { formatHostPort } from './config';
import { NativeError } from './native';

let listenerOwners = 0;

export class ShareService {
  /** export name -> allowed hosts csv, for the exports this agent made. */
  private readonly exports = new Map<string, string>();
  private port: number | undefined;
  private listening = false;

  constructor(private readonly ctx: Context) {}

  /** Start (or join) the process's NBD listener. */
  async listen(): Promise<void> {
    const { host, port } = this.ctx.config.nbdListen;
    await this.ctx.dp.targetSetLimits(this.ctx.config.limits);
    try {
      await this.ctx.dp.nbdListen(host, port);
    } catch (e) {
      if (!(e instanceof NativeError && e.code === 'EALREADY')) {
        throw new Error(`--nbd-listen ${formatHostPort({ host, port })}: ${(e as Error).message}`);
      }
      this.ctx.log.warn('nbd.listener_shared', {
        reason: 'another agent in this process already listens',
      });
    }
    this.port = await this.ctx.dp.nbdPort();
    this.listening = true;
    listenerOwners++;
    this.ctx.log.info('nbd.listening', { address: this.address(), limits: this.ctx.config.limits });
  }

  /** "host:port" of the listener (the real port when --nbd-listen asked for 0). */
  address(): string | undefined {
    if (this.port === undefined) return undefined;
    return formatHostPort({
      host: this.ctx.config.nbdListen.host,
      port: this.port,
    });
  }

  /** The URI another node uses to reach an export. */
  uri(exportName: string): string {
    const host = this.ctx.config.advertiseHost;
    const h = host.includes(':') ? `[${host}]` : host;
    return `nbd://${h}:${this.port ?? this.ctx.config.nbdListen.port}/${exportName}`;
  }

  /** The URI of a replica or nexus with `share`: its export when it is shared and exported, else bdev:///UUID. */
  deviceUri(uuid: string, share: string): string {
    return share === 'nbd' && this.isShared(uuid) ? this.uri(uuid) : `bdev:///${uuid}`;
  }

  isShared(exportName: string): boolean {
    return this.exports.has(exportName);
  }

  /** Export `bdev` as `exportName` (idempotent; a new allowedHosts list replaces the old one). */
  async share(bdev: string, exportName: string, allowedHosts: string[]): Promise<void> {
    if (!this.listening) throw new Error('the NBD listener is not running');
    const csv = allowedHosts.join(',');
    await this.ctx.dp.nbdShare(bdev, exportName, csv);
    this.exports.set(exportName, csv);
    this.ctx.log.info('nbd.shared', {
      export: exportName,
      bdev,
      allowedHosts: csv || '*',
    });
  }

  /** Remove an export (its clients are disconnected). No export: nothing to do. */
  async unshare(exportName: string): Promise<void> {
    try {
      await this.ctx.dp.nbdUnshare(exportName);
    } catch (e) {
      if (!(e instanceof NativeError && e.code === 'ENOENT')) throw e;
    }
    if (this.exports.delete(exportName)) this.ctx.log.info('nbd.unshared', { export: exportName });
  }

  /** Connections per export of this agent. */
  async connections(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const name of this.exports.keys()) {
      const n = await this.ctx.dp.nbdConnections(name).catch(() => undefined);
      if (n !== undefined) out.set(name, n);
    }
    return out;
  }

  /** Shutdown: remove this agent's exports; the last agent of the process stops the listener. */
  async close(): Promise<void> {
    for (const name of [...this.exports.keys()]) {
      await this.unshare(name).catch((e) =>
        this.ctx.log.error('nbd.unshare_failed', {
          export: name,
          error: e as Error,
        }),
      );
    }
    if (this.listening) {
      this.listening = false;
      listenerOwners--;
      if (listenerOwners === 0) await this.ctx.dp.nbdShutdown();
    }
  }
}
