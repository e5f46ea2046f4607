/**
 * What every resource and data source shares: the configured provider (node → agent client), agent errors as
 * diagnostics naming the attribute and the node, import id parsing and common validation.
 */
import type { AgentClient, AgentError, Created } from '../../agent/api/client';
import { Problem, poolNameProblem, shareProblem, uuidProblem } from '../../agent/api/grammar';
import { ObjectValue, Value, isUnknown } from '../protocol/cty';
import { Diagnostics, PathStep, numOf, str } from '../protocol/schema';

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
      c = new AgentClient({ url, token: this.opts.token, node, timeoutMs: this.opts.timeoutMs, retries: this.opts.retries, signal: this.stopping.signal });
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
  }
  get isStopped(): boolean {
    return this.stopping.signal.aborted;
  }
}

export function isAgentError(e: unknown): e is AgentError {
  return typeof e === 'object' && e !== null && (e as { name?: string }).name === 'AgentError' && typeof (e as AgentError).status === 'number';
}

/** API field names (camelCase) → the attribute they come from. */
const FIELD_TO_ATTR: [RegExp, string][] = [
  [/\bsizeBytes\b|\bsize\b/i, 'size_bytes'],
  [/\ballowedHosts\b/, 'allowed_hosts'],
  [/\bshare\b/i, 'share'],
  [/\bchildren\b|\bchild\b/i, 'children'],
  [/\bdisks?\b/i, 'disks'],
  [/\bpool\b/i, 'pool'],
  [/\bthin\b/i, 'thin'],
];

/**
 * Turns an agent failure into a diagnostic that names the node and the attribute. `fallback` is the attribute
 * when the message names none; connection failures point at `node`.
 */
export function agentDiag(diags: Diagnostics, e: unknown, what: string, node: string, fallback: string, allowed?: string[]): void {
  if (!isAgentError(e)) throw e;
  if (e.code === 'cancelled') {
    diags.error('Provider stopped', `${what}: ${e.message}. Terraform asked the provider to stop (interrupt); state was not changed.`, ['node']);
    return;
  }
  if (e.status === 0) {
    diags.error(
      `Agent on node "${node}" is unreachable`,
      `${what}: ${e.message}. Check that the agent on node "${node}" is running and that the provider's nodes map points at it; state was not changed.`,
      ['node'],
    );
    return;
  }
  if (e.status === 401) {
    diags.error(
      `Agent on node "${node}" rejected the token`,
      `${what}: ${e.message}. Set the provider's token (or MAYASTOR_TOKEN) to the contents of the agent's token file.`,
      ['node'],
    );
    return;
  }
  let attr = fallback;
  for (const [re, a] of FIELD_TO_ATTR) {
    if ((!allowed || allowed.includes(a)) && re.test(e.agentMessage)) {
      attr = a;
      break;
    }
  }
  diags.error(`${what} failed on node "${node}"`, `${e.message}`, [attr]);
}

export type CreateKind = 'pools' | 'replicas' | 'nexuses';
type CreateSpec = Parameters<AgentClient['create']>[2];

const KIND: Record<CreateKind, { resource: string; noun: string; keyAttr: string; importKey: string }> = {
  pools: { resource: 'mayastor_pool', noun: 'pool', keyAttr: 'name', importKey: 'NAME' },
  replicas: { resource: 'mayastor_replica', noun: 'replica', keyAttr: 'uuid', importKey: 'UUID' },
  nexuses: { resource: 'mayastor_nexus', noun: 'nexus', keyAttr: 'uuid', importKey: 'UUID' },
};

/**
 * CreateResource's PUT, with the ownership rule every resource follows: only an object this call created
 * (the agent answered 201) belongs to this state. A 200 means the object was already there with the same
 * spec (made by another Terraform state or by hand): taking it would let this state's destroy delete data
 * someone else uses, so it is an error that says to import it. A 200 to the client's own retry of a PUT
 * whose first attempt got no answer counts as created (AgentClient.create). Returns the agent's object,
 * or undefined with a diagnostic.
 */
export async function createOnNode<T>(
  c: AgentClient,
  diags: Diagnostics,
  node: string,
  kind: CreateKind,
  key: string,
  spec: CreateSpec,
): Promise<T | undefined> {
  const k = KIND[kind];
  const id = `${node}/${key}`;
  let r: Created<T>;
  try {
    r = await c.create<T>(kind, key, spec);
  } catch (e) {
    // every attempt failed, and the last one may still have been carried out by the agent
    const unknown = isAgentError(e) && ((e.status === 0 && e.code === 'timeout') || e.status >= 500);
    if (unknown) {
      diags.warn(
        `${k.resource} may have been created`,
        `The create on node "${node}" got no clear answer, so the agent may have made ${k.noun} ${key} anyway. ` +
          `If the next apply reports that it already exists, it is this one: import it with terraform import ${k.resource}.NAME ${id}.`,
        [k.keyAttr],
      );
    }
    throw e;
  }
  if (r.created) return r.object;
  diags.error(
    `${k.resource} already exists`,
    `Node "${node}" already has ${k.noun} ${kind === 'pools' ? `"${key}"` : key} with this spec, and this Terraform state did not create it ` +
      '(another state or a tool did). Terraform does not take over an object it did not create: destroying it from here would delete data its owner uses. ' +
      `To manage it from this configuration, import it: terraform import ${k.resource}.NAME ${id} ` +
      `(NAME: the resource's name in your configuration; or an import block with id = "${id}"), and remove it from the state that owns it.`,
    [k.keyAttr],
  );
  return undefined;
}

