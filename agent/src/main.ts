/**
 * main.ts - agent start-up and shutdown.
 *
 * startAgent(config) (also used in-process by tests and scripts/main.ts):
 *   1. data dir (0700), the default allowlist dir DATA_DIR/disks/, the token, the pid lock
 *      (DATA_DIR/agent.pid under an flock: a stale file never blocks, a live agent is refused);
 *   2. dp_init(reactors);
 *   3. the NBD listener (--nbd-listen): before recovery, so pools and nexus children on nbd://
 *      exports of this agent can be opened;
 *   4. recovery from state.json: pools re-imported (a pool whose disks cannot be opened is
 *      "faulted" with the reason; the others serve), replicas rebuilt from the pool metadata,
 *      nexuses reopened (dp_nexus_open, label rules), then the NBD shares of nexuses and replicas
 *      restored;
 *   5. listen (HTTPS with --tls-cert/--tls-key: the PEM files are read and checked before anything else starts,
 *      an error names the flag). Logs {"event":"agent.listening","url":...} once ready.
 * A token file that group or others may read is served anyway, with an "agent.token_file_readable" warning
 * (README "TLS and the token"): refusing would break existing set-ups; the warning names the fix (chmod 600).
 * close(): stop HTTP, export pools (disks untouched), free the completion queue, dp_fini.
 * runCli(): parses the command line, and closes on SIGTERM/SIGINT before exiting.
 */
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { loadOrCreateToken } from './auth';
import { shutdownBlockIo } from './blockdev';
import { AgentConfig, ConfigError, TlsFiles, formatHostPort, parseArgs } from './config';
import { Context, Mutex } from './context';
import { Logger } from './log';
import { Datapath, NativeError } from './native';
import { PoolService } from './pools';
import { NexusService } from './nexuses';
import { ReplicaService } from './replicas';
import { buildServer } from './server';
import { ShareService } from './shares';
import { StateStore } from './state';

export function packageVersion(): string {
  for (const p of [path.resolve(__dirname, '../../package.json'), path.resolve(__dirname, '../../../package.json')]) {
    try {
      const v = JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (v.name === 'mayastor' && v.version) return v.version;
    } catch {
      /* try the next */
    }
  }
  return '0.0.0';
}

export interface Agent {
  config: AgentConfig;
  /** http://host:port of the API (https:// with --tls-cert) */
  url: string;
  port: number;
  token: string;
  ctx: Context;
  pools: PoolService;
  replicas: ReplicaService;
  nexuses: NexusService;
  shares: ShareService;
  server: FastifyInstance;
  /** Graceful stop: HTTP, pools exported, data path finished (when the last agent of the process stops). */
  close(): Promise<void>;
}

/** The PEM material of --tls-cert/--tls-key/--tls-client-ca, read and checked (a ConfigError names the flag). */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

