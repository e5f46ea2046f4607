/**
 * Shared bits of the L1 bindings. They are written in the shape `cdktf get` generates for a provider
 * (typed config interfaces, TerraformResource subclasses, getters returning tokens, synthesizeAttributes with
 * snake_case keys); test/unit/constructs-schema.test.ts fails when they drift from the provider's real schema.
 */
import * as cdktf from 'cdktf';

/** Provider address and version the bindings are written against (package.json "version"). */
export const PROVIDER_SOURCE = 'mayastor/mayastor';
export const PROVIDER_VERSION = '0.1.0';
export const PROVIDER_VERSION_CONSTRAINT = '~> 0.1';

export const GENERATOR_METADATA: cdktf.TerraformProviderGeneratorMetadata = {
  providerName: 'mayastor',
  // no exact providerVersion: cdktf would pin required_providers to it instead of the constraint
  providerVersionConstraint: PROVIDER_VERSION_CONSTRAINT,
};

/** Meta-arguments every resource and data source config passes to its base class. */
export function metaArguments(config: cdktf.TerraformMetaArguments): Omit<cdktf.TerraformResourceConfig, 'terraformResourceType'> {
  return {
    terraformGeneratorMetadata: GENERATOR_METADATA,
    provider: config.provider,
    dependsOn: config.dependsOn,
    count: config.count,
    lifecycle: config.lifecycle,
    provisioners: config.provisioners,
    connection: config.connection,
    forEach: config.forEach,
  };
}
