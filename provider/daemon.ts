/**
 * The provider daemon. Terraform starts the provider three times for one `terraform plan` (schema, validate, plan)
 * and a cold Node.js start with gRPC loaded costs ~100 ms before the first call, then every call runs on cold code.
 * So the executable Terraform starts is a small native launcher (provider/launcher/launcher.c, which documents the
 * wire protocol) that hands its session to this long-lived process over a unix socket: one warm process serves every
 * launch, each as a separate session with its own gRPC server, port, mTLS certificate, environment and provider
 * state — nothing of one Terraform run is visible to another. The launcher relays the session's stdout (the
 * handshake line) and stderr (logs), and exits with its status.
 *
 * The daemon leaves when it has had no session for MAYASTOR_PROVIDER_DAEMON_IDLE_SECONDS (default 300), and refuses
 * new sessions (frame "retry": the launcher starts a fresh daemon) once the code it loaded has changed on disk.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { ProviderService } from './protocol/framework';
import { PluginHost } from './protocol/host';
import { serve } from './protocol/server';
import { makeProvider } from './provider';

export const REQUEST_MAGIC = Buffer.from('MSTRPL1\n', 'latin1');
/** Largest request (cwd, args and environment) and largest frame payload; the launcher enforces the same. */
export const MAX_PAYLOAD = 1 << 20;
export const enum FrameType {
  Stdout = 1,
  Stderr = 2,
  Exit = 3,
  Retry = 4,
}

export interface SessionRequest {
  cwd: string;
  args: string[];
  env: Record<string, string>;
}

/** Parses the request body (after magic and length): NUL-terminated cwd, argc, args, then K=V environment entries. */
export function parseRequest(body: Buffer): SessionRequest {
  if (body.length === 0 || body[body.length - 1] !== 0) throw new Error('request is not a sequence of NUL-terminated strings');
  const parts = body
    .subarray(0, body.length - 1)
    .toString('utf8')
    .split('\0');
  if (parts.length < 2) throw new Error('request lacks cwd and argument count');
  const [cwd, argcText] = parts;
  if (!/^\d{1,4}$/.test(argcText)) throw new Error(`request argument count "${argcText.slice(0, 20)}" is not a number`);
  const argc = Number(argcText);
  if (parts.length < 2 + argc) throw new Error(`request announces ${argc} arguments but carries ${parts.length - 2}`);
  const args = parts.slice(2, 2 + argc);
  const env: Record<string, string> = Object.create(null);
  for (const entry of parts.slice(2 + argc)) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue; // environ may hold odd entries; the C runtime ignores them too
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return { cwd, args, env };
}

/** One daemon→launcher frame (u8 type, u32le length, payload); long payloads become several frames. */
export function encodeFrames(type: FrameType, payload: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  do {
    const part = payload.subarray(off, off + MAX_PAYLOAD);
    const head = Buffer.alloc(5);
    head[0] = type;
    head.writeUInt32LE(part.length, 1);
    out.push(head, part);
    off += MAX_PAYLOAD;
  } while (off < payload.length);
  return out;
}

/** Reads magic + u32le length + body from a fresh connection; rejects anything malformed or slow. */
function readRequest(sock: net.Socket, timeoutMs: number): Promise<SessionRequest> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err?: Error, req?: SessionRequest) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      if (err) reject(err);
      else resolve(req!);
    };
    const timer = setTimeout(() => done(new Error(`no complete request within ${timeoutMs} ms`)), timeoutMs);
    const onEnd = () => done(new Error(`connection closed after ${buf.length} bytes of the request`));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= REQUEST_MAGIC.length && !buf.subarray(0, REQUEST_MAGIC.length).equals(REQUEST_MAGIC)) {
        return done(new Error('request does not start with the launcher magic "MSTRPL1\\n"'));
      }
      if (buf.length < REQUEST_MAGIC.length + 4) return;
      const n = buf.readUInt32LE(REQUEST_MAGIC.length);
      if (n > MAX_PAYLOAD) return done(new Error(`request length ${n} exceeds ${MAX_PAYLOAD}`));
      const end = REQUEST_MAGIC.length + 4 + n;
      if (buf.length < end) return;
      if (buf.length > end) return done(new Error('bytes after the request'));
      try {
        done(undefined, parseRequest(buf.subarray(REQUEST_MAGIC.length + 4)));
      } catch (e) {
        done(e as Error);
      }
    };
    sock.on('data', onData);
    sock.on('end', onEnd);
  });
}

