/**
 * The create, import and delete steps every resource shares: objects keyed by node and name or uuid, with the
 * ownership rule (a state owns only what it created) and import ids of the form NODE/KEY.
 */
import type { AgentClient, Created } from '../../agent/api/client';
import { Maybe, known } from '../protocol/model';
import { Diagnostics } from '../protocol/schema';
import { Mayastor } from './agent-clients';
import { agentDiag, isAgentError } from './agent-errors';

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
  return refuseExisting(diags, k.resource, node, `${k.noun} ${kind === 'pools' ? `"${key}"` : key} with this spec`, key, k.keyAttr);
}

/**
 * The ownership rule's refusal (see createOnNode): `what` (e.g. `pool "p" with this spec`, `snapshot U of replica R`)
 * is already on `node`, made by another state or a tool, so this create takes nothing over and says how to import
 * it as `NODE/key`. Always undefined (no object for this state).
 */
export function refuseExisting(diags: Diagnostics, resource: string, node: string, what: string, key: string, keyAttr: string): undefined {
  const id = `${node}/${key}`;
  diags.error(
    `${resource} already exists`,
    `Node "${node}" already has ${what}, and this Terraform state did not create it ` +
      '(another state or a tool did). Terraform does not take over an object it did not create: destroying it from here would delete data its owner uses. ' +
      `To manage it from this configuration, import it: terraform import ${resource}.NAME ${id} ` +
      `(NAME: the resource's name in your configuration; or an import block with id = "${id}"), and remove it from the state that owns it.`,
    [keyAttr],
  );
  return undefined;
}

/** ModifyPlan: the import id `NODE/KEY` is known at plan once node and key are (else it stays unknown until apply). */
export function planImportId(planned: { id: Maybe<string>; node: Maybe<string> }, key: Maybe<string>): void {
  const node = known(planned.node),
    k = known(key);
  if (node !== undefined && k !== undefined) planned.id = `${node}/${k}`;
}

/**
 * CreateResource for an object that is ready once the agent made it (pools, replicas): createOnNode on the
 * node's client; an agent failure is reported by `failed` (the resource names the attribute).
 */
export async function createModel<T, M>(
  m: Mayastor,
  diags: Diagnostics,
  node: string,
  kind: CreateKind,
  key: string,
  spec: CreateSpec,
  toModel: (node: string, obj: T) => M,
  failed: (e: unknown) => void,
): Promise<M | null> {
  return createWith(
    m,
    diags,
    node,
    async (c) => {
      const obj = await createOnNode<T>(c, diags, node, kind, key, spec);
      return obj ? toModel(node, obj) : null;
    },
    failed,
  );
}

/**
 * CreateResource's frame: `make` with the node's client (null when the node cannot be used: its diagnostic says
 * why); a throw from it is reported by `failed` (the resource names the attribute) and leaves nothing in state.
 */
export async function createWith<M>(
  m: Mayastor,
  diags: Diagnostics,
  node: string,
  make: (c: AgentClient) => Promise<M | null>,
  failed: (e: unknown) => void,
): Promise<M | null> {
  const c = m.client(node, diags);
  if (!c) return null;
  try {
    return await make(c);
  } catch (e) {
    failed(e);
    return null;
  }
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
 * node and turn it into the resource's model, or explain why not (`notFound`: the detail when `get` finds nothing).
 */
export async function importFromNode<T, M>(
  m: Mayastor,
  id: string,
  diags: Diagnostics,
  resource: string,
  noun: string,
  keyAttr: string,
  get: (c: AgentClient, key: string) => Promise<T | undefined>,
  toModel: (node: string, obj: T) => M,
  notFound = (node: string, key: string) => `node "${node}" has no ${noun} ${key}`,
): Promise<M | null> {
  const parts = parseImportId(id, resource, diags);
  if (!parts) return null;
  const [node, key] = parts;
  const c = m.client(node, diags, []);
  if (!c) return null;
  try {
    const obj = await get(c, key);
    if (!obj) {
      diags.error('Cannot import non-existent remote object', notFound(node, key));
      return null;
    }
    return toModel(node, obj);
  } catch (e) {
    agentDiag(diags, e, `Import ${noun} ${key}`, node, keyAttr, []);
    return null;
  }
}

/**
 * DeleteResource: remove object `key` from `node`. Agent errors become diagnostics on `keyAttr`,
 * unless `explain` (a resource's own wording for a known refusal) reports the error itself.
 */
export async function deleteOnNode(
  m: Mayastor,
  node: string,
  key: string,
  diags: Diagnostics,
  what: string,
  keyAttr: string,
  del: (c: AgentClient, key: string) => Promise<unknown>,
  explain?: (e: unknown, node: string, key: string) => boolean,
): Promise<void> {
  const c = m.client(node, diags);
  if (!c) return;
  try {
    await del(c, key);
  } catch (e) {
    if (!explain?.(e, node, key)) agentDiag(diags, e, `Destroy ${what} ${key}`, node, keyAttr, []);
  }
}

/** What a read's lookup answers when it could not ask the agent (its diagnostic says why). */
export const NOT_ASKED: unique symbol = Symbol('not asked');

/**
 * ReadResource: the object's model from its node; null when the node no longer has it (deleted out of band:
 * gone from state, so the next plan re-creates it); the state unchanged, with a diagnostic on `keyAttr`, when
 * the agent could not be asked or failed (a failed refresh never damages state).
 */
export async function readOnNode<T, M>(
  state: M,
  node: string,
  diags: Diagnostics,
  what: string,
  keyAttr: string,
  lookup: () => Promise<T | undefined | typeof NOT_ASKED>,
  toModel: (node: string, obj: T) => M,
): Promise<M | null> {
  try {
    const obj = await lookup();
    if (obj === NOT_ASKED) return state;
    return obj ? toModel(node, obj) : null;
  } catch (e) {
    agentDiag(diags, e, `Read ${what}`, node, keyAttr, []);
    return state;
  }
}

/** readOnNode's lookup of object `id` in its node's listing of `kind` (one listing serves a refresh: Mayastor.listing). */
export function inListing<T>(m: Mayastor, node: string, kind: 'pools' | 'replicas', diags: Diagnostics, key: (o: T) => string, id: string) {
  return async (): Promise<T | undefined | typeof NOT_ASKED> => {
    const all = await m.listing<T>(node, kind, diags, key);
    return all ? all.get(id) : NOT_ASKED;
  };
}
