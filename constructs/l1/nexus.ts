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
  /** Hosts allowed to connect to the share (IP addresses or CIDR prefixes for `nbd`, host NQNs for `nvmf`); empty allows any. */
  readonly allowedHosts?: string[];
  /** How long create, update and delete may take (`"30m"`); unset ones take the provider-level defaults. */
  readonly timeouts?: NexusTimeouts;
}

/** The nested `timeouts` attribute: a duration string per operation (`"30s"`, `"10m"`, `"1h30m"`). */
export interface NexusTimeouts {
  /** How long create may wait for the children to be rebuilt. */
  readonly create?: string;
  /** How long destroying the nexus may take. */
  readonly delete?: string;
  /** How long an update may wait for added or repaired children to be rebuilt. */
  readonly update?: string;
}

export function nexusTimeoutsToTerraform(struct?: NexusTimeouts | cdktf.IResolvable): unknown {
  if (!cdktf.canInspect(struct) || cdktf.Tokenization.isResolvable(struct)) return struct;
  if (cdktf.isComplexElement(struct))
    throw new Error('A complex element was used as configuration, this is not supported: https://cdk.tf/complex-object-as-configuration');
  const t = struct as NexusTimeouts;
  return {
    create: cdktf.stringToTerraform(t.create),
    delete: cdktf.stringToTerraform(t.delete),
    update: cdktf.stringToTerraform(t.update),
  };
}

/** The `timeouts` attribute of a nexus: its values as tokens, and the configured object. */
export class NexusTimeoutsOutputReference extends cdktf.ComplexObject {
  private _value?: NexusTimeouts | cdktf.IResolvable;
  public constructor(terraformResource: cdktf.IInterpolatingParent, terraformAttribute: string) {
    super(terraformResource, terraformAttribute, false);
  }
  public get internalValue(): NexusTimeouts | cdktf.IResolvable | undefined {
    return this._value;
  }
  public set internalValue(value: NexusTimeouts | cdktf.IResolvable | undefined) {
    this._value = value;
  }
  public get create(): string {
    return this.getStringAttribute('create');
  }
  public get delete(): string {
    return this.getStringAttribute('delete');
  }
  public get update(): string {
    return this.getStringAttribute('update');
  }
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
    this._allowedHosts = config.allowedHosts;
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

  private _timeouts = new NexusTimeoutsOutputReference(this, 'timeouts');
  public get timeouts(): NexusTimeoutsOutputReference {
    return this._timeouts;
  }
  public putTimeouts(value: NexusTimeouts): void {
    this._timeouts.internalValue = value;
  }
  public resetTimeouts(): void {
    this._timeouts.internalValue = undefined;
  }
  public get timeoutsInput(): NexusTimeouts | cdktf.IResolvable | undefined {
    return this._timeouts.internalValue;
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      node: cdktf.stringToTerraform(this._nodeAttribute),
      uuid: cdktf.stringToTerraform(this._uuid),
      size_bytes: cdktf.numberToTerraform(this._sizeBytes),
      children: cdktf.listMapper(cdktf.stringToTerraform, false)(this._children),
      share: cdktf.stringToTerraform(this._share),
      allowed_hosts: cdktf.listMapper(cdktf.stringToTerraform, false)(this._allowedHosts),
      timeouts: nexusTimeoutsToTerraform(this._timeouts.internalValue),
    };
  }
}