function daemonLog(event: string, fields: Record<string, unknown> = {}): void {
  try {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), pid: process.pid, event, ...fields }) + '\n');
  } catch {
    // the log file is gone: keep serving
  }
}

/** mtime, size and inode of each file: a change means an upgrade landed on disk. */
function fingerprint(files: readonly string[]): string {
  return files
    .map((f) => {
      try {
        const st = fs.statSync(f);
        return `${st.mtimeMs}:${st.size}:${st.ino}`;
      } catch {
        return 'gone';
      }
    })
    .join(' ');
}

/** Set by bin/terraform-provider-mayastor when it runs the bundle: its files, and whether it would still run it. */
interface BundleInfo {
  files: string[];
  current(): boolean;
}

export interface DaemonOptions {
  socketPath: string;
  /** Leave after this long without a session. */
  idleMs: number;
  /** A connection must deliver its whole request within this time. */
  requestTimeoutMs?: number;
}

/** Loads what sessions need (the agent client pulls in undici), so that the first plan session starts warm. */
function preload(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('../agent/api/client');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('undici');
}

export function runDaemon(opts: DaemonOptions): void {
  const bundled = (globalThis as Record<symbol, unknown>)[Symbol.for('mayastor.provider.bundle')] as BundleInfo | undefined;
  // From tsc output: load before fingerprinting the loaded files. From the bundle (one file): when the first session
  // ends (or, without one, soon after listening), so the launcher that started us (Terraform waiting for the schema,
  // which needs no agent) is served first and the load falls in the gap while Terraform reads that schema.
  let preloaded = !bundled;
  const preloadOnce = () => {
    if (preloaded) return;
    preloaded = true;
    preload();
  };
  if (!bundled) preload();
  // node itself and every module loaded so far (the ones loaded later come from the same packages); when run from
  // the bundle, bin/terraform-provider-mayastor names the bundle and its code cache, and tells whether tsc output
  // still matches the bundle (tsc rewrites every file, mostly unchanged: that is no reason to leave)
  const codeFiles = [process.execPath, ...Object.keys(require.cache), ...(bundled?.files ?? [])];
  const loadedCode = fingerprint(codeFiles);
  const codeChanged = () => fingerprint(codeFiles) !== loadedCode || (bundled !== undefined && !bundled.current());
  let sessions = 0;
  let started = 0;
  let retiring = false;
  let idleTimer: NodeJS.Timeout | undefined;
  let socketIno = -1;

  const leave = (why: string) => {
    daemonLog('daemon.exit', { why });
    process.exit(0);
  };
  const armIdle = () => {
    clearTimeout(idleTimer);
    if (sessions === 0) idleTimer = setTimeout(() => retire('idle'), retiring ? 0 : opts.idleMs);
  };
  /** Stop accepting: remove our socket so the next launcher starts a fresh daemon; exit once sessions are done. */
  const retire = (why: string) => {
    if (!retiring) {
      retiring = true;
      daemonLog('daemon.retire', { why, sessions });
      try {
        // a fresh daemon may already own the path: only remove the socket that is ours
        if (fs.statSync(opts.socketPath).ino === socketIno) fs.unlinkSync(opts.socketPath);
      } catch {
        // already gone
      }
      server.close();
    }
    if (sessions === 0) leave(why);
  };

  const server = net.createServer((sock) => {
    sock.on('error', () => undefined); // EPIPE/ECONNRESET: the launcher died; 'close' ends the session
    sessions++;
    clearTimeout(idleTimer);
    let session: { abandon(): void } | undefined;
    let exited = false;
    const send = (type: FrameType, payload: Buffer) => {
      if (sock.destroyed || exited) return;
      for (const b of encodeFrames(type, payload)) sock.write(b);
    };
    let id = 0;
    sock.on('close', () => {
      if (session) daemonLog('session.end', { session: id, how: exited ? 'exited' : 'launcher gone' });
      session?.abandon();
      sessions--;
      setImmediate(preloadOnce);
      if (retiring) {
        if (sessions === 0) leave('retired');
      } else armIdle();
    });
    readRequest(sock, opts.requestTimeoutMs ?? 5000).then(
      (req) => {
        if (retiring || codeChanged()) {
          daemonLog('session.retry', { why: retiring ? 'daemon is leaving' : 'code changed on disk' });
          send(FrameType.Retry, Buffer.alloc(0));
          sock.end();
          retire('code changed on disk');
          return;
        }
        const host: PluginHost = {
          env: req.env,
          stdout: (text) => send(FrameType.Stdout, Buffer.from(text)),
          stderr: (text) => send(FrameType.Stderr, Buffer.from(text)),
          exit: (code) => {
            send(FrameType.Exit, Buffer.from([code & 0xff]));
            exited = true;
            sock.end();
          },
        };
        id = ++started;
        daemonLog('session.start', { session: id, active: sessions, cwd: req.cwd });
        session = serve(new ProviderService(makeProvider(req.env)), { host, debug: req.args.includes('--debug') });
      },
      (e: Error) => {
        daemonLog('session.bad_request', { error: e.message });
        sock.destroy();
      },
    );
  });

  const listen = (retried: boolean) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EADDRINUSE' || retried) {
        daemonLog('daemon.listen_failed', { socket: opts.socketPath, error: e.message });
        process.exit(1);
      }
      // a live daemon owns the path (we lost a race): leave; a stale file: remove it and listen again
      const probe = net.connect(opts.socketPath);
      probe.once('connect', () => {
        probe.destroy();
        leave('another daemon serves this socket');
      });
      probe.once('error', () => {
        try {
          fs.unlinkSync(opts.socketPath);
        } catch {
          /* gone meanwhile */
        }
        listen(true);
      });
    });
    server.listen(opts.socketPath, () => {
      fs.chmodSync(opts.socketPath, 0o600);
      socketIno = fs.statSync(opts.socketPath).ino;
      daemonLog('daemon.listening', { socket: opts.socketPath, idle_seconds: opts.idleMs / 1000 });
      armIdle();
      if (bundled) setTimeout(preloadOnce, 100).unref();
    });
  };
  listen(false);

  process.on('SIGTERM', () => retire('SIGTERM'));
  process.on('SIGINT', () => undefined); // setsid'd; an interrupt aimed at a Terraform run is not for us
  process.on('uncaughtException', (e) => {
    // one bad session must not take the others down silently; log and keep the state consistent by leaving
    daemonLog('daemon.crash', { error: e.stack ?? String(e) });
    process.exit(70);
  });
}

/** `main.js --daemon SOCKET`: run as the daemon the launcher starts. */
export function daemonMain(socketPath: string | undefined): void {
  if (!socketPath || !socketPath.startsWith('/')) {
    process.stderr.write('terraform-provider-mayastor: --daemon needs the absolute path of its unix socket\n');
    process.exit(2);
  }
  const idle = Number(process.env.MAYASTOR_PROVIDER_DAEMON_IDLE_SECONDS ?? '300');
  runDaemon({ socketPath, idleMs: (Number.isFinite(idle) && idle > 0 ? idle : 300) * 1000 });
}
