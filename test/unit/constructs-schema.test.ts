/**
 * The L1 bindings in constructs/l1 must match the provider's schema exactly, as its GetProviderSchema handler
 * serves it (the real-terraform view of the installed provider is checked in test/integration/cdktf-schema.test.ts).
 */
import { ProviderService } from '../../provider/protocol/framework';
import { makeProvider } from '../../provider/provider';
import { BINDINGS, ProviderSchemaJson, checkBindings, fromGetProviderSchema, propertyName } from '../helpers/constructs-schema-check';

function realSchema(): ProviderSchemaJson {
  return fromGetProviderSchema(new ProviderService(makeProvider()).getProviderSchema() as Record<string, unknown>);
}

describe('L1 bindings vs the provider schema (GetProviderSchema)', () => {
  test('every resource, data source and attribute matches', () => {
    expect(checkBindings(realSchema())).toEqual([]);
  });

  test('the schema covers what the bindings cover', () => {
    const s = realSchema();
    expect(Object.keys(s.resource_schemas ?? {}).sort()).toEqual(
      BINDINGS.filter((b) => b.kind === 'resource')
        .map((b) => b.tfType)
        .sort(),
    );
    expect(Object.keys(s.data_source_schemas ?? {}).sort()).toEqual(
      BINDINGS.filter((b) => b.kind === 'data')
        .map((b) => b.tfType)
        .sort(),
    );
  });

  test('property names follow the generator (node → nodeAttribute, snake → camel)', () => {
    expect(propertyName('node')).toBe('nodeAttribute');
    expect(propertyName('size_bytes')).toBe('sizeBytes');
    expect(propertyName('child_states')).toBe('childStates');
  });

  // The check itself must catch drift: mutate a copy of the real schema in each way it can drift.
  const mutations: [string, (s: ProviderSchemaJson) => void, RegExp][] = [
    [
      'a new required attribute',
      (s) => {
        s.resource_schemas!.mayastor_pool.block.attributes!.tier = { type: 'string', required: true };
      },
      /mayastor_pool\.tier: required attribute has no config property tier/,
    ],
    [
      'required turned optional',
      (s) => {
        Object.assign(s.resource_schemas!.mayastor_replica.block.attributes!.size_bytes, { required: undefined, optional: true });
      },
      /mayastor_replica\.size_bytes: config property sizeBytes is required, but the attribute is optional/,
    ],
    [
      'optional turned required',
      (s) => {
        Object.assign(s.resource_schemas!.mayastor_nexus.block.attributes!.share, { required: true, optional: undefined, computed: undefined });
      },
      /mayastor_nexus\.share: config property share is optional, but the attribute is required/,
    ],
    [
      'a changed type',
      (s) => {
        s.resource_schemas!.mayastor_replica.block.attributes!.thin.type = 'string';
      },
      /mayastor_replica\.thin: config property thin has type boolean\|cdktf\.IResolvable/,
    ],
    [
      'a configurable attribute turned computed-only',
      (s) => {
        Object.assign(s.resource_schemas!.mayastor_pool.block.attributes!.disks, { required: undefined, computed: true });
      },
      /mayastor_pool\.disks: computed-only attribute must not be a config property/,
    ],
    [
      'a removed attribute',
      (s) => {
        delete s.resource_schemas!.mayastor_replica.block.attributes!.allowed_hosts;
      },
      /mayastor_replica: config property allowedHosts of ReplicaConfig matches no attribute/,
    ],
    [
      'a new computed attribute',
      (s) => {
        s.data_source_schemas!.mayastor_node.block.attributes!.uptime = { type: 'number', computed: true };
      },
      /data\.mayastor_node\.uptime: DataMayastorNode has no getter uptime/,
    ],
    [
      'a new resource',
      (s) => {
        s.resource_schemas!.mayastor_volume_group = { block: { attributes: {} } };
      },
      /mayastor_volume_group: in the provider schema but has no L1 binding/,
    ],
    [
      'a removed data source',
      (s) => {
        delete s.data_source_schemas!.mayastor_pools;
      },
      /data\.mayastor_pools: L1 binding DataMayastorPools exists but the provider schema has no such data/,
    ],
    [
      'a new provider attribute',
      (s) => {
        s.provider.block.attributes!.insecure = { type: 'bool', optional: true };
      },
      /mayastor\.insecure: optional attribute has no config property insecure/,
    ],
  ];
  test.each(mutations)('detects %s', (_what, mutate, re) => {
    const s = JSON.parse(JSON.stringify(realSchema())) as ProviderSchemaJson;
    mutate(s);
    const problems = checkBindings(s);
    expect(problems.join('\n')).toMatch(re);
  });
});

describe('L1 provider metadata', () => {
  test('the bindings are written against the version package.json ships', () => {
    const { PROVIDER_VERSION, PROVIDER_VERSION_CONSTRAINT, PROVIDER_SOURCE } =
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('../../constructs/l1/common') as typeof import('../../constructs/l1/common');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pkg = require('../../package.json') as { version: string };
    expect(PROVIDER_VERSION).toBe(pkg.version);
    const [major, minor] = pkg.version.split('.');
    expect(PROVIDER_VERSION_CONSTRAINT).toBe(`~> ${major}.${minor}`);
    expect(PROVIDER_SOURCE).toBe('mayastor/mayastor');
  });
});
