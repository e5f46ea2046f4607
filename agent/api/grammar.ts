/**
 * grammar.ts - the one definition of names, uuids, shares, child URIs and disk specs that the agent's validation,
 * the provider's validators, the constructs' checks and mayastorctl all call. Each rule is a function of the value
 * returning its problem, or undefined when the value is fine. A problem says what is wrong in words that follow
 * the value ("must be ...", "is ..."), and whether the value is malformed or only not supported yet.
 * Syntax only: whether a disk exists or a replica is on the node is the agent's business.
 */
import { NBD_DEFAULT_PORT, NQN_MAX_BYTES, NVMF_DEFAULT_PORT, POOL_NAME_MAX_BYTES, URI_MAX_BYTES } from './limits';

export interface Problem {
  /** malformed: never valid (the agent answers 400); unsupported: valid, not built yet (422). */
  readonly kind: 'malformed' | 'unsupported';
  readonly message: string;
}

const bad = (message: string): Problem => ({ kind: 'malformed', message });
const later = (message: string): Problem => ({ kind: 'unsupported', message });
const byteLength = (s: string) => new TextEncoder().encode(s).length;

/** Shares a replica or nexus may have today, and those known but not built yet. */
export const SHARES = ['none', 'nbd', 'nvmf'] as const;
export const FUTURE_SHARES = ['iscsi'] as const;
/** Child URI schemes the data path opens, and those known but not built yet. */
export const CHILD_SCHEMES = ['bdev', 'nbd', 'nvmf', 'uring', 'aio', 'malloc'] as const;
export const FUTURE_CHILD_SCHEMES = ['iscsi'] as const;

/** The NQN prefix of every subsystem an agent exports (DESIGN.md "Child and share URIs"). */
export const NQN_PREFIX = 'nqn.2019-05.io.openebs';

/** The one NQN rule: the subsystem a replica or nexus with share "nvmf" is exported as. */
export function nvmfNqn(uuid: string): string {
  return `${NQN_PREFIX}:${uuid.toLowerCase()}`;
}

/** The uuid an agent NQN names (nqn.2019-05.io.openebs:<uuid>), or undefined for any other NQN. */
export function uuidOfNqn(nqn: string): string | undefined {
  const u = nqn.startsWith(`${NQN_PREFIX}:`) ? nqn.slice(NQN_PREFIX.length + 1) : '';
  return UUID_RE.test(u) ? u.toLowerCase() : undefined;
}

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

/**
 * An NVMe Qualified Name (NVMe Base spec 4.5): at most 223 bytes of printable ASCII, either
 * nqn.yyyy-mm.<reverse domain>[:<anything>] or nqn.2014-08.org.nvmexpress:uuid:<uuid>.
 */
export function nqnProblem(v: string): Problem | undefined {
  if (v === '') return bad('must not be empty');
  if (byteLength(v) > NQN_MAX_BYTES) return bad(`is longer than ${NQN_MAX_BYTES} bytes`);
  if (!/^[\x21-\x7e]+$/.test(v)) return bad('must be printable ASCII without spaces');
  if (v.startsWith('nqn.2014-08.org.nvmexpress:uuid:')) {
    return UUID_RE.test(v.slice(32)) ? undefined : bad('must be nqn.2014-08.org.nvmexpress:uuid:<uuid>');
  }
  const m = /^nqn\.(\d{4})-(\d{2})\.([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*)(:.*)?$/.exec(v);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 12) {
    return bad('must be an NQN: nqn.yyyy-mm.<reverse domain>[:<name>] (e.g. nqn.2014-08.org.nvmexpress:uuid:<uuid>)');
  }
  return undefined;
}

/** The I/O queues an nvmf:// child may open (`?queues=N`; NVMFH_MAX_QUEUES in agent/native/src/nvmf/host.h). */
export const NVMF_MAX_QUEUES = 16;

/**
 * nvmf://host[:port]/<nqn>[?io_timeout_ms=N&connect_timeout_ms=N&queues=N]: the port defaults to 4420, as in the
 * data path; queues defaults to one per reactor, at most what the target grants.
 */
export function nvmfUriProblem(v: string): Problem | undefined {
  const form = `must be nvmf://host[:port]/<nqn>[?io_timeout_ms=N&connect_timeout_ms=N&queues=N] (the port defaults to ${NVMF_DEFAULT_PORT})`;
  const u = /^nvmf:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:(\d{1,5}))?\/([^/?#]+)(\?([^#]*))?$/i.exec(v);
  if (!u || (u[3] !== undefined && (Number(u[3]) < 1 || Number(u[3]) > 65535))) return bad(form);
  const nqn = nqnProblem(u[4]);
  if (nqn) return bad(`has a subsystem NQN '${u[4]}' that ${nqn.message}`);
  if (u[5] !== undefined) {
    for (const kv of u[6].split('&')) {
      const [k, n] = kv.split('=', 2);
      if (k === 'queues') {
        if (n === undefined || !/^\d{1,2}$/.test(n) || Number(n) < 1 || Number(n) > NVMF_MAX_QUEUES) {
          return bad(`option queues must be a number of I/O queues from 1 to ${NVMF_MAX_QUEUES}`);
        }
        continue;
      }
      if (k !== 'io_timeout_ms' && k !== 'connect_timeout_ms') {
        return bad(`has unknown option '${k}' (io_timeout_ms, connect_timeout_ms, queues)`);
      }
      if (n === undefined || !/^\d{1,9}$/.test(n) || Number(n) === 0) return bad(`option ${k} must be a positive number of milliseconds`);
    }
  }
  return undefined;
}

/** One allowedHosts entry of a share "nvmf": a host NQN, or '*' (every host). */
export function hostNqnProblem(v: string): Problem | undefined {
  return v === '*' ? undefined : nqnProblem(v);
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
 * nvmf://host[:port]/<nqn>, malloc:///<name>?size_mb=N (iscsi:// is known, not built yet).
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
    case 'nvmf':
      return nvmfUriProblem(v);
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
