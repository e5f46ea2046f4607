/**
 * hclog-style JSON lines on stderr. go-plugin reads the provider's stderr line by line and, for lines that are
 * JSON objects with @level/@message, re-logs them at that level into Terraform's own log (TF_LOG / TF_LOG_PROVIDER).
 * Never write logs to stdout: the first stdout line is the handshake. Lines go to the current session's stderr and
 * follow that session's TF_LOG settings (see host.ts).
 */
import { PluginHost, currentHost } from './host';

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };

const thresholds = new WeakMap<PluginHost, number>();
function threshold(host: PluginHost): number {
  let t = thresholds.get(host);
  if (t === undefined) {
    const v = (host.env.MAYASTOR_PROVIDER_LOG ?? host.env.TF_LOG_PROVIDER ?? host.env.TF_LOG ?? 'info').toLowerCase();
    t = v in order ? order[v as Level] : 0;
    thresholds.set(host, t);
  }
  return t;
}

export function log(level: Level, message: string, fields: Record<string, unknown> = {}): void {
  const host = currentHost();
  if (order[level] < threshold(host)) return;
  const line: Record<string, unknown> = {
    '@level': level,
    '@message': message,
    '@module': 'provider.mayastor',
    // go-plugin parses this with the layout 2006-01-02T15:04:05.000000Z07:00 (exactly 6 fraction digits)
    '@timestamp': new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'),
  };
  for (const [k, v] of Object.entries(fields)) line[k] = typeof v === 'bigint' ? v.toString() : v;
  host.stderr(JSON.stringify(line) + '\n');
}

export const logger = {
  trace: (m: string, f?: Record<string, unknown>) => log('trace', m, f),
  debug: (m: string, f?: Record<string, unknown>) => log('debug', m, f),
  info: (m: string, f?: Record<string, unknown>) => log('info', m, f),
  warn: (m: string, f?: Record<string, unknown>) => log('warn', m, f),
  error: (m: string, f?: Record<string, unknown>) => log('error', m, f),
};
