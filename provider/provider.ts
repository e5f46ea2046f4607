/** The mayastor provider: its configuration schema, resources and data sources. */
import { ProviderDef } from './protocol/framework';
import { isUnknown } from './protocol/cty';
import { Draft, Maybe, SchemaOf, decodeModel, known } from './protocol/model';
import { nodeNameProblem } from '../agent/api/grammar';
import { Mayastor } from './resources/agent-clients';
import { poolResource } from './resources/pool';
import { replicaResource } from './resources/replica';
import { nexusResource } from './resources/nexus';
import { snapshotResource } from './resources/snapshot';
import { volumeSnapshotResource } from './resources/volume-snapshot';
import { nodeDataSource } from './resources/node';
import { poolsDataSource } from './resources/pools';
import { replicaSizeFunction } from './functions/replica-size';

export const PROVIDER_VERSION = '0.1.0';

/** The provider block (the schema below, field by field). */
export interface ProviderModel {
  nodes: Record<string, string>;
  token: string;
  requestTimeoutSeconds: number;
  retries: number;
  rebuildTimeoutSeconds: number;
}

/** The nodes map when it and every URL in it are known. */
function knownNodes(c: Draft<ProviderModel>): Record<string, string> | undefined {
  const nodes = known(c.nodes);
  return nodes && Object.values(nodes).every((u) => typeof u === 'string') ? (nodes as Record<string, string>) : undefined;
}

export const providerSchema: SchemaOf<ProviderModel> = {
  description: 'Talks to the mayastor agents of your storage nodes over their HTTP API.',
  attributes: {
    nodes: {
      type: ['map', 'string'],
      optional: true,
      description: 'Agents by node name: `{ NAME = "http://HOST:PORT" }`. Every resource names one of these nodes.',
      example: '{ node-a = "http://10.0.0.1:9500", node-b = "http://10.0.0.2:9500" }',
    },
    token: {
      type: 'string',
      optional: true,
      sensitive: true,
      description: "Bearer token of the agents (the contents of the agent's `DATA_DIR/token`). Falls back to the `MAYASTOR_TOKEN` environment variable.",
    },
    request_timeout_seconds: { type: 'number', optional: true, description: 'Timeout of one agent request, in seconds. Default 30.' },
    retries: {
      type: 'number',
      optional: true,
      description: 'Extra attempts for idempotent agent requests (GET, PUT, DELETE) after a connection failure, timeout or 5xx. Default 3.',
    },
    rebuild_timeout_seconds: { type: 'number', optional: true, description: 'How long apply waits for a nexus child rebuild to finish. Default 3600.' },
  },
};

/** `env`: the session's environment (the provider daemon serves many Terraform runs, each with its own). */
export function makeProvider(env: Readonly<Record<string, string | undefined>> = process.env): ProviderDef<Mayastor> & { current?: Mayastor } {
  const def: ProviderDef<Mayastor> & { current?: Mayastor } = {
    schema: providerSchema,
    resources: [poolResource, replicaResource, nexusResource, snapshotResource, volumeSnapshotResource],
    dataSources: [nodeDataSource, poolsDataSource],
    functions: [replicaSizeFunction],

    validateConfig(value, diags) {
      const config = decodeModel<Draft<ProviderModel>>(providerSchema, value);
      const nodes = knownNodes(config);
      if (nodes) {
        for (const [name, url] of Object.entries(nodes)) {
          const p = nodeNameProblem(name);
          if (p) diags.error('Invalid nodes', `node name "${name}" ${p.message}`, ['nodes', { key: name }]);
          let ok = false;
          try {
            const u = new URL(url);
            ok = u.protocol === 'http:' || u.protocol === 'https:';
          } catch {
            ok = false;
          }
          if (!ok) diags.error('Invalid nodes', `node "${name}": "${url}" is not an http:// or https:// URL`, ['nodes', { key: name }]);
        }
      }
      const numbers: Record<string, Maybe<number>> = {
        request_timeout_seconds: config.requestTimeoutSeconds,
        retries: config.retries,
        rebuild_timeout_seconds: config.rebuildTimeoutSeconds,
      };
      for (const [k, v] of Object.entries(numbers)) {
        const n = known(v);
        if (n !== undefined && (n < 0 || (k !== 'retries' && n === 0) || !Number.isFinite(n)))
          diags.error(`Invalid ${k}`, `${k} must be a positive number, got ${n}`, [k]);
      }
    },

    configure(value) {
      const config = decodeModel<Draft<ProviderModel>>(providerSchema, value);
      const token = known(config.token) ?? env.MAYASTOR_TOKEN;
      const m = new Mayastor({
        nodes: isUnknown(config.nodes) ? undefined : { ...(knownNodes(config) ?? {}) },
        token: token === '' ? undefined : token,
        timeoutMs: (known(config.requestTimeoutSeconds) ?? 30) * 1000,
        retries: known(config.retries) ?? 3,
        rebuildTimeoutMs: (known(config.rebuildTimeoutSeconds) ?? 3600) * 1000,
      });
      def.current = m;
      return m;
    },

    stop() {
      def.current?.stop();
    },
  };
  return def;
}
