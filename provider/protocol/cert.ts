/**
 * The AutoMTLS server certificate: a self-signed ECDSA P-256 certificate built as DER by hand and signed with
 * node:crypto (node:crypto makes keys but not certificates; an X.509 library costs start-up time we don't have).
 * Mirrors go-plugin's own: SAN DNS "localhost" (what the host verifies), O=HashiCorp, CA:TRUE, keyUsage
 * digitalSignature|keyEncipherment|keyAgreement|keyCertSign, EKU serverAuth+clientAuth, backdated notBefore.
 */
import { generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n >>>= 8;
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
const octets = (b: Buffer) => tlv(0x04, b);

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [parts[0] * 40 + parts[1]];
  for (const p of parts.slice(2)) {
    const enc: number[] = [p & 0x7f];
    let v = Math.floor(p / 128);
    while (v > 0) {
      enc.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(...enc);
  }
  return tlv(0x06, Buffer.from(out));
}

function utcTime(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(s, 'ascii'));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), tlv(0x01, Buffer.from([0xff])), octets(value)) : seq(oid(id), octets(value));
}

export interface ServerCert {
  /** PEM of the certificate. */
  certPem: string;
  /** PEM (PKCS#8) of the private key. */
  keyPem: string;
  /** DER of the certificate. */
  der: Buffer;
}

export function generateServerCert(now = new Date()): ServerCert {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // positive INTEGER
  if (serial[0] === 0) serial[0] = 1;
  const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(set(seq(oid('2.5.4.10'), tlv(0x0c, Buffer.from('HashiCorp')))), set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from('localhost')))));
  const notBefore = new Date(now.getTime() - 60_000);
  const notAfter = new Date(now.getTime() + 10 * 365 * 24 * 3600_000);
  const extensions = tlv(
    0xa3,
    seq(
      extension('2.5.29.19', true, seq(tlv(0x01, Buffer.from([0xff])))), // basicConstraints CA:TRUE
      extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x02, 0xac]))), // keyUsage
      extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2'))), // EKU
      extension('2.5.29.17', false, seq(tlv(0x82, Buffer.from('localhost')), tlv(0x87, Buffer.from([127, 0, 0, 1])))),
    ),
  );
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // v3
    tlv(0x02, serial),
    ecdsaWithSha256,
    name,
    seq(utcTime(notBefore), utcTime(notAfter)),
    name,
    spki,
    extensions,
  );
  const signature = sign('sha256', tbs, privateKey);
  const der = seq(tbs, ecdsaWithSha256, tlv(0x03, Buffer.from([0]), signature));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return {
    der,
    certPem: `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/**
 * Checks the host's client certificate (PLUGIN_CLIENT_CERT) before serving: it must parse, be within its
 * validity period and be self-signed. The TLS layer then requires the connecting client to present exactly
 * a certificate that chains to it (RequireAndVerifyClientCert, as go-plugin's server does).
 */
export function checkClientCert(pem: string, now = new Date()): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (e) {
    throw new Error(`PLUGIN_CLIENT_CERT: not a PEM certificate (${(e as Error).message})`);
  }
  if (new Date(cert.validFrom) > new Date(now.getTime() + 5 * 60_000) || new Date(cert.validTo) < now) {
    throw new Error(`PLUGIN_CLIENT_CERT: not valid now (valid ${cert.validFrom} to ${cert.validTo})`);
  }
  if (!cert.verify(cert.publicKey)) throw new Error('PLUGIN_CLIENT_CERT: signature does not verify (not self-signed)');
  return cert;
}
