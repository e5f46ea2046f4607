/** errors.ts - failures of data-path calls: a negative errno (NativeError), a call past its deadline, a stuck control thread. */
import os from 'node:os';

const ERRNO_NAMES: Record<number, string> = {};
for (const [k, v] of Object.entries(os.constants.errno)) if (!(v in ERRNO_NAMES)) ERRNO_NAMES[v] = k;

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `E${errno}`;
}

/** A data-path call that returned a negative errno. `message` is dp_last_error() when set. */
export class NativeError extends Error {
  /** positive errno, e.g. 28 */
  readonly errno: number;
  /** errno name, e.g. "ENOSPC" */
  readonly code: string;
  readonly fn: string;
  constructor(fn: string, rc: number, detail: string) {
    const errno = -rc;
    const code = errnoName(errno);
    super(detail || `${fn} failed: ${code}`);
    this.name = 'NativeError';
    this.errno = errno;
    this.code = code;
    this.fn = fn;
  }
}

/** Default deadline of one control call (ms). */
export const DEFAULT_CONTROL_TIMEOUT_MS = 60000;

/** The deadline of control calls: $MAYASTOR_CONTROL_TIMEOUT_MS (ms, > 0), else 60 s. */
export function controlTimeoutMs(): number {
  const v = Number(process.env.MAYASTOR_CONTROL_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_CONTROL_TIMEOUT_MS;
}

/** A control call that did not return within its deadline (HTTP 504). */
export class DatapathTimeoutError extends Error {
  readonly status = 504;
  readonly code = 'timeout';
  constructor(
    readonly fn: string,
    readonly timeoutMs: number,
  ) {
    super(`data path operation ${fn} did not complete within ${timeoutMs} ms (it may still finish; retry later)`);
    this.name = 'DatapathTimeoutError';
  }
}

/** A control call refused because an earlier one is stuck in the data path (HTTP 503). */
export class DatapathBusyError extends Error {
  readonly status = 503;
  readonly code = 'unavailable';
  constructor(
    readonly fn: string,
    readonly stuckFn: string,
    readonly stuckForMs: number,
  ) {
    super(`data path busy: ${stuckFn} has not returned for ${Math.round(stuckForMs / 1000)} s, so ${fn} cannot run now; retry later`);
    this.name = 'DatapathBusyError';
  }
}

// ---- library loading ------------------------------------------------------------------------
