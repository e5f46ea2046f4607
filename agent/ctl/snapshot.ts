/**
 * mayastorctl's snapshot commands (issue 13; README "Snapshots"):
 *
 *   mayastorctl snapshot create REPLICA [SNAPSHOT_UUID] [--share none|nbd|nvmf] [--allowed-hosts HOSTS]
 *   mayastorctl snapshot list [REPLICA]
 *   mayastorctl snapshot get SNAPSHOT
 *   mayastorctl snapshot share SNAPSHOT --share none|nbd|nvmf [--allowed-hosts HOSTS]   (read-only export)
 *   mayastorctl snapshot delete SNAPSHOT
 *   mayastorctl replica create [UUID] --from-snapshot SNAPSHOT [--share ...]   (a clone: the snapshot's pool and size, thin)
 *   mayastorctl replica revert UUID SNAPSHOT
 *   mayastorctl nexus snapshot NEXUS [SNAPSHOT_UUID] [--deadline-ms MS] [--skip-unhealthy]
 *   mayastorctl nexus snapshots NEXUS
 *   mayastorctl nexus snapshot-delete NEXUS SNAPSHOT
 *
 * main.ts calls snapshotCommand() before its own commands; undefined means "not one of these".
 */
import crypto from 'node:crypto';
import { AgentClient, AgentError, Share } from '../api/client';
import type { Snapshot, VolumeSnapshot } from '../api/types';
import { humanBytes, table } from './format';

export const SNAPSHOT_USAGE = `  snapshot create REPLICA [SNAPSHOT_UUID] [--share none|nbd|nvmf] [--allowed-hosts HOSTS]
  snapshot list [REPLICA]
  snapshot get SNAPSHOT
  snapshot share SNAPSHOT --share none|nbd|nvmf [--allowed-hosts HOSTS]   (read-only export)
  snapshot delete SNAPSHOT               (409 while it has clones)
  replica create [UUID] --from-snapshot SNAPSHOT [--share ...]   (a clone: the snapshot's pool and size, thin)
  replica revert UUID SNAPSHOT           (roll back in place)
  nexus snapshot NEXUS [SNAPSHOT_UUID] [--deadline-ms MS] [--skip-unhealthy]   (consistent, every replica)
  nexus snapshots NEXUS
  nexus snapshot-delete NEXUS SNAPSHOT`;

/** Flags these commands add to mayastorctl's parser. */
export const SNAPSHOT_VALUE_FLAGS = ['--from-snapshot', '--deadline-ms'];
export const SNAPSHOT_BOOL_FLAGS = ['--skip-unhealthy'];

export class SnapshotUsageError extends Error {}

export interface SnapshotCommandContext {
  noun: string;
  verb: string | undefined;
  rest: string[];
  flags: Map<string, string | true>;
  client: AgentClient;
  url: string;
  print: (human: string, obj: unknown) => void;
  share: () => Share | undefined;
  hosts: () => string[] | undefined;
}

function snapshotRows(ss: Snapshot[]): string {
  return table(
    ['UUID', 'REPLICA', 'POOL', 'SIZE', 'REFERENCED', 'CREATED', 'SHARE', 'CHILDREN', 'GROUP'],
    ss.map((s) => [
      s.uuid,
      s.sourceReplica,
      s.pool,
      humanBytes(s.sizeBytes),
      humanBytes(s.referencedBytes),
      s.createdAt,
      s.share === 'none' ? '-' : s.uri,
      s.children.join(',') || '-',
      s.group || '-',
    ]),
  );
}

function volumeRows(vs: VolumeSnapshot[]): string {
  const rows: string[][] = [];
  for (const v of vs) for (const r of v.replicas) rows.push([v.uuid, v.createdAt, r.replica, r.snapshot, r.skipped ? 'skipped' : (r.node ?? 'local'), r.child]);
  return table(['SNAPSHOT', 'CREATED', 'REPLICA', 'PART', 'NODE', 'CHILD'], rows);
}

const notFound = (ctx: SnapshotCommandContext, message: string) =>
  new AgentError({ status: 404, code: 'not_found', node: ctx.client.nodeName, url: ctx.url, message });

