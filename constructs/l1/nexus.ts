/** L1 binding of the `mayastor_nexus` resource. */
import { Construct } from 'constructs';
import * as cdktf from 'cdktf';
import { metaArguments } from './common';

export interface NexusConfig extends cdktf.TerraformMetaArguments {
  /** Node whose agent runs the nexus. Terraform attribute `node`. */
  readonly nodeAttribute: string;
  /** UUID of the nexus; when left out, the provider generates one at create and keeps it. Changing it replaces the nexus. */
  readonly uuid?: string;
  /** Size of the volume in bytes, a multiple of 512, no larger than the smallest child. */
  readonly sizeBytes: number;
  /** Child URIs (`bdev:///UUID`, `nbd://host:port/export`, ...). Added and removed in place. */
  readonly children: string[];
  /** `none`, `nbd`, `iscsi` or `nvmf`. Default `none`. */
  readonly share?: string;
}

/** One entry of the computed `child_states` map. */
export class NexusChildStatesOutputReference extends cdktf.ComplexObject {
  public constructor(terraformResource: cdktf.IInterpolatingParent, terraformAttribute: string, complexObjectKey: string) {
    super(terraformResource, terraformAttribute, false, complexObjectKey);
  }
  public get state(): string {
    return this.getStringAttribute('state');
  }
  public get rebuildProgress(): number {
    return this.getNumberAttribute('rebuild_progress');
  }
}

export class NexusChildStatesMap extends cdktf.ComplexMap {
  public constructor(
    protected override terraformResource: cdktf.IInterpolatingParent,
    protected override terraformAttribute: string,
  ) {
    super(terraformResource, terraformAttribute);
  }
  public get(key: string): NexusChildStatesOutputReference {
    return new NexusChildStatesOutputReference(this.terraformResource, this.terraformAttribute, key);
  }
}

export class Nexus extends cdktf.TerraformResource {
  public static readonly tfResourceType = 'mayastor_nexus';

  /** An `import` block for an existing nexus; `importFromId` is `NODE/UUID`. */
  public static generateConfigForImport(
    scope: Construct,
    importToId: string,
    importFromId: string,
    provider?: cdktf.TerraformProvider,
  ): cdktf.ImportableResource {
    return new cdktf.ImportableResource(scope, importToId, { terraformResourceType: 'mayastor_nexus', importId: importFromId, provider });
  }

  public constructor(scope: Construct, id: string, config: NexusConfig) {
    super(scope, id, { terraformResourceType: 'mayastor_nexus', ...metaArguments(config) });
    this._nodeAttribute = config.nodeAttribute;
    this._uuid = config.uuid;
    this._sizeBytes = config.sizeBytes;
    this._children = config.children;
    this._share = config.share;
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

  private _children?: string[];
  public get children(): string[] {
    return this.getListAttribute('children');
  }
  public set children(value: string[]) {
    this._children = value;
  }
  public get childrenInput(): string[] | undefined {
    return this._children;
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

  /** `online`, `degraded` or `faulted`. */
  public get state(): string {
    return this.getStringAttribute('state');
  }
  /** URI consumers connect to, e.g. `nbd://127.0.0.1:10809/NEXUS-UUID`. */
  public get deviceUri(): string {
    return this.getStringAttribute('device_uri');
  }

  private _childStates = new NexusChildStatesMap(this, 'child_states');
  public get childStates(): NexusChildStatesMap {
    return this._childStates;
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      node: cdktf.stringToTerraform(this._nodeAttribute),
      uuid: cdktf.stringToTerraform(this._uuid),
      size_bytes: cdktf.numberToTerraform(this._sizeBytes),
      children: cdktf.listMapper(cdktf.stringToTerraform, false)(this._children),
      share: cdktf.stringToTerraform(this._share),
    };
  }
}
