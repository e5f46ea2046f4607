/**
 * mayastor_nexus: a RAID-1 volume over replicas (local `bdev:///` or remote `nbd://`...), exported to consumers.
 * Children are added and removed in place; an added child is rebuilt and apply waits for the rebuild.
 * A child removed, faulted or offlined out of band drops out of `children` on refresh, so plan shows it and
 * apply re-adds (and rebuilds) it.
 */
import { randomUUID } from 'node:crypto';
import type { AgentClient, Nexus, NexusChildState, NexusPatch, Share } from '../../agent/api/client';
import { childUriProblem } from '../../agent/api/grammar';
import { UNKNOWN, Value, isUnknown, typedEqual } from '../protocol/cty';
import { ResourceType } from '../protocol/framework';
import { SchemaOf, known } from '../protocol/model';
import { Diagnostics } from '../protocol/schema';
import { logger } from '../protocol/log';
import { typedResource } from '../protocol/typed';
import { allowedHostsAttribute, generatedUuidAttribute, idAttribute, nodeAttribute, shareAttribute } from './attributes';
import { Mayastor } from './agent-clients';
import { agentDiag } from './agent-errors';
import { NOT_ASKED, createOnNode, deleteOnNode, importFromNode, planImportId, readOnNode } from './lifecycle';
import { checkNodeAtPlan, checkShare, checkSize, checkUuid } from './validators';
import { TimeoutOp, Timeouts, checkTimeouts, timeoutMs, timeoutsAttribute } from './timeouts';

/** Child states that count as a member of the nexus; anything else (faulted, offline) must be repaired. */
const MEMBER_STATES: ReadonlySet<NexusChildState> = new Set<NexusChildState>(['online', 'degraded']);

/** A nexus's attributes (the schema below, field by field). */
export interface NexusModel {
  id: string;
  node: string;
  uuid: string;
  sizeBytes: number;
  /** A set: the order carries no meaning. */
  children: string[];
  share: Share;
  allowedHosts: string[];
  state: string;
  deviceUri: string;
  /** By child URI. */
  childStates: Record<string, { state: string; rebuildProgress: number }>;
  /** Configuration only (the agent has no such thing): kept from state on refresh. */
  timeouts: Timeouts | null;
}
/** What only the agent knows (and the uuid, when generated at create): unknown in a plan until apply. */
type NexusOutputs = 'id' | 'uuid' | 'state' | 'deviceUri' | 'childStates';

export const nexusSchema: SchemaOf<NexusModel> = {
  description:
    'A nexus: one volume mirrored (RAID-1) onto several children, exported over a block protocol. ' +
    'Adding a child starts a rebuild and apply waits for it (provider `rebuild_timeout_seconds`). ' +
    'A child removed or faulted outside Terraform shows up as a diff on `children`, and apply re-adds and rebuilds it. ' +
    'Creating a nexus that already exists on its node (made by another Terraform state or by hand) fails: import it instead.',
  attributes: {
    id: idAttribute('UUID'),
    node: nodeAttribute('Node whose agent runs the nexus.'),
    uuid: generatedUuidAttribute('nexus', '"7d3c1f7e-3b8a-4f0e-8d65-2f7b1e9c0a11"'),
    size_bytes: {
      type: 'number',
      required: true,
      description:
        'Size of the volume in bytes, a multiple of 512; every child must hold it plus 1 MiB for the nexus label. Grows in place (grow the replicas in the same apply); a nexus cannot shrink. Consumers see the new size when they reconnect.',
      example: '1073741824',
    },
    children: {
      type: ['set', 'string'],
      required: true,
      description:
        "Child URIs: `bdev:///REPLICA-UUID` for a replica on the same node, `nbd://host:port/export`, `iscsi://host:port/iqn/lun`, `nvmf://host:port/nqn`, or `uring:///path`, `aio:///path`, `malloc:///name?size_mb=N`. Use a replica's `uri`. Added and removed in place.",
      example: '[mayastor_replica.a.uri, mayastor_replica.b.uri]',
    },
    share: shareAttribute(
      'How the volume is exported: `none`, `nbd`, or `nvmf` (NVMe/TCP; the agent needs `--nvmf-listen`). `iscsi` is not supported yet. Default `none`. Changed in place: unsharing disconnects the consumers, the data stays.',
    ),
    allowed_hosts: allowedHostsAttribute(
      "Hosts allowed to connect to the share; empty allows any. For `nbd`: IP addresses or CIDR prefixes; for `nvmf`: host NQNs (a node's own is the `nvmf_host_nqn` of data source `mayastor_node`). Changes in place: a host no longer listed is refused at its next connection.",
      '["10.0.0.5", "192.168.1.0/24"]',
    ),
    state: { type: 'string', computed: true, description: 'Nexus state: `online`, `degraded` or `faulted`.' },
    device_uri: {
      type: 'string',
      computed: true,
      useStateForUnknown: true,
      description: 'URI consumers connect to, e.g. `nbd://127.0.0.1:10809/NEXUS-UUID` or `nvmf://127.0.0.1:4420/nqn.2019-05.io.openebs:NEXUS-UUID`.',
    },
    child_states: {
      type: ['map', ['object', { state: 'string', rebuild_progress: 'number' }]],
      computed: true,
      description:
        'State of every child the agent reports, by URI: `state` (`online`, `degraded` while rebuilding, `faulted`, `offline`) and `rebuild_progress` (percent).',
    },
    timeouts: timeoutsAttribute({
      create: "How long create may wait for the children to be rebuilt. Default: the provider's `rebuild_timeout_seconds`.",
      update: "How long an update may wait for added or repaired children to be rebuilt. Default: the provider's `rebuild_timeout_seconds`.",
      delete: "How long destroying the nexus may take. Default: the provider's `request_timeout_seconds` for each attempt of the request.",
    }),
  },
};

