/**
 * auth.ts - bearer-token auth. The token comes from --token-file, or from DATA_DIR/token which the
 * agent creates (32 random bytes, hex, mode 0600) on first start. Comparison is constant-time
 * (both sides hashed to equal length first). /v1/health is the only open route.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export class TokenError extends Error {}

export function loadOrCreateToken(dataDir: string, tokenFile?: string): { token: string; file: string } {
  if (tokenFile) {
    let raw: string;
    try {
      raw = fs.readFileSync(tokenFile, 'utf8');
    } catch (e) {
      throw new TokenError(`--token-file: cannot read '${tokenFile}': ${(e as Error).message}`);
    }
    const token = raw.trim();
    if (token.length < 8) throw new TokenError(`--token-file: '${tokenFile}' must hold a token of at least 8 characters`);
    if (/\s/.test(token)) throw new TokenError(`--token-file: the token in '${tokenFile}' must not contain whitespace`);
    return { token, file: tokenFile };
  }
  const file = path.join(dataDir, 'token');
  try {
    const token = fs.readFileSync(file, 'utf8').trim();
    if (token) return { token, file };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new TokenError(`cannot read token '${file}': ${(e as Error).message}`);
  }
  const token = crypto.randomBytes(32).toString('hex');
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, token + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return { token, file };
}

const digest = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest();

/** true when the Authorization header carries exactly `Bearer <token>`. */
export function checkBearer(header: string | undefined, token: string): boolean {
  if (typeof header !== 'string') return false;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  const given = m ? m[1] : '';
  // Always compare, so a missing/short header costs the same as a wrong token.
  const ok = crypto.timingSafeEqual(digest(given), digest(token));
  return ok && m !== null;
}
