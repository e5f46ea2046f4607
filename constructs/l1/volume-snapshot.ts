/** L1 binding of the `mayastor_volume_snapshot` resource (a consistent snapshot of a nexus). */
import { Construct } from 'constructs';
import * as cdktf from 'cdktf';
import { metaArguments } from './common';

export interface VolumeSnapshotConfig extends cdktf.TerraformMetaArguments {
  /** Node whose agent runs the nexus. Terraform attribute `node`. */
  readonly nodeAttribute: string;
  /** UUID of the nexus to snapshot. Changing it replaces the snapshot. */
  readonly nexusUuid: string;
  /** UUID of the volume snapshot; when left out, the provider generates one at create and keeps it. Changing it replaces the snapshot. */
  readonly uuid?: string;
  /** How long the nexus may stay paused (ms) before it resumes by itself and the snapshot fails. Default: the agent's. */
  readonly deadlineMs?: number;
  /** How long create and delete may take (`"30s"`); unset ones take the provider-level defaults. */
  readonly timeouts?: VolumeSnapshotTimeouts;
}

/** The nested `timeouts` attribute: a duration string per operation (`"30s"`, `"10m"`, `"1h30m"`). */
export interface VolumeSnapshotTimeouts {
  /** How long taking the snapshot may take. */
  readonly create?: string;
  /** How long deleting it may take. */
  readonly delete?: string;
}

export function volumeSnapshotTimeoutsToTerraform(struct?: VolumeSnapshotTimeouts | cdktf.IResolvable): unknown {
  if (!cdktf.canInspect(struct) || cdktf.Tokenization.isResolvable(struct)) return struct;
  if (cdktf.isComplexElement(struct))
    throw new Error('A complex element was used as configuration, this is not supported: https://cdk.tf/complex-object-as-configuration');
  const t = struct as VolumeSnapshotTimeouts;
  return {
    create: cdktf.stringToTerraform(t.create),
    delete: cdktf.stringToTerraform(t.delete),
  };
}

/** The `timeouts` attribute of a volume snapshot: its values as tokens, and the configured object. */
export class VolumeSnapshotTimeoutsOutputReference extends cdktf.ComplexObject {
  private _value?: VolumeSnapshotTimeouts | cdktf.IResolvable;
  public constructor(terraformResource: cdktf.IInterpolatingParent, terraformAttribute: string) {
    super(terraformResource, terraformAttribute, false);
  }
  public get internalValue(): VolumeSnapshotTimeouts | cdktf.IResolvable | undefined {
    return this._value;
  }
  public set internalValue(value: VolumeSnapshotTimeouts | cdktf.IResolvable | undefined) {
    this._value = value;
  }
  public get create(): string {
    return this.getStringAttribute('create');
  }
  public get delete(): string {
    return this.getStringAttribute('delete');
  }
}

/** One element of the computed `replicas` list: the snapshot of one child's replica. */
export class VolumeSnapshotReplicasOutputReference extends cdktf.ComplexObject {
  public constructor(terraformResource: cdktf.IInterpolatingParent, terraformAttribute: string, complexObjectIndex: number, complexObjectIsFromSet: boolean) {
    super(terraformResource, terraformAttribute, complexObjectIsFromSet, complexObjectIndex);
  }
  /** The child URI of the nexus. */
  public get child(): string {
    return this.getStringAttribute('child');
  }
  /** Node that holds the replica (null when the nexus's agent cannot tell). */
  public get nodeAttribute(): string {
    return this.getStringAttribute('node');
  }
  public get replicaUuid(): string {
    return this.getStringAttribute('replica_uuid');
  }
  public get snapshotUuid(): string {
    return this.getStringAttribute('snapshot_uuid');
  }
}

export class VolumeSnapshotReplicasList extends cdktf.ComplexList {
  public constructor(
    protected override terraformResource: cdktf.IInterpolatingParent,
    protected override terraformAttribute: string,
    protected override wrapsSet: boolean,
  ) {
    super(terraformResource, terraformAttribute, wrapsSet);
  }
  public get(index: number): VolumeSnapshotReplicasOutputReference {
    return new VolumeSnapshotReplicasOutputReference(this.terraformResource, this.terraformAttribute, index, this.wrapsSet);
  }
}

