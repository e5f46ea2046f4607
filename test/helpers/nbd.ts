/**
 * Helpers for tests that drive NBD exports with Debian's real clients (nbdinfo, qemu-io, qemu-img,
 * fio's nbd engine). Every tool runs with a hard kill timeout so a hang fails the test instead of
 * stalling it.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import type { AgentProcess } from './agent';

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a tool to completion (killed after timeoutMs). */
export function runTool(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60000);
    p.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
    // A tool may exit before reading its input (EPIPE): its exit status is what counts.
    p.stdin.on('error', () => undefined);
    p.stdin.end(opts.input ?? '');
  });
}

/** Run a tool and fail with its output unless it exits 0. */
export async function mustRun(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ToolResult> {
  const r = await runTool(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.code ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface NbdInfo {
  protocol: string;
  exports: Array<Record<string, unknown> & { 'export-size': number; 'export-name': string }>;
}

export async function nbdinfo(uri: string): Promise<NbdInfo['exports'][0]> {
  const r = await mustRun('nbdinfo', ['--json', uri], { timeoutMs: 20000 });
  return (JSON.parse(r.stdout) as NbdInfo).exports[0];
}

export interface MapEntry {
  offset: number;
  length: number;
  type: number;
  description: string;
}

export async function nbdmap(uri: string): Promise<MapEntry[]> {
  const r = await mustRun('nbdinfo', ['--map', '--json', uri], {
    timeoutMs: 20000,
  });
  return JSON.parse(r.stdout) as MapEntry[];
}

/** qemu-io on an nbd:// URI with one -c per command. */
export function qemuIo(uri: string, cmds: string[], timeoutMs = 30000): Promise<ToolResult> {
  return runTool('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri], { timeoutMs });
}

/** qemu-io must succeed and print no "Pattern verification failed" / error line. */
export async function qemuIoOk(uri: string, cmds: string[], timeoutMs = 30000): Promise<string> {
  const r = await qemuIo(uri, cmds, timeoutMs);
  const out = r.stdout + r.stderr;
  if (r.code !== 0 || /failed|error|Pattern verification/i.test(out)) {
    throw new Error(`qemu-io ${cmds.join(' ; ')} on ${uri} failed (${r.code ?? r.signal}):\n${out}`);
  }
  return out;
}

/** fio's JSON output (the nbd engine prints "fio: connected to NBD server" before it). */
export function fioJson(stdout: string): {
  jobs: Array<{
    error: number;
    write: { io_bytes: number };
    read: { io_bytes: number };
  }>;
} {
  const i = stdout.indexOf('{');
  if (i < 0) throw new Error(`fio printed no JSON:\n${stdout}`);
  return JSON.parse(stdout.slice(i)) as ReturnType<typeof fioJson>;
}

/** sha256 of some bytes, in hex. */
export function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

/** The whole of an NBD export, read with nbdcopy (at most `maxBytes`). */
export function nbdReadAll(uri: string, maxBytes: number, timeoutMs?: number): Buffer {
  const r = spawnSync('nbdcopy', [uri, '-'], { maxBuffer: maxBytes, timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`nbdcopy ${uri} failed: ${r.stderr?.toString()}`);
  return r.stdout;
}

/** Split nbd://host:port/export for fio's nbd engine (which takes --uri). */
export function fioArgs(uri: string, name: string, extra: string[]): string[] {
  return [`--name=${name}`, '--ioengine=nbd', `--uri=${uri}`, '--output-format=json', ...extra];
}

/** A long-running fio job (for tests that act while it runs). */
export function startFio(uri: string, name: string, extra: string[]): { proc: ChildProcess; done: Promise<ToolResult> } {
  const p = spawn('fio', fioArgs(uri, name, extra), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<ToolResult>((resolve) => p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { proc: p, done };
}

/** The value of a Prometheus sample whose line starts with `prefix` (name and labels), or undefined. */
export function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

/** Poll `fn` until it returns a truthy value (no timing thresholds: the test timeout bounds it). */
export async function until<T>(fn: () => Promise<T | undefined | false>, what: string, stepMs = 100, maxMs = 60000): Promise<T> {
  const end = Date.now() + maxMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** The nbd listener address an agent reports in GET /v1/node. */
export async function nbdAddress(a: AgentProcess): Promise<string> {
  const n = await a.client().node();
  return n.listeners.nbd;
}
