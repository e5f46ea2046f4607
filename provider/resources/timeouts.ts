/**
 * `timeouts = { create, update, delete }`: how long an operation may take, as terraform-plugin-framework-timeouts
 * offers it (a single nested attribute of optional duration strings such as "30s", "10m" or "1h30m", Go's
 * time.ParseDuration syntax). An unset operation takes the provider-level default.
 */
import { Maybe, known } from '../protocol/model';
import { AttributeSchema, Diagnostics, nestedObject } from '../protocol/schema';

export type TimeoutOp = 'create' | 'update' | 'delete';
/** The attribute's model: a duration string per operation, null when unset. */
export type Timeouts = Record<TimeoutOp, string | null>;

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds of a Go duration string ("1h30m", "90s", "1.5h"); undefined when it is not one. */
export function parseDuration(s: string): number | undefined {
  if (s === '') return undefined;
  PART.lastIndex = 0;
  let ms = 0;
  while (PART.lastIndex < s.length) {
    const at = PART.lastIndex;
    const m = PART.exec(s);
    if (!m || m.index !== at) return undefined;
    ms += Number(m[1]) * UNIT_MS[m[2]];
  }
  return ms;
}

/** The attribute for the operations a resource waits in; `what` says what each one bounds. */
export function timeoutsAttribute(what: Record<TimeoutOp, string>): AttributeSchema {
  const op = (o: TimeoutOp): AttributeSchema => ({
    type: 'string',
    optional: true,
    description: `${what[o]} A duration such as \`"30s"\`, \`"10m"\` or \`"1h30m"\` (units \`h\`, \`m\`, \`s\`, \`ms\`).`,
  });
  return {
    ...nestedObject({ create: op('create'), update: op('update'), delete: op('delete') }),
    optional: true,
    description: 'How long each operation may take before apply gives up on it; an operation left out takes the provider-level default.',
    example: '{ create = "30m", update = "30m" }',
  };
}

/** Plan-time check of every known duration, naming `timeouts.<op>`. */
export function checkTimeouts(diags: Diagnostics, v: Maybe<Record<TimeoutOp, Maybe<string>>>): void {
  const t = known(v);
  if (!t) return;
  for (const op of ['create', 'update', 'delete'] as const) {
    const s = known(t[op]);
    if (s === undefined) continue;
    const ms = parseDuration(s);
    if (ms === undefined) {
      diags.error(
        `Invalid timeouts.${op}`,
        `timeouts.${op} "${s}" is not a duration: write a number and a unit, e.g. "30s", "10m" or "1h30m" (units h, m, s, ms)`,
        ['timeouts', op],
      );
    } else if (ms < 1) {
      diags.error(`Invalid timeouts.${op}`, `timeouts.${op} "${s}" must be at least 1ms`, ['timeouts', op]);
    }
  }
}

/** Milliseconds `op` may take: its configured duration, else `fallbackMs` (the provider-level default). */
export function timeoutMs(t: Timeouts | null | undefined, op: TimeoutOp, fallbackMs: number): number {
  const s = t?.[op];
  return (s ? parseDuration(s) : undefined) ?? fallbackMs;
}
