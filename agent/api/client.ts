/**
 * Typed HTTP client of the agent API (undici). Used by mayastorctl, the Terraform provider and tests.
 *
 *   const c = new AgentClient({ url: 'http://127.0.0.1:9500', token, node: 'node-a' });
 *   await c.putPool('p1', { disks: ['/data/disk0'] });
 *
 * Errors: every failure is an AgentError { status, code, node, url }. The agent's own error
 * ({"error":{"code","message"}}) keeps its status and code; a connection failure or timeout has
 * status 0 and code "unreachable"/"timeout". The message always names the node and the URL.
 *
 * Retries: only idempotent calls (GET, PUT, DELETE) are retried, with exponential backoff, and only
 * on connection errors, timeouts and 5xx answers; 4xx answers are final. POST/PATCH never retry.
 * Because PUT is idempotent on the agent (same spec -> 200), a retried PUT whose first attempt
 * succeeded answers 200 with the object; create() counts such a 200 as created (RawResponse.afterUnknownOutcome).
 * A retried DELETE whose first attempt succeeded sees 404:
 * delete* methods therefore report "already absent" as `false` instead of throwing.
 */
import { caBundleProblem } from './tls';
import type {
  CloneSpec,
  Health,
  Nexus,
  NexusPatch,
  NexusSpec,
  NodeInfo,
  Pool,
  PoolSpec,
  Replica,
  ReplicaPatch,
  ReplicaSpec,
  Snapshot,
  SnapshotSpec,
  VolumeSnapshot,
  VolumeSnapshotSpec,
} from './types';

export * from './types';

export interface AgentClientOptions {
  /** Base URL of the agent, e.g. http://127.0.0.1:9500 */
  url: string;
  /** Bearer token (may be omitted for health()). */
  token?: string;
  /** Node name used in error messages (defaults to the URL's host). */
  node?: string;
  /** Per-attempt timeout (headers and body), default 30000 ms. */
  timeoutMs?: number;
  /** Extra attempts for idempotent calls, default 3. */
  retries?: number;
  /** First backoff delay, doubled each attempt, default 100 ms. */
  backoffMs?: number;
  /**
   * Cancels the client's work (Terraform's StopProvider): reads in flight are aborted and no new call is sent.
   * A change already sent is left to finish (bounded by timeoutMs) so its outcome is known, not guessed.
   */
  signal?: AbortSignal;
  /**
   * TLS for an https:// URL (PEM text): `ca` verifies the agent (its certificate must name the URL's host, an IP
   * SAN for an IP address); `cert`/`key` are a client certificate for an agent started with --tls-client-ca.
   * With any of them set, an http:// URL is refused before anything is sent (code "insecure"): the token never
   * crosses a plain connection.
   */
  tls?: AgentTlsOptions;
}

export interface AgentTlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

export class AgentError extends Error {
  /** HTTP status; 0 when the agent could not be reached or timed out. */
  readonly status: number;
  /**
   * The agent's error code, or "unreachable" / "timeout" / "bad_response" / "cancelled" (see the signal option),
   * "tls" (the TLS handshake failed: certificate not trusted, wrong host, not a TLS server) or "insecure"
   * (TLS is configured but the URL is http://: nothing was sent).
   */
  readonly code: string;
  readonly node: string;
  readonly url: string;
  /** The agent's own message (without the node prefix). */
  readonly agentMessage: string;

  constructor(opts: { status: number; code: string; node: string; url: string; message: string }) {
    const where = opts.status === 0 ? `${opts.node} (${opts.url})` : `${opts.node}`;
    super(`agent ${where}: ${opts.message}${opts.status ? ` [${opts.status} ${opts.code}]` : ''}`);
    this.name = 'AgentError';
    this.status = opts.status;
    this.code = opts.code;
    this.node = opts.node;
    this.url = opts.url;
    this.agentMessage = opts.message;
  }
}

type Method = 'GET' | 'PUT' | 'DELETE' | 'POST' | 'PATCH';
const IDEMPOTENT: ReadonlySet<Method> = new Set<Method>(['GET', 'PUT', 'DELETE']);

