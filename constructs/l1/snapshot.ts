/** L1 binding of the `mayastor_snapshot` resource (a replica's snapshot). */
import { Construct } from 'constructs';
import * as cdktf from 'cdktf';
import { metaArguments } from './common';

export interface SnapshotConfig extends cdktf.TerraformMetaArguments {
  /** Node whose agent holds the replica. Terraform attribute `node`. */
  readonly nodeAttribute: string;
  /** UUID of the replica to snapshot (on that node). Changing it replaces the snapshot. */
  readonly replicaUuid: string;
  /** UUID of the snapshot; when left out, the provider generates one at create and keeps it. Changing it replaces the snapshot. */
  readonly uuid?: string;
  /** Read-only export: `none`, `nbd` or `nvmf`. Default `none`. Changes in place. */
  readonly share?: string;
  /** Hosts allowed to connect to the export; empty allows any. */
  readonly allowedHosts?: string[];
}

export class Snapshot extends cdktf.TerraformResource {
  public static readonly tfResourceType = 'mayastor_snapshot';

  /** An `import` block for an existing snapshot; `importFromId` is `NODE/UUID`. */
  public static generateConfigForImport(
    scope: Construct,
    importToId: string,
    importFromId: string,
    provider?: cdktf.TerraformProvider,
  ): cdktf.ImportableResource {
    return new cdktf.ImportableResource(scope, importToId, { terraformResourceType: 'mayastor_snapshot', importId: importFromId, provider });
  }

  public constructor(scope: Construct, id: string, config: SnapshotConfig) {
    super(scope, id, { terraformResourceType: 'mayastor_snapshot', ...metaArguments(config) });
    this._nodeAttribute = config.nodeAttribute;
    this._replicaUuid = config.replicaUuid;
    this._uuid = config.uuid;
    this._share = config.share;
    this._allowedHosts = config.allowedHosts;
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

  private _replicaUuid?: string;
  public get replicaUuid(): string {
    return this.getStringAttribute('replica_uuid');
  }
  public set replicaUuid(value: string) {
    this._replicaUuid = value;
  }
  public get replicaUuidInput(): string | undefined {
    return this._replicaUuid;
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

  private _share?: string;
  public get share(): string {
    return this.getStringAttribute('share');
  }
  public set share(value: string) {
    this._share = value;
  }
  public resetShare(): void {
    this._share = undefined;
  }
  public get shareInput(): string | undefined {
    return this._share;
  }

  private _allowedHosts?: string[];
  public get allowedHosts(): string[] {
    return this.getListAttribute('allowed_hosts');
  }
  public set allowedHosts(value: string[]) {
    this._allowedHosts = value;
  }
  public resetAllowedHosts(): void {
    this._allowedHosts = undefined;
  }
  public get allowedHostsInput(): string[] | undefined {
    return this._allowedHosts;
  }

  /** URI of the read-only export (`nbd://host:port/UUID`), `bdev:///UUID` when not shared. */
  public get uri(): string {
    return this.getStringAttribute('uri');
  }

  /** Name of the pool that holds the snapshot (the replica's; its clones must be made there). */
  public get pool(): string {
    return this.getStringAttribute('pool');
  }
  /** Size of the snapshot in bytes (the replica's size when it was taken; a clone has this size). */
  public get sizeBytes(): number {
    return this.getNumberAttribute('size_bytes');
  }
  /** Bytes of pool space the snapshot holds. */
  public get referencedBytes(): number {
    return this.getNumberAttribute('referenced_bytes');
  }
  /** When the snapshot was taken (RFC 3339). */
  public get createdAt(): string {
    return this.getStringAttribute('created_at');
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      node: cdktf.stringToTerraform(this._nodeAttribute),
      replica_uuid: cdktf.stringToTerraform(this._replicaUuid),
      uuid: cdktf.stringToTerraform(this._uuid),
      share: cdktf.stringToTerraform(this._share),
      allowed_hosts: cdktf.listMapper(cdktf.stringToTerraform, false)(this._allowedHosts),
    };
  }
}
