/** L1 binding of the `mayastor_pool` resource. */
import { Construct } from 'constructs';
import * as cdktf from 'cdktf';
import { metaArguments } from './common';

export interface PoolConfig extends cdktf.TerraformMetaArguments {
  /** Node (a key of the provider's `nodes` map) whose agent owns the pool. Terraform attribute `node`. */
  readonly nodeAttribute: string;
  /** Pool name, unique on its node. */
  readonly name: string;
  /** Disks the pool claims: absolute paths, or `uring:///path` / `aio:///path`. Changing them replaces the pool. */
  readonly disks: string[];
}

export class Pool extends cdktf.TerraformResource {
  public static readonly tfResourceType = 'mayastor_pool';

  /** An `import` block for an existing pool; `importFromId` is `NODE/NAME`. */
  public static generateConfigForImport(
    scope: Construct,
    importToId: string,
    importFromId: string,
    provider?: cdktf.TerraformProvider,
  ): cdktf.ImportableResource {
    return new cdktf.ImportableResource(scope, importToId, { terraformResourceType: 'mayastor_pool', importId: importFromId, provider });
  }

  public constructor(scope: Construct, id: string, config: PoolConfig) {
    super(scope, id, { terraformResourceType: 'mayastor_pool', ...metaArguments(config) });
    this._nodeAttribute = config.nodeAttribute;
    this._name = config.name;
    this._disks = config.disks;
  }

  // computed: the import id NODE/NAME
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

  private _name?: string;
  public get name(): string {
    return this.getStringAttribute('name');
  }
  public set name(value: string) {
    this._name = value;
  }
  public get nameInput(): string | undefined {
    return this._name;
  }

  private _disks?: string[];
  public get disks(): string[] {
    return this.getListAttribute('disks');
  }
  public set disks(value: string[]) {
    this._disks = value;
  }
  public get disksInput(): string[] | undefined {
    return this._disks;
  }

  public get uuid(): string {
    return this.getStringAttribute('uuid');
  }
  public get state(): string {
    return this.getStringAttribute('state');
  }
  public get capacityBytes(): number {
    return this.getNumberAttribute('capacity_bytes');
  }
  public get usedBytes(): number {
    return this.getNumberAttribute('used_bytes');
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      node: cdktf.stringToTerraform(this._nodeAttribute),
      name: cdktf.stringToTerraform(this._name),
      disks: cdktf.listMapper(cdktf.stringToTerraform, false)(this._disks),
    };
  }
}
