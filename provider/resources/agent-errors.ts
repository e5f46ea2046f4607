/** Agent failures as diagnostics that name the node and the attribute the failure is about. */
import type { AgentError } from '../../agent/api/client';
import { Diagnostics } from '../protocol/schema';

export function isAgentError(e: unknown): e is AgentError {
  return typeof e === 'object' && e !== null && (e as { name?: string }).name === 'AgentError' && typeof (e as AgentError).status === 'number';
}

/** API field names (camelCase) → the attribute they come from. */
const FIELD_TO_ATTR: [RegExp, string][] = [
  // an entry named by index is about that entry, whatever else the message mentions ("children[1] ... size 4194304 is too small")
  [/\bchildren\[\d+\]/, 'children'],
  [/\ballowedHosts\[\d+\]/, 'allowed_hosts'],
  [/\bdisks\[\d+\]/, 'disks'],
  [/\bsizeBytes\b|\bsize\b/i, 'size_bytes'],
  [/\ballowedHosts\b/, 'allowed_hosts'],
  [/\bshare\b/i, 'share'],
  [/\bchildren\b|\bchild\b/i, 'children'],
  [/\bdisks?\b/i, 'disks'],
  [/\bpool\b/i, 'pool'],
  [/\bthin\b/i, 'thin'],
];

/**
 * Turns an agent failure into a diagnostic that names the node and the attribute. `fallback` is the attribute
 * when the message names none; connection failures point at `node`.
 */
export function agentDiag(diags: Diagnostics, e: unknown, what: string, node: string, fallback: string, allowed?: string[]): void {
  if (!isAgentError(e)) throw e;
  if (e.code === 'cancelled') {
    diags.error('Provider stopped', `${what}: ${e.message}. Terraform asked the provider to stop (interrupt); state was not changed.`, ['node']);
    return;
  }
  if (e.code === 'tls' || e.code === 'insecure') {
    diags.error(
      e.code === 'tls' ? `TLS to the agent on node "${node}" failed` : `Refused to call the agent on node "${node}" over plain HTTP`,
      `${what}: ${e.message}. ` +
        (e.code === 'tls'
          ? `Check the provider's ca_cert_pem/ca_cert_file against the certificate the agent on node "${node}" serves (--tls-cert), and that its URL is https:// only when the agent serves TLS`
          : `TLS is configured, so node "${node}" needs an https:// URL`) +
        '; state was not changed.',
      ['node'],
    );
    return;
  }
  if (e.status === 0) {
    diags.error(
      `Agent on node "${node}" is unreachable`,
      `${what}: ${e.message}. Check that the agent on node "${node}" is running and that the provider's nodes map points at it; state was not changed.`,
      ['node'],
    );
    return;
  }
  if (e.status === 401) {
    diags.error(
      `Agent on node "${node}" rejected the token`,
      `${what}: ${e.message}. Set the provider's token (or MAYASTOR_TOKEN) to the contents of the agent's token file.`,
      ['node'],
    );
    return;
  }
  let attr = fallback;
  for (const [re, a] of FIELD_TO_ATTR) {
    if ((!allowed || allowed.includes(a)) && re.test(e.agentMessage)) {
      attr = a;
      break;
    }
  }
  diags.error(`${what} failed on node "${node}"`, `${e.message}`, [attr]);
}
