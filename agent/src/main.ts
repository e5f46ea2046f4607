/**
 * main.ts - agent start-up and shutdown.
 *
 * startAgent(config) (also used in-process by tests and scripts/main.ts):
 *   1. data dir (0700), the default allowlist dir DATA_DIR/disks/, the token, a pid lock;
 *   2. dp_init(reactors);
 *   3. recovery from state.json: pools re-imported (a pool whose disks cannot be opened is
 *      "faulted" with the reason; the others serve), replicas rebuilt from the pool metadata;
 *   4. the NBD listener (--nbd-listen), nexuses reopened (dp_nexus_open, label rules), then the
 *      NBD shares of nexuses and replicas restored;
 *   5. listen. Logs {"event":"agent.listening","url":...} once ready.
 * close(): stop HTTP, export pools (disks untouched), free the completion queue, dp_fini.
 * runCli(): parses the command line, and closes on SIGTERM/SIGINT before exiting.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { loadOrCreateToken } from './auth';
import { shutdownBlockIo } from './blockdev';
import { AgentConfig, ConfigError, formatHostPort, parseArgs } from './config';
import { Context, Mutex } from './context';
import { Logger } from './log';
import { Datapath } from './native';
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
  /** http://host:port of the API */
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

const activeDirs = new Set<string>();
let activeAgents = 0;

function takePidLock(dataDir: string): string {
  const file = path.join(dataDir, 'agent.pid');
  if (activeDirs.has(dataDir)) throw new Error(`data dir ${dataDir} is in use by another agent in this process`);
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    if (pid > 0 && pid !== process.pid) {
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (alive) throw new Error(`data dir ${dataDir} is in use by agent pid ${pid} (${file})`);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  fs.writeFileSync(file, `${process.pid}\n`, { mode: 0o644 });
  activeDirs.add(dataDir);
  return file;
}

export async function startAgent(config: AgentConfig, opts: { log?: Logger } = {}): Promise<Agent> {
  const log = opts.log ?? new Logger(config.logLevel, { node: config.node });
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const defaultDisks = path.join(config.dataDir, 'disks') + path.sep;
  if (config.allowDisks.includes(defaultDisks)) fs.mkdirSync(defaultDisks, { recursive: true, mode: 0o700 });
  const { token, file: tokenFile } = loadOrCreateToken(config.dataDir, config.tokenFile);
  const pidFile = takePidLock(config.dataDir);
  let dp: Datapath | undefined;
  try {
    const store = new StateStore(config.dataDir);
    const state = store.load(config.node);
    if (state.node !== config.node) {
      log.warn('agent.renamed', { was: state.node, now: config.node });
      state.node = config.node;
    }
    dp = Datapath.load();
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
    });
    // A control call that timed out (the API answered 504) and returned later: its effect is in the
    // data path but the agent's state was not updated by it; say so.
    dp.onLateResult = (fn, ms, ret, error) =>
      log.warn('datapath.late_result', { fn, afterMs: ms, ret, error: error || undefined, note: 'the request had timed out; its result was dropped' });
    const ctx: Context = { config, dp, store, state, log, lock: new Mutex() };
    const pools = new PoolService(ctx);
    const shares = new ShareService(ctx);
    const replicas = new ReplicaService(ctx, pools, shares);
    const nexuses = new NexusService(ctx, replicas, shares);
    await pools.recover();
    await replicas.recover();
    const listeners: Record<string, string> = {};
    try {
      await shares.listen();
      await nexuses.recover();
      await nexuses.restoreShares();
      await replicas.restoreShares();
    } catch (e) {
      await shares.close().catch(() => undefined);
      await nexuses.closeAll().catch(() => undefined);
      await pools.exportAll().catch(() => undefined);
      throw e;
    }
    listeners.nbd = shares.address()!;
    nexuses.startReopening(); // nexuses whose children were unreachable at start come back by themselves

    const server = buildServer({ ctx, pools, replicas, nexuses, shares, token, version: packageVersion(), listeners });
    await server.listen({ host: config.listen.host, port: config.listen.port });
    const addr = server.server.address() as AddressInfo;
    listeners.http = formatHostPort({ host: config.listen.host, port: addr.port });
    const url = `http://${listeners.http}`;
    log.info('agent.listening', {
      url,
      port: addr.port,
      nbd: listeners.nbd,
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
        activeDirs.delete(config.dataDir);
        try {
          fs.unlinkSync(pidFile);
        } catch {
          /* already gone */
        }
        log.info('agent.stopped', {});
      })();
      return closing;
    };
    return { config, url, port: addr.port, token, ctx, pools, replicas, nexuses, shares, server, close };
  } catch (e) {
    activeDirs.delete(config.dataDir);
    try {
      fs.unlinkSync(pidFile);
    } catch {
      /* ignore */
    }
    if (dp?.isInitialised && activeAgents <= 1) {
      activeAgents = Math.max(0, activeAgents - 1);
      if (activeAgents === 0) await dp.fini().catch(() => undefined);
    }
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