export class VolumeSnapshot extends cdktf.TerraformResource {
  public static readonly tfResourceType = 'mayastor_volume_snapshot';

  /** An `import` block for an existing volume snapshot; `importFromId` is `NODE/UUID` (the nexus's node). */
  public static generateConfigForImport(
    scope: Construct,
    importToId: string,
    importFromId: string,
    provider?: cdktf.TerraformProvider,
  ): cdktf.ImportableResource {
    return new cdktf.ImportableResource(scope, importToId, { terraformResourceType: 'mayastor_volume_snapshot', importId: importFromId, provider });
  }

  public constructor(scope: Construct, id: string, config: VolumeSnapshotConfig) {
    super(scope, id, { terraformResourceType: 'mayastor_volume_snapshot', ...metaArguments(config) });
    this._nodeAttribute = config.nodeAttribute;
    this._nexusUuid = config.nexusUuid;
    this._uuid = config.uuid;
    this._deadlineMs = config.deadlineMs;
    this._timeouts.internalValue = config.timeouts;
  }

  public get id(): string {
    return this.getStringAttribute('id');
  }

  private _nodeAttribute?: string;
  public get nodeAttribute(): string {
    return this.getStringAttribute('node');
  }
  public set nodeAttribute(value: string) {
    this._nodeAttribute = value;
  }
  public get nodeAttributeInput(): string | undefined {
    return this._nodeAttribute;
  }

  private _nexusUuid?: string;
  public get nexusUuid(): string {
    return this.getStringAttribute('nexus_uuid');
  }
  public set nexusUuid(value: string) {
    this._nexusUuid = value;
  }
  public get nexusUuidInput(): string | undefined {
    return this._nexusUuid;
  }

  private _uuid?: string;
  public get uuid(): string {
    return this.getStringAttribute('uuid');
  }
  public set uuid(value: string) {
    this._uuid = value;
  }
  public resetUuid(): void {
    this._uuid = undefined;
  }
  public get uuidInput(): string | undefined {
    return this._uuid;
  }

  private _deadlineMs?: number;
  public get deadlineMs(): number {
    return this.getNumberAttribute('deadline_ms');
  }
  public set deadlineMs(value: number) {
    this._deadlineMs = value;
  }
  public resetDeadlineMs(): void {
    this._deadlineMs = undefined;
  }
  public get deadlineMsInput(): number | undefined {
    return this._deadlineMs;
  }

  /** When the snapshot was taken (RFC 3339). */
  public get createdAt(): string {
    return this.getStringAttribute('created_at');
  }

  private _replicas = new VolumeSnapshotReplicasList(this, 'replicas', false);
  /** The per-replica snapshots, one per child of the nexus. */
  public get replicas(): VolumeSnapshotReplicasList {
    return this._replicas;
  }

  private _snapshotUuids = new cdktf.StringMap(this, 'snapshot_uuids');
  /** Replica UUID → the UUID of its snapshot (what a clone's `sourceSnapshot` takes). */
  public get snapshotUuids(): cdktf.StringMap {
    return this._snapshotUuids;
  }

  private _timeouts = new VolumeSnapshotTimeoutsOutputReference(this, 'timeouts');
  public get timeouts(): VolumeSnapshotTimeoutsOutputReference {
    return this._timeouts;
  }
  public putTimeouts(value: VolumeSnapshotTimeouts): void {
    this._timeouts.internalValue = value;
  }
  public resetTimeouts(): void {
    this._timeouts.internalValue = undefined;
  }
  public get timeoutsInput(): VolumeSnapshotTimeouts | cdktf.IResolvable | undefined {
    return this._timeouts.internalValue;
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      node: cdktf.stringToTerraform(this._nodeAttribute),
      nexus_uuid: cdktf.stringToTerraform(this._nexusUuid),
      uuid: cdktf.stringToTerraform(this._uuid),
      deadline_ms: cdktf.numberToTerraform(this._deadlineMs),
      timeouts: volumeSnapshotTimeoutsToTerraform(this._timeouts.internalValue),
    };
  }
}
