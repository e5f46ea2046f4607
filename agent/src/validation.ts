/**
 * validation.ts - request validation. Every error names the field ("sizeBytes", "disks[1]", ...).
 *  - 400 bad_request: malformed input (wrong type, bad format, unknown field, name with '/').
 *  - 422 unprocessable: well-formed but refused (disk outside the allowlist, missing file, not a
 *    file or block device).
 *  - 409 conflict (pools.ts): a disk already in another pool.
 * Nothing here touches a disk beyond stat/realpath.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Problem, childUriProblem, diskProblem, hostNqnProblem, poolNameProblem, shareProblem, uuidProblem } from '../api/grammar';
import type { Share } from '../api/types';
import { MAX_ALLOWED_HOSTS, MAX_SIZE_BYTES, NEXUS_MAX_CHILDREN, POOL_MAX_DISKS, SECTOR_BYTES } from '../api/limits';
import { badRequest, unprocessable } from './errors';

export const MAX_SIZE = MAX_SIZE_BYTES;
export const SECTOR = SECTOR_BYTES;

const show = (v: unknown) => {
  if (typeof v === 'string') return `'${v.length > 80 ? v.slice(0, 80) + '...' : v}'`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

/** The body must be a JSON object holding only `allowed` keys. */
export function requireObject(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('body', 'the request body must be a JSON object');
  }
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) throw badRequest(k, `unknown field '${k}' (allowed: ${allowed.join(', ')})`);
  }
  return body as Record<string, unknown>;
}

/** A grammar problem (agent/api/grammar.ts) as the API's error: 400 malformed, 422 not supported yet. */
export function grammarError(field: string, v: string, p: Problem): Error {
  const msg = `${field} ${show(v)} ${p.message}`;
  return p.kind === 'unsupported' ? unprocessable(field, msg) : badRequest(field, msg);
}

/** Check a string against a grammar rule; returns it. */
function follow(field: string, v: unknown, rule: (s: string) => Problem | undefined, what: string): string {
  if (typeof v !== 'string' || v === '') throw badRequest(field, `${field} must be a non-empty ${what}`);
  const p = rule(v);
  if (p) throw grammarError(field, v, p);
  return v;
}

/** Pool names (grammar.ts: poolNameProblem). */
export function validateName(field: string, v: unknown): string {
  return follow(field, v, poolNameProblem, 'string');
}

/** UUIDs 8-4-4-4-12 hex; returned lower-case. */
export function validateUuid(field: string, v: unknown): string {
  if (typeof v !== 'string') throw badRequest(field, `${field} ${show(v)} is not a uuid (8-4-4-4-12 hexadecimal digits)`);
  return follow(field, v, uuidProblem, 'uuid').toLowerCase();
}

/** Sizes in bytes: integer numbers, > 0, multiples of 512, at most 2^53-1. */
export function validateSize(field: string, v: unknown): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw badRequest(field, `${field} ${show(v)} must be a number of bytes`);
  if (!Number.isFinite(v) || v > MAX_SIZE) throw badRequest(field, `${field} ${show(v)} is beyond 2^53 bytes`);
  if (!Number.isInteger(v)) throw badRequest(field, `${field} ${v} must be an integer number of bytes`);
  if (v <= 0) throw badRequest(field, `${field} ${v} must be greater than 0`);
  if (v % SECTOR !== 0) throw badRequest(field, `${field} ${v} must be a multiple of ${SECTOR}`);
  return v;
}

export function validateBool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw badRequest(field, `${field} ${show(v)} must be true or false`);
  return v;
}

export function validateShare(field: string, v: unknown): Share {
  if (typeof v !== 'string') throw badRequest(field, `${field} ${show(v)} ${shareProblem('')!.message}`);
  return follow(field, v, shareProblem, 'share') as Share;
}

