/**
 * mayastorctl - command-line client of one agent.
 *
 *   mayastorctl [--url URL] [--token TOKEN | --token-file F] [--json] pool list
 *   mayastorctl pool create NAME DISK [DISK...]
 *   mayastorctl pool destroy NAME
 *   mayastorctl replica list
 *   mayastorctl node   (listeners and the shares the agent makes: nbd, nvmf with --nvmf-listen)
 *   mayastorctl replica create [UUID] --pool POOL --size SIZE [--thin] [--share none|nbd|nvmf] [--allowed-hosts IP,...|HOSTNQN,...]
 *   mayastorctl replica set UUID [--size SIZE] [--share none|nbd|nvmf] [--allowed-hosts IP,...|HOSTNQN,...]   (grow, re-share)
 *   mayastorctl replica destroy UUID
 *   mayastorctl nexus list | get UUID | destroy UUID
 *   mayastorctl nexus create [UUID] --size SIZE [--share none|nbd|nvmf] [--allowed-hosts HOSTS] CHILD_URI...
 *   mayastorctl nexus set UUID [--size SIZE] [--share none|nbd|nvmf] [--allowed-hosts HOSTS]   (grow after its replicas, re-share)
 *   mayastorctl nexus add-child|remove-child|offline|online|fault UUID CHILD_URI
 *   mayastorctl nexus watch UUID [--interval MS]   (live rebuild progress; exits when no rebuild runs)
 *   mayastorctl snapshot create|list|get|share|delete, replica create --from-snapshot, replica revert,
 *               nexus snapshot|snapshots|snapshot-delete   (agent/ctl/snapshot.ts)
 *
 * URL and token come from the flags or $MAYASTOR_URL / $MAYASTOR_TOKEN (/ $MAYASTOR_TOKEN_FILE);
 * the URL defaults to http://127.0.0.1:9500. An agent serving TLS: an https:// URL, --ca-cert CA.pem (and
 * --client-cert/--client-key for --tls-client-ca), or $MAYASTOR_CA_CERT / $MAYASTOR_CLIENT_CERT / $MAYASTOR_CLIENT_KEY;
 * with any of them an http:// URL is refused before the token is sent. Human tables by default, JSON with --json.
 * Errors go to stderr with exit code 1 (2 for usage errors).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { AgentClient, AgentError, AgentTlsOptions, Nexus, Pool, Replica, Share } from '../api/client';
import { caBundleProblem } from '../api/tls';
import { SHARES, shareProblem } from '../api/grammar';
import type { NodeInfo } from '../api/types';
import { humanBytes, parseSize, progressBar, table } from './format';
import { SNAPSHOT_BOOL_FLAGS, SNAPSHOT_USAGE, SNAPSHOT_VALUE_FLAGS, SnapshotUsageError, snapshotCommand } from './snapshot';

export const CTL_USAGE = `usage: mayastorctl [--url URL] [--token TOKEN | --token-file FILE] [--ca-cert PEM] [--client-cert PEM --client-key PEM] [--json] COMMAND
commands:
  pool list
  pool create NAME DISK [DISK...]
  pool destroy NAME
  node                                   (listeners; shares this agent makes: nvmf needs --nvmf-listen)
  replica list
  replica create [UUID] --pool POOL --size SIZE [--thin] [--share none|nbd|nvmf] [--allowed-hosts HOSTS]
                                                            (SIZE: bytes, or 64MiB, 1G, ...)
                                                            (HOSTS: IP,CIDR,... for nbd; host NQNs for nvmf)
  replica set UUID [--size SIZE] [--share none|nbd|nvmf] [--allowed-hosts HOSTS]   (grow; change the share)
  replica destroy UUID
  nexus list
  nexus get UUID
  nexus create [UUID] --size SIZE [--share none|nbd|nvmf] [--allowed-hosts HOSTS] CHILD_URI [CHILD_URI...]
                                         (CHILD_URI: bdev:///UUID, nbd://host:port/UUID, nvmf://host:port/NQN, ...)
  nexus set UUID [--size SIZE] [--share none|nbd|nvmf] [--allowed-hosts HOSTS]   (grow after its replicas; change the share)
  nexus destroy UUID
  nexus add-child UUID CHILD_URI         (the new child is rebuilt)
  nexus remove-child UUID CHILD_URI
  nexus offline|online|fault UUID CHILD_URI
  nexus watch UUID [--interval MS]       (rebuild progress bars; exits when no rebuild runs, or Ctrl-C)
${SNAPSHOT_USAGE}
environment: MAYASTOR_URL, MAYASTOR_TOKEN, MAYASTOR_TOKEN_FILE, MAYASTOR_CA_CERT, MAYASTOR_CLIENT_CERT, MAYASTOR_CLIENT_KEY
TLS: an https:// URL; --ca-cert verifies the agent, --client-cert/--client-key answer an agent's --tls-client-ca`;

export interface CtlIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** stdout is a terminal: `nexus watch` redraws in place (default false: plain lines). */
  isTTY?: boolean;
  /** Resolves when the user interrupts (Ctrl-C); `nexus watch` stops then. */
  interrupted?: Promise<void>;
}

