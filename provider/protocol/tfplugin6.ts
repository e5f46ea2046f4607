/**
 * tfplugin6 (protocol 6) and go-plugin `plugin` messages, written from the protocol reference
 * (field numbers from docs/plugin-protocol/tfplugin6.proto as described there). Only the messages and
 * fields this provider reads or writes are listed; unknown fields are skipped on decode.
 */
import { msg, MessageDesc } from './proto';

export const DynamicValue = msg('tfplugin6.DynamicValue', [
  [1, 'msgpack', 'bytes'],
  [2, 'json', 'bytes'],
]);
export const AttributePathStep = msg('tfplugin6.AttributePath.Step', [
  [1, 'attribute_name', 'string'],
  [2, 'element_key_string', 'string'],
  [3, 'element_key_int', 'int64'],
]);
export const AttributePath = msg('tfplugin6.AttributePath', [[1, 'steps', AttributePathStep, 'rep']]);
export const Diagnostic = msg('tfplugin6.Diagnostic', [
  [1, 'severity', 'enum'],
  [2, 'summary', 'string'],
  [3, 'detail', 'string'],
  [4, 'attribute', AttributePath],
]);
export const RawState = msg('tfplugin6.RawState', [
  [1, 'json', 'bytes'],
  [2, 'flatmap', 'string', 'map', 'string'],
]);

export const SchemaAttribute: MessageDesc = msg('tfplugin6.Schema.Attribute', [
  [1, 'name', 'string'],
  [2, 'type', 'bytes'],
  [3, 'description', 'string'],
  [4, 'required', 'bool'],
  [5, 'optional', 'bool'],
  [6, 'computed', 'bool'],
  [7, 'sensitive', 'bool'],
  [8, 'description_kind', 'enum'],
  [9, 'deprecated', 'bool'],
  [10, 'nested_type', () => SchemaObject],
]);
/** A nested attribute's type (protocol 6): its attributes and how they nest (1 SINGLE, 2 LIST, 3 SET, 4 MAP). */
export const SchemaObject: MessageDesc = msg('tfplugin6.Schema.Object', [
  [1, 'attributes', SchemaAttribute, 'rep'],
  [3, 'nesting', 'enum'],
]);
export const SchemaBlock: MessageDesc = msg('tfplugin6.Schema.Block', [
  [1, 'version', 'int64'],
  [2, 'attributes', SchemaAttribute, 'rep'],
  [3, 'block_types', () => NestedBlock, 'rep'],
  [4, 'description', 'string'],
  [5, 'description_kind', 'enum'],
  [6, 'deprecated', 'bool'],
]);
export const NestedBlock = msg('tfplugin6.Schema.NestedBlock', [
  [1, 'type_name', 'string'],
  [2, 'block', SchemaBlock],
  [3, 'nesting', 'enum'],
  [4, 'min_items', 'int64'],
  [5, 'max_items', 'int64'],
]);
export const Schema = msg('tfplugin6.Schema', [
  [1, 'version', 'int64'],
  [2, 'block', SchemaBlock],
]);
export const ServerCapabilities = msg('tfplugin6.ServerCapabilities', [
  [1, 'plan_destroy', 'bool'],
  [2, 'get_provider_schema_optional', 'bool'],
  [3, 'move_resource_state', 'bool'],
]);
export const ClientCapabilities = msg('tfplugin6.ClientCapabilities', [
  [1, 'deferral_allowed', 'bool'],
  [2, 'write_only_attributes_allowed', 'bool'],
]);

export const FunctionParameter = msg('tfplugin6.Function.Parameter', [
  [1, 'name', 'string'],
  [2, 'type', 'bytes'],
  [3, 'allow_null_value', 'bool'],
  [4, 'allow_unknown_values', 'bool'],
  [5, 'description', 'string'],
  [6, 'description_kind', 'enum'],
]);
export const FunctionReturn = msg('tfplugin6.Function.Return', [[1, 'type', 'bytes']]);
export const Function = msg('tfplugin6.Function', [
  [1, 'parameters', FunctionParameter, 'rep'],
  [2, 'variadic_parameter', FunctionParameter],
  [3, 'return', FunctionReturn],
  [4, 'summary', 'string'],
  [5, 'description', 'string'],
  [6, 'description_kind', 'enum'],
  [7, 'deprecation_message', 'string'],
]);
/** function_argument is proto3 `optional`: argument 0 must be sent, or Terraform blames no argument. */
export const FunctionError = msg('tfplugin6.FunctionError', [
  [1, 'text', 'string'],
  [2, 'function_argument', 'int64', 'opt'],
]);

const diags: [number, string, MessageDesc, 'rep'] = [0, 'diagnostics', Diagnostic, 'rep'];
const d = (no: number): [number, string, MessageDesc, 'rep'] => [no, diags[1], diags[2], 'rep'];

export const Empty = msg('Empty', []);

