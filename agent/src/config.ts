/**
 * config.ts - the agent's command line (DESIGN.md "Agent command line"):
 *   mayastor-agent --node NAME --listen HOST:PORT --data-dir DIR [--token-file F]
 *     [--nbd-listen HOST:PORT] [--advertise-host HOST] [--iscsi-listen HOST:PORT] [--nvmf-listen HOST:PORT]
 *     [--allow-disk PREFIX]... [--reactors N] [--cluster-size BYTES] [--log-level LEVEL]
 *     [--max-connections N] [--max-connections-per-export N] [--handshake-timeout-ms MS]
 *     [--conn-memory-budget SIZE] [--memory-budget SIZE] [--fd-headroom N] [--writer-grace-ms MS]
 *     [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]
 * The TLS flags make the API HTTPS (and, with --tls-client-ca, require client certificates signed by that CA).
 * The seven limits are the limits every target protocol applies to its (unauthenticated) clients
 * (README "Limits"; dp_target_set_limits). Flags take `--flag value` or `--flag=value`. Errors name the flag (ConfigError).
 * Port 0 asks the kernel for a free port (tests); the agent logs the address it got.
 */
import os from 'node:os';
import path from 'node:path';
import { parseSize } from '../api/sizes';
import { DEFAULT_WRITER_GRACE_MS } from './native/types';

export interface HostPort {
  host: string;
  port: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface AgentConfig {
  node: string;
  listen: HostPort;
  dataDir: string;
  tokenFile?: string;
  nbdListen: HostPort;
  /** Host put into share URIs (nbd://HOST:PORT/...). Default: the NBD listen host (a wildcard listen: this machine's first external IPv4). */
  advertiseHost: string;
  iscsiListen?: HostPort;
  nvmfListen?: HostPort;
  /** Absolute path prefixes a pool disk must live under. Default: DATA_DIR/disks/ */
  allowDisks: string[];
  reactors: number;
  /** Cluster size of new pools in bytes (0: the data path's 4 MiB default). */
  clusterSize: number;
  logLevel: LogLevel;
  /** Limits against abuse, for every target protocol (dp_target_limits). */
  limits: TargetLimitsConfig;
  /** HTTPS for the API (--tls-cert/--tls-key, PEM files); clientCaFile: client certificates are required. */
  tls?: TlsFiles;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
}

export interface TargetLimitsConfig {
  /** Connections to all targets of the agent (--max-connections). */
  maxConnections: number;
  /** Connections to one export (--max-connections-per-export). */
  maxConnectionsPerExport: number;
  /** From accept to the end of the negotiation (--handshake-timeout-ms). */
  handshakeTimeoutMs: number;
  /** Request slots and payload buffers one connection may hold (--conn-memory-budget). */
  connMemoryBudget: number;
  /** The same across every connection (--memory-budget). */
  memoryBudget: number;
  /** File descriptors below RLIMIT_NOFILE that targets leave to the control plane (--fd-headroom). */
  fdHeadroom: number;
  /** How long an export serving a nexus child stays writable only by the nexus's host after its last connection
   * drops (--writer-grace-ms; 0: the lease ends with the host's last connection). */
  writerGraceMs: number;
}

export const DEFAULT_LIMITS: TargetLimitsConfig = {
  maxConnections: 1024,
  maxConnectionsPerExport: 128,
  handshakeTimeoutMs: 10_000,
  connMemoryBudget: 64 * 2 ** 20,
  memoryBudget: 2 ** 30,
  fdHeadroom: 64,
  writerGraceMs: DEFAULT_WRITER_GRACE_MS,
};

/** The data path's ceiling for --writer-grace-ms (DP_TARGET_MAX_WRITER_GRACE_MS, 24 h). */
export const MAX_WRITER_GRACE_MS = 86_400_000;

export class ConfigError extends Error {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`${flag}: ${message}`);
    this.name = 'ConfigError';
  }
}

export const USAGE = `usage: mayastor-agent --node NAME --listen HOST:PORT --data-dir DIR [--token-file F]
       [--nbd-listen HOST:PORT] [--advertise-host HOST] [--iscsi-listen HOST:PORT] [--nvmf-listen HOST:PORT]
       [--allow-disk PREFIX]... [--reactors N] [--cluster-size BYTES] [--log-level debug|info|warn|error|silent]
       [--max-connections N] [--max-connections-per-export N] [--handshake-timeout-ms MS]
       [--conn-memory-budget SIZE] [--memory-budget SIZE] [--fd-headroom N] [--writer-grace-ms MS]
       [--tls-cert CERT.pem --tls-key KEY.pem [--tls-client-ca CA.pem]]   (HTTPS API; client certificates required with --tls-client-ca)
defaults: --node $(hostname) --listen 127.0.0.1:9500 --nbd-listen 127.0.0.1:10809 --allow-disk DIR/disks/ --reactors 1
          --max-connections 1024 --max-connections-per-export 128 --handshake-timeout-ms 10000
          --conn-memory-budget 64MiB --memory-budget 1GiB --fd-headroom 64 --writer-grace-ms 30000   (SIZE: bytes, or 512KiB, 64MiB, 1GiB)`;