class UsageError extends Error {}

interface Parsed {
  flags: Map<string, string | true>;
  args: string[];
}

const VALUE = new Set([
  '--url',
  '--token',
  '--token-file',
  '--ca-cert',
  '--client-cert',
  '--client-key',
  '--pool',
  '--size',
  '--share',
  '--allowed-hosts',
  '--interval',
  ...SNAPSHOT_VALUE_FLAGS,
]);
const BOOL = new Set(['--json', '--thin', '--help', '-h', ...SNAPSHOT_BOOL_FLAGS]);

function parse(argv: string[]): Parsed {
  const flags = new Map<string, string | true>();
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('-') && a !== '-') {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(0, eq) : a;
      if (BOOL.has(name)) {
        if (eq > 0) throw new UsageError(`${name} takes no value`);
        flags.set(name, true);
      } else if (VALUE.has(name)) {
        const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new UsageError(`${name} needs a value`);
        flags.set(name, v);
      } else throw new UsageError(`unknown option ${name}`);
    } else args.push(a);
  }
  return { flags, args };
}

function poolRows(pools: Pool[]): string {
  return table(
    ['NAME', 'STATE', 'CAPACITY', 'USED', 'DISKS', 'UUID'],
    pools.map((p) => [p.name, p.state + (p.reason ? ` (${p.reason})` : ''), humanBytes(p.capacityBytes), humanBytes(p.usedBytes), p.disks.join(','), p.uuid]),
  );
}

function replicaRows(rs: Replica[]): string {
  return table(
    ['UUID', 'POOL', 'SIZE', 'ALLOCATED', 'THIN', 'SHARE', 'URI'],
    rs.map((r) => [r.uuid, r.pool, humanBytes(r.sizeBytes), humanBytes(r.allocatedBytes), r.thin ? 'yes' : 'no', r.share, r.uri]),
  );
}

function nexusRows(ns: Nexus[]): string {
  const rows: string[][] = [];
  for (const n of ns) {
    rows.push([n.uuid, n.state + (n.reason ? ` (${n.reason})` : ''), humanBytes(n.sizeBytes), n.share, n.deviceUri]);
    for (const c of n.children) {
      const prog = c.state === 'degraded' && c.rebuildProgress !== undefined ? ` ${c.rebuildProgress}%` : '';
      rows.push([`  ${c.uri}`, c.state + prog + (c.reason ? ` (${c.reason})` : ''), '', '', '']);
    }
  }
  return table(['UUID / CHILD', 'STATE', 'SIZE', 'SHARE', 'DEVICE URI'], rows);
}

/** The share flag (grammar.ts SHARES); when absent, none (create) or undefined (`optional`: leave it as it is). */
function shareFlag(p: Parsed, optional = false): Share | undefined {
  const v = p.flags.get('--share');
  if (v === undefined) return optional ? undefined : 'none';
  const problem = typeof v === 'string' ? shareProblem(v) : undefined;
  if (typeof v !== 'string' || problem?.kind === 'malformed') throw new UsageError(`--share: '${String(v)}' must be one of: ${SHARES.join(', ')}`);
  return v as Share; // 'iscsi' goes to the agent, which says it is not supported yet
}

function nodeText(n: NodeInfo): string {
  const listeners = Object.entries(n.listeners).map(([k, v]) => [k, v]);
  return (
    `node ${n.name} (agent ${n.version}, data path ${n.datapathVersion})\n` +
    `shares: ${(n.shares ?? []).join(', ')}\n` +
    table(['LISTENER', 'ADDRESS'], listeners)
  );
}

/** The --size flag in bytes (64MiB, 1G, ...); undefined when absent, a usage error when `required`. */
function sizeFlag(p: Parsed, command: string, required: boolean): number | undefined {
  const raw = p.flags.get('--size');
  if (raw === undefined && !required) return undefined;
  if (typeof raw !== 'string') throw new UsageError(`${command}: --size SIZE is required`);
  const bytes = parseSize(raw);
  if (Number.isNaN(bytes)) throw new UsageError(`--size: '${raw}' is not a size (bytes, or e.g. 64MiB, 1G)`);
  return bytes;
}