const TypeName = msg('tfplugin6.GetMetadata.ResourceMetadata', [[1, 'type_name', 'string']]);
const FunctionName = msg('tfplugin6.GetMetadata.FunctionMetadata', [[1, 'name', 'string']]);
export const GetMetadataResponse = msg('tfplugin6.GetMetadata.Response', [
  [1, 'server_capabilities', ServerCapabilities],
  d(2),
  [3, 'data_sources', TypeName, 'rep'],
  [4, 'resources', TypeName, 'rep'],
  [5, 'functions', FunctionName, 'rep'],
]);
export const GetProviderSchemaResponse = msg('tfplugin6.GetProviderSchema.Response', [
  [1, 'provider', Schema],
  [2, 'resource_schemas', Schema, 'map'],
  [3, 'data_source_schemas', Schema, 'map'],
  d(4),
  [5, 'provider_meta', Schema],
  [6, 'server_capabilities', ServerCapabilities],
  [7, 'functions', Function, 'map'],
]);
export const ValidateProviderConfigRequest = msg('tfplugin6.ValidateProviderConfig.Request', [[1, 'config', DynamicValue]]);
export const ValidateProviderConfigResponse = msg('tfplugin6.ValidateProviderConfig.Response', [d(2)]);
export const ValidateResourceConfigRequest = msg('tfplugin6.ValidateResourceConfig.Request', [
  [1, 'type_name', 'string'],
  [2, 'config', DynamicValue],
  [3, 'client_capabilities', ClientCapabilities],
]);
export const DiagnosticsOnly = msg('tfplugin6.Diagnostics.Response', [d(1)]);
export const ValidateDataResourceConfigRequest = msg('tfplugin6.ValidateDataResourceConfig.Request', [
  [1, 'type_name', 'string'],
  [2, 'config', DynamicValue],
]);
export const UpgradeResourceStateRequest = msg('tfplugin6.UpgradeResourceState.Request', [
  [1, 'type_name', 'string'],
  [2, 'version', 'int64'],
  [3, 'raw_state', RawState],
]);
export const UpgradeResourceStateResponse = msg('tfplugin6.UpgradeResourceState.Response', [[1, 'upgraded_state', DynamicValue], d(2)]);
export const ConfigureProviderRequest = msg('tfplugin6.ConfigureProvider.Request', [
  [1, 'terraform_version', 'string'],
  [2, 'config', DynamicValue],
  [3, 'client_capabilities', ClientCapabilities],
]);
export const ReadResourceRequest = msg('tfplugin6.ReadResource.Request', [
  [1, 'type_name', 'string'],
  [2, 'current_state', DynamicValue],
  [3, 'private', 'bytes'],
  [4, 'provider_meta', DynamicValue],
]);
export const ReadResourceResponse = msg('tfplugin6.ReadResource.Response', [[1, 'new_state', DynamicValue], d(2), [3, 'private', 'bytes']]);
export const PlanResourceChangeRequest = msg('tfplugin6.PlanResourceChange.Request', [
  [1, 'type_name', 'string'],
  [2, 'prior_state', DynamicValue],
  [3, 'proposed_new_state', DynamicValue],
  [4, 'config', DynamicValue],
  [5, 'prior_private', 'bytes'],
  [6, 'provider_meta', DynamicValue],
]);
export const PlanResourceChangeResponse = msg('tfplugin6.PlanResourceChange.Response', [
  [1, 'planned_state', DynamicValue],
  [2, 'requires_replace', AttributePath, 'rep'],
  [3, 'planned_private', 'bytes'],
  d(4),
  [5, 'legacy_type_system', 'bool'],
]);
export const ApplyResourceChangeRequest = msg('tfplugin6.ApplyResourceChange.Request', [
  [1, 'type_name', 'string'],
  [2, 'prior_state', DynamicValue],
  [3, 'planned_state', DynamicValue],
  [4, 'config', DynamicValue],
  [5, 'planned_private', 'bytes'],
  [6, 'provider_meta', DynamicValue],
]);
export const ApplyResourceChangeResponse = msg('tfplugin6.ApplyResourceChange.Response', [
  [1, 'new_state', DynamicValue],
  [2, 'private', 'bytes'],
  d(3),
  [4, 'legacy_type_system', 'bool'],
]);
export const ImportResourceStateRequest = msg('tfplugin6.ImportResourceState.Request', [
  [1, 'type_name', 'string'],
  [2, 'id', 'string'],
]);
export const ImportedResource = msg('tfplugin6.ImportResourceState.ImportedResource', [
  [1, 'type_name', 'string'],
  [2, 'state', DynamicValue],
  [3, 'private', 'bytes'],
]);
export const ImportResourceStateResponse = msg('tfplugin6.ImportResourceState.Response', [[1, 'imported_resources', ImportedResource, 'rep'], d(2)]);
export const ReadDataSourceRequest = msg('tfplugin6.ReadDataSource.Request', [
  [1, 'type_name', 'string'],
  [2, 'config', DynamicValue],
  [3, 'provider_meta', DynamicValue],
]);
export const ReadDataSourceResponse = msg('tfplugin6.ReadDataSource.Response', [[1, 'state', DynamicValue], d(2)]);
export const GetFunctionsResponse = msg('tfplugin6.GetFunctions.Response', [[1, 'functions', Function, 'map'], d(2)]);
export const CallFunctionRequest = msg('tfplugin6.CallFunction.Request', [
  [1, 'name', 'string'],
  [2, 'arguments', DynamicValue, 'rep'],
]);
export const CallFunctionResponse = msg('tfplugin6.CallFunction.Response', [
  [1, 'result', DynamicValue],
  [2, 'error', FunctionError],
]);
export const StopProviderResponse = msg('tfplugin6.StopProvider.Response', [[1, 'Error', 'string']]);

/** go-plugin `plugin.StdioData`, kept for completeness of the controller package. */
export const StdioData = msg('plugin.StdioData', [
  [1, 'channel', 'enum'],
  [2, 'data', 'bytes'],
]);

export const SEVERITY_ERROR = 1;
export const SEVERITY_WARNING = 2;
export const STRING_KIND_MARKDOWN = 1;
