/**
 * ReplicatedVolume: one volume mirrored onto `replicas` replicas on distinct nodes (and distinct zones when the
 * nodes carry zones), fronted by a nexus that exports it over NBD.
 *
 * Placement happens at construction time and is deterministic: the same inputs always give the same nodes,
 * pools and UUIDs, so re-synthesizing never moves data. When placement is impossible the constructor throws an
 * error that says why (which nodes/pools were excluded and for what reason).
 *
 * A replica on the nexus's own node is attached as `bdev:///<uuid>`; a replica on another node is shared over
 * NBD and attached through its computed `uri`. Replicas are `sizeBytes` plus the 1 MiB every nexus child
 * reserves for the nexus label.
 */
import crypto from 'node:crypto';
import { Construct } from 'constructs';
import { TerraformOutput, TerraformProvider } from 'cdktf';
import { Nexus } from '../l1/nexus';
import { Replica } from '../l1/replica';
import { StorageNode } from './storage-node';
import { NAME_RE, UUID_RE, describe, fail } from './errors';

/** Every nexus child reserves this much at its start for the nexus label (DP_NEXUS_HEADER_BYTES). */
export const NEXUS_CHILD_HEADER_BYTES = 1024 * 1024;
/** A nexus has at most this many children (DP_NEXUS_MAX_CHILDREN). */
export const NEXUS_MAX_CHILDREN = 8;

/** Size of a replica that can back a nexus child of a `sizeBytes` volume. */
export function replicaSizeFor(sizeBytes: number): number {
  return sizeBytes + NEXUS_CHILD_HEADER_BYTES;
}

export type VolumeProtocol = 'nbd';
export const VOLUME_PROTOCOLS: readonly VolumeProtocol[] = ['nbd'];

export interface ReplicatedVolumeConfig {
  /** The nodes the volume may use. */
  readonly nodes: StorageNode[];
  /** Volume size in bytes: a positive multiple of 512. */
  readonly sizeBytes: number;
  /** Number of replicas (copies), each on its own node (and its own zone when the nodes carry zones). Default 3. */
  readonly replicas?: number;
  /** Thin-provisioned replicas. Default false. */
  readonly thin?: boolean;
  /** How the volume is exported. Default "nbd" (the only one supported yet). */
  readonly protocol?: VolumeProtocol;
  /** UUID of the volume (the nexus). Default: derived from the construct path, stable across synths. */
  readonly uuid?: string;
  /** Restrict placement to these pools: "POOL" (any node's pool of that name) or "NODE/POOL". Default: every pool of the nodes. */
  readonly pools?: string[];
  /** Node that runs the nexus. Default: the first node holding a replica. */
  readonly nexusNode?: string;
  /** Name of the Terraform output carrying the device URI. Default `<id>_device_uri`. */
  readonly outputName?: string;
  /** Provider configuration to use; default: the stack's default one. */
  readonly provider?: TerraformProvider;
}

export interface ReplicaPlacement {
  readonly node: string;
  readonly zone?: string;
  readonly pool: string;
  readonly replicaUuid: string;
  /** true when the replica is on the nexus's node (attached as bdev:///UUID, not shared). */
  readonly local: boolean;
}

