/** The mayastor provider: its configuration schema, resources and data sources. */
import { ProviderDef } from './protocol/framework';
import { BlockSchema, numOf, str, strMap } from './protocol/schema';
import { isUnknown } from './protocol/cty';
import { nodeNameProblem } from '../agent/api/grammar';
import { Mayastor } from './resources/agent-clients';
import { poolResource } from './resources/pool';
import { replicaResource } from './resources/replica';
import { nexusResource } from './resources/nexus';
import { nodeDataSource } from './resources/node';
import { poolsDataSource } from './resources/pools';

export const PROVIDER_VERSION = '0.1.0';

export const providerSchema: BlockSchema = {
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
    resources: [poolResource, replicaResource, nexusResource],
    dataSources: [nodeDataSource, poolsDataSource],

    validateConfig(config, diags) {
      const nodes = strMap(config.nodes ?? null);
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
      for (const k of ['request_timeout_seconds', 'retries', 'rebuild_timeout_seconds']) {
        const n = numOf(config[k] ?? null);
        if (n !== undefined && (n < 0 || (k !== 'retries' && n === 0) || !Number.isFinite(n)))
          diags.error(`Invalid ${k}`, `${k} must be a positive number, got ${n}`, [k]);
      }
    },

    configure(config) {
      const nodesV = config.nodes ?? null;
      const token = str(config.token ?? null) ?? env.MAYASTOR_TOKEN;
      const m = new Mayastor({
        nodes: isUnknown(nodesV) ? undefined : { ...(strMap(nodesV) ?? {}) },
        token: token === '' ? undefined : token,
        timeoutMs: (numOf(config.request_timeout_seconds ?? null) ?? 30) * 1000,
        retries: numOf(config.retries ?? null) ?? 3,
        rebuildTimeoutMs: (numOf(config.rebuild_timeout_seconds ?? null) ?? 3600) * 1000,
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
