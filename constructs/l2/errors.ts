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

export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return typeof v;
  }
}
