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
 *
 * Snapshots: `volume.snapshot(id)` takes a consistent snapshot of the whole volume (a mayastor_volume_snapshot of
 * its nexus); `ReplicatedVolume.fromSnapshot(scope, id, { snapshot })` (or the `source` prop) makes a new volume
 * from one: a thin clone of each replica's snapshot on the same node and pool, and a new nexus over the clones.
 */
import crypto from 'node:crypto';
import { Construct } from 'constructs';
import { TerraformOutput, TerraformProvider } from 'cdktf';
import { Nexus } from '../l1/nexus';
import { Replica } from '../l1/replica';
import { VolumeSnapshot, VolumeSnapshotTimeouts } from '../l1/volume-snapshot';
import { StorageNode } from './storage-node';
import { describe, fail } from './errors';
import { uuidProblem } from '../../agent/api/grammar';
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
  /**
   * Make the volume from a snapshot of another one: each replica is a thin clone of that volume's replica snapshot, on
   * the same node and pool (so `sizeBytes` and `replicas` must be the source volume's, and `thin` cannot be false).
   * `ReplicatedVolume.fromSnapshot` fills those in.
   * @default a new, empty volume
   */
  readonly source?: ReplicatedVolumeSnapshot;
}

export interface ReplicatedVolumeSnapshotProps {
  /**
   * UUID of the volume snapshot.
   * @default derived from the construct path, stable across synths
   */
  readonly uuid?: string;
  /**
   * Longest time (ms) the nexus may hold I/O while its replicas are snapshotted.
   * @default the agent's
   */
  readonly deadlineMs?: number;
  /**
   * How long create and delete may take (`"2m"`).
   * @default the provider-level defaults
   */
  readonly timeouts?: VolumeSnapshotTimeouts;
}

/** The props of ReplicatedVolume.fromSnapshot: the snapshot, and what the new volume may choose for itself. */
export interface ReplicatedVolumeFromSnapshotProps extends Pick<ReplicatedVolumeProps, 'protocol' | 'uuid' | 'nexusNode' | 'outputName' | 'provider'> {
  /** The volume snapshot to restore (from `volume.snapshot(id)`). */
  readonly snapshot: ReplicatedVolumeSnapshot;
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
  /** The nodes the volume was given (a snapshot's restore places its clones on the same ones). */
  public readonly storageNodes: StorageNode[];
  /** The volume snapshot this volume was made from, if any. */
  public readonly source?: ReplicatedVolumeSnapshot;

  /**
   * A new volume from a volume snapshot: a clone of each replica snapshot (same nodes and pools), a new nexus over
   * them, exported over the source volume's protocol unless `protocol` says otherwise.
   */
  public static fromSnapshot(scope: Construct, id: string, props: ReplicatedVolumeFromSnapshotProps): ReplicatedVolume {
    const from = props?.snapshot?.volume;
    return new ReplicatedVolume(scope, id, {
      ...props,
      nodes: from?.storageNodes,
      sizeBytes: from?.sizeBytes,
      replicas: from?.placement.length,
      // the source volume's protocol unless given: its agents serve it already
      protocol: props?.protocol ?? from?.protocol,
      thin: true,
      // null, not undefined, so that a missing snapshot is reported as such
      source: props?.snapshot ?? null,
    } as ReplicatedVolumeProps);
  }

