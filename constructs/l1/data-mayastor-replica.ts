/** L1 binding of the `mayastor_replica` data source (one replica by node and uuid). */
import { Construct } from 'constructs';
import * as cdktf from 'cdktf';
import { metaArguments } from './common';

export interface DataMayastorReplicaConfig extends cdktf.TerraformMetaArguments {
  /** Node whose agent holds it (a key of the provider's `nodes` map). Terraform attribute `node`. */
  readonly nodeAttribute: string;
  /** UUID of the object to read. */
  readonly uuid: string;
}

export class DataMayastorReplica extends cdktf.TerraformDataSource {
  public static readonly tfResourceType = 'mayastor_replica';

  public constructor(scope: Construct, id: string, config: DataMayastorReplicaConfig) {
    super(scope, id, { terraformResourceType: 'mayastor_replica', ...metaArguments(config) });
    this._nodeAttribute = config.nodeAttribute;
    this._uuid = config.uuid;
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

  private _uuid?: string;
  public get uuid(): string {
    return this.getStringAttribute('uuid');
  }
  public set uuid(value: string) {
    this._uuid = value;
  }
  public get uuidInput(): string | undefined {
    return this._uuid;
  }

  /** The import id, `NODE/UUID`. */
  public get id(): string {
    return this.getStringAttribute('id');
  }

  /** Name of the pool holding the replica. */
  public get pool(): string {
    return this.getStringAttribute('pool');
  }

  /** Size in bytes. */
  public get sizeBytes(): number {
    return this.getNumberAttribute('size_bytes');
  }

  /** Thin provisioned. */
  public get thin(): cdktf.IResolvable {
    return this.getBooleanAttribute('thin');
  }

  /** `none`, `nbd` or `nvmf`. */
  public get share(): string {
    return this.getStringAttribute('share');
  }

  /** Hosts allowed to connect to the share; empty allows any. */
  public get allowedHosts(): string[] {
    return this.getListAttribute('allowed_hosts');
  }

  /** URI a nexus uses to reach the replica (`bdev:///UUID`, or the share URI). */
  public get uri(): string {
    return this.getStringAttribute('uri');
  }

  /** Bytes allocated in the pool. */
  public get allocatedBytes(): number {
    return this.getNumberAttribute('allocated_bytes');
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      node: cdktf.stringToTerraform(this._nodeAttribute),
      uuid: cdktf.stringToTerraform(this._uuid),
    };
  }
}