/** One allowed peer: an IPv4/IPv6 address, a CIDR prefix (10.0.0.0/8, fd00::/8), or '*' (everyone). */
export function isHostPattern(h: string): boolean {
  if (h === '*') return true;
  const slash = h.indexOf('/');
  if (slash < 0) return net.isIP(h) !== 0;
  const addr = h.slice(0, slash);
  const bits = h.slice(slash + 1);
  const fam = net.isIP(addr);
  if (fam === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (fam === 4 ? 32 : 128);
}

/**
 * allowedHosts: who may connect ([] or ['*']: everyone). For share "nvmf" host NQNs (the host's
 * nqn.2014-08.org.nvmexpress:uuid:..., as in /etc/nvme/hostnqn); otherwise IP addresses or CIDR prefixes.
 * `share` undefined (a PATCH that keeps the share): either kind; the caller checks again against the share in effect.
 */
export function validateHosts(field: string, v: unknown, share?: Share): string[] {
  const nvmf = share === 'nvmf';
  const what = nvmf ? 'host NQNs' : 'IP addresses or CIDR prefixes';
  if (!Array.isArray(v)) throw badRequest(field, `${field} must be an array of ${what}`);
  if (v.length > MAX_ALLOWED_HOSTS) throw badRequest(field, `${field} holds more than ${MAX_ALLOWED_HOSTS} entries`);
  const seen = new Set<string>();
  return v.map((h, i) => {
    const f = `${field}[${i}]`;
    if (typeof h !== 'string') throw badRequest(f, `${f} ${show(h)} must be a string`);
    const ipOk = h !== '' && h.length <= 64 && isHostPattern(h);
    const nqn = hostNqnProblem(h);
    if (nvmf && nqn) {
      const hint = ipOk ? ' (share "nvmf" admits hosts by NQN, not by address)' : '';
      throw badRequest(f, `${f} ${show(h)} ${nqn.message}${hint}`);
    }
    if (!nvmf && !ipOk && (share !== undefined || nqn)) {
      const hint = !nqn ? ` (a host NQN is for share "nvmf")` : '';
      throw badRequest(f, `${f} ${show(h)} must be an IP address or a CIDR prefix (e.g. 10.0.0.5, 192.168.1.0/24, ::1) or '*'${hint}`);
    }
    if (seen.has(h)) throw badRequest(f, `${f} ${show(h)} is listed twice`);
    seen.add(h);
    return h;
  });
}

// ---- pools ---------------------------------------------------------------------------------

export interface PoolSpecIn {
  /** The disks as the user gave them (what GET answers and PUT compares). */
  disks: string[];
}

/** Syntactic pool spec check (see parseDiskSpec for the disk forms). */
export function validatePoolSpec(body: unknown): PoolSpecIn {
  const o = requireObject(body, ['disks']);
  if (!('disks' in o)) throw badRequest('disks', 'disks is required (an array of disk paths)');
  const d = o.disks;
  if (!Array.isArray(d) || d.length === 0) throw badRequest('disks', 'disks must be a non-empty array of disk paths');
  if (d.length > POOL_MAX_DISKS) throw badRequest('disks', `disks holds more than ${POOL_MAX_DISKS} entries`);
  const seen = new Set<string>();
  const disks = d.map((v, i) => {
    const field = `disks[${i}]`;
    parseDiskSpec(field, v);
    if (seen.has(v as string)) throw badRequest(field, `${field} ${show(v)} is listed twice`);
    seen.add(v as string);
    return v as string;
  });
  return { disks };
}

/**
 * What a disk spec names (syntax only): a local file or block device (an absolute path, or
 * uring:///abs / aio:///abs with an optional ?cache=direct|buffered, see bdev/uring.c), or a
 * remote export nbd://host:port/<export> that the pool reaches through the nbd:// bdev.
 */
export type DiskSpec = { kind: 'local'; path: string; cache?: string } | { kind: 'nbd'; uri: string };

export function parseDiskSpec(field: string, v: unknown): DiskSpec {
  follow(field, v, diskProblem, 'string');
  const s = v as string;
  if (/^nbd:\/\//i.test(s)) return { kind: 'nbd', uri: s };
  const m = /^(?:uring|aio):\/\/([^?]*)(?:\?cache=(direct|buffered))?$/.exec(s);
  return m ? { kind: 'local', path: m[1], cache: m[2] } : { kind: 'local', path: s };
}

function realOrResolved(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** Allowlist prefixes with their symlinks resolved (a prefix ending in '/' is a directory). */
export function canonicalPrefixes(allow: string[]): string[] {
  const out: string[] = [];
  for (const a of allow) {
    const dirLike = a.endsWith('/');
    let canon: string;
    if (dirLike) canon = realOrResolved(a) + '/';
    else {
      // A bare prefix naming an existing directory means that directory; else a string prefix.
      let isDir = false;
      try {
        isDir = fs.statSync(a).isDirectory();
      } catch {
        /* not there */
      }
      canon = isDir ? realOrResolved(a) + '/' : path.join(realOrResolved(path.dirname(a)), path.basename(a));
    }
    out.push(canon.replace(/\/+$/, '/'));
    out.push(path.resolve(a) + (dirLike ? '/' : '')); // the lexical form too
  }
  return [...new Set(out)];
}

const inside = (p: string, prefixes: string[]) => prefixes.some((pre) => p.startsWith(pre) && p !== pre.replace(/\/$/, ''));

/**
 * A local disk must resolve (symlinks followed) inside the allowlist, exist, and be a regular file
 * or a block device. Returns what the data path opens: the canonical path (as a uring:// URI when it
 * carries a cache option), or the nbd:// URI of a remote disk (the allowlist bounds local paths only).
 */
export function checkDisk(field: string, spec: string, allowDisks: string[]): string {
  const d = parseDiskSpec(field, spec);
  if (d.kind === 'nbd') return d.uri;
  const p = d.path;
  const prefixes = canonicalPrefixes(allowDisks);
  const lexical = path.resolve(p);
  if (!inside(lexical, prefixes)) {
    throw unprocessable(field, `${field} '${spec}' is outside the allowed disk prefixes (${allowDisks.join(', ')})`);
  }
  let real: string;
  try {
    real = fs.realpathSync(lexical);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw unprocessable(field, `${field} '${spec}' does not exist`);
    throw unprocessable(field, `${field} '${spec}' cannot be resolved: ${code ?? (e as Error).message}`);
  }
  if (!inside(real, prefixes)) {
    throw unprocessable(field, `${field} '${spec}' resolves to '${real}', outside the allowed disk prefixes (${allowDisks.join(', ')})`);
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(real);
  } catch (e) {
    throw unprocessable(field, `${field} '${spec}' cannot be read: ${(e as NodeJS.ErrnoException).code}`);
  }
  if (!st.isFile() && !st.isBlockDevice()) throw unprocessable(field, `${field} '${spec}' is not a regular file or block device`);
  if (st.isFile() && st.size === 0) throw unprocessable(field, `${field} '${spec}' is empty (size it first, e.g. truncate -s 256M)`);
  return d.cache ? `uring://${real}?cache=${d.cache}` : real;
}

// ---- replicas ------------------------------------------------------------------------------

export interface ReplicaSpecIn {
  pool: string;
  sizeBytes: number;
  thin: boolean;
  share: Share;
  allowedHosts: string[];
}

export function validateReplicaSpec(body: unknown): ReplicaSpecIn {
  const o = requireObject(body, ['pool', 'sizeBytes', 'thin', 'share', 'allowedHosts']);
  if (!('pool' in o)) throw badRequest('pool', 'pool is required');
  if (!('sizeBytes' in o)) throw badRequest('sizeBytes', 'sizeBytes is required');
  const share = o.share === undefined ? 'none' : validateShare('share', o.share);
  return {
    pool: validateName('pool', o.pool),
    sizeBytes: validateSize('sizeBytes', o.sizeBytes),
    thin: o.thin === undefined ? false : validateBool('thin', o.thin),
    share,
    allowedHosts: o.allowedHosts === undefined || o.allowedHosts === null ? [] : validateHosts('allowedHosts', o.allowedHosts, share),
  };
}

export interface ReplicaPatchIn {
  sizeBytes?: number;
  share?: Share;
  allowedHosts?: string[];
}

export function validateReplicaPatch(body: unknown): ReplicaPatchIn {
  const o = requireObject(body, ['sizeBytes', 'share', 'allowedHosts']);
  const out: ReplicaPatchIn = {};
  if (o.sizeBytes !== undefined) out.sizeBytes = validateSize('sizeBytes', o.sizeBytes);
  if (o.share !== undefined) out.share = validateShare('share', o.share);
  if (o.allowedHosts !== undefined) out.allowedHosts = validateHosts('allowedHosts', o.allowedHosts ?? [], out.share);
  return out;
}

// ---- nexuses -------------------------------------------------------------------------------

export interface NexusPatchIn {
  sizeBytes?: number;
  share?: Share;
  /** Who may connect to the share (null: [], everyone); checked again against the share in effect (nexuses.ts). */
  allowedHosts?: string[];
}

/** PATCH /v1/nexuses/{uuid}: grow it, change its share or allowlist (children have their own endpoints). */
export function validateNexusPatch(body: unknown): NexusPatchIn {
  const o = requireObject(body, ['sizeBytes', 'share', 'allowedHosts']);
  const out: NexusPatchIn = {};
  if (o.sizeBytes !== undefined) out.sizeBytes = validateSize('sizeBytes', o.sizeBytes);
  if (o.share !== undefined) out.share = validateShare('share', o.share);
  if (o.allowedHosts !== undefined) out.allowedHosts = o.allowedHosts === null ? [] : validateHosts('allowedHosts', o.allowedHosts, out.share);
  return out;
}

export interface NexusSpecIn {
  sizeBytes: number;
  children: string[];
  share: Share;
  /** Who may connect to the share ([]: everyone), as for replicas (validateHosts). */
  allowedHosts: string[];
  /** Take children labelled by another nexus that did not release them (never part of the spec). */
  force: boolean;
}

/** An optional boolean flag, in a JSON body (true/false) or a query string ("true"/"false"). */
export function validateFlag(field: string, v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw badRequest(field, `${field} must be true or false`);
}

export const MAX_NEXUS_CHILDREN = NEXUS_MAX_CHILDREN;

/**
 * A child URI (grammar.ts: childUriProblem): bdev:///<replica-uuid>, nbd://host[:port]/export, uring:///abs/path,
 * aio:///abs/path, malloc:///name?size_mb=N, nvmf://host[:port]/<nqn>. iscsi:// -> 422 "not supported yet"; other schemes -> 400.
 * uring/aio paths must lie inside the --allow-disk prefixes (the nexus writes a label on them).
 * Returns the URI unchanged (bdev:/// uuids lower-cased).
 */
export function validateChildUri(field: string, v: unknown, allowDisks: string[]): string {
  follow(field, v, childUriProblem, 'URI string');
  const uri = v as string;
  const scheme = uri.slice(0, uri.indexOf(':')).toLowerCase();
  if (scheme === 'bdev') return `bdev:///${uri.slice('bdev:///'.length).toLowerCase()}`;
  if (scheme === 'uring' || scheme === 'aio') checkDisk(field, uri, allowDisks); // inside the allowlist, there
  return uri;
}

export function validateNexusSpec(body: unknown, allowDisks: string[]): NexusSpecIn {
  const o = requireObject(body, ['sizeBytes', 'children', 'share', 'allowedHosts', 'force']);
  if (!('sizeBytes' in o)) throw badRequest('sizeBytes', 'sizeBytes is required');
  if (!('children' in o)) throw badRequest('children', 'children is required (an array of child URIs)');
  const sizeBytes = validateSize('sizeBytes', o.sizeBytes);
  const c = o.children;
  if (!Array.isArray(c) || c.length === 0) throw badRequest('children', 'children must be a non-empty array of child URIs');
  if (c.length > MAX_NEXUS_CHILDREN) throw badRequest('children', `children holds ${c.length} entries; at most ${MAX_NEXUS_CHILDREN}`);
  const seen = new Map<string, number>();
  const children = c.map((v, i) => {
    const uri = validateChildUri(`children[${i}]`, v, allowDisks);
    const prev = seen.get(uri);
    if (prev !== undefined) throw badRequest(`children[${i}]`, `children[${i}] ${show(uri)} duplicates children[${prev}]`);
    seen.set(uri, i);
    return uri;
  });
  const share = o.share === undefined || o.share === null ? 'none' : validateShare('share', o.share);
  const allowedHosts = o.allowedHosts === undefined || o.allowedHosts === null ? [] : validateHosts('allowedHosts', o.allowedHosts, share);
  return { sizeBytes, children, share, allowedHosts, force: validateFlag('force', o.force) };
}
