/** The mayastor provider: its configuration schema, resources and data sources. */
import fs from 'node:fs';
import type { AgentTlsOptions } from '../agent/api/client';
import { caBundleProblem } from '../agent/api/tls';
import { ProviderDef } from './protocol/framework';
import { Diagnostics } from './protocol/schema';
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
import { replicaDataSource } from './resources/replica-data';
import { nexusDataSource } from './resources/nexus-data';
import { replicaSizeFunction } from './functions/replica-size';

export const PROVIDER_VERSION = '0.1.0';

/** The provider block (the schema below, field by field). */
export interface ProviderModel {
  nodes: Record<string, string>;
  token: string;
  caCertPem: string;
  caCertFile: string;
  clientCertPem: string;
  clientKeyPem: string;
  requestTimeoutSeconds: number;
  retries: number;
  rebuildTimeoutSeconds: number;
}

/** The TLS settings of the provider block (or the environment), checked; each problem names its attribute. */
function tlsSettings(
  c: Draft<ProviderModel>,
  env: Readonly<Record<string, string | undefined>>,
  diags: Diagnostics,
  readFiles: boolean,
): AgentTlsOptions | undefined {
  const pem = known(c.caCertPem) ?? env.MAYASTOR_CA_CERT_PEM;
  const file = known(c.caCertFile) ?? env.MAYASTOR_CA_CERT_FILE;
  const cert = known(c.clientCertPem),
    key = known(c.clientKeyPem);
  const isPem = (v: string, kind: string) => v.includes(`-----BEGIN ${kind}`);
  if (known(c.caCertPem) !== undefined && known(c.caCertFile) !== undefined)
    diags.error('Conflicting ca_cert_pem and ca_cert_file', 'set one of ca_cert_pem and ca_cert_file, not both', ['ca_cert_file']);
  const pemProblem = pem !== undefined ? caBundleProblem(pem) : undefined;
  if (pemProblem) diags.error('Invalid ca_cert_pem', `ca_cert_pem: ${pemProblem}`, ['ca_cert_pem']);
  if (cert !== undefined && !isPem(cert, 'CERTIFICATE'))
    diags.error('Invalid client_cert_pem', 'client_cert_pem must hold a PEM certificate (-----BEGIN CERTIFICATE-----)', ['client_cert_pem']);
  if (key !== undefined && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key))
    diags.error('Invalid client_key_pem', 'client_key_pem must hold a PEM private key (-----BEGIN ... PRIVATE KEY-----)', ['client_key_pem']);
  if ((cert === undefined) !== (key === undefined) && !isUnknown(c.clientCertPem) && !isUnknown(c.clientKeyPem)) {
    const missing = cert === undefined ? 'client_cert_pem' : 'client_key_pem';
    diags.error(`Missing ${missing}`, 'client_cert_pem and client_key_pem go together (a client certificate and its key)', [missing]);
  }
  let ca: string | undefined = pem;
  if (ca === undefined && file !== undefined && readFiles) {
    try {
      ca = fs.readFileSync(file, 'utf8');
    } catch (e) {
      diags.error('Invalid ca_cert_file', `cannot read ca_cert_file "${file}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ['ca_cert_file']);
      return undefined;
    }
    const fileProblem = caBundleProblem(ca);
    if (fileProblem) diags.error('Invalid ca_cert_file', `ca_cert_file "${file}": ${fileProblem}`, ['ca_cert_file']);
  }
  const on = ca !== undefined || file !== undefined || cert !== undefined || key !== undefined;
  return on ? { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined && key !== undefined ? { cert, key } : {}) } : undefined;
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
      description:
        "Bearer token of the agents (the contents of the agent's `DATA_DIR/token`). Falls back to the `MAYASTOR_TOKEN` environment variable. " +
        'Accepts ephemeral values (Terraform >= 1.10): an ephemeral input variable (`variable "mayastor_token" { ephemeral = true }`) or a secret manager\'s ephemeral resource. ' +
        'The provider never writes it to the state; given as an ephemeral value it is kept out of saved plan files too (a non-ephemeral variable is saved in the plan), ' +
        'and `terraform apply PLANFILE` needs it given again.',
    },
    ca_cert_pem: {
      type: 'string',
      optional: true,
      description:
        "PEM of the CA that signed the agents' TLS certificates (agents started with `--tls-cert`/`--tls-key`). " +
        'May hold several CA certificates, concatenated (agents whose certificates come from different CAs): each agent is verified against all of them, and an unreadable one is an error. ' +
        "Each agent's certificate must name the host of its URL (an IP SAN for an IP address). " +
        'With any TLS setting, every node URL must be `https://`: the token is never sent over plain HTTP. Falls back to `MAYASTOR_CA_CERT_PEM`; conflicts with `ca_cert_file`.',
    },
    ca_cert_file: {
      type: 'string',
      optional: true,
      description:
        'Path of a PEM file holding the CA certificate, or a bundle of several (see `ca_cert_pem`), e.g. `/etc/mayastor/ca.pem`. Falls back to `MAYASTOR_CA_CERT_FILE`.',
    },
    client_cert_pem: {
      type: 'string',
      optional: true,
      description: 'PEM client certificate, for agents started with `--tls-client-ca`. Needs `client_key_pem`.',
    },
    client_key_pem: {
      type: 'string',
      optional: true,
      sensitive: true,
      description: 'PEM private key of `client_cert_pem`.',
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
    dataSources: [nodeDataSource, poolsDataSource, replicaDataSource, nexusDataSource],
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
      const tls = tlsSettings(config, env, diags, false);
      if (tls && nodes) {
        for (const [name, url] of Object.entries(nodes)) {
          if (url.startsWith('http://'))
            diags.error(
              'Plain http:// URL with TLS configured',
              `node "${name}": "${url}" is plain HTTP while the provider has TLS settings (ca_cert_pem, ca_cert_file or a client certificate): ` +
                'the token would cross the network in clear. Use https:// for this node.',
              ['nodes', { key: name }],
            );
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

    configure(value, _tfVersion, diags) {
      const config = decodeModel<Draft<ProviderModel>>(providerSchema, value);
      const tls = tlsSettings(config, env, diags, true);
      if (diags.hasErrors()) return undefined;
      const token = known(config.token) ?? env.MAYASTOR_TOKEN;
      const m = new Mayastor({
        nodes: isUnknown(config.nodes) ? undefined : { ...(knownNodes(config) ?? {}) },
        token: token === '' ? undefined : token,
        timeoutMs: (known(config.requestTimeoutSeconds) ?? 30) * 1000,
        retries: known(config.retries) ?? 3,
        rebuildTimeoutMs: (known(config.rebuildTimeoutSeconds) ?? 3600) * 1000,
        tls,
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