function childStates(n: Nexus): NexusModel['childStates'] {
  const out: NexusModel['childStates'] = {};
  for (const c of n.children) out[c.uri] = { state: c.state, rebuildProgress: c.rebuildProgress ?? (c.state === 'online' ? 100 : 0) };
  return out;
}

/** The model of the agent's object. Only member children (online, or degraded while rebuilding) are listed. */
export function toModel(node: string, n: Nexus, timeouts: Timeouts | null = null): NexusModel {
  // children is a set: order carries no meaning (the agent's order changes as children are re-added)
  const ordered = n.children
    .filter((c) => MEMBER_STATES.has(c.state))
    .map((c) => c.uri)
    .sort();
  return {
    id: `${node}/${n.uuid}`,
    node,
    uuid: n.uuid,
    sizeBytes: n.sizeBytes,
    children: ordered,
    share: n.share,
    allowedHosts: [...(n.allowedHosts ?? [])],
    state: n.state,
    deviceUri: n.deviceUri ?? '',
    childStates: childStates(n),
    timeouts,
  };
}

/** A nexus whose state no apply changes by itself: online, every child online and rebuilt. */
function steady(n: NexusModel): boolean {
  return n.state === 'online' && Object.values(n.childStates ?? {}).every((c) => c.state === 'online');
}

/** `p`, or `late()` once `op`'s configured timeout passes first (no configured timeout: `p` as it is). */
async function withTimeout(p: Promise<void>, timeouts: Timeouts | null, op: TimeoutOp, late: () => void): Promise<void> {
  const ms = timeoutMs(timeouts, op, 0);
  if (!ms) return p;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)));
  try {
    if ((await Promise.race([p, expired])) === 'late') late();
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Waits until no child is rebuilding, for at most `op`'s timeout (timeouts.<op>, else the provider's
 * rebuild_timeout_seconds); logs progress. Returns the final nexus or undefined (diagnosed).
 */