export interface RawResponse<T> {
  status: number;
  body: T;
  /**
   * This answer came to a retry after an attempt whose outcome is unknown (timed out, connection lost
   * after sending, 5xx): that attempt may have done the change. Absent when every earlier attempt
   * surely never reached the agent (connection refused) or there was none.
   */
  afterUnknownOutcome?: boolean;
}

/** What create() reports: the object, and whether this call made it (see create()). */
export interface Created<T> {
  object: T;
  created: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Requester = typeof import('undici').request;
type Dispatcher = import('undici').Dispatcher;
let requester: Requester | undefined;

/** OpenSSL/Node error codes of a failed certificate check (the handshake reached the certificate). */
const CERT_CODES =
  /^(UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|CERT_|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH|ERR_SSL_TLSV1_ALERT_UNKNOWN_CA|ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE|ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED|ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE)/;

/**
 * undici's `request`, loaded on the first call: short-lived processes that may never call an agent
 * (mayastorctl --help, the Terraform provider answering GetProviderSchema, which Terraform starts
 * several times per command) do not pay for loading it.
 */
function undiciRequest(): Requester {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  requester ??= (require('undici') as typeof import('undici')).request;
  return requester;
}

export class AgentClient {
  readonly url: string;
  /** Node name used in errors (the `node` option, or the URL's host). */
  readonly nodeName: string;
  private readonly token?: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly signal?: AbortSignal;
  private readonly tls?: AgentTlsOptions;
  private dispatcher?: Dispatcher;

  constructor(opts: AgentClientOptions) {
    if (!opts || typeof opts.url !== 'string' || opts.url === '') throw new TypeError('AgentClient: url is required');
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new TypeError(`AgentClient: url '${opts.url}' is not a valid URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new TypeError(`AgentClient: url '${opts.url}' must be http:// or https://`);
    }
    this.url = opts.url.replace(/\/+$/, '');
    this.nodeName = opts.node ?? u.host;
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 30000;
    this.retries = opts.retries ?? 3;
    this.backoffMs = opts.backoffMs ?? 100;
    this.signal = opts.signal;
    const t = opts.tls;
    if (t && (t.ca !== undefined || t.cert !== undefined || t.key !== undefined)) {
      if ((t.cert === undefined) !== (t.key === undefined))
        throw new TypeError('AgentClient: tls.cert and tls.key go together (a client certificate and its key)');
      const caProblem = t.ca !== undefined ? caBundleProblem(t.ca.toString()) : undefined;
      if (caProblem) throw new TypeError(`AgentClient: tls.ca: ${caProblem}`);
      this.tls = t;
    }
  }

  /** The URL is https:// (what the agent serves with --tls-cert). */
  get secure(): boolean {
    return this.url.startsWith('https:');
  }

