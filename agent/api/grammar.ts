/**
 * grammar.ts - the one definition of names, uuids, shares, child URIs and disk specs that the agent's validation,
 * the provider's validators, the constructs' checks and mayastorctl all call. Each rule is a function of the value
 * returning its problem, or undefined when the value is fine. A problem says what is wrong in words that follow
 * the value ("must be ...", "is ..."), and whether the value is malformed or only not supported yet.
 * Syntax only: whether a disk exists or a replica is on the node is the agent's business.
 */
import { NBD_DEFAULT_PORT, POOL_NAME_MAX_BYTES, URI_MAX_BYTES } from './limits';

export interface Problem {
  /** malformed: never valid (the agent answers 400); unsupported: valid, not built yet (422). */
  readonly kind: 'malformed' | 'unsupported';
  readonly message: string;
}

const bad = (message: string): Problem => ({ kind: 'malformed', message });
const later = (message: string): Problem => ({ kind: 'unsupported', message });
const byteLength = (s: string) => new TextEncoder().encode(s).length;

/** Shares a replica or nexus may have today, and those known but not built yet. */
export const SHARES = ['none', 'nbd'] as const;
export const FUTURE_SHARES = ['iscsi', 'nvmf'] as const;
/** Child URI schemes the data path opens, and those known but not built yet. */
export const CHILD_SCHEMES = ['bdev', 'nbd', 'uring', 'aio', 'malloc'] as const;
export const FUTURE_CHILD_SCHEMES = ['iscsi', 'nvmf'] as const;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const POOL_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const NODE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Pool names: 1-127 bytes of letters, digits, '.', '_', ':', '-', starting with a letter or digit. */
export function poolNameProblem(v: string): Problem | undefined {
  if (v === '') return bad('must not be empty');
  if (v.includes('/')) return bad("must not contain '/'");
  if (byteLength(v) > POOL_NAME_MAX_BYTES) return bad(`is longer than ${POOL_NAME_MAX_BYTES} bytes`);
  if (!POOL_NAME_RE.test(v)) return bad("must start with a letter or digit and hold only letters, digits, '.', '_', ':' or '-'");
  return undefined;
}

/** Node names and zones: 1-63 letters, digits, '.', '_', '-', starting with a letter or digit. */
export function nodeNameProblem(v: string): Problem | undefined {
  return NODE_NAME_RE.test(v) ? undefined : bad("must be 1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit");
}

/** UUIDs: 8-4-4-4-12 hexadecimal digits, either case (the agent answers lower case). */
export function uuidProblem(v: string): Problem | undefined {
  return UUID_RE.test(v) ? undefined : bad('is not a uuid (8-4-4-4-12 hexadecimal digits)');
}

export function shareProblem(v: string): Problem | undefined {
  if ((FUTURE_SHARES as readonly string[]).includes(v)) return later(`is not supported yet (supported: ${SHARES.join(', ')})`);
  return (SHARES as readonly string[]).includes(v) ? undefined : bad(`must be one of: ${SHARES.join(', ')}`);
}

/** nbd://host[:port]/<export>[?options]: the port defaults to 10809 (NBD's own), as in the data path. */
export function nbdUriProblem(v: string): Problem | undefined {
  const u = /^nbd:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:(\d{1,5}))?\/([^/?#][^?#]*)(\?[A-Za-z0-9_=&]*)?$/i.exec(v);
  if (!u || (u[3] !== undefined && (Number(u[3]) < 1 || Number(u[3]) > 65535))) {
    return bad(`must be nbd://host[:port]/<export> (the port defaults to ${NBD_DEFAULT_PORT})`);
  }
  return undefined;
}

/** Local files and block devices: an absolute path, or uring:/// or aio:/// with an optional ?cache=direct|buffered. */
function localPathProblem(v: string, scheme: string | undefined, rest: string): Problem | undefined {
  let p = rest;
  const q = rest.indexOf('?');
  if (q >= 0) {
    if (scheme === undefined || !/^\?cache=(direct|buffered)$/.test(rest.slice(q))) return bad('the only option is ?cache=direct or ?cache=buffered');
    p = rest.slice(0, q);
  }
  if (!p.startsWith('/')) return bad(scheme ? `must be ${scheme}:///<absolute path>` : 'must be an absolute path');
  if (p.split('/').includes('..')) return bad("must not contain '..'");
  return undefined;
}

/** Common to URIs: a string within the size limit, no spaces or NUL. */
function uriTextProblem(v: string): Problem | undefined {
  if (v === '') return bad('must not be empty');
  if (byteLength(v) > URI_MAX_BYTES) return bad(`is longer than ${URI_MAX_BYTES} bytes`);
  if (/[\s\0]/.test(v)) return bad('must not contain spaces or NUL');
  return undefined;
}

/**
 * A nexus child: bdev:///<replica-uuid>, nbd://host[:port]/<export>, uring:///path, aio:///path,
 * malloc:///<name>?size_mb=N (iscsi:// and nvmf:// are known, not built yet).
 */
export function childUriProblem(v: string): Problem | undefined {
  const text = uriTextProblem(v);
  if (text) return text;
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(v);
  if (!m) return bad(`is not a URI (expected scheme://...: ${CHILD_SCHEMES.join(', ')})`);
  const scheme = m[1].toLowerCase();
  const rest = m[2];
  if ((FUTURE_CHILD_SCHEMES as readonly string[]).includes(scheme)) {
    return later(`${scheme}:// children are not supported yet (supported: ${CHILD_SCHEMES.join(', ')})`);
  }
  switch (scheme) {
    case 'bdev':
      return /^\/[^/?#]+$/.test(rest) && UUID_RE.test(rest.slice(1)) ? undefined : bad('must be bdev:///<replica-uuid>');
    case 'nbd':
      return nbdUriProblem(v);
    case 'uring':
    case 'aio':
      return localPathProblem(v, scheme, rest);
    case 'malloc':
      return /^\/[A-Za-z0-9._:-]+\?size_mb=\d{1,7}$/.test(rest) ? undefined : bad('must be malloc:///<name>?size_mb=N');
    default:
      return bad(`has unknown scheme '${scheme}' (supported: ${CHILD_SCHEMES.join(', ')})`);
  }
}

/** A pool disk: an absolute path, uring:///path or aio:///path (with ?cache=...), or nbd://host[:port]/<export>. */
export function diskProblem(v: string): Problem | undefined {
  if (v === '') return bad('must not be empty');
  if (v.includes('\0')) return bad('must not contain NUL');
  if (/^nbd:\/\//i.test(v)) return nbdUriProblem(v);
  const m = /^(uring|aio):\/\/(.*)$/.exec(v);
  if (m) return localPathProblem(v, m[1], m[2]);
  if (/^[a-z]+:\/\//i.test(v)) return bad('only uring://, aio:// and nbd:// disks or absolute paths are accepted');
  return localPathProblem(v, undefined, v);
}
