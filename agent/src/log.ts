/**
 * log.ts - structured logs: one JSON object per line on stderr,
 *   {"ts":"...","level":"info","event":"pool.created","node":"n1","pool":"p1",...}
 * `event` is a stable dotted name; other fields are context. Errors are logged with their message.
 */
import type { LogLevel } from './config';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export class Logger {
  constructor(
    private level: LogLevel = 'info',
    private readonly base: Record<string, unknown> = {},
    private readonly sink: (line: string) => void = (l) => process.stderr.write(l + '\n'),
  ) {}

  child(fields: Record<string, unknown>): Logger {
    return new Logger(this.level, { ...this.base, ...fields }, this.sink);
  }

  setLevel(level: LogLevel): void {
    this.level = level;
  }

  log(level: Exclude<LogLevel, 'silent'>, event: string, fields: Record<string, unknown> = {}): void {
    if (RANK[level] < RANK[this.level]) return;
    const rec: Record<string, unknown> = { ts: new Date().toISOString(), level, event, ...this.base };
    for (const [k, v] of Object.entries(fields)) rec[k] = v instanceof Error ? v.message : v;
    let line: string;
    try {
      line = JSON.stringify(rec);
    } catch {
      line = JSON.stringify({ ts: rec.ts, level, event, note: 'unserialisable fields' });
    }
    this.sink(line);
  }

  debug(event: string, fields?: Record<string, unknown>): void {
    this.log('debug', event, fields);
  }
  info(event: string, fields?: Record<string, unknown>): void {
    this.log('info', event, fields);
  }
  warn(event: string, fields?: Record<string, unknown>): void {
    this.log('warn', event, fields);
  }
  error(event: string, fields?: Record<string, unknown>): void {
    this.log('error', event, fields);
  }
}