  public constructor(scope: Construct, id: string, config: ReplicatedVolumeProps) {
    super(scope, id);
    // validate
    const problem = validateReplicatedVolumeProps(config);
    if (problem) fail(this, 'ReplicatedVolume', problem.prop, problem.detail);
    const byName = new Map(config.nodes.map((n) => [n.name, n]));
    const count = config.replicas ?? 3;
    const protocol = config.protocol ?? 'nbd';
    const source = config.source;

    // decide: a restored volume's replicas sit where the snapshot's are (a clone lives in its snapshot's pool)
    const placement = source
      ? { placed: source.volume.placement.map((p) => ({ node: p.node, zone: p.zone, pool: p.pool })) }
      : placeReplicas({
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
    this.thin = source ? true : (config.thin ?? false);
    this.storageNodes = [...config.nodes];
    this.source = source;
    this.protocol = protocol;
    this.nexusNode = nexusNode;
    this.placement = placement.placed.map((p) => ({
      ...p,
      replicaUuid: stableUuid(`replica:${this.uuid}:${p.node}:${p.pool}`),
      local: p.node === nexusNode,
    }));

    // build the L1s
    this.replicas = this.placement.map((p, i) => {
      const n = byName.get(p.node)!;
      return new Replica(this, `replica-${p.node}`, {
        nodeAttribute: p.node,
        // a reference to the pool resource, so the replica is created after (and destroyed before) its pool
        pool: n.pool(p.pool).name,
        uuid: p.replicaUuid,
        sizeBytes: replicaSizeFor(config.sizeBytes),
        thin: this.thin,
        share: p.local ? 'none' : protocol,
        // a clone of the source volume's replica at the same place
        sourceSnapshot: source?.snapshotUuidOf(source.volume.placement[i].replicaUuid),
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

  /**
   * A consistent snapshot of the whole volume (mayastor_volume_snapshot of its nexus): the nexus pauses its I/O while
   * every replica is snapshotted. Every replica must be local to the nexus or reached over nvmf: an nbd:// child
   * cannot be snapshotted, so a volume with remote replicas over nbd is refused here.
   */
  public snapshot(id: string, props: ReplicatedVolumeSnapshotProps = {}): ReplicatedVolumeSnapshot {
    return new ReplicatedVolumeSnapshot(this, id, { ...props, volume: this });
  }
}

/** A ReplicatedVolumeSnapshot's props: the volume and the volume snapshot's own settings. */
interface SnapshotConstructProps extends ReplicatedVolumeSnapshotProps {
  readonly volume: ReplicatedVolume;
}

/** A consistent snapshot of a ReplicatedVolume (made by `volume.snapshot(id)`); restore it with ReplicatedVolume.fromSnapshot. */
export class ReplicatedVolumeSnapshot extends Construct {
  public readonly volume: ReplicatedVolume;
  public readonly uuid: string;
  /** The mayastor_volume_snapshot resource. */
  public readonly resource: VolumeSnapshot;

  public static isReplicatedVolumeSnapshot(x: unknown): x is ReplicatedVolumeSnapshot {
    return x instanceof ReplicatedVolumeSnapshot;
  }

  public constructor(scope: Construct, id: string, props: SnapshotConstructProps) {
    super(scope, id);
    const v = props.volume;
    const bad = (prop: string, detail: string): never => fail(this, 'ReplicatedVolumeSnapshot', prop, detail);
    const overNbd = v.placement.filter((p) => !p.local);
    if (v.protocol === 'nbd' && overNbd.length) {
      bad(
        'volume',
        `volume ${v.uuid} reaches its replica(s) on ${overNbd.map((p) => p.node).join(', ')} over nbd, which cannot snapshot them: ` +
          'make the volume with protocol "nvmf", or keep every replica on the nexus node',
      );
    }
    if (props.uuid !== undefined && (typeof props.uuid !== 'string' || uuidProblem(props.uuid))) bad('uuid', `${describe(props.uuid)} is not a UUID`);
    if (props.deadlineMs !== undefined && (!Number.isSafeInteger(props.deadlineMs) || props.deadlineMs < 1))
      bad('deadlineMs', `${describe(props.deadlineMs)} must be a positive whole number of milliseconds`);
    this.volume = v;
    this.uuid = (props.uuid ?? stableUuid(`volume-snapshot:${this.node.path}`)).toLowerCase();
    this.resource = new VolumeSnapshot(this, 'snapshot', {
      nodeAttribute: v.nexusNode,
      // a reference, so the snapshot is taken after the nexus exists (and deleted before it goes)
      nexusUuid: v.nexus.uuid,
      uuid: this.uuid,
      deadlineMs: props.deadlineMs,
      timeouts: props.timeouts,
      provider: v.nexus.provider,
    });
  }

  /** Token of the snapshot uuid of one of the volume's replicas (what a clone's sourceSnapshot takes). */
  public snapshotUuidOf(replicaUuid: string): string {
    return this.resource.snapshotUuids.lookup(replicaUuid);
  }
}
