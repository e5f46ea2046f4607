/**
 * The rules a ReplicatedVolume's props must pass, as a table (in the manner of aws-cdk's validate-*-props.ts):
 * each rule looks at the props and returns the problem it finds, naming the prop and the value given, or
 * nothing. The constructor throws the first problem. Placement (which can fail too) is placement.ts.
 */
import { nodeNameProblem, poolNameProblem, uuidProblem } from '../../agent/api/grammar';
import { NEXUS_MAX_CHILDREN } from '../../agent/api/limits';
import { describe } from './errors';
import { StorageNode } from './storage-node';
import type { ReplicatedVolumeProps } from './replicated-volume';

/** How the nexus exports the volume, and how it reaches its remote replicas (they are shared the same way). */
export type VolumeProtocol = 'nbd' | 'nvmf';
export const VOLUME_PROTOCOLS: readonly VolumeProtocol[] = ['nbd', 'nvmf'];

/** A prop and what is wrong with it. */
export interface PropProblem {
  readonly prop: string;
  readonly detail: string;
}

type Rule = (p: ReplicatedVolumeProps) => PropProblem | undefined;
const problem = (prop: string, detail: string): PropProblem => ({ prop, detail });
const isWhole = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const names = (nodes: StorageNode[]) => nodes.map((n) => n.name).join(', ');

/** "POOL" or "NODE/POOL" split, or undefined when it is neither. */
export function parsePoolRef(p: unknown): { node?: string; pool: string } | undefined {
  if (typeof p !== 'string') return undefined;
  const parts = p.split('/');
  if (parts.length > 2 || poolNameProblem(parts[parts.length - 1]) || (parts.length === 2 && nodeNameProblem(parts[0]))) return undefined;
  return parts.length === 2 ? { node: parts[0], pool: parts[1] } : { pool: parts[0] };
}

/** A ReplicatedVolumeSnapshot, by shape (the class lives in replicated-volume.ts, which imports this file). */
function isVolumeSnapshot(s: unknown): s is NonNullable<ReplicatedVolumeProps['source']> {
  const v = (s as { volume?: { placement?: unknown; sizeBytes?: unknown } } | null)?.volume;
  return typeof s === 'object' && s !== null && typeof (s as { snapshotUuidOf?: unknown }).snapshotUuidOf === 'function' && Array.isArray(v?.placement);
}

/** The rules of a volume made from a snapshot (`source`): its replicas are clones where the snapshot's replicas are. */
const SOURCE_RULES: readonly Rule[] = [
  (p) =>
    !isVolumeSnapshot(p.source) ? problem('source', `${describe(p.source)} is not a ReplicatedVolumeSnapshot (make one with volume.snapshot(id))`) : undefined,
  (p) =>
    p.sizeBytes !== p.source!.volume.sizeBytes
      ? problem('sizeBytes', `${describe(p.sizeBytes)} must be the source volume's size, ${p.source!.volume.sizeBytes} (a clone has its snapshot's size)`)
      : undefined,
  (p) =>
    p.replicas !== undefined && p.replicas !== p.source!.volume.placement.length
      ? problem('replicas', `${describe(p.replicas)} must be the source volume's ${p.source!.volume.placement.length}: one clone per replica snapshot`)
      : undefined,
  (p) => (p.thin === false ? problem('thin', 'a volume made from a snapshot is thin (its replicas are clones): leave thin out') : undefined),
  (p) => (p.pools !== undefined ? problem('pools', "a volume made from a snapshot uses the snapshot's pools: leave pools out") : undefined),
  (p) => {
    const missing = p.source!.volume.placement.filter((r) => !p.nodes.some((n) => n.name === r.node));
    return missing.length ? problem('nodes', `the snapshot's replicas are on ${missing.map((r) => r.node).join(', ')}, which nodes does not hold`) : undefined;
  },
  (p) =>
    p.nexusNode !== undefined && !p.source!.volume.placement.some((r) => r.node === p.nexusNode)
      ? problem('nexusNode', `${describe(p.nexusNode)} holds none of the snapshot's replicas (${p.source!.volume.placement.map((r) => r.node).join(', ')})`)
      : undefined,
];