/** "NODE/REST" import ids. */
export function parseImportId(id: string, what: string, diags: Diagnostics): [string, string] | undefined {
  const i = id.indexOf('/');
  if (i <= 0 || i === id.length - 1 || id.indexOf('/', i + 1) !== -1) {
    diags.error('Invalid import id', `${what} import ids are "NODE/${what === 'mayastor_pool' ? 'NAME' : 'UUID'}", got "${id}"`);
    return undefined;
  }
  return [id.slice(0, i), id.slice(i + 1)];
}

/**
 * ImportResourceState for "NODE/KEY" ids (KEY is a pool name or a uuid): read the object from its
 * node and turn it into state, or explain why not.
 */
export async function importFromNode<T>(
  m: Mayastor,
  id: string,
  diags: Diagnostics,
  resource: string,
  noun: string,
  keyAttr: string,
  get: (c: AgentClient, key: string) => Promise<T | undefined>,
  toState: (node: string, obj: T) => ObjectValue,
): Promise<ObjectValue | null> {
  const parts = parseImportId(id, resource, diags);
  if (!parts) return null;
  const [node, key] = parts;
  const c = m.client(node, diags, []);
  if (!c) return null;
  try {
    const obj = await get(c, key);
    if (!obj) {
      diags.error('Cannot import non-existent remote object', `node "${node}" has no ${noun} ${key}`);
      return null;
    }
    return toState(node, obj);
  } catch (e) {
    agentDiag(diags, e, `Import ${noun} ${key}`, node, keyAttr, []);
    return null;
  }
}

/**
 * DeleteResource: remove the object from its node. Agent errors become diagnostics on `keyAttr`,
 * unless `explain` (a resource's own wording for a known refusal) reports the error itself.
 */
export async function deleteOnNode(
  m: Mayastor,
  prior: ObjectValue,
  diags: Diagnostics,
  what: string,
  keyAttr: string,
  del: (c: AgentClient, key: string) => Promise<unknown>,
  explain?: (e: unknown, node: string, key: string) => boolean,
): Promise<void> {
  const node = nodeOf(prior);
  const key = str(prior[keyAttr])!;
  const c = m.client(node, diags);
  if (!c) return;
  try {
    await del(c, key);
  } catch (e) {
    if (!explain?.(e, node, key)) agentDiag(diags, e, `Destroy ${what} ${key}`, node, keyAttr, []);
  }
}

/**
 * Validation helpers: each checks a known value against the agent's grammar (agent/api/grammar.ts: the same
 * rule the agent applies) and names the attribute. Unknown values pass.
 */
export function checkGrammar(diags: Diagnostics, v: Value, attr: string, what: string, rule: (s: string) => Problem | undefined): void {
  const s = str(v);
  const p = s === undefined ? undefined : rule(s);
  if (p) diags.error(`Invalid ${attr}`, `${what} "${s}" ${p.message}`, [attr]);
}

export function checkName(diags: Diagnostics, v: Value, attr: string, what: string): void {
  checkGrammar(diags, v, attr, what, poolNameProblem);
}

export function checkUuid(diags: Diagnostics, v: Value, attr: string): void {
  checkGrammar(diags, v, attr, attr, uuidProblem);
}

export function checkSize(diags: Diagnostics, v: Value, attr = 'size_bytes'): void {
  if (v === null || isUnknown(v)) return;
  const n = numOf(v);
  if (n === undefined || !Number.isInteger(n) || n <= 0) {
    diags.error(`Invalid ${attr}`, `${attr} must be a positive whole number of bytes, got ${String(v)}`, [attr]);
  } else if (n > Number.MAX_SAFE_INTEGER) {
    diags.error(`Invalid ${attr}`, `${attr} ${String(v)} is too large`, [attr]);
  } else if (n % 512 !== 0) {
    diags.error(`Invalid ${attr}`, `${attr} must be a multiple of 512 bytes, got ${n} (nearest: ${Math.ceil(n / 512) * 512})`, [attr]);
  }
}

export function checkShare(diags: Diagnostics, v: Value, attr = 'share'): void {
  checkGrammar(diags, v, attr, attr, shareProblem);
}

/** Plan-time: the node must be in the provider's nodes map. */
export function checkNodeAtPlan(m: Mayastor | undefined, planned: ObjectValue, diags: Diagnostics): void {
  const node = str(planned.node ?? null);
  if (m && node !== undefined && !m.knowsNode(node)) m.unknownNode(diags, node);
}

export function nodeOf(v: ObjectValue): string {
  return str(v.node ?? null) ?? '';
}
