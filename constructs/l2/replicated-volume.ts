/**
 * ReplicatedVolume: one volume mirrored onto `replicas` replicas on distinct nodes (and distinct zones when the
 * nodes carry zones), fronted by a nexus that exports it over NBD or NVMe/TCP (`protocol`).
 *
 * Placement happens at construction time and is deterministic: the same inputs always give the same nodes,
 * pools and UUIDs, so re-synthesizing never moves data. When placement is impossible the constructor throws an
 * error that says why (which nodes/pools were excluded and for what reason).
 *
 * A replica on the nexus's own node is attached as `bdev:///<uuid>`; a replica on another node is shared over
 * the volume's protocol and attached through its computed `uri` (`nbd://host:port/<uuid>`, or
 * `nvmf://host:port/nqn.2019-05.io.openebs:<uuid>`: every node's agent then needs `--nvmf-listen`). Replicas are `sizeBytes` plus the 1 MiB every nexus child
 * reserves for the nexus label.
 */
import crypto from 'node:crypto';
import { Construct } from 'constructs';
import { TerraformOutput, TerraformProvider } from 'cdktf';
import { Nexus } from '../l1/nexus';
import { Replica } from '../l1/replica';
import { StorageNode } from './storage-node';
import { fail } from './errors';
import { placeReplicas, replicaSizeFor } from './placement';
import { VolumeProtocol, parsePoolRef, validateReplicatedVolumeProps } from './validate-replicated-volume-props';

export { NEXUS_CHILD_HEADER_BYTES, NEXUS_MAX_CHILDREN, placeReplicas, replicaSizeFor } from './placement';
export { VOLUME_PROTOCOLS, validateReplicatedVolumeProps } from './validate-replicated-volume-props';
export type { VolumeProtocol } from './validate-replicated-volume-props';

export interface ReplicatedVolumeProps {
  /** The nodes the volume may use. */
  readonly nodes: StorageNode[];
  /** Volume size in bytes: a positive multiple of 512. Each replica holds it plus the 1 MiB nexus label. */
  readonly sizeBytes: number;
  /**
   * Number of replicas (copies), each on its own node (and its own zone when the nodes carry zones).
   * @default 3
   */
  readonly replicas?: number;
  /**
   * Thin-provisioned replicas.
   * @default false
   */
  readonly thin?: boolean;
  /**
   * How the volume is exported, and how the nexus reaches its remote replicas: "nbd" or "nvmf" (NVMe/TCP; the
   * agents need `--nvmf-listen`).
   * @default "nbd"
   */
  readonly protocol?: VolumeProtocol;
  /**
   * UUID of the volume (the nexus).
   * @default derived from the construct path, stable across synths
   */
  readonly uuid?: string;
  /**
   * Restrict placement to these pools: "POOL" (any node's pool of that name) or "NODE/POOL".
   * @default every pool of the nodes
   */
  readonly pools?: string[];
  /**
   * Node that runs the nexus.
   * @default the first node holding a replica
   */
  readonly nexusNode?: string;
  /**
   * Name of the Terraform output carrying the device URI.
   * @default `<id>_device_uri`
   */
  readonly outputName?: string;
  /**
   * Provider configuration to use.
   * @default the stack's default one
   */
  readonly provider?: TerraformProvider;
}

/** The props under their earlier name. */
export type ReplicatedVolumeConfig = ReplicatedVolumeProps;

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
  const h = crypto
    .createHash('sha1')
    .update('mayastor:' + name)
    .digest();
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

  public constructor(scope: Construct, id: string, config: ReplicatedVolumeProps) {
    super(scope, id);
    // validate
    const problem = validateReplicatedVolumeProps(config);
    if (problem) fail(this, 'ReplicatedVolume', problem.prop, problem.detail);
    const byName = new Map(config.nodes.map((n) => [n.name, n]));
    const count = config.replicas ?? 3;
    const protocol = config.protocol ?? 'nbd';

    // decide
    const placement = placeReplicas({
      nodes: config.nodes.map((n) => ({ name: n.name, zone: n.zone, pools: n.poolSpecs })),
      count,
      sizeBytes: config.sizeBytes,
      thin: config.thin ?? false,
      pools: config.pools?.map((p) => parsePoolRef(p)!),
      nexusNode: config.nexusNode,
    });
    if ('error' in placement) fail(this, 'ReplicatedVolume', 'replicas', placement.error);
    const nexusNode = config.nexusNode ?? placement.placed[0].node;
    this.uuid = (config.uuid ?? stableUuid(`volume:${this.node.path}`)).toLowerCase();
    this.sizeBytes = config.sizeBytes;
    this.thin = config.thin ?? false;
    this.protocol = protocol;
    this.nexusNode = nexusNode;
    this.placement = placement.placed.map((p) => ({
      ...p,
      replicaUuid: stableUuid(`replica:${this.uuid}:${p.node}:${p.pool}`),
      local: p.node === nexusNode,
    }));

    // build the L1s
    this.replicas = this.placement.map((p) => {
      const n = byName.get(p.node)!;
      return new Replica(this, `replica-${p.node}`, {
        nodeAttribute: p.node,
        // a reference to the pool resource, so the replica is created after (and destroyed before) its pool
        pool: n.pool(p.pool).name,
        uuid: p.replicaUuid,
        sizeBytes: replicaSizeFor(config.sizeBytes),
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
      sizeBytes: config.sizeBytes,
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