/** Run a snapshot command; undefined when `noun verb` is not one of them. */
export async function snapshotCommand(ctx: SnapshotCommandContext): Promise<number | undefined> {
  const { noun, verb, rest, client, print } = ctx;
  const need = (n: number, what: string) => {
    if (rest.length < n) throw new SnapshotUsageError(`${noun} ${verb}: missing ${what}`);
  };
  switch (`${noun} ${verb ?? ''}`.trim()) {
    case 'snapshot create': {
      need(1, 'REPLICA');
      const share = ctx.share();
      const allowedHosts = ctx.hosts();
      const s = await client.putSnapshot(rest[0], rest[1] ?? crypto.randomUUID(), { ...(share ? { share } : {}), ...(allowedHosts ? { allowedHosts } : {}) });
      print(snapshotRows([s]), s);
      return 0;
    }
    case 'snapshot list':
    case 'snapshots list': {
      const ss = rest[0] ? await client.listReplicaSnapshots(rest[0]) : await client.listSnapshots();
      print(snapshotRows(ss), ss);
      return 0;
    }
    case 'snapshot get': {
      need(1, 'SNAPSHOT');
      const s = await client.findSnapshot(rest[0]);
      if (!s) throw notFound(ctx, `snapshot '${rest[0]}' does not exist`);
      print(snapshotRows([s]), s);
      return 0;
    }
    case 'snapshot share': {
      need(1, 'SNAPSHOT');
      const share = ctx.share();
      if (!share) throw new SnapshotUsageError('snapshot share: --share none|nbd|nvmf is required');
      const allowedHosts = ctx.hosts();
      const s = await client.patchSnapshot(rest[0], { share, ...(allowedHosts ? { allowedHosts } : {}) });
      print(snapshotRows([s]), s);
      return 0;
    }
    case 'snapshot delete': {
      need(1, 'SNAPSHOT');
      if (!(await client.deleteSnapshotByUuid(rest[0]))) throw notFound(ctx, `snapshot '${rest[0]}' does not exist`);
      print(`snapshot '${rest[0]}' deleted\n`, { deleted: rest[0] });
      return 0;
    }
    case 'replica create': {
      const from = ctx.flags.get('--from-snapshot');
      if (from === undefined) return undefined; // a plain replica: main.ts
      if (typeof from !== 'string') throw new SnapshotUsageError('--from-snapshot needs a value');
      if (ctx.flags.has('--size') || ctx.flags.has('--pool') || ctx.flags.has('--thin'))
        throw new SnapshotUsageError(
          'replica create --from-snapshot: a clone takes its pool and size from the snapshot and is thin (omit --pool, --size, --thin)',
        );
      const share = ctx.share();
      const allowedHosts = ctx.hosts();
      const r = await client.putClone(rest[0] ?? crypto.randomUUID(), {
        source: { snapshot: from },
        ...(share ? { share } : {}),
        ...(allowedHosts ? { allowedHosts } : {}),
      });
      print(`replica '${r.uuid}' cloned from snapshot '${from}' (pool ${r.pool}, ${humanBytes(r.sizeBytes)}, ${r.uri})\n`, r);
      return 0;
    }
    case 'replica revert': {
      need(2, 'UUID and SNAPSHOT');
      const r = await client.revertReplica(rest[0], rest[1]);
      print(`replica '${r.uuid}' reverted to snapshot '${rest[1]}'\n`, r);
      return 0;
    }
    case 'nexus snapshot': {
      need(1, 'NEXUS');
      const dl = ctx.flags.get('--deadline-ms');
      const deadlineMs = dl === undefined ? undefined : Number(dl);
      if (deadlineMs !== undefined && (!Number.isInteger(deadlineMs) || deadlineMs < 1 || deadlineMs > 600000))
        throw new SnapshotUsageError(`--deadline-ms: '${String(dl)}' must be 1..600000`);
      const v = await client.putNexusSnapshot(rest[0], rest[1] ?? crypto.randomUUID(), {
        ...(deadlineMs !== undefined ? { deadlineMs } : {}),
        ...(ctx.flags.has('--skip-unhealthy') ? { skipUnhealthy: true } : {}),
      });
      print(volumeRows([v]), v);
      return 0;
    }
    case 'nexus snapshots': {
      need(1, 'NEXUS');
      const vs = await client.listNexusSnapshots(rest[0]);
      print(volumeRows(vs), vs);
      return 0;
    }
    case 'nexus snapshot-delete': {
      need(2, 'NEXUS and SNAPSHOT');
      if (!(await client.deleteNexusSnapshot(rest[0], rest[1]))) throw notFound(ctx, `volume snapshot '${rest[1]}' of nexus '${rest[0]}' does not exist`);
      print(`volume snapshot '${rest[1]}' deleted\n`, { deleted: rest[1] });
      return 0;
    }
    default:
      return undefined;
  }
}
