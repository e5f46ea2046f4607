/** L1 binding of the `mayastor_replica` resource. */
import { Construct } from 'constructs';
import * as cdktf from 'cdktf';
import { metaArguments } from './common';

export interface ReplicaConfig extends cdktf.TerraformMetaArguments {
  /** Node whose agent holds the pool. Terraform attribute `node`. */
  readonly nodeAttribute: string;
  /** Name of the pool on that node. */
  readonly pool: string;
  /** UUID of the replica; when left out, the provider generates one at create and keeps it. Changing it replaces the replica. */
  readonly uuid?: string;
  /** Size in bytes, a multiple of 512. Grows in place; a shrink is rejected at plan time. */
  readonly sizeBytes: number;
  /** Thin provisioning. Default `false`. Changing it replaces the replica. */
  readonly thin?: boolean | cdktf.IResolvable;
  /** `none`, `nbd`, `iscsi` or `nvmf`. Default `none`. Changes in place. */
  readonly share?: string;
  /** Hosts allowed to connect when shared; empty allows any. */
  readonly allowedHosts?: string[];
  /** UUID of a snapshot on the same node and pool: the replica is a thin clone of it. Changing it replaces the replica. */
  readonly sourceSnapshot?: string;
}

export class Replica extends cdktf.TerraformResource {
  public static readonly tfResourceType = 'mayastor_replica';

  /** An `import` block for an existing replica; `importFromId` is `NODE/UUID`. */
  public static generateConfigForImport(
    scope: Construct,
    importToId: string,
    importFromId: string,
    provider?: cdktf.TerraformProvider,
  ): cdktf.ImportableResource {
    return new cdktf.ImportableResource(scope, importToId, { terraformResourceType: 'mayastor_replica', importId: importFromId, provider });
  }

  public constructor(scope: Construct, id: string, config: ReplicaConfig) {
    super(scope, id, { terraformResourceType: 'mayastor_replica', ...metaArguments(config) });
    this._nodeAttribute = config.nodeAttribute;
    this._pool = config.pool;
    this._uuid = config.uuid;
    this._sizeBytes = config.sizeBytes;
    this._thin = config.thin;
    this._share = config.share;
    this._allowedHosts = config.allowedHosts;
    this._sourceSnapshot = config.sourceSnapshot;
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

  private _pool?: string;
  public get pool(): string {
    return this.getStringAttribute('pool');
  }
  public set pool(value: string) {
    this._pool = value;
  }
  public get poolInput(): string | undefined {
    return this._pool;
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

  private _sizeBytes?: number;
  public get sizeBytes(): number {
    return this.getNumberAttribute('size_bytes');
  }
  public set sizeBytes(value: number) {
    this._sizeBytes = value;
  }
  public get sizeBytesInput(): number | undefined {
    return this._sizeBytes;
  }

  private _thin?: boolean | cdktf.IResolvable;
  public get thin(): boolean | cdktf.IResolvable {
    return this.getBooleanAttribute('thin');
  }
  public set thin(value: boolean | cdktf.IResolvable) {
    this._thin = value;
  }
  public resetThin(): void {
    this._thin = undefined;
  }
  public get thinInput(): boolean | cdktf.IResolvable | undefined {
    return this._thin;
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

  private _sourceSnapshot?: string;
  public get sourceSnapshot(): string {
    return this.getStringAttribute('source_snapshot');
  }
  public set sourceSnapshot(value: string) {
    this._sourceSnapshot = value;
  }
  public resetSourceSnapshot(): void {
    this._sourceSnapshot = undefined;
  }
  public get sourceSnapshotInput(): string | undefined {
    return this._sourceSnapshot;
  }

  /** `bdev:///UUID` when not shared, else the protocol URI a nexus on another node uses. */
  public get uri(): string {
    return this.getStringAttribute('uri');
  }
  public get allocatedBytes(): number {
    return this.getNumberAttribute('allocated_bytes');
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      node: cdktf.stringToTerraform(this._nodeAttribute),
      pool: cdktf.stringToTerraform(this._pool),
      uuid: cdktf.stringToTerraform(this._uuid),
      size_bytes: cdktf.numberToTerraform(this._sizeBytes),
      thin: cdktf.booleanToTerraform(this._thin),
      share: cdktf.stringToTerraform(this._share),
      allowed_hosts: cdktf.listMapper(cdktf.stringToTerraform, false)(this._allowedHosts),
      source_snapshot: cdktf.stringToTerraform(this._sourceSnapshot),
    };
  }
}