/** --allowed-hosts IP,CIDR,... as a list; undefined when absent. */
function hostsFlag(p: Parsed): string[] | undefined {
  const raw = p.flags.get('--allowed-hosts');
  if (typeof raw !== 'string') return undefined;
  return raw === '' ? [] : raw.split(',').map((h) => h.trim());
}

const rebuilding = (n: Nexus) => n.children.filter((c) => c.rebuildBytesTotal !== undefined || c.state === 'degraded');

/** One frame of `nexus watch`: a progress bar per rebuilding child. */
export function watchFrame(n: Nexus): string[] {
  const lines = [`nexus ${n.uuid} ${n.state}${n.reason ? ` (${n.reason})` : ''}`];
  const kids = rebuilding(n);
  if (kids.length === 0) lines.push('  no rebuild running');
  for (const c of kids) {
    const pct = c.rebuildProgress ?? 0;
    const bytes = c.rebuildBytesTotal !== undefined ? ` ${humanBytes(c.rebuildBytesDone ?? 0)}/${humanBytes(c.rebuildBytesTotal)}` : '';
    const rate = c.rebuildRate ? ` ${humanBytes(c.rebuildRate)}/s` : '';
    lines.push(`  ${c.uri} ${progressBar(pct, 30)} ${String(pct).padStart(3)}%${bytes}${rate}`);
  }
  return lines;
}

let watching = false;

async function watchNexus(client: AgentClient, uuid: string, intervalMs: number, io: CtlIo, json: boolean): Promise<number> {
  watching = true;
  try {
    return await watchLoop(client, uuid, intervalMs, io, json);
  } finally {
    watching = false;
  }
}

async function watchLoop(client: AgentClient, uuid: string, intervalMs: number, io: CtlIo, json: boolean): Promise<number> {
  let prevLines = 0;
  let stop = false;
  void io.interrupted?.then(() => {
    stop = true;
  });
  for (;;) {
    const n = await client.getNexus(uuid);
    if (!n) throw new AgentError({ status: 404, code: 'not_found', node: client.nodeName, url: client.url, message: `nexus '${uuid}' does not exist` });
    if (json) io.out(JSON.stringify({ uuid: n.uuid, state: n.state, children: n.children }) + '\n');
    else {
      const lines = watchFrame(n);
      if (io.isTTY && prevLines > 0) io.out(`\x1b[${prevLines}A`); // cursor up: redraw in place
      io.out(lines.map((l) => (io.isTTY ? `\x1b[2K${l}` : l)).join('\n') + '\n');
      prevLines = lines.length;
    }
    if (rebuilding(n).length === 0 || stop) return stop ? 130 : 0;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, intervalMs);
      void io.interrupted?.then(() => {
        clearTimeout(t);
        resolve();
      });
    });
    if (stop) return 130;
  }
}

