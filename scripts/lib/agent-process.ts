/**
 * One way to run a local mayastor-agent process, for the quickstart, the test helpers and the benches.
 *
 * Attached (default): output piped; ready when the agent logs {"event":"agent.listening"} (the URL and port it
 * got, so `--listen 127.0.0.1:0` works), or a `{"event":"ready"}` line on stdout (the embedded test agent).
 * Detached (`logFile`): its own session, output to the log file, outliving this process (the quickstart);
 * ready when GET /v1/health answers on the fixed `listen` address.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { AgentClient, AgentTlsOptions } from '../../agent/api/client';

/** The repository root (this file is scripts/lib/ in the sources and dist/scripts/lib/ once built). */
export const ROOT = (() => {
  for (let d = __dirname; d !== path.dirname(d); d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'bin', 'mayastor-agent')) && fs.existsSync(path.join(d, 'package.json'))) return d;
  }
  throw new Error(`cannot find the repository root above ${__dirname}`);
})();

export interface AgentProcessOptions {
  dataDir: string;
  /** --node. Default "test-node". */
  node?: string;
  /** --listen. Default 127.0.0.1:0 (attached only: a detached agent needs a fixed port). */
  listen?: string;
  /** Further flags. Without --nbd-listen the agent listens for NBD on a free port (parallel runs never collide on 10809). */
  extraArgs?: string[];
  /** Default "info". */
  logLevel?: string;
  /** The script to run. Default bin/mayastor-agent. */
  script?: string;
  /** Detached, output appended to this file. */
  logFile?: string;
  /** Keep at most this much of the agent's stderr in `stderr` (attached). Default unlimited. */
  stderrLimit?: number;
  /** How long start() waits. Default 60 s. */
  startTimeoutMs?: number;
  /** Ready only on a {"event":"ready"} line on stdout (an agent that sets up more after it listens). */
  readyOnStdout?: boolean;
  /**
   * HTTPS: the agent gets --tls-cert/--tls-key (and --tls-client-ca when `clientCa`), and client() and the health
   * checks trust `ca` (and present the client certificate). See makeTlsFiles() for throwaway ones.
   */
  tls?: TlsFiles;
}

/** PEM files of a throwaway TLS set-up (makeTlsFiles). */
export interface TlsFiles {
  /** The CA that signed cert (and clientCert). */
  ca: string;
  cert: string;
  key: string;
  /** When set, the agent requires client certificates signed by this CA (--tls-client-ca). */
  clientCa?: string;
  clientCert?: string;
  clientKey?: string;
}

/**
 * A throwaway CA and, signed by it, an agent certificate naming `hosts` (IP SANs for addresses, DNS otherwise) and a
 * client certificate, with the openssl CLI, in `dir` (ca.pem, agent.pem, agent.key, client.pem, client.key; keys 0600).
 */