export function loadTls(files: TlsFiles): TlsMaterial {
  const read = (flag: string, file: string): Buffer => {
    let b: Buffer;
    try {
      b = fs.readFileSync(file);
    } catch (e) {
      throw new ConfigError(flag, `cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!b.includes('-----BEGIN ')) throw new ConfigError(flag, `'${file}' is not a PEM file (no -----BEGIN line)`);
    return b;
  };
  const m: TlsMaterial = { cert: read('--tls-cert', files.certFile), key: read('--tls-key', files.keyFile) };
  if (files.clientCaFile) m.ca = read('--tls-client-ca', files.clientCaFile);
  try {
    tls.createSecureContext({ cert: m.cert, key: m.key });
  } catch (e) {
    throw new ConfigError('--tls-key', `'${files.keyFile}' does not fit '${files.certFile}' (--tls-cert): ${(e as Error).message}`);
  }
  if (m.ca) {
    try {
      tls.createSecureContext({ ca: m.ca });
    } catch (e) {
      throw new ConfigError('--tls-client-ca', `'${files.clientCaFile}' holds no usable CA certificate: ${(e as Error).message}`);
    }
  }
  return m;
}

/** Mode bits of the token file that let group or others read it (0 when private or unknown). */
function tokenExposure(file: string): number {
  try {
    return fs.statSync(file).mode & 0o077;
  } catch {
    return 0;
  }
}

const activeDirs = new Set<string>();
let activeAgents = 0;

/**
 * DATA_DIR/agent.pid held under an exclusive flock for the agent's life (dp_lock_file): the kernel
 * drops the lock when the process dies, so a stale file (kill -9, a reboot, a reused pid) never
 * blocks a start, and a live agent on the same data dir is refused naming its pid.
 */
interface PidLock {
  file: string;
  fd: number;
}

function takePidLock(dp: Datapath, dataDir: string): PidLock {
  const file = path.join(dataDir, 'agent.pid');
  if (activeDirs.has(dataDir)) throw new Error(`data dir ${dataDir} is in use by another agent in this process (pid ${process.pid})`);
  let fd: number;
  try {
    fd = dp.lockFile(file);
  } catch (e) {
    if (e instanceof NativeError && e.code === 'EBUSY') {
      const pid = /pid (\d+)/.exec(e.message)?.[1];
      throw new Error(`data dir ${dataDir} is in use by ${pid ? `agent pid ${pid}` : 'another agent'} (${file} is locked); stop it first`);
    }
    throw new Error(`data dir ${dataDir}: cannot lock ${file}: ${(e as Error).message}`);
  }
  activeDirs.add(dataDir);
  return { file, fd };
}

function releasePidLock(dp: Datapath, dataDir: string, lock: PidLock | undefined): void {
  if (!lock) return;
  activeDirs.delete(dataDir);
  try {
    dp.unlockFile(lock.fd, lock.file);
  } catch {
    /* already gone */
  }
}

export async function startAgent(config: AgentConfig, opts: { log?: Logger } = {}): Promise<Agent> {
  const log = opts.log ?? new Logger(config.logLevel, { node: config.node });
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const defaultDisks = path.join(config.dataDir, 'disks') + path.sep;
  if (config.allowDisks.includes(defaultDisks)) fs.mkdirSync(defaultDisks, { recursive: true, mode: 0o700 });
  const tlsMaterial = config.tls ? loadTls(config.tls) : undefined;
  const { token, file: tokenFile } = loadOrCreateToken(config.dataDir, config.tokenFile);
  const exposed = tokenExposure(tokenFile);
  if (exposed) {
    log.warn('agent.token_file_readable', {
      file: tokenFile,
      mode: '0' + (fs.statSync(tokenFile).mode & 0o777).toString(8),
      fix: `chmod 600 ${tokenFile}: anyone who can read the token can drive this agent`,
    });
  }
  const dp: Datapath | undefined = Datapath.load();
  const pidLock = takePidLock(dp, config.dataDir);
  try {
    const store = new StateStore(config.dataDir);
    const state = store.load(config.node);
    if (state.node !== config.node) {
      log.warn('agent.renamed', { was: state.node, now: config.node });
      state.node = config.node;
    }
    await dp.init(config.reactors);
    activeAgents++;
    log.info('agent.starting', {
      version: packageVersion(),
      datapath: dp.version(),
      lib: dp.libPath,
      dataDir: config.dataDir,
      reactors: config.reactors,
      allowDisks: config.allowDisks,
      tokenFile,
      tls: config.tls ? { cert: config.tls.certFile, clientCa: config.tls.clientCaFile ?? null } : false,
    });
    // A control call that timed out (the API answered 504) and returned later: its effect is in the
    // data path but the agent's state was not updated by it; say so.
    dp.onLateResult = (fn, ms, ret, error) =>
      log.warn('datapath.late_result', { fn, afterMs: ms, ret, error: error || undefined, note: 'the request had timed out; its result was dropped' });
    const ctx: Context = { config, dp, store, state, log, lock: new Mutex() };
    const pools = new PoolService(ctx);
    const shares = new ShareService(ctx);
    const replicas: ReplicaService = new ReplicaService(ctx, pools, shares, (uuid): string | undefined => nexuses.usedBy(uuid));
    const nexuses: NexusService = new NexusService(ctx, replicas, shares);
    const listeners: Record<string, string> = {};
    try {
      // The NBD listener first: a pool on an nbd:// export of this agent (or a nexus child on one)
      // can only be opened once the listener answers.
      await shares.listen();
      await pools.recover();
      await replicas.recover();
      await nexuses.recover();
      await nexuses.restoreShares();
      await replicas.restoreShares();
      // a pool on an nbd:// export of this agent: its export exists only now
      await pools.retryFaulted();
    } catch (e) {
      await shares.close().catch(() => undefined);
      await nexuses.closeAll().catch(() => undefined);
      await pools.exportAll().catch(() => undefined);
      throw e;
    }
    listeners.nbd = shares.address('nbd')!;
    const nvmfAddress = shares.address('nvmf');
    if (nvmfAddress) listeners.nvmf = nvmfAddress;
    nexuses.startReopening(); // nexuses whose children were unreachable at start come back by themselves

    const server = buildServer({ ctx, pools, replicas, nexuses, shares, token, version: packageVersion(), listeners, tls: tlsMaterial });
    await server.listen({ host: config.listen.host, port: config.listen.port });
    if (tlsMaterial) {
      // a failed handshake (wrong CA, no client certificate, plain HTTP on this port) never reaches a route: log it here
      (server.server as unknown as tls.Server).on('tlsClientError', (err, sock) => log.warn('http.tls_failed', { ip: sock.remoteAddress, error: err.message }));
    }
    const addr = server.server.address() as AddressInfo;
    listeners.http = formatHostPort({ host: config.listen.host, port: addr.port });
    const url = `${tlsMaterial ? 'https' : 'http'}://${listeners.http}`;
    log.info('agent.listening', {
      url,
      port: addr.port,
      nbd: listeners.nbd,
      nvmf: listeners.nvmf,
      pools: pools.names().length,
      replicas: replicas.uuids().length,
      nexuses: nexuses.uuids().length,
    });

    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        log.info('agent.stopping', {});
        nexuses.stopReopening();
        await server.close().catch((e) => log.error('agent.http_close_failed', { error: e as Error }));
        await ctx.lock.run(async () => {
          await shares.close().catch((e) => log.error('agent.nbd_close_failed', { error: e as Error }));
          await nexuses.closeAll();
          await pools.exportAll();
        });
        activeAgents--;
        if (activeAgents === 0) {
          await shutdownBlockIo();
          await dp!.fini();
        }
        releasePidLock(dp!, config.dataDir, pidLock);
        log.info('agent.stopped', {});
      })();
      return closing;
    };
    return { config, url, port: addr.port, token, ctx, pools, replicas, nexuses, shares, server, close };
  } catch (e) {
    if (dp?.isInitialised && activeAgents <= 1) {
      activeAgents = Math.max(0, activeAgents - 1);
      if (activeAgents === 0) await dp.fini().catch(() => undefined);
    }
    releasePidLock(dp, config.dataDir, pidLock);
    throw e;
  }
}

/** The mayastor-agent executable. */
export async function runCli(argv: string[]): Promise<void> {
  let config: AgentConfig;
  try {
    config = parseArgs(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      if (e.flag === '--help') {
        process.stdout.write(e.message.replace(/^--help: /, '') + '\n');
        process.exit(0);
      }
      process.stderr.write(`mayastor-agent: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const log = new Logger(config.logLevel, { node: config.node });
  let agent: Agent;
  try {
    agent = await startAgent(config, { log });
  } catch (e) {
    log.error('agent.start_failed', { error: (e as Error).message });
    process.stderr.write(`mayastor-agent: ${(e as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info('agent.signal', { signal: sig });
    agent.close().then(
      () => process.exit(0),
      (e) => {
        log.error('agent.stop_failed', { error: e as Error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) {
  void runCli(process.argv.slice(2));
}