const RULES: readonly Rule[] = [
  (p) => (p === null || typeof p !== 'object' ? problem('config', 'a configuration object is required') : undefined),
  (p) => (p.source !== undefined && !isVolumeSnapshot(p.source) ? SOURCE_RULES[0](p) : undefined),
  (p) => (!Array.isArray(p.nodes) || p.nodes.length === 0 ? problem('nodes', 'give at least one StorageNode') : undefined),
  (p) => {
    const i = p.nodes.findIndex((n) => !StorageNode.isStorageNode(n));
    return i >= 0 ? problem(`nodes[${i}]`, `${describe(p.nodes[i])} is not a StorageNode`) : undefined;
  },
  (p) => {
    const i = p.nodes.findIndex((n, k) => p.nodes.findIndex((m) => m.name === n.name) < k);
    return i >= 0 ? problem(`nodes[${i}]`, `node "${p.nodes[i].name}" is given twice`) : undefined;
  },
  (p) => {
    const zoned = p.nodes.filter((n) => n.zone !== undefined);
    if (zoned.length === 0 || zoned.length === p.nodes.length) return undefined;
    const missing = p.nodes.filter((n) => n.zone === undefined);
    return problem('nodes', `node(s) ${names(missing)} carry no zone while ${names(zoned)} do: give every node a zone, or none`);
  },
  (p) => (!isWhole(p.sizeBytes) || p.sizeBytes <= 0 ? problem('sizeBytes', `${describe(p.sizeBytes)} must be a positive whole number of bytes`) : undefined),
  (p) => (p.sizeBytes % 512 !== 0 ? problem('sizeBytes', `${p.sizeBytes} is not a multiple of 512`) : undefined),
  (p) => {
    const count = p.replicas ?? 3;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1)
      return problem('replicas', `${describe(p.replicas)} must be a whole number of at least 1`);
    return count > NEXUS_MAX_CHILDREN ? problem('replicas', `${count} is more than a nexus can mirror (at most ${NEXUS_MAX_CHILDREN} children)`) : undefined;
  },
  (p) => (p.thin !== undefined && typeof p.thin !== 'boolean' ? problem('thin', `${describe(p.thin)} must be true or false`) : undefined),
  (p) =>
    !VOLUME_PROTOCOLS.includes(p.protocol ?? 'nbd')
      ? problem('protocol', `${describe(p.protocol)} is not supported; use one of: ${VOLUME_PROTOCOLS.join(', ')}`)
      : undefined,
  (p) =>
    p.uuid !== undefined && (typeof p.uuid !== 'string' || uuidProblem(p.uuid))
      ? problem('uuid', `${describe(p.uuid)} is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`)
      : undefined,
  (p) =>
    p.outputName !== undefined && (typeof p.outputName !== 'string' || !/^[A-Za-z_][A-Za-z0-9_-]*$/.test(p.outputName))
      ? problem('outputName', `${describe(p.outputName)} must start with a letter or "_" and hold only letters, digits, "_" and "-"`)
      : undefined,
  (p) =>
    p.nexusNode !== undefined && !p.nodes.some((n) => n.name === p.nexusNode)
      ? problem('nexusNode', `${describe(p.nexusNode)} is not one of the volume's nodes (${names(p.nodes)})`)
      : undefined,
  (p) =>
    p.pools !== undefined && (!Array.isArray(p.pools) || p.pools.length === 0)
      ? problem('pools', 'give at least one pool, or leave pools out to use every pool')
      : undefined,
  (p) => {
    for (const [i, ref] of (p.pools ?? []).entries()) {
      const w = parsePoolRef(ref);
      if (!w) return problem(`pools[${i}]`, `${describe(ref)} must be "POOL" or "NODE/POOL"`);
      if (!p.nodes.some((n) => (w.node === undefined || n.name === w.node) && n.hasPool(w.pool))) {
        return problem(`pools[${i}]`, `no node among ${names(p.nodes)} has a pool ${describe(ref)}`);
      }
    }
    return undefined;
  },
];

/** The first problem of the props, or undefined when every rule passes. */
export function validateReplicatedVolumeProps(props: ReplicatedVolumeProps): PropProblem | undefined {
  for (const rule of props?.source !== undefined ? [...RULES, ...SOURCE_RULES] : RULES) {
    const found = rule(props);
    if (found) return found;
  }
  return undefined;
}
