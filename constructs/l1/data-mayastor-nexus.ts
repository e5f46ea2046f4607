/** L1 binding of the `mayastor_nexus` data source (one nexus by node and uuid). */
import { Construct } from 'constructs';
import * as cdktf from 'cdktf';
import { metaArguments } from './common';
import { NexusChildStatesMap } from './nexus';

export interface DataMayastorNexusConfig extends cdktf.TerraformMetaArguments {
  /** Node whose agent holds it (a key of the provider's `nodes` map). Terraform attribute `node`. */
  readonly nodeAttribute: string;
  /** UUID of the object to read. */
  readonly uuid: string;
}

export class DataMayastorNexus extends cdktf.TerraformDataSource {
  public static readonly tfResourceType = 'mayastor_nexus';

  public constructor(scope: Construct, id: string, config: DataMayastorNexusConfig) {
    super(scope, id, { terraformResourceType: 'mayastor_nexus', ...metaArguments(config) });
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

  /** Size of the volume in bytes. */
  public get sizeBytes(): number {
    return this.getNumberAttribute('size_bytes');
  }

  /** Child URIs that are members (online or rebuilding). */
  public get children(): string[] {
    return this.getListAttribute('children');
  }

  /** `none`, `nbd` or `nvmf`. */
  public get share(): string {
    return this.getStringAttribute('share');
  }

  /** Hosts allowed to connect to the share; empty allows any. */
  public get allowedHosts(): string[] {
    return this.getListAttribute('allowed_hosts');
  }

  /** `online`, `degraded` or `faulted`. */
  public get state(): string {
    return this.getStringAttribute('state');
  }

  /** URI consumers connect to. */
  public get deviceUri(): string {
    return this.getStringAttribute('device_uri');
  }

  /** State and rebuild progress of every child, by URI. */
  private _childStates = new NexusChildStatesMap(this, 'child_states');
  public get childStates(): NexusChildStatesMap {
    return this._childStates;
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      node: cdktf.stringToTerraform(this._nodeAttribute),
      uuid: cdktf.stringToTerraform(this._uuid),
    };
  }
}
