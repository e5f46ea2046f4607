/** L1 binding of the `mayastor_pools` data source. */
import { Construct } from 'constructs';
import * as cdktf from 'cdktf';
import { metaArguments } from './common';

export interface DataMayastorPoolsConfig extends cdktf.TerraformMetaArguments {
  /** Node name (a key of the provider's `nodes` map). Terraform attribute `node`. */
  readonly nodeAttribute: string;
}

/** One element of the computed `pools` list. */
export class DataMayastorPoolsPoolsOutputReference extends cdktf.ComplexObject {
  public constructor(terraformResource: cdktf.IInterpolatingParent, terraformAttribute: string, complexObjectIndex: number, complexObjectIsFromSet: boolean) {
    super(terraformResource, terraformAttribute, complexObjectIsFromSet, complexObjectIndex);
  }
  public get name(): string {
    return this.getStringAttribute('name');
  }
  public get uuid(): string {
    return this.getStringAttribute('uuid');
  }
  public get disks(): string[] {
    return this.getListAttribute('disks');
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
}

export class DataMayastorPoolsPoolsList extends cdktf.ComplexList {
  public constructor(
    protected override terraformResource: cdktf.IInterpolatingParent,
    protected override terraformAttribute: string,
    protected override wrapsSet: boolean,
  ) {
    super(terraformResource, terraformAttribute, wrapsSet);
  }
  public get(index: number): DataMayastorPoolsPoolsOutputReference {
    return new DataMayastorPoolsPoolsOutputReference(this.terraformResource, this.terraformAttribute, index, this.wrapsSet);
  }
}

export class DataMayastorPools extends cdktf.TerraformDataSource {
  public static readonly tfResourceType = 'mayastor_pools';

  public constructor(scope: Construct, id: string, config: DataMayastorPoolsConfig) {
    super(scope, id, { terraformResourceType: 'mayastor_pools', ...metaArguments(config) });
    this._nodeAttribute = config.nodeAttribute;
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

  private _pools = new DataMayastorPoolsPoolsList(this, 'pools', false);
  public get pools(): DataMayastorPoolsPoolsList {
    return this._pools;
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      node: cdktf.stringToTerraform(this._nodeAttribute),
    };
  }
}
