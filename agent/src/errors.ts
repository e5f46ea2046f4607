/**
 * errors.ts - API errors and the mapping of data-path errnos to HTTP statuses.
 * Body: {"error":{"code","message"}}; the message names the field or object.
 */
import { DatapathBusyError, DatapathTimeoutError, NativeError } from './native';
import type { ErrorCode } from '../api/types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    /** The request field at fault, when there is one (e.g. "sizeBytes", "disks[1]"). */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (field: string, message: string) => new ApiError(400, 'bad_request', message, field);
export const unprocessable = (field: string, message: string) => new ApiError(422, 'unprocessable', message, field);
export const notFound = (message: string) => new ApiError(404, 'not_found', message);
export const conflict = (message: string, field?: string) => new ApiError(409, 'conflict', message, field);

/**
 * A control call that timed out (504 'timeout') or could not run because an earlier one is stuck
 * (503 'unavailable'); both messages name the data-path operation. undefined for other errors.
 */
export function fromStuck(e: unknown, context: string): ApiError | undefined {
  if (e instanceof DatapathTimeoutError || e instanceof DatapathBusyError) return new ApiError(e.status, e.code, `${context}: ${e.message}`);
  return undefined;
}

/**
 * Map a data-path failure (the one mapping): -ENOSPC -> 507, -EEXIST/-EBUSY/-EALREADY -> 409,
 * -EINVAL/-ERANGE/-ENOTBLK/-EFBIG -> 422 (the request was well-formed; the data path refused it),
 * -ENOMEM -> 500. Then by what the call was about:
 *  - 'object' (a pool or replica the path names): -ENOENT -> 404, anything else 500;
 *  - 'spec' (a nexus spec naming devices: unreachable, too small, not a replica here...): the caller's
 *    problem, -ENOENT and anything else 422, and the message always starts with `context`.
 * `context` prefixes the message when the data path left none.
 */
export function fromNative(e: unknown, context: string, about: 'object' | 'spec' = 'object'): ApiError {
  if (e instanceof ApiError) return e;
  const stuck = fromStuck(e, context);
  if (stuck) return stuck;
  if (!(e instanceof NativeError)) {
    return new ApiError(500, 'internal', `${context}: ${(e as Error)?.message ?? String(e)}`);
  }
  const bare = !e.message || e.message.startsWith(e.fn);
  const msg = bare ? `${context}: ${e.code}` : about === 'spec' ? `${context}: ${e.message}` : e.message;
  switch (e.code) {
    case 'ENOSPC':
      return new ApiError(507, 'no_space', msg);
    case 'EEXIST':
    case 'EBUSY':
    case 'EALREADY':
      return new ApiError(409, 'conflict', msg);
    case 'EINVAL':
    case 'ERANGE':
    case 'ENOTBLK':
    case 'EFBIG':
      return new ApiError(422, 'unprocessable', msg);
    case 'ENOMEM':
      return new ApiError(500, 'internal', `${msg} (${e.code})`);
    case 'ENOENT':
      return about === 'spec' ? new ApiError(422, 'unprocessable', msg) : new ApiError(404, 'not_found', msg);
    default:
      return about === 'spec' ? new ApiError(422, 'unprocessable', msg) : new ApiError(500, 'internal', `${msg} (${e.code})`);
  }
}
