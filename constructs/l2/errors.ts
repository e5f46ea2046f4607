/** Construction-time validation errors of the L2 constructs: each names the construct and the property. */
import { Construct } from 'constructs';

export class MayastorConstructError extends Error {
  constructor(
    readonly construct: string,
    readonly property: string,
    detail: string,
  ) {
    super(`${construct}: ${property}: ${detail}`);
    this.name = 'MayastorConstructError';
  }
}

export function fail(scope: Construct, kind: string, property: string, detail: string): never {
  throw new MayastorConstructError(`${kind} '${scope.node.path}'`, property, detail);
}

/** Same rule as the provider and the agent: 1-63 letters, digits, ".", "_", "-", starting with a letter or digit. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return typeof v;
  }
}