async function waitRebuilt(
  m: Mayastor,
  c: AgentClient,
  node: string,
  uuid: string,
  diags: Diagnostics,
  timeouts: Timeouts | null,
  op: TimeoutOp,
): Promise<Nexus | undefined> {
  const limitMs = timeoutMs(timeouts, op, m.opts.rebuildTimeoutMs);
  const deadline = Date.now() + limitMs;
  let lastLog = 0;
  for (;;) {
    const n = await c.getNexus(uuid);
    if (!n) {
      diags.error(`Nexus ${uuid} disappeared on node "${node}"`, 'the nexus was destroyed while its children were rebuilding', ['uuid']);
      return undefined;
    }
    const rebuilding = n.children.filter((ch) => ch.state !== 'online' && MEMBER_STATES.has(ch.state));
    const failed = n.children.filter((ch) => !MEMBER_STATES.has(ch.state));
    if (failed.length) {
      diags.error(`Nexus ${uuid} child failed on node "${node}"`, failed.map((f) => `child ${f.uri} is ${f.state}`).join('; '), ['children']);
      return n;
    }
    if (rebuilding.length === 0) return n;
    if (Date.now() - lastLog > 2000) {
      lastLog = Date.now();
      for (const ch of rebuilding)
        logger.info(`nexus ${uuid}: rebuilding ${ch.uri} ${ch.rebuildProgress ?? 0}%`, { node, nexus: uuid, child: ch.uri, progress: ch.rebuildProgress ?? 0 });
    }
    if (Date.now() > deadline || m.isStopped) {
      const why = m.isStopped
        ? 'when Terraform asked the provider to stop'
        : timeouts?.[op]
          ? `after ${timeouts[op]} (timeouts.${op})`
          : `after ${Math.round(limitMs / 1000)} s (provider rebuild_timeout_seconds)`;
      diags.error(
        `Nexus ${uuid} rebuild did not finish on node "${node}"`,
        `${rebuilding.map((ch) => `${ch.uri} at ${ch.rebuildProgress ?? 0}%`).join(', ')} ${why}. ` +
          'The rebuild goes on in the agent; run apply again to wait for it.',
        timeouts?.[op] ? ['timeouts', op] : ['children'],
      );
      return n;
    }
    await sleep(250);
  }
}