export function parseHostPort(flag: string, v: string): HostPort {
  let host: string;
  let port: string;
  const m6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(v);
  if (m6) {
    host = m6[1];
    port = m6[2];
  } else {
    const i = v.lastIndexOf(':');
    if (i <= 0 || v.indexOf(':') !== i) throw new ConfigError(flag, `'${v}' must be HOST:PORT (IPv6 as [ADDR]:PORT)`);
    host = v.slice(0, i);
    port = v.slice(i + 1);
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new ConfigError(flag, `port '${port}' must be 0..65535`);
  if (!/^[A-Za-z0-9.:_-]+$/.test(host)) throw new ConfigError(flag, `host '${host}' is not a valid host name or address`);
  return { host, port: Number(port) };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** The host other nodes reach our shares at, when --advertise-host is not given. */
export function defaultAdvertiseHost(listenHost: string): string {
  if (listenHost !== '0.0.0.0' && listenHost !== '::') return listenHost;
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return listenHost === '::' ? '::1' : '127.0.0.1';
}

const VALUE_FLAGS = new Set([
  '--node',
  '--listen',
  '--data-dir',
  '--token-file',
  '--nbd-listen',
  '--advertise-host',
  '--iscsi-listen',
  '--nvmf-listen',
  '--allow-disk',
  '--reactors',
  '--cluster-size',
  '--log-level',
  '--max-connections',
  '--max-connections-per-export',
  '--handshake-timeout-ms',
  '--conn-memory-budget',
  '--memory-budget',
  '--fd-headroom',
  '--writer-grace-ms',
  '--tls-cert',
  '--tls-key',
  '--tls-client-ca',
]);

function intFlag(flag: string, raw: string | undefined, def: number, min: number, max: number): number {
  if (raw === undefined) return def;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(flag, `'${raw}' must be an integer from ${min} to ${max}`);
  }
  return Number(raw);
}

function sizeFlag(flag: string, raw: string | undefined, def: number, min: number, minText: string): number {
  if (raw === undefined) return def;
  const v = parseSize(raw);
  if (!Number.isSafeInteger(v)) throw new ConfigError(flag, `'${raw}' must be a size in bytes, or with a unit (512KiB, 64MiB, 1GiB)`);
  if (v < min) throw new ConfigError(flag, `'${raw}' is below the minimum of ${minText}`);
  return v;
}

/** The limits flags (defaults: DEFAULT_LIMITS). */
function parseLimits(one: (f: string) => string | undefined): TargetLimitsConfig {
  const d = DEFAULT_LIMITS;
  const U32 = 2 ** 32 - 1;
  const limits: TargetLimitsConfig = {
    maxConnections: intFlag('--max-connections', one('--max-connections'), d.maxConnections, 1, U32),
    maxConnectionsPerExport: intFlag('--max-connections-per-export', one('--max-connections-per-export'), d.maxConnectionsPerExport, 1, U32),
    handshakeTimeoutMs: intFlag('--handshake-timeout-ms', one('--handshake-timeout-ms'), d.handshakeTimeoutMs, 1, U32),
    connMemoryBudget: sizeFlag('--conn-memory-budget', one('--conn-memory-budget'), d.connMemoryBudget, 2 ** 20, '1MiB'),
    memoryBudget: sizeFlag('--memory-budget', one('--memory-budget'), d.memoryBudget, 2 ** 20, '1MiB'),
    fdHeadroom: intFlag('--fd-headroom', one('--fd-headroom'), d.fdHeadroom, 0, 1 << 20),
    writerGraceMs: intFlag('--writer-grace-ms', one('--writer-grace-ms'), d.writerGraceMs, 0, MAX_WRITER_GRACE_MS),
  };
  if (limits.memoryBudget < limits.connMemoryBudget) {
    throw new ConfigError(
      '--memory-budget',
      `${limits.memoryBudget} bytes is below --conn-memory-budget (${limits.connMemoryBudget} bytes): one connection could never use its budget`,
    );
  }
  return limits;
}

/** Parse argv (without node and script). Throws ConfigError; `--help` throws ConfigError('--help', USAGE). */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const seen = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') throw new ConfigError('--help', USAGE);
    let flag = a;
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      flag = a.slice(0, eq);
      value = a.slice(eq + 1);
    }
    if (!VALUE_FLAGS.has(flag)) throw new ConfigError(flag, `unknown option\n${USAGE}`);
    if (value === undefined) {
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new ConfigError(flag, 'needs a value');
      value = argv[++i];
    }
    if (flag !== '--allow-disk' && seen.has(flag)) throw new ConfigError(flag, 'given more than once');
    seen.set(flag, [...(seen.get(flag) ?? []), value]);
  }
  const one = (f: string) => seen.get(f)?.[0];

  const node = one('--node') ?? os.hostname();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(node)) {
    throw new ConfigError('--node', `'${node}' must be 1-63 characters of letters, digits, '.', '_' or '-'`);
  }
  const dataDirRaw = one('--data-dir') ?? env.MAYASTOR_DATA_DIR;
  if (!dataDirRaw) throw new ConfigError('--data-dir', 'is required');
  const dataDir = path.resolve(dataDirRaw);

  const listen = parseHostPort('--listen', one('--listen') ?? '127.0.0.1:9500');
  const nbdListen = parseHostPort('--nbd-listen', one('--nbd-listen') ?? '127.0.0.1:10809');
  let advertiseHost = one('--advertise-host');
  if (advertiseHost !== undefined) {
    if (!/^[A-Za-z0-9.:_-]+$/.test(advertiseHost) || advertiseHost.length > 253) {
      throw new ConfigError('--advertise-host', `'${advertiseHost}' is not a valid host name or address`);
    }
  } else advertiseHost = defaultAdvertiseHost(nbdListen.host);
  const iscsiListen = one('--iscsi-listen') !== undefined ? parseHostPort('--iscsi-listen', one('--iscsi-listen')!) : undefined;
  const nvmfListen = one('--nvmf-listen') !== undefined ? parseHostPort('--nvmf-listen', one('--nvmf-listen')!) : undefined;

  const allowDisks = (seen.get('--allow-disk') ?? [path.join(dataDir, 'disks') + path.sep]).map((p) => {
    if (p === '') throw new ConfigError('--allow-disk', 'must not be empty');
    if (!path.isAbsolute(p)) throw new ConfigError('--allow-disk', `'${p}' must be an absolute path prefix`);
    if (p.split('/').includes('..')) throw new ConfigError('--allow-disk', `'${p}' must not contain '..'`);
    if (p === '/') throw new ConfigError('--allow-disk', `'/' would allow every file on the machine; name a directory`);
    return p;
  });

  const reactorsRaw = one('--reactors') ?? '1';
  if (!/^\d+$/.test(reactorsRaw) || Number(reactorsRaw) < 1 || Number(reactorsRaw) > 256) {
    throw new ConfigError('--reactors', `'${reactorsRaw}' must be an integer from 1 to 256`);
  }
  const csRaw = one('--cluster-size') ?? '0';
  const clusterSize = Number(csRaw);
  if (!/^\d+$/.test(csRaw) || (clusterSize !== 0 && (clusterSize < 65536 || (clusterSize & (clusterSize - 1)) !== 0 || clusterSize > 2 ** 30))) {
    throw new ConfigError('--cluster-size', `'${csRaw}' must be 0 (default 4 MiB) or a power of two from 64 KiB to 1 GiB`);
  }
  const logLevel = (one('--log-level') ?? env.MAYASTOR_LOG_LEVEL ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) {
    throw new ConfigError('--log-level', `'${logLevel}' must be debug, info, warn, error or silent`);
  }
  const tokenFile = one('--token-file');
  const limits = parseLimits(one);
  const tls = parseTls(one);
  return {
    node,
    listen,
    dataDir,
    tokenFile: tokenFile !== undefined ? path.resolve(tokenFile) : undefined,
    nbdListen,
    advertiseHost,
    iscsiListen,
    nvmfListen,
    allowDisks,
    reactors: Number(reactorsRaw),
    clusterSize,
    logLevel,
    limits,
    ...(tls ? { tls } : {}),
  };
}

/** --tls-cert and --tls-key come together; --tls-client-ca needs them (client certificates are a TLS feature). */
function parseTls(one: (f: string) => string | undefined): TlsFiles | undefined {
  const cert = one('--tls-cert'),
    key = one('--tls-key'),
    ca = one('--tls-client-ca');
  for (const [flag, v] of [
    ['--tls-cert', cert],
    ['--tls-key', key],
    ['--tls-client-ca', ca],
  ] as const) {
    if (v === '') throw new ConfigError(flag, 'must not be empty (a PEM file)');
  }
  if (cert === undefined && key === undefined) {
    if (ca !== undefined) throw new ConfigError('--tls-client-ca', 'needs --tls-cert and --tls-key (client certificates are checked over TLS)');
    return undefined;
  }
  if (cert === undefined) throw new ConfigError('--tls-cert', 'is required with --tls-key');
  if (key === undefined) throw new ConfigError('--tls-key', 'is required with --tls-cert');
  return { certFile: path.resolve(cert), keyFile: path.resolve(key), ...(ca !== undefined ? { clientCaFile: path.resolve(ca) } : {}) };
}
