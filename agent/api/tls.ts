/**
 * TLS material as every client of the agent takes it (provider, mayastorctl, AgentClient): one check of a CA
 * bundle. Node's TLS stops reading a bundle at its first unreadable certificate and silently drops every CA after
 * it, so a node whose CA came later would fail as "certificate refused" with nothing pointing at the bundle.
 */
import { X509Certificate } from 'node:crypto';

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';

/** What is wrong with a PEM CA bundle (one or several certificates), naming which certificate; undefined when none. */
export function caBundleProblem(text: string): string | undefined {
  const parts = text.split(BEGIN).slice(1);
  if (parts.length === 0) return `it holds no PEM certificate (${BEGIN})`;
  for (const [i, part] of parts.entries()) {
    const which = parts.length > 1 ? `certificate ${i + 1} of ${parts.length}` : 'the certificate';
    const end = part.indexOf(END);
    if (end < 0) return `${which} has no ${END} line`;
    try {
      new X509Certificate(`${BEGIN}${part.slice(0, end)}${END}\n`);
    } catch (e) {
      return `${which} cannot be read (${(e as Error).message})`;
    }
  }
  return undefined;
}