/** A name-based (v5-style, SHA-1) UUID: the same name always gives the same UUID. */
export function stableUuid(name: string): string {
  const h = crypto.createHash('sha1').update('mayastor:' + name).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export class ReplicatedVolume extends Construct {
  public readonly uuid: string;
  public readonly sizeBytes: number;
  public readonly thin: boolean;
  public readonly protocol: VolumeProtocol;
  public readonly nexusNode: string;
  public readonly placement: ReplicaPlacement[];
  public readonly replicas: Replica[];
  public readonly nexus: Nexus;
  public readonly deviceUriOutput: TerraformOutput;

  public constructor(scope: Construct, id: string, config: ReplicatedVolumeConfig) {
    super(scope, id);
    const bad = (prop: string, detail: string): never => fail(this, 'ReplicatedVolume', prop, detail);
    if (config === null || typeof config !== 'object') bad('config', 'a configuration object is required');

    // nodes
    if (!Array.isArray(config.nodes) || config.nodes.length === 0) bad('nodes', 'give at least one StorageNode');
    const byName = new Map<string, StorageNode>();
    config.nodes.forEach((n, i) => {
      if (!StorageNode.isStorageNode(n)) bad(`nodes[${i}]`, `${describe(n)} is not a StorageNode`);
      if (byName.has(n.name)) bad(`nodes[${i}]`, `node "${n.name}" is given twice`);
      byName.set(n.name, n);
    });
    const zoned = config.nodes.filter((n) => n.zone !== undefined);
    if (zoned.length > 0 && zoned.length < config.nodes.length) {
      const missing = config.nodes.filter((n) => n.zone === undefined).map((n) => n.name);
      bad('nodes', `node(s) ${missing.join(', ')} carry no zone while ${zoned.map((n) => n.name).join(', ')} do: give every node a zone, or none`);
    }

    // size, count, flags
    const size = config.sizeBytes;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) bad('sizeBytes', `${describe(size)} must be a positive whole number of bytes`);
    if (size % 512 !== 0) bad('sizeBytes', `${size} is not a multiple of 512`);
    const count = config.replicas ?? 3;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) bad('replicas', `${describe(config.replicas)} must be a whole number of at least 1`);
    if (count > NEXUS_MAX_CHILDREN) bad('replicas', `${count} is more than a nexus can mirror (at most ${NEXUS_MAX_CHILDREN} children)`);
    if (config.thin !== undefined && typeof config.thin !== 'boolean') bad('thin', `${describe(config.thin)} must be true or false`);
    const protocol = config.protocol ?? 'nbd';
    if (!VOLUME_PROTOCOLS.includes(protocol)) bad('protocol', `${describe(config.protocol)} is not supported; use one of: ${VOLUME_PROTOCOLS.join(', ')}`);
    if (config.uuid !== undefined && (typeof config.uuid !== 'string' || !UUID_RE.test(config.uuid))) {
      bad('uuid', `${describe(config.uuid)} is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
    }
    if (config.outputName !== undefined && (typeof config.outputName !== 'string' || !/^[A-Za-z_][A-Za-z0-9_-]*$/.test(config.outputName))) {
      bad('outputName', `${describe(config.outputName)} must start with a letter or "_" and hold only letters, digits, "_" and "-"`);
    }
    if (config.nexusNode !== undefined && !byName.has(config.nexusNode)) {
      bad('nexusNode', `${describe(config.nexusNode)} is not one of the volume's nodes (${[...byName.keys()].join(', ')})`);
    }

    // pool filter
    let allowed: ((node: string, pool: string) => boolean) | undefined;
    if (config.pools !== undefined) {
      if (!Array.isArray(config.pools) || config.pools.length === 0) bad('pools', 'give at least one pool, or leave pools out to use every pool');
      const want: { node?: string; pool: string }[] = [];
      config.pools.forEach((p, i) => {
        if (typeof p !== 'string') bad(`pools[${i}]`, `${describe(p)} must be "POOL" or "NODE/POOL"`);
        const parts = p.split('/');
        if (parts.length > 2 || !parts.every((s) => NAME_RE.test(s))) bad(`pools[${i}]`, `${describe(p)} must be "POOL" or "NODE/POOL"`);
        const w = parts.length === 2 ? { node: parts[0], pool: parts[1] } : { pool: parts[0] };
        const exists = config.nodes.some((n) => (w.node === undefined || n.name === w.node) && n.hasPool(w.pool));
        if (!exists) bad(`pools[${i}]`, `no node among ${[...byName.keys()].join(', ')} has a pool ${describe(p)}`);
        want.push(w);
      });
      allowed = (node, pool) => want.some((w) => w.pool === pool && (w.node === undefined || w.node === node));
    }

    // placement: eligible pools per node, then distinct nodes (and zones), nexus node first
    const reasons: string[] = [];
    const eligible = new Map<string, string>(); // node → chosen pool
    for (const n of config.nodes) {
      const pools = n.poolSpecs.filter((p) => {
        if (allowed && !allowed(n.name, p.name)) return false;
        if (!config.thin && p.capacityBytes !== undefined && p.capacityBytes < replicaSizeFor(size)) {
          reasons.push(`${n.name}/${p.name} is too small for a thick replica (capacityBytes ${p.capacityBytes} < ${replicaSizeFor(size)}: sizeBytes ${size} + ${NEXUS_CHILD_HEADER_BYTES} for the nexus label)`);
          return false;
        }
        return true;
      });
      if (pools.length === 0) {
        if (n.poolSpecs.length === 0) reasons.push(`${n.name} has no pools`);
        else if (allowed) reasons.push(`${n.name} has no pool allowed by pools`);
        continue;
      }
      // the largest declared capacity wins; otherwise the first pool
      const best = pools.reduce((a, b) => ((b.capacityBytes ?? -1) > (a.capacityBytes ?? -1) ? b : a));
      eligible.set(n.name, best.name);
    }
    const ordered = [...config.nodes];
    if (config.nexusNode !== undefined) {
      ordered.sort((a, b) => (a.name === config.nexusNode ? -1 : b.name === config.nexusNode ? 1 : 0));
    }
    const chosen: StorageNode[] = [];
    const zones = new Set<string>();
    for (const n of ordered) {
      if (chosen.length === count) break;
      if (!eligible.has(n.name)) continue;
      if (n.zone !== undefined && zones.has(n.zone)) continue;
      chosen.push(n);
      if (n.zone !== undefined) zones.add(n.zone);
    }
    if (chosen.length < count) {
      const elig = config.nodes.filter((n) => eligible.has(n.name));
      const domain =
        zoned.length > 0
          ? `distinct zones, but only ${new Set(elig.map((n) => n.zone)).size} zone(s) have a node with an eligible pool (${[...new Set(elig.map((n) => n.zone))].join(', ') || 'none'})`
          : `distinct nodes, but only ${elig.length} node(s) have an eligible pool (${elig.map((n) => n.name).join(', ') || 'none'})`;
      bad('replicas', `cannot place ${count} replica(s) on ${domain}${reasons.length ? `; excluded: ${reasons.join('; ')}` : ''}`);
    }

    const nexusNode = config.nexusNode ?? chosen[0].name;
    const uuid = config.uuid ?? stableUuid(`volume:${this.node.path}`);
    this.uuid = uuid.toLowerCase();
    this.sizeBytes = size;
    this.thin = config.thin ?? false;
    this.protocol = protocol;
    this.nexusNode = nexusNode;
    this.placement = chosen.map((n) => {
      const pool = eligible.get(n.name)!;
      return { node: n.name, zone: n.zone, pool, replicaUuid: stableUuid(`replica:${this.uuid}:${n.name}:${pool}`), local: n.name === nexusNode };
    });

    this.replicas = this.placement.map((p) => {
      const n = byName.get(p.node)!;
      return new Replica(this, `replica-${p.node}`, {
        nodeAttribute: p.node,
        // a reference to the pool resource, so the replica is created after (and destroyed before) its pool
        pool: n.pool(p.pool).name,
        uuid: p.replicaUuid,
        sizeBytes: replicaSizeFor(size),
        thin: this.thin,
        share: p.local ? 'none' : protocol,
        provider: config.provider ?? n.provider,
        // a replica leaving the volume (or replaced, e.g. moved to another pool) is removed from the nexus
        // before it is deleted: the agent refuses to delete a nexus child
        lifecycle: { createBeforeDestroy: true },
      });
    });
    this.nexus = new Nexus(this, 'nexus', {
      nodeAttribute: nexusNode,
      uuid: this.uuid,
      sizeBytes: size,
      children: this.placement.map((p, i) => (p.local ? `bdev:///${p.replicaUuid}` : this.replicas[i].uri)),
      share: protocol,
      dependsOn: this.replicas,
      provider: config.provider ?? byName.get(nexusNode)!.provider,
    });
    this.deviceUriOutput = new TerraformOutput(this, 'device-uri', {
      value: this.nexus.deviceUri,
      description: `URI of volume ${this.uuid} (${protocol}, ${count} replica(s))`,
    });
    this.deviceUriOutput.overrideLogicalId(config.outputName ?? `${id.replace(/[^A-Za-z0-9_-]/g, '_').replace(/^([^A-Za-z_])/, '_$1')}_device_uri`);
  }

  /** Token of the nexus's device URI (e.g. `nbd://127.0.0.1:10809/UUID`). */
  public get deviceUri(): string {
    return this.nexus.deviceUri;
  }
}
