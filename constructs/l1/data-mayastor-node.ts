/** L1 binding of the `mayastor_node` data source. */
import { Construct } from 'constructs';
import * as cdktf from 'cdktf';
import { metaArguments } from './common';

export interface DataMayastorNodeConfig extends cdktf.TerraformMetaArguments {
  /** Node name (a key of the provider's `nodes` map). Terraform attribute `node`. */
  readonly nodeAttribute: string;
}

export class DataMayastorNode extends cdktf.TerraformDataSource {
  public static readonly tfResourceType = 'mayastor_node';

  public constructor(scope: Construct, id: string, config: DataMayastorNodeConfig) {
    super(scope, id, { terraformResourceType: 'mayastor_node', ...metaArguments(config) });
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

  public get url(): string {
    return this.getStringAttribute('url');
  }
  public get name(): string {
    return this.getStringAttribute('name');
  }
  public get version(): string {
    return this.getStringAttribute('version');
  }
  public get datapathVersion(): string {
    return this.getStringAttribute('datapath_version');
  }
  private _listeners = new cdktf.StringMap(this, 'listeners');
  public get listeners(): cdktf.StringMap {
    return this._listeners;
  }
  public get capabilities(): string[] {
    return this.getListAttribute('capabilities');
  }
  public get nvmfHostNqn(): string {
    return this.getStringAttribute('nvmf_host_nqn');
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      node: cdktf.stringToTerraform(this._nodeAttribute),
    };
  }
}
