/**
 * Test helpers: temp dirs and sparse disk files, real agent processes (spawned from the compiled
 * dist/ code: run `npm run build:ts` first; `npm test` does), in-process agents, and patterns.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentClient, AgentTlsOptions } from '../../agent/api/client';
import { parseArgs } from '../../agent/src/config';
import { Agent, startAgent } from '../../agent/src/main';
import { AgentProcess as LocalAgentProcess, AgentProcessOptions } from '../../scripts/lib/agent-process';

export const ROOT = path.resolve(__dirname, '../..');
export const MiB = 1024 * 1024;

/** A fresh directory under the OS temp dir (removed by cleanup()). */
export function tempDir(prefix = 'mayastor-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function cleanup(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A sparse disk file of `size` bytes. */
export function makeDisk(file: string, size = 128 * MiB): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  return file;
}

/** Deterministic pseudo-random bytes (xorshift32) for a seed. */
export function pattern(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (i + 4 <= length) b.writeUInt32LE(x, i);
    else for (let j = i; j < length; j++) b[j] = (x >>> ((j - i) * 8)) & 0xff;
  }
  return b;
}

/** Seeded PRNG for random offsets/sizes. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** A snapshot of files' bytes + mtimes to prove "nothing on disk changed". */
export function fingerprint(files: string[]): string {
  const h = crypto.createHash('sha256');
  for (const f of files) {
    try {
      const st = fs.statSync(f);
      h.update(`${f} ${st.size} ${st.mtimeMs}\n`);
      h.update(fs.readFileSync(f));
    } catch {
      h.update(`${f} missing\n`);
    }
  }
  return h.digest('hex');
}

export function distBuilt(): boolean {
  return fs.existsSync(path.join(ROOT, 'dist/agent/src/main.js'));
}

export interface AgentProcOptions extends AgentProcessOptions {
  /** Spawn test/helpers/embedded-agent.js (an agent with an embedded-I/O hook on stdin) instead of bin/mayastor-agent. */
  embedded?: boolean;
}

/** Test agents listen for NBD on a free port unless the test names one (parallel suites never collide on 10809). */
function nbdDefault(extra: string[] = []): string[] {
  return extra.some((a) => a === '--nbd-listen' || a.startsWith('--nbd-listen=')) ? [] : ['--nbd-listen', '127.0.0.1:0'];
}

/** A real agent process (scripts/lib/agent-process.ts), with the embedded agent's I/O hook for the tests that use it. */
export class AgentProcess extends LocalAgentProcess {
  private replies = new Map<number, (m: Record<string, unknown>) => void>();
  private nextId = 1;

  declare readonly opts: AgentProcOptions;

  constructor(opts: AgentProcOptions) {
    super(opts.embedded ? { ...opts, script: path.join(ROOT, 'test/helpers/embedded-agent.js'), readyOnStdout: true } : opts);
  }

  protected override onStdoutMessage(m: Record<string, unknown>): void {
    if (typeof m.id !== 'number') return;
    this.replies.get(m.id)?.(m);
    this.replies.delete(m.id);
  }

  /** Embedded-I/O hook (embedded: true only). */
  async io(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!this.opts.embedded || !this.proc?.stdin) throw new Error('io() needs an embedded agent process');
    const id = this.nextId++;
    const p = new Promise<Record<string, unknown>>((resolve) => this.replies.set(id, resolve));
    this.proc.stdin.write(JSON.stringify({ id, ...cmd }) + '\n');
    const r = await p;
    if (!r.ok) throw new Error(`embedded ${String(cmd.op)} failed: ${String(r.error)}`);
    return r;
  }

  async write(target: string, offset: number, data: Buffer): Promise<void> {
    await this.io({ op: 'write', target, offset, data: data.toString('base64') });
  }

  async read(target: string, offset: number, length: number): Promise<Buffer> {
    const r = await this.io({ op: 'read', target, offset, length });
    return Buffer.from(r.data as string, 'base64');
  }
}

/** An agent inside the test process (quiet logs). `tls`: the client side for an agent given --tls-cert/--tls-key in extraArgs. */
export async function startInProcess(
  dataDir: string,
  extraArgs: string[] = [],
  node = 'inproc',
  tls?: AgentTlsOptions,
): Promise<{ agent: Agent; client: AgentClient }> {
  const config = parseArgs(['--node', node, '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'silent', ...nbdDefault(extraArgs), ...extraArgs]);
  const agent = await startAgent(config);
  return { agent, client: new AgentClient({ url: agent.url, token: agent.token, node, retries: 0, ...(tls ? { tls } : {}) }) };
}

/** Expect a promise to fail with an AgentError of `status` whose message names `field`. */
export async function expectAgentError(p: Promise<unknown>, status: number, field?: string | RegExp): Promise<Error & { status: number; code: string }> {
  let err: (Error & { status: number; code: string }) | undefined;
  try {
    await p;
  } catch (e) {
    err = e as Error & { status: number; code: string };
  }
  if (!err) throw new Error(`expected HTTP ${status}, but the call succeeded`);
  if (err.status !== status) throw new Error(`expected HTTP ${status}, got ${err.status}: ${err.message}`);
  if (field !== undefined) {
    const ok = typeof field === 'string' ? err.message.includes(field) : field.test(err.message);
    if (!ok) throw new Error(`error message does not name ${String(field)}: ${err.message}`);
  }
  return err;
}