export function makeTlsFiles(dir: string, hosts: string[] = ['127.0.0.1', 'localhost'], name = 'mayastor'): TlsFiles {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (n: string) => path.join(dir, n);
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.error) throw new Error(`openssl: ${r.error.message} (install the openssl package)`);
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(['req', '-x509', ...ec, '-days', '30', '-subj', `/CN=${name} test CA`, '-keyout', 'ca.key', '-out', 'ca.pem']);
  const san = hosts.map((h) => (/^[0-9.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  fs.writeFileSync(f('agent.ext'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  fs.writeFileSync(f('client.ext'), `extendedKeyUsage=clientAuth\n`);
  for (const [who, cn] of [
    ['agent', `${name} agent`],
    ['client', `${name} client`],
  ]) {
    run(['req', ...ec, '-subj', `/CN=${cn}`, '-keyout', `${who}.key`, '-out', `${who}.csr`]);
    run([
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      `${who}.ext`,
      '-out',
      `${who}.pem`,
    ]);
    fs.chmodSync(f(`${who}.key`), 0o600);
  }
  fs.chmodSync(f('ca.key'), 0o600);
  return { ca: f('ca.pem'), cert: f('agent.pem'), key: f('agent.key'), clientCert: f('client.pem'), clientKey: f('client.key') };
}

/** The client side of `tls` (CA, and the client certificate when the agent requires one). */
export function clientTls(tls: TlsFiles | undefined): AgentTlsOptions | undefined {
  if (!tls) return undefined;
  const pem = (file: string) => fs.readFileSync(file, 'utf8');
  return { ca: pem(tls.ca), ...(tls.clientCa && tls.clientCert && tls.clientKey ? { cert: pem(tls.clientCert), key: pem(tls.clientKey) } : {}) };
}

export class AgentProcess {
  proc: ChildProcess | undefined;
  url = '';
  port = 0;
  token = '';
  stderr = '';
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(readonly opts: AgentProcessOptions) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  args(): string[] {
    const extra = this.opts.extraArgs ?? [];
    const nbd = extra.some((a) => a === '--nbd-listen' || a.startsWith('--nbd-listen=')) ? [] : ['--nbd-listen', '127.0.0.1:0'];
    return [
      '--node',
      this.opts.node ?? 'test-node',
      '--listen',
      this.opts.listen ?? '127.0.0.1:0',
      '--data-dir',
      this.opts.dataDir,
      '--log-level',
      this.opts.logLevel ?? 'info',
      ...nbd,
      ...(this.opts.tls ? ['--tls-cert', this.opts.tls.cert, '--tls-key', this.opts.tls.key] : []),
      ...(this.opts.tls?.clientCa ? ['--tls-client-ca', this.opts.tls.clientCa] : []),
      ...extra,
    ];
  }

  /** A line the agent printed on stdout (attached), parsed as JSON: subclasses answer their own protocol. */
  protected onStdoutMessage(_m: Record<string, unknown>): void {}

  async start(): Promise<this> {
    if (!fs.existsSync(path.join(ROOT, 'dist/agent/src/main.js'))) throw new Error('dist/ is not built: run `npm run build:ts` (npm test does it)');
    const script = this.opts.script ?? path.join(ROOT, 'bin/mayastor-agent');
    fs.mkdirSync(this.opts.dataDir, { recursive: true });
    this.stderr = '';
    if (this.opts.logFile) await this.startDetached(script);
    else await this.startAttached(script);
    // the agent writes DATA_DIR/token unless it is given one
    const extra = this.opts.extraArgs ?? [];
    const tf = extra.indexOf('--token-file');
    this.token = fs.readFileSync(tf >= 0 ? extra[tf + 1] : path.join(this.opts.dataDir, 'token'), 'utf8').trim();
    await this.client().health();
    return this;
  }

  private async startAttached(script: string): Promise<void> {
    const proc = spawn(process.execPath, [script, ...this.args()], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env } });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string) => reject(new Error(`agent ${this.opts.node ?? ''} did not start: ${why}\n--- stderr ---\n${this.stderr}`));
      proc.once('exit', (code, sig) => fail(`exited with ${code ?? sig}`));
      const t = setTimeout(() => fail('no "agent.listening" in time'), this.opts.startTimeoutMs ?? 60_000);
      const ready = (url: string, port: number) => {
        clearTimeout(t);
        this.url = url;
        this.port = port;
        resolve();
      };
      readline.createInterface({ input: proc.stderr! }).on('line', (line) => {
        if (this.opts.stderrLimit === undefined || this.stderr.length < this.opts.stderrLimit) this.stderr += line + '\n';
        if (this.opts.readyOnStdout || !line.includes('"agent.listening"')) return;
        try {
          const rec = JSON.parse(line) as { url: string; port: number };
          ready(rec.url, rec.port);
        } catch {
          /* not JSON */
        }
      });
      readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
        let m: Record<string, unknown>;
        try {
          m = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return;
        }
        if (m.event === 'ready') ready(m.url as string, m.port as number);
        else this.onStdoutMessage(m);
      });
    });
  }

  private async startDetached(script: string): Promise<void> {
    const listen = this.opts.listen;
    if (!listen || listen.endsWith(':0')) throw new Error('a detached agent needs a fixed --listen address');
    const log = fs.openSync(this.opts.logFile!, 'a');
    // its own session, output to the log file: the agent outlives this process
    const proc = spawn(process.execPath, [script, ...this.args()], { detached: true, stdio: ['ignore', log, log], cwd: ROOT });
    fs.closeSync(log);
    this.proc = proc;
    let exitCode: number | null | undefined;
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve((exitCode = code))));
    proc.unref();
    this.url = `${this.opts.tls || extraHasTls(this.opts.extraArgs) ? 'https' : 'http'}://${listen}`;
    this.port = Number(listen.slice(listen.lastIndexOf(':') + 1));
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 60_000);
    for (;;) {
      if (exitCode !== undefined) {
        const tail = fs.readFileSync(this.opts.logFile!, 'utf8').split('\n').slice(-15).join('\n');
        throw new Error(`the agent exited during start-up; last lines of ${this.opts.logFile}:\n${tail}`);
      }
      if (await healthy(this.url, clientTls(this.opts.tls))) return;
      if (Date.now() > deadline) throw new Error(`${this.url}/v1/health did not answer in time; see ${this.opts.logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  client(opts: { timeoutMs?: number } = {}): AgentClient {
    const tls = clientTls(this.opts.tls);
    return new AgentClient({ url: this.url, token: this.token, node: this.opts.node ?? 'test-node', retries: 0, ...(tls ? { tls } : {}), ...opts });
  }

  private running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** SIGKILL and wait for the exit. */
  async kill9(): Promise<void> {
    if (!this.running()) return;
    this.proc!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (graceful: pools exported) and wait, SIGKILL after `killAfterMs` if given; returns the exit code. */
  async stop(killAfterMs?: number): Promise<number | null> {
    if (!this.running()) return this.proc?.exitCode ?? null;
    this.proc!.kill('SIGTERM');
    const t = killAfterMs === undefined ? undefined : setTimeout(() => this.proc!.kill('SIGKILL'), killAfterMs);
    const code = await this.exited;
    if (t) clearTimeout(t);
    return code;
  }

  async restart(): Promise<this> {
    await this.kill9();
    return this.start();
  }
}

/** A process with this pid exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The flags name --tls-cert (an agent serving HTTPS). */
function extraHasTls(extra: string[] = []): boolean {
  return extra.some((a) => a === '--tls-cert' || a.startsWith('--tls-cert='));
}

/** GET /v1/health answers (no token needed); `tls`: the CA (and client certificate) of an https:// agent. */
export async function healthy(url: string, tls?: AgentTlsOptions): Promise<boolean> {
  const c = new AgentClient({ url, retries: 0, timeoutMs: 2000, ...(tls ? { tls } : {}) });
  try {
    await c.health();
    return true;
  } catch {
    return false;
  } finally {
    await c.close();
  }
}
