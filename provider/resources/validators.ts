/**
 * Plan-time validators shared by the resources. Each checks a known value against the agent's grammar
 * (agent/api/grammar.ts: the same rule the agent applies, never a copy) and names the attribute. Null and
 * unknown values pass: Terraform checks them again once they are known.
 */
import { Problem, poolNameProblem, shareProblem, uuidProblem } from '../../agent/api/grammar';
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

export function checkSize(diags: Diagnostics, v: Maybe<number>, attr = 'size_bytes'): void {
  const n = known(v);
  if (n === undefined) return;
  if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) {
    diags.error(`Invalid ${attr}`, `${attr} must be a positive whole number of bytes, got ${String(n)}`, [attr]);
  } else if (n > Number.MAX_SAFE_INTEGER) {
    diags.error(`Invalid ${attr}`, `${attr} ${String(n)} is too large`, [attr]);
  } else if (n % 512 !== 0) {
    diags.error(`Invalid ${attr}`, `${attr} must be a multiple of 512 bytes, got ${n} (nearest: ${Math.ceil(n / 512) * 512})`, [attr]);
  }
}

/** Plan-time: the node must be in the provider's nodes map. */
export function checkNodeAtPlan(m: Mayastor | undefined, node: Maybe<string>, diags: Diagnostics): void {
  const n = known(node);
  if (m && n !== undefined && !m.knowsNode(n)) m.unknownNode(diags, n);
}