/** --ca-cert, --client-cert, --client-key (or their environment variables) read as PEM; undefined when none is given. */
function tlsFiles(p: Parsed, env: NodeJS.ProcessEnv): AgentTlsOptions | undefined {
  const read = (flag: string, envName: string): string | undefined => {
    const file = (p.flags.get(flag) as string | undefined) ?? env[envName];
    if (file === undefined || file === '') return undefined;
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`${flag}: cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const ca = read('--ca-cert', 'MAYASTOR_CA_CERT');
  const caProblem = ca !== undefined ? caBundleProblem(ca) : undefined;
  if (caProblem) throw new UsageError(`--ca-cert: '${(p.flags.get('--ca-cert') as string | undefined) ?? env.MAYASTOR_CA_CERT}': ${caProblem}`);
  const cert = read('--client-cert', 'MAYASTOR_CLIENT_CERT');
  const key = read('--client-key', 'MAYASTOR_CLIENT_KEY');
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError(`${cert === undefined ? '--client-cert' : '--client-key'} is required with the other (a client certificate and its key)`);
  if (ca === undefined && cert === undefined) return undefined;
  return { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert, key } : {}) };
}

/** Run one command; returns the exit code. */
export async function runCtl(argv: string[], io: CtlIo = defaultIo()): Promise<number> {
  let p: Parsed;
  try {
    p = parse(argv);
  } catch (e) {
    io.err(`mayastorctl: ${(e as Error).message}\n${CTL_USAGE}\n`);
    return 2;
  }
  if (p.flags.has('--help') || p.flags.has('-h') || p.args.length === 0) {
    (p.args.length === 0 && !p.flags.has('--help') && !p.flags.has('-h') ? io.err : io.out)(CTL_USAGE + '\n');
    return p.args.length === 0 && !p.flags.has('--help') && !p.flags.has('-h') ? 2 : 0;
  }
  const json = p.flags.has('--json');
  const url = (p.flags.get('--url') as string | undefined) ?? io.env.MAYASTOR_URL ?? 'http://127.0.0.1:9500';
  let token = (p.flags.get('--token') as string | undefined) ?? io.env.MAYASTOR_TOKEN;
  const tokenFile = (p.flags.get('--token-file') as string | undefined) ?? io.env.MAYASTOR_TOKEN_FILE;
  try {
    if (token === undefined && tokenFile) {
      try {
        token = fs.readFileSync(tokenFile, 'utf8').trim();
      } catch (e) {
        throw new UsageError(`cannot read token file '${tokenFile}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    const tls = tlsFiles(p, io.env);
    let client: AgentClient;
    try {
      client = new AgentClient({ url, token, retries: 1, timeoutMs: 60000, ...(tls ? { tls } : {}) });
    } catch (e) {
      throw new UsageError((e as Error).message.replace(/^AgentClient: /, '--url: '));
    }
    const [noun, verb, ...rest] = p.args;
    const print = (human: string, obj: unknown) => io.out(json ? JSON.stringify(obj, null, 2) + '\n' : human);
    const need = (n: number, what: string) => {
      if (rest.length < n) throw new UsageError(`${noun} ${verb}: missing ${what}`);
    };
    const key = `${noun} ${verb ?? ''}`.trim();
    const snap = await snapshotCommand({
      noun,
      verb,
      rest,
      flags: p.flags,
      client,
      url,
      print,
      share: () => shareFlag(p, true),
      hosts: () => hostsFlag(p),
    }).catch((e: unknown) => {
      throw e instanceof SnapshotUsageError ? new UsageError(e.message) : e;
    });
    if (snap !== undefined) return snap;
    switch (key) {
      case 'node': {
        const n = await client.node();
        print(nodeText(n), n);
        return 0;
      }
      case 'pool list':
      case 'pools list': {
        const pools = await client.listPools();
        print(poolRows(pools), pools);
        return 0;
      }
      case 'pool create': {
        need(2, 'NAME and at least one DISK');
        const pool = await client.putPool(rest[0], { disks: rest.slice(1) });
        print(poolRows([pool]), pool);
        return 0;
      }
      case 'pool destroy': {
        need(1, 'NAME');
        const existed = await client.deletePool(rest[0]);
        if (!existed) throw new AgentError({ status: 404, code: 'not_found', node: client.nodeName, url, message: `pool '${rest[0]}' does not exist` });
        print(`pool '${rest[0]}' destroyed\n`, { destroyed: rest[0] });
        return 0;
      }
      case 'replica list':
      case 'replicas list': {
        const rs = await client.listReplicas();
        print(replicaRows(rs), rs);
        return 0;
      }
      case 'replica create': {
        const uuid = rest[0] ?? crypto.randomUUID();
        const pool = p.flags.get('--pool');
        if (typeof pool !== 'string') throw new UsageError('replica create: --pool POOL is required');
        const sizeBytes = sizeFlag(p, 'replica create', true)!;
        const allowedHosts = hostsFlag(p);
        const r = await client.putReplica(uuid, {
          pool,
          sizeBytes,
          thin: p.flags.has('--thin'),
          share: shareFlag(p),
          ...(allowedHosts?.length ? { allowedHosts } : {}),
        });
        print(replicaRows([r]), r);
        return 0;
      }
      case 'replica set': {
        need(1, 'UUID');
        const patch = { sizeBytes: sizeFlag(p, 'replica set', false), share: shareFlag(p, true), allowedHosts: hostsFlag(p) };
        if (Object.values(patch).every((v) => v === undefined)) throw new UsageError('replica set: give --size, --share or --allowed-hosts');
        const r = await client.patchReplica(rest[0], patch);
        print(replicaRows([r]), r);
        return 0;
      }
      case 'replica destroy': {
        need(1, 'UUID');
        const existed = await client.deleteReplica(rest[0]);
        if (!existed) throw new AgentError({ status: 404, code: 'not_found', node: client.nodeName, url, message: `replica '${rest[0]}' does not exist` });
        print(`replica '${rest[0]}' destroyed\n`, { destroyed: rest[0] });
        return 0;
      }
      case 'nexus list':
      case 'nexuses list': {
        const ns = await client.listNexuses();
        print(nexusRows(ns), ns);
        return 0;
      }
      case 'nexus get': {
        need(1, 'UUID');
        const n = await client.getNexus(rest[0]);
        if (!n) throw new AgentError({ status: 404, code: 'not_found', node: client.nodeName, url, message: `nexus '${rest[0]}' does not exist` });
        print(nexusRows([n]), n);
        return 0;
      }
      case 'nexus create': {
        const isUri = (a: string) => a.includes('://');
        const ids = rest.filter((a) => !isUri(a));
        const children = rest.filter(isUri);
        if (ids.length > 1)
          throw new UsageError(`nexus create: unexpected argument '${ids[1]}' (children are URIs such as bdev:///UUID, nbd://host:port/export)`);
        if (children.length === 0) throw new UsageError('nexus create: at least one CHILD_URI is required');
        const sizeBytes = sizeFlag(p, 'nexus create', true)!;
        const allowedHosts = hostsFlag(p);
        const n = await client.putNexus(ids[0] ?? crypto.randomUUID(), {
          sizeBytes,
          children,
          share: shareFlag(p)!,
          ...(allowedHosts?.length ? { allowedHosts } : {}),
        });
        print(nexusRows([n]), n);
        return 0;
      }
      case 'nexus set': {
        need(1, 'UUID');
        const patch = { sizeBytes: sizeFlag(p, 'nexus set', false), share: shareFlag(p, true), allowedHosts: hostsFlag(p) };
        if (Object.values(patch).every((v) => v === undefined)) throw new UsageError('nexus set: give --size, --share or --allowed-hosts');
        const n = await client.patchNexus(rest[0], patch);
        print(nexusRows([n]), n);
        return 0;
      }
      case 'nexus destroy': {
        need(1, 'UUID');
        const existed = await client.deleteNexus(rest[0]);
        if (!existed) throw new AgentError({ status: 404, code: 'not_found', node: client.nodeName, url, message: `nexus '${rest[0]}' does not exist` });
        print(`nexus '${rest[0]}' destroyed\n`, { destroyed: rest[0] });
        return 0;
      }
      case 'nexus add-child':
      case 'nexus offline':
      case 'nexus online':
      case 'nexus fault': {
        need(2, 'UUID and CHILD_URI');
        const n =
          verb === 'add-child'
            ? await client.addChild(rest[0], rest[1])
            : await client.setNexusChildState(rest[0], rest[1], verb as 'online' | 'offline' | 'fault');
        print(nexusRows([n]), n);
        return 0;
      }
      case 'nexus remove-child': {
        need(2, 'UUID and CHILD_URI');
        const existed = await client.removeChild(rest[0], rest[1]);
        if (!existed) {
          throw new AgentError({
            status: 404,
            code: 'not_found',
            node: client.nodeName,
            url,
            message: `nexus '${rest[0]}' or its child '${rest[1]}' does not exist`,
          });
        }
        print(`child '${rest[1]}' removed from nexus '${rest[0]}'\n`, { nexus: rest[0], removed: rest[1] });
        return 0;
      }
      case 'nexus watch': {
        need(1, 'UUID');
        const iv = p.flags.get('--interval');
        const intervalMs = iv === undefined ? 500 : Number(iv);
        if (!Number.isInteger(intervalMs) || intervalMs < 10 || intervalMs > 60000) throw new UsageError(`--interval: '${String(iv)}' must be 10..60000 ms`);
        return await watchNexus(client, rest[0], intervalMs, io, json);
      }
      default:
        throw new UsageError(`unknown command '${p.args.join(' ')}'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`mayastorctl: ${e.message}\n${CTL_USAGE}\n`);
      return 2;
    }
    if (e instanceof AgentError) {
      io.err(`mayastorctl: ${e.message}\n`);
      return 1;
    }
    io.err(`mayastorctl: ${(e as Error).message ?? String(e)}\n`);
    return 1;
  }
}

function defaultIo(): CtlIo {
  // Ctrl-C stops `nexus watch` cleanly (exit 130); any other command just exits.
  const interrupted = new Promise<void>((resolve) =>
    process.once('SIGINT', () => {
      if (!watching) process.exit(130);
      resolve();
    }),
  );
  return {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
    isTTY: Boolean(process.stdout.isTTY),
    interrupted,
  };
}

if (require.main === module) {
  runCtl(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
