/**
 * The configured provider: one agent client per node of the provider's `nodes` map, created on first use, and
 * the per-node listings that answer the reads of one refresh burst.
 */
import type { AgentClient, AgentTlsOptions } from '../../agent/api/client';
import { Diagnostics, PathStep } from '../protocol/schema';

export type { AgentClient };

let clientModule: typeof import('../../agent/api/client') | undefined;
/** The agent client loads undici (~30 ms): load it only once a resource actually talks to an agent. */
function agentModule(): typeof import('../../agent/api/client') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (clientModule ??= require('../../agent/api/client') as typeof import('../../agent/api/client'));
}

export interface MayastorOptions {
  /** node name → agent URL; undefined while the provider configuration is unknown (plan before apply). */
  nodes: Record<string, string> | undefined;
  token: string | undefined;
  timeoutMs: number;
  retries: number;
  /** Upper bound on waiting for a nexus rebuild during apply. */
  rebuildTimeoutMs: number;
  /** CA and client certificate for https:// agents; set: http:// URLs are refused before anything is sent. */
  tls?: AgentTlsOptions;
}

/**
 * How long a node's listing (GET /v1/replicas, /v1/pools) answers the reads of one refresh burst. Terraform reads
 * every resource once per command, 10 at a time; one listing per node per burst replaces one GET per object.
 */
export const LISTING_TTL_MS = 2000;

interface Listing {
  /** Resolves to the objects by key; rejected listings are dropped at once, so an error is never cached. */
  objects: Promise<Map<string, unknown>>;
  /** When the answer arrived (Infinity while in flight). */
  at: number;
}

export class Mayastor {
  private readonly clients = new Map<string, AgentClient>();
  private readonly listings = new Map<string, Listing>();
  /** StopProvider: aborts reads in flight, refuses new calls (see AgentClientOptions.signal). */
  private readonly stopping = new AbortController();
  constructor(readonly opts: MayastorOptions) {}

  get nodeNames(): string[] {
    return Object.keys(this.opts.nodes ?? {}).sort();
  }

  /** false only when the node is definitely not configured. */
  knowsNode(node: string): boolean {
    return this.opts.nodes === undefined || Object.prototype.hasOwnProperty.call(this.opts.nodes, node);
  }

  unknownNode(diags: Diagnostics, node: string, path: PathStep[] = ['node']): void {
    const known = this.nodeNames;
    diags.error(
      `Unknown node "${node}"`,
      `Node "${node}" is not in the provider's nodes map (${known.length ? `known nodes: ${known.join(', ')}` : 'the map is empty'}). ` +
        'Add it to the provider block: nodes = { ' +
        `${node} = "http://HOST:9500"` +
        ' }.',
      path,
    );
  }

  /**
   * The agent client of a node, or undefined with a diagnostic on `path`. Callers other than reads may change
   * the node, so this drops the node's cached listings: a read after a write always asks the agent again.
   */
  client(node: string, diags: Diagnostics, path: PathStep[] = ['node']): AgentClient | undefined {
    const c = this.reader(node, diags, path);
    if (c) this.forget(node);
    return c;
  }

  /** The agent client of a node for calls that change nothing (cached listings stay valid). */
  reader(node: string, diags: Diagnostics, path: PathStep[] = ['node']): AgentClient | undefined {
    if (this.isStopped) {
      diags.error('Provider stopped', 'Terraform asked the provider to stop (interrupt); no further agent calls are made.');
      return undefined;
    }
    const url = this.opts.nodes?.[node];
    if (url === undefined || !Object.prototype.hasOwnProperty.call(this.opts.nodes ?? {}, node)) {
      this.unknownNode(diags, node, path);
      return undefined;
    }
    let c = this.clients.get(node);
    if (!c) {
      const { AgentClient } = agentModule();
      c = new AgentClient({
        url,
        token: this.opts.token,
        node,
        timeoutMs: this.opts.timeoutMs,
        retries: this.opts.retries,
        signal: this.stopping.signal,
        ...(this.opts.tls ? { tls: this.opts.tls } : {}),
      });
      this.clients.set(node, c);
    }
    return c;
  }

  /**
   * Every object of one kind on a node, by key, from one listing shared by the reads of a refresh burst (see
   * LISTING_TTL_MS). undefined (with a diagnostic) when the node is unknown; agent errors are thrown, as from
   * the client, and are not cached. An object missing from the listing does not exist on the node.
   */
  async listing<T>(node: string, kind: 'pools' | 'replicas', diags: Diagnostics, key: (o: T) => string): Promise<Map<string, T> | undefined> {
    const c = this.reader(node, diags);
    if (!c) return undefined;
    const id = `${kind}\0${node}`;
    const now = Date.now();
    let l = this.listings.get(id);
    if (!l || now - l.at > LISTING_TTL_MS) {
      const fetch = (kind === 'pools' ? c.listPools() : c.listReplicas()) as Promise<T[]>;
      const entry: Listing = { at: Infinity, objects: undefined as unknown as Promise<Map<string, unknown>> };
      entry.objects = fetch
        .then((list) => {
          if (!Array.isArray(list)) throw new TypeError(`agent on node "${node}" answered GET /v1/${kind} with a non-list`);
          entry.at = Date.now();
          return new Map(list.map((o) => [key(o), o] as [string, unknown]));
        })
        .catch((e: unknown) => {
          if (this.listings.get(id) === entry) this.listings.delete(id);
          throw e;
        });
      entry.objects.catch(() => undefined); // each waiting read reports the failure itself
      this.listings.set(id, entry);
      l = entry;
    }
    return (await l.objects) as Map<string, T>;
  }

  /** Drop the cached listings of a node (after anything that may have changed it). */
  forget(node: string): void {
    this.listings.delete(`pools\0${node}`);
    this.listings.delete(`replicas\0${node}`);
  }

  stop(): void {
    this.stopping.abort();
    for (const c of this.clients.values()) void c.close();
  }
  get isStopped(): boolean {
    return this.stopping.signal.aborted;
  }
}
