/**
 * mayastorctl - command-line client of one agent.
 *
 *   mayastorctl [--url URL] [--token TOKEN | --token-file F] [--json] pool list
 *   mayastorctl pool create NAME DISK [DISK...]
 *   mayastorctl pool destroy NAME
 *   mayastorctl replica list
 *   mayastorctl replica create [UUID] --pool POOL --size SIZE [--thin]
 *   mayastorctl replica destroy UUID
 *
 * URL and token come from the flags or $MAYASTOR_URL / $MAYASTOR_TOKEN (/ $MAYASTOR_TOKEN_FILE);
 * the URL defaults to http://127.0.0.1:9500. Human tables by default, JSON with --json.
 * Errors go to stderr with exit code 1 (2 for usage errors).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { AgentClient, AgentError, Pool, Replica } from '../client';
import { humanBytes, parseSize, table } from './format';

export const CTL_USAGE = `usage: mayastorctl [--url URL] [--token TOKEN | --token-file FILE] [--json] COMMAND
commands:
  pool list
  pool create NAME DISK [DISK...]
  pool destroy NAME
  replica list
  replica create [UUID] --pool POOL --size SIZE [--thin]     (SIZE: bytes, or 64MiB, 1G, ...)
  replica destroy UUID
environment: MAYASTOR_URL, MAYASTOR_TOKEN, MAYASTOR_TOKEN_FILE`;

export interface CtlIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

class UsageError extends Error {}

interface Parsed {
  flags: Map<string, string | true>;
  args: string[];
}

const VALUE = new Set(['--url', '--token', '--token-file', '--pool', '--size']);
const BOOL = new Set(['--json', '--thin', '--help', '-h']);

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
    pools.map((p) => [
      p.name,
      p.state + (p.reason ? ` (${p.reason})` : ''),
      humanBytes(p.capacityBytes),
      humanBytes(p.usedBytes),
      p.disks.join(','),
      p.uuid,
    ]),
  );
}

function replicaRows(rs: Replica[]): string {
  return table(
    ['UUID', 'POOL', 'SIZE', 'ALLOCATED', 'THIN', 'SHARE', 'URI'],
    rs.map((r) => [r.uuid, r.pool, humanBytes(r.sizeBytes), humanBytes(r.allocatedBytes), r.thin ? 'yes' : 'no', r.share, r.uri]),
  );
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
    let client: AgentClient;
    try {
      client = new AgentClient({ url, token, retries: 1, timeoutMs: 60000 });
    } catch (e) {
      throw new UsageError((e as Error).message.replace(/^AgentClient: /, '--url: '));
    }
    const [noun, verb, ...rest] = p.args;
    const print = (human: string, obj: unknown) => io.out(json ? JSON.stringify(obj, null, 2) + '\n' : human);
    const need = (n: number, what: string) => {
      if (rest.length < n) throw new UsageError(`${noun} ${verb}: missing ${what}`);
    };
    const key = `${noun} ${verb ?? ''}`.trim();
    switch (key) {
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
        const sizeRaw = p.flags.get('--size');
        if (typeof pool !== 'string') throw new UsageError('replica create: --pool POOL is required');
        if (typeof sizeRaw !== 'string') throw new UsageError('replica create: --size SIZE is required');
        const sizeBytes = parseSize(sizeRaw);
        if (Number.isNaN(sizeBytes)) throw new UsageError(`--size: '${sizeRaw}' is not a size (bytes, or e.g. 64MiB, 1G)`);
        const r = await client.putReplica(uuid, { pool, sizeBytes, thin: p.flags.has('--thin'), share: 'none' });
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
  return { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env };
}

if (require.main === module) {
  runCtl(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
