/**
 * Plan-time validators shared by the resources. Each checks a known value against the agent's grammar
 * (agent/api/grammar.ts: the same rule the agent applies, never a copy) and names the attribute. Null and
 * unknown values pass: Terraform checks them again once they are known.
 */
import { Problem, poolNameProblem, shareProblem, uuidProblem } from '../../agent/api/grammar';
import { MAX_SIZE_BYTES, SECTOR_BYTES } from '../../agent/api/limits';
import { Maybe, known } from '../protocol/model';
import { Diagnostics } from '../protocol/schema';
import { Mayastor } from './agent-clients';

export function checkGrammar(diags: Diagnostics, v: Maybe<string>, attr: string, what: string, rule: (s: string) => Problem | undefined): void {
  const s = typeof v === 'string' ? v : undefined;
  const p = s === undefined ? undefined : rule(s);
  if (p) diags.error(`Invalid ${attr}`, `${what} "${s}" ${p.message}`, [attr]);
}

export function checkName(diags: Diagnostics, v: Maybe<string>, attr: string, what: string): void {
  checkGrammar(diags, v, attr, what, poolNameProblem);
}

export function checkUuid(diags: Diagnostics, v: Maybe<string>, attr: string): void {
  checkGrammar(diags, v, attr, attr, uuidProblem);
}

export function checkShare(diags: Diagnostics, v: Maybe<string>, attr = 'share'): void {
  checkGrammar(diags, v, attr, attr, shareProblem);
}

/**
 * What is wrong with `n` as a size in bytes (a positive whole number, at most 2^53-1, a multiple of the sector size),
 * as the end of a sentence that starts with the attribute's or argument's name; undefined when it is fine. `shown`:
 * the value as the user wrote it, when a JS number cannot hold all its digits.
 */
export function sizeProblem(n: number, shown = String(n)): string | undefined {
  if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) return `must be a positive whole number of bytes, got ${shown}`;
  if (n > MAX_SIZE_BYTES) return `${shown} is too large (at most ${MAX_SIZE_BYTES})`;
  if (n % SECTOR_BYTES !== 0) return `must be a multiple of ${SECTOR_BYTES} bytes, got ${n} (nearest: ${Math.ceil(n / SECTOR_BYTES) * SECTOR_BYTES})`;
  return undefined;
}

export function checkSize(diags: Diagnostics, v: Maybe<number>, attr = 'size_bytes'): void {
  const n = known(v);
  if (n === undefined) return;
  const p = sizeProblem(n);
  if (p) diags.error(`Invalid ${attr}`, `${attr} ${p}`, [attr]);
}

/** Plan-time: the node must be in the provider's nodes map. */
export function checkNodeAtPlan(m: Mayastor | undefined, node: Maybe<string>, diags: Diagnostics): void {
  const n = known(node);
  if (m && n !== undefined && !m.knowsNode(n)) m.unknownNode(diags, n);
}