  /** undici's Agent with our CA and client certificate (one per client: its connections are reused). */
  private tlsDispatcher(): Dispatcher | undefined {
    if (!this.tls || !this.secure) return undefined;
    if (!this.dispatcher) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Agent } = require('undici') as typeof import('undici');
      const { ca, cert, key } = this.tls;
      this.dispatcher = new Agent({ connect: { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert, key } : {}) } });
    }
    return this.dispatcher;
  }

  /** Close the TLS connections this client keeps (a no-op without TLS options). */
  async close(): Promise<void> {
    const d = this.dispatcher;
    this.dispatcher = undefined;
    await d?.close().catch(() => undefined);
  }

  // ---- node -------------------------------------------------------------------------------

  health(): Promise<Health> {
    return this.call<Health>('GET', '/v1/health').then((r) => r.body);
  }

  /** GET /v1/node: name, version, listeners, capabilities. */
  node(): Promise<NodeInfo> {
    return this.call<NodeInfo>('GET', '/v1/node').then((r) => r.body);
  }

  metrics(): Promise<string> {
    return this.call<string>('GET', '/metrics', undefined, true).then((r) => r.body);
  }

  // ---- pools --------------------------------------------------------------------------------

  listPools(): Promise<Pool[]> {
    return this.call<Pool[]>('GET', '/v1/pools').then((r) => r.body);
  }

  /** The pool, or undefined when the agent has none of that name. */
  getPool(name: string): Promise<Pool | undefined> {
    return this.getOrUndefined<Pool>(`/v1/pools/${enc(name)}`);
  }

  /** Create (201) or confirm (200, same spec) a pool; a different spec throws AgentError 409. */
  putPool(name: string, spec: PoolSpec): Promise<Pool> {
    return this.call<Pool>('PUT', `/v1/pools/${enc(name)}`, spec).then((r) => r.body);
  }

  /** true when destroyed, false when there was no such pool. */
  deletePool(name: string): Promise<boolean> {
    return this.deleteOrFalse(`/v1/pools/${enc(name)}`);
  }

  // ---- replicas -----------------------------------------------------------------------------

  listReplicas(): Promise<Replica[]> {
    return this.call<Replica[]>('GET', '/v1/replicas').then((r) => r.body);
  }

  getReplica(uuid: string): Promise<Replica | undefined> {
    return this.getOrUndefined<Replica>(`/v1/replicas/${enc(uuid)}`);
  }

  putReplica(uuid: string, spec: ReplicaSpec): Promise<Replica> {
    return this.call<Replica>('PUT', `/v1/replicas/${enc(uuid)}`, spec).then((r) => r.body);
  }

  patchReplica(uuid: string, patch: ReplicaPatch): Promise<Replica> {
    return this.call<Replica>('PATCH', `/v1/replicas/${enc(uuid)}`, patch).then((r) => r.body);
  }

  deleteReplica(uuid: string): Promise<boolean> {
    return this.deleteOrFalse(`/v1/replicas/${enc(uuid)}`);
  }

  // ---- nexuses ------------------------------------------------------------------------------

  listNexuses(): Promise<Nexus[]> {
    return this.call<Nexus[]>('GET', '/v1/nexuses').then((r) => r.body);
  }

  getNexus(uuid: string): Promise<Nexus | undefined> {
    return this.getOrUndefined<Nexus>(`/v1/nexuses/${enc(uuid)}`);
  }

  putNexus(uuid: string, spec: NexusSpec): Promise<Nexus> {
    return this.call<Nexus>('PUT', `/v1/nexuses/${enc(uuid)}`, spec).then((r) => r.body);
  }

  patchNexus(uuid: string, patch: NexusPatch): Promise<Nexus> {
    return this.call<Nexus>('PATCH', `/v1/nexuses/${enc(uuid)}`, patch).then((r) => r.body);
  }

  deleteNexus(uuid: string): Promise<boolean> {
    return this.deleteOrFalse(`/v1/nexuses/${enc(uuid)}`);
  }

  addNexusChild(uuid: string, uri: string, opts: { force?: boolean } = {}): Promise<Nexus> {
    return this.call<Nexus>('POST', `/v1/nexuses/${enc(uuid)}/children`, { uri, ...(opts.force ? { force: true } : {}) }).then((r) => r.body);
  }

  removeNexusChild(uuid: string, uri: string): Promise<boolean> {
    return this.deleteOrFalse(`/v1/nexuses/${enc(uuid)}/children?uri=${encodeURIComponent(uri)}`);
  }

  /** `force` (online only): accept a child that does not hold the newest generation as the source of a faulted nexus. */
  setNexusChildState(uuid: string, uri: string, action: 'online' | 'offline' | 'fault', opts: { force?: boolean } = {}): Promise<Nexus> {
    const force = opts.force ? '&force=true' : '';
    return this.call<Nexus>('POST', `/v1/nexuses/${enc(uuid)}/children/${action}?uri=${encodeURIComponent(uri)}${force}`).then((r) => r.body);
  }

  /** POST /v1/nexuses/{uuid}/children {uri}: add a child and start its rebuild. */
  addChild(uuid: string, uri: string): Promise<Nexus> {
    return this.addNexusChild(uuid, uri);
  }

  /** true when removed, false when the nexus or the child did not exist. */
  removeChild(uuid: string, uri: string): Promise<boolean> {
    return this.removeNexusChild(uuid, uri);
  }

  /** Bring an offline or faulted child back (it is rebuilt). */
  childOnline(uuid: string, uri: string, opts: { force?: boolean } = {}): Promise<Nexus> {
    return this.setNexusChildState(uuid, uri, 'online', opts);
  }

  childOffline(uuid: string, uri: string): Promise<Nexus> {
    return this.setNexusChildState(uuid, uri, 'offline');
  }

  childFault(uuid: string, uri: string): Promise<Nexus> {
    return this.setNexusChildState(uuid, uri, 'fault');
  }

  // ---- snapshots, clones, revert (issue 13) ------------------------------------------------------

  /** GET /v1/snapshots: every snapshot on the node. */
  listSnapshots(): Promise<Snapshot[]> {
    return this.call<Snapshot[]>('GET', '/v1/snapshots').then((r) => r.body);
  }

  /** GET /v1/replicas/{uuid}/snapshots: the snapshots taken of a replica. */
  listReplicaSnapshots(replica: string): Promise<Snapshot[]> {
    return this.call<Snapshot[]>('GET', `/v1/replicas/${enc(replica)}/snapshots`).then((r) => r.body);
  }

  /** A snapshot of `replica`, or undefined when there is none of that uuid. */
  getSnapshot(replica: string, snapshot: string): Promise<Snapshot | undefined> {
    return this.getOrUndefined<Snapshot>(`/v1/replicas/${enc(replica)}/snapshots/${enc(snapshot)}`);
  }

  /** Any snapshot on the node by its uuid, or undefined. */
  findSnapshot(snapshot: string): Promise<Snapshot | undefined> {
    return this.getOrUndefined<Snapshot>(`/v1/snapshots/${enc(snapshot)}`);
  }

  /** Create (201) or confirm (200) a snapshot of a replica; a uuid taken by something else is 409. */
  putSnapshot(replica: string, snapshot: string, spec: SnapshotSpec = {}): Promise<Snapshot> {
    return this.call<Snapshot>('PUT', `/v1/replicas/${enc(replica)}/snapshots/${enc(snapshot)}`, spec).then((r) => r.body);
  }

  /** PATCH /v1/snapshots/{uuid}: share it read-only (nbd, nvmf) or unshare it ("none"). */
  patchSnapshot(snapshot: string, spec: SnapshotSpec): Promise<Snapshot> {
    return this.call<Snapshot>('PATCH', `/v1/snapshots/${enc(snapshot)}`, spec).then((r) => r.body);
  }

  /** true when deleted, false when there was none; a snapshot with clones is 409 naming them. */
  deleteSnapshot(replica: string, snapshot: string): Promise<boolean> {
    return this.deleteOrFalse(`/v1/replicas/${enc(replica)}/snapshots/${enc(snapshot)}`);
  }

  /** DELETE /v1/snapshots/{uuid}: by uuid alone (also a snapshot whose replica was deleted first); false when none. */
  deleteSnapshotByUuid(snapshot: string): Promise<boolean> {
    return this.deleteOrFalse(`/v1/snapshots/${enc(snapshot)}`);
  }

  /** PUT /v1/replicas/{uuid} {source: {snapshot}}: a clone of a snapshot. */
  putClone(uuid: string, spec: CloneSpec): Promise<Replica> {
    return this.call<Replica>('PUT', `/v1/replicas/${enc(uuid)}`, spec).then((r) => r.body);
  }

  /** POST /v1/replicas/{uuid}/revert {snapshot}: roll the replica back to one of its snapshots, in place. */
  revertReplica(uuid: string, snapshot: string): Promise<Replica> {
    return this.call<Replica>('POST', `/v1/replicas/${enc(uuid)}/revert`, { snapshot }).then((r) => r.body);
  }

  /** PUT /v1/nexuses/{uuid}/snapshots/{snapshotUuid}: a consistent snapshot of the volume (201 new, 200 same). */
  putNexusSnapshot(nexus: string, snapshot: string, spec: VolumeSnapshotSpec = {}): Promise<VolumeSnapshot> {
    return this.call<VolumeSnapshot>('PUT', `/v1/nexuses/${enc(nexus)}/snapshots/${enc(snapshot)}`, spec).then((r) => r.body);
  }

  getNexusSnapshot(nexus: string, snapshot: string): Promise<VolumeSnapshot | undefined> {
    return this.getOrUndefined<VolumeSnapshot>(`/v1/nexuses/${enc(nexus)}/snapshots/${enc(snapshot)}`);
  }

  listNexusSnapshots(nexus: string): Promise<VolumeSnapshot[]> {
    return this.call<VolumeSnapshot[]>('GET', `/v1/nexuses/${enc(nexus)}/snapshots`).then((r) => r.body);
  }

  /** true when every part was deleted, false when there was no such volume snapshot. */
  deleteNexusSnapshot(nexus: string, snapshot: string): Promise<boolean> {
    return this.deleteOrFalse(`/v1/nexuses/${enc(nexus)}/snapshots/${enc(snapshot)}`);
  }

  // ---- create (ownership) ------------------------------------------------------------------

  /**
   * PUT of a spec that tells a create from a confirmation: `created` is true on 201, and on a 200 that
   * answers a retry after an attempt whose outcome is unknown (that attempt created it: the PUT is
   * idempotent, so the retry only confirms). A 200 otherwise means the object existed before this call.
   */
  async create<T>(kind: 'pools' | 'replicas' | 'nexuses', key: string, spec: PoolSpec | ReplicaSpec | NexusSpec): Promise<Created<T>> {
    const r = await this.call<T>('PUT', `/v1/${kind}/${enc(key)}`, spec);
    return { object: r.body, created: r.status === 201 || (r.status === 200 && r.afterUnknownOutcome === true) };
  }

  // ---- transport ----------------------------------------------------------------------------

  /** Why a connection failure is a TLS failure, in words, or undefined when it is not one. */
  private tlsFailure(code: string, detail: string): string | undefined {
    if (!this.secure) return undefined;
    if (CERT_CODES.test(code) || /certificate/i.test(detail)) return `the agent's certificate was refused (${code}: ${detail})`;
    if (/WRONG_VERSION_NUMBER|packet length too long|ERR_SSL_/i.test(code + ' ' + detail)) {
      return `the agent did not answer with TLS (${code}: ${detail}); it may serve plain HTTP: use http:// or start it with --tls-cert/--tls-key`;
    }
    return undefined;
  }

  /** A plain http:// connection closed without an answer: what a TLS agent does to one. */
  private plainHint(code: string): string {
    if (this.secure || !/UND_ERR_SOCKET|ECONNRESET/.test(code)) return '';
    return ' (the agent closed the connection without an answer: if it serves TLS (--tls-cert), use an https:// URL)';
  }

  private async getOrUndefined<T>(path: string): Promise<T | undefined> {
    try {
      return (await this.call<T>('GET', path)).body;
    } catch (e) {
      if (e instanceof AgentError && e.status === 404) return undefined;
      throw e;
    }
  }

  private async deleteOrFalse(path: string): Promise<boolean> {
    try {
      await this.call<unknown>('DELETE', path);
      return true;
    } catch (e) {
      if (e instanceof AgentError && e.status === 404) return false;
      throw e;
    }
  }

  /** One API call with retries (idempotent methods only). Exposed for tests and tools. */
  async call<T>(method: Method, path: string, body?: unknown, text = false): Promise<RawResponse<T>> {
    const attempts = IDEMPOTENT.has(method) ? this.retries + 1 : 1;
    let last: AgentError | undefined;
    let unknownOutcome = false;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(this.backoffMs * 2 ** (i - 1) * (0.75 + Math.random() * 0.5));
      try {
        const r = await this.once<T>(method, path, body, text);
        return unknownOutcome ? { ...r, afterUnknownOutcome: true } : r;
      } catch (e) {
        if (!(e instanceof AgentError)) throw e;
        last = e;
        // a refused certificate or an http:// URL under TLS stays refused: never retried
        const retryable = (e.status === 0 && e.code !== 'cancelled' && e.code !== 'tls' && e.code !== 'insecure') || e.status >= 500;
        if (!retryable) throw e;
        // a refused connection never carried the request; anything else may have been acted on
        if (!(e.code === 'unreachable' && /\bECONNREFUSED\b/.test(e.agentMessage))) unknownOutcome = true;
      }
    }
    throw last!;
  }

  private cancelled(method: Method, url: string): AgentError {
    return new AgentError({ status: 0, code: 'cancelled', node: this.nodeName, url, message: `${method} ${url} cancelled: the provider was asked to stop` });
  }

  private async once<T>(method: Method, path: string, body: unknown, text: boolean): Promise<RawResponse<T>> {
    const url = this.url + path;
    if (this.signal?.aborted) throw this.cancelled(method, url);
    if (this.tls && !this.secure) {
      throw new AgentError({
        status: 0,
        code: 'insecure',
        node: this.nodeName,
        url,
        message: `refusing to call ${url} over plain http://: TLS is configured (a CA or client certificate), so the token is only sent over https://; use an https:// URL for this agent`,
      });
    }
    // only reads are abandoned midway: a change already on the wire is waited for, so its outcome is known
    const cancel = method === 'GET' ? this.signal : undefined;
    const headers: Record<string, string> = { accept: text ? 'text/plain' : 'application/json' };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let status: number;
    let raw: string;
    try {
      const res = await undiciRequest()(url, {
        method,
        headers,
        body: payload,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        dispatcher: this.tlsDispatcher(),
        signal: cancel ? AbortSignal.any([AbortSignal.timeout(this.timeoutMs), cancel]) : AbortSignal.timeout(this.timeoutMs),
      });
      status = res.statusCode;
      raw = await res.body.text();
    } catch (e) {
      if (cancel?.aborted) throw this.cancelled(method, url);
      const err = e as Error & { code?: string; cause?: { code?: string; message?: string } };
      const timeout = err.name === 'TimeoutError' || err.name === 'AbortError' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT';
      const detail = err.cause?.message ?? err.message;
      const tlsWhy = timeout ? undefined : this.tlsFailure(err.cause?.code ?? err.code ?? '', detail);
      if (tlsWhy) throw new AgentError({ status: 0, code: 'tls', node: this.nodeName, url, message: `TLS to ${url} (${method}) failed: ${tlsWhy}` });
      throw new AgentError({
        status: 0,
        code: timeout ? 'timeout' : 'unreachable',
        node: this.nodeName,
        url,
        message: timeout
          ? `${method} ${url} timed out after ${this.timeoutMs} ms`
          : `cannot reach ${url} (${method}): ${err.cause?.code ?? err.code ?? ''} ${detail}${this.plainHint(err.cause?.code ?? err.code ?? '')}`
              .replace(/\s+/g, ' ')
              .trim(),
      });
    }
    if (status >= 200 && status < 300) {
      if (text) return { status, body: raw as unknown as T };
      if (raw === '') return { status, body: undefined as unknown as T };
      try {
        return { status, body: JSON.parse(raw) as T };
      } catch {
        throw new AgentError({ status, code: 'bad_response', node: this.nodeName, url, message: `${method} ${url}: answer is not JSON` });
      }
    }
    let code = 'http_' + status;
    let message = `${method} ${path} failed with HTTP ${status}`;
    try {
      const parsed = JSON.parse(raw) as { error?: { code?: unknown; message?: unknown } };
      if (parsed && parsed.error) {
        if (typeof parsed.error.code === 'string') code = parsed.error.code;
        if (typeof parsed.error.message === 'string') message = parsed.error.message;
      }
    } catch {
      if (raw) message += `: ${raw.slice(0, 200)}`;
    }
    throw new AgentError({ status, code, node: this.nodeName, url, message });
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}