export const nexusResource: ResourceType<Mayastor> = typedResource<Mayastor, NexusModel, NexusOutputs>({
  typeName: 'mayastor_nexus',
  schema: nexusSchema,

  validate(config, diags) {
    checkUuid(diags, config.uuid, 'uuid');
    checkSize(diags, config.sizeBytes);
    checkShare(diags, config.share);
    checkTimeouts(diags, config.timeouts);
    const children = config.children;
    if (Array.isArray(children)) {
      if (children.length === 0) diags.error('Invalid children', 'a nexus needs at least one child', ['children']);
      const seen = new Set<string>();
      children.forEach((ch) => {
        if (typeof ch !== 'string') return;
        const p = childUriProblem(ch);
        if (p) diags.error('Invalid child URI', `child "${ch}" ${p.message}`, ['children']);
        if (seen.has(ch)) diags.error('Duplicate child', `child "${ch}" is listed twice`, ['children']);
        seen.add(ch);
      });
    }
  },

  modifyPlan(m, { prior, planned, requiresReplace }, diags) {
    checkNodeAtPlan(m, planned.node, diags);
    const was = prior ? known(prior.sizeBytes) : undefined,
      want = known(planned.sizeBytes);
    if (was !== undefined && want !== undefined && want < was && requiresReplace.size === 0) {
      diags.error(
        'A nexus cannot shrink',
        `size_bytes ${want} is smaller than the current ${was}: the data beyond it would be lost. Create a new nexus for a smaller volume.`,
        ['size_bytes'],
      );
    }
    planImportId(planned, planned.uuid);
    // an update (the framework planned state and child_states unknown) keeps the state's values through a growth or
    // a share change when the nexus is steady (online, every child online); new children, or a rebuild still running,
    // make them what apply finds
    if (
      prior &&
      requiresReplace.size === 0 &&
      isUnknown(planned.state) &&
      steady(prior) &&
      typedEqual(nexusSchema.attributes.children.type, prior.children, planned.children as Value)
    ) {
      planned.state = prior.state;
      planned.childStates = prior.childStates;
    }
    // a new share means a new address for the consumers (the agent knows its NBD host and port)
    if (prior && requiresReplace.size === 0 && known(prior.share) !== known(planned.share)) planned.deviceUri = UNKNOWN;
  },

  async create(m, planned, diags) {
    const node = planned.node,
      uuid = known(planned.uuid) ?? randomUUID();
    const c = m.client(node, diags);
    if (!c) return null;
    let made: Nexus | undefined;
    try {
      made = await createOnNode<Nexus>(c, diags, node, 'nexuses', uuid, {
        sizeBytes: planned.sizeBytes,
        children: planned.children ?? [],
        share: planned.share ?? 'none',
        allowedHosts: planned.allowedHosts ?? [],
      });
      if (!made) return null;
      const n = await waitRebuilt(m, c, node, uuid, diags, planned.timeouts, 'create');
      return n ? toModel(node, n, planned.timeouts) : null;
    } catch (e) {
      agentDiag(diags, e, `Create nexus ${uuid}`, node, 'children', ['size_bytes', 'allowed_hosts', 'share', 'children']);
      // created here but the wait failed: keep it in state (tainted), or the next apply would call it foreign
      return made ? toModel(node, made, planned.timeouts) : null;
    }
  },

  read: (m, state, diags) =>
    readOnNode(
      state,
      state.node,
      diags,
      `nexus ${state.uuid}`,
      'uuid',
      async () => m.reader(state.node, diags)?.getNexus(state.uuid) ?? NOT_ASKED,
      (node, n) => toModel(node, n, state.timeouts),
    ),

  async update(m, prior, planned, diags) {
    // an update keeps the uuid (a different one replaces the object)
    const node = planned.node,
      uuid = prior.uuid;
    const c = m.client(node, diags);
    if (!c) return prior;
    const want = planned.children ?? [];
    try {
      let n = await c.getNexus(uuid);
      if (!n) {
        diags.error(`Nexus ${uuid} disappeared on node "${node}"`, 'run plan again to re-create it', ['uuid']);
        return prior;
      }
      // add first, then remove: the volume never has fewer healthy children than needed
      for (const uri of want) {
        const have = n.children.find((ch) => ch.uri === uri);
        if (have && MEMBER_STATES.has(have.state)) continue;
        if (have) {
          logger.info(`nexus ${uuid}: child ${uri} is ${have.state}; removing and re-adding it to rebuild`, { node, nexus: uuid });
          await c.removeNexusChild(uuid, uri);
        }
        logger.info(`nexus ${uuid}: adding child ${uri}`, { node, nexus: uuid });
        n = await c.addNexusChild(uuid, uri);
      }
      const rebuilt = await waitRebuilt(m, c, node, uuid, diags, planned.timeouts, 'update');
      if (!rebuilt) return prior;
      for (const ch of rebuilt.children) {
        if (!want.includes(ch.uri)) {
          logger.info(`nexus ${uuid}: removing child ${ch.uri}`, { node, nexus: uuid });
          await c.removeNexusChild(uuid, ch.uri);
        }
      }
      // one PATCH: the agent grows first (the children hold the size now), then re-shares
      const patch: NexusPatch = {};
      const size = planned.sizeBytes,
        share = planned.share ?? 'none';
      const hosts = planned.allowedHosts ?? [];
      if (size !== rebuilt.sizeBytes) patch.sizeBytes = size;
      if (share !== rebuilt.share) patch.share = share;
      if (JSON.stringify(hosts) !== JSON.stringify(rebuilt.allowedHosts ?? [])) patch.allowedHosts = hosts;
      if (patch.sizeBytes !== undefined || patch.share !== undefined || patch.allowedHosts !== undefined) {
        logger.info(`nexus ${uuid}: ${JSON.stringify(patch)}`, { node, nexus: uuid });
        await c.patchNexus(uuid, patch);
      }
      const final = await c.getNexus(uuid);
      return final ? toModel(node, final, planned.timeouts) : prior;
    } catch (e) {
      agentDiag(diags, e, `Update nexus ${uuid}`, node, 'children', ['children', 'size_bytes', 'allowed_hosts', 'share']);
      try {
        const n = await c.getNexus(uuid);
        if (n) return toModel(node, n, prior.timeouts);
      } catch {
        /* fall back to prior */
      }
      return prior;
    }
  },

  delete: (m, { node, uuid, timeouts }, diags) =>
    withTimeout(
      deleteOnNode(m, node, uuid, diags, 'nexus', 'uuid', (c, uuid) => c.deleteNexus(uuid)),
      timeouts,
      'delete',
      () =>
        diags.error(
          `Destroy nexus ${uuid} did not finish on node "${node}"`,
          `no answer from the agent within ${timeouts?.delete} (timeouts.delete); the nexus may still be destroyed: run destroy again`,
          ['uuid'],
        ),
    ),

  importState: (m, id, diags) => importFromNode(m, id, diags, 'mayastor_nexus', 'nexus', 'uuid', (c, key) => c.getNexus(key), toModel),
});
