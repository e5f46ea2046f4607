/**
 * The native provider launcher (provider/launcher/launcher.c), built with ASan+UBSan and driven with a fake "node"
 * (a shell script: direct mode prints `direct ARGS`, `--daemon SOCK` records the spawn and runs a fake daemon) and
 * fake daemons speaking the launcher protocol correctly or not: session relay, fallbacks to direct mode, the
 * spawn lock, the daemon's environment and file descriptors, the runtime directory checks.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const launcherDir = path.join(root, 'provider', 'launcher');
const launcher = path.join(launcherDir, 'build', 'asan', 'mayastor-provider-launcher');
const HANDSHAKE = '1|6|tcp|127.0.0.1:4242|grpc|FAKECERT\n';
const BIG = 300_000; // larger than a pipe buffer: the launcher must handle short writes

let work = '';
let fakeNode = '';
let entry = '';
let caseNo = 0;
const daemons: ChildProcess[] = [];
const spawnLogs: string[] = [];

// The fake daemon: `node daemon.js SOCK`; FAKE_BEHAVIOUR (its own environment) says how it misbehaves.
const DAEMON_JS = String.raw`
const net = require('node:net');
const fs = require('node:fs');
const sock = process.argv[2];
const behaviour = process.env.FAKE_BEHAVIOUR || 'good';
if (behaviour === 'die') { process.stderr.write('fake daemon: cannot start\n'); process.exit(3); }
const record = process.env.FAKE_RECORD;
if (record) fs.writeFileSync(record + '/daemon.' + process.pid + '.json', JSON.stringify({ env: process.env, cwd: process.cwd(), sock }));
setTimeout(() => process.exit(0), 120000); // never outlive the test run
const frame = (type, payload) => {
  const p = Buffer.from(payload);
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32LE(p.length, 1);
  return Buffer.concat([h, p]);
};
const header = (type, len) => { const h = Buffer.alloc(5); h[0] = type; h.writeUInt32LE(len, 1); return h; };
function parse(body) {
  const parts = body.subarray(0, body.length - 1).toString('utf8').split('\0');
  const argc = Number(parts[1]);
  const env = {};
  for (const e of parts.slice(2 + argc)) { const i = e.indexOf('='); env[e.slice(0, i)] = e.slice(i + 1); }
  return { terminated: body[body.length - 1] === 0, cwd: parts[0], argc: parts[1], args: parts.slice(2, 2 + argc), env };
}
function serve(c, req) {
  switch (behaviour) {
    case 'good': {
      const pick = {};
      for (const k of ['PLUGIN_CLIENT_CERT', 'MAYASTOR_TOKEN', 'TF_PLUGIN_MAGIC_COOKIE', 'FAKE_MARK']) pick[k] = req.env[k];
      c.write(frame(1, '${HANDSHAKE.replace('\n', '\\n')}'));
      c.write(frame(2, 'session log line\n'));
      const info = frame(1, JSON.stringify({ daemon: process.pid, cwd: req.cwd, argc: req.argc, args: req.args, terminated: req.terminated, env: pick }) + '\n');
      c.write(info.subarray(0, 3)); // a header split across reads
      setTimeout(() => {
        c.write(info.subarray(3));
        c.write(frame(1, 'x'.repeat(${BIG}) + '\n'));
        c.write(frame(2, ''));
        c.end(frame(3, [Number(req.env.FAKE_EXIT || 0)]));
      }, 20);
      return;
    }
    case 'hold': { // output, then the exit frame only once the test created FAKE_RECORD/release
      c.write(frame(1, 'holding\n'));
      const t = setInterval(() => {
        if (fs.existsSync(req.env.FAKE_RECORD + '/release')) { clearInterval(t); c.end(frame(3, [5])); }
      }, 10);
      return;
    }
    case 'bad-type': return void c.end(Buffer.concat([frame(2, 'about to misbehave\n'), frame(9, 'x')]));
    case 'oversized': return void c.end(header(1, (1 << 20) + 1));
    case 'bad-exit': return void c.end(frame(3, [1, 2]));
    case 'eof-before': return void c.end(frame(2, 'giving up\n'));
    case 'eof-after': return void c.end(frame(1, '${HANDSHAKE.replace('\n', '\\n')}'));
    case 'midframe-after': return void c.end(Buffer.concat([frame(1, 'partial'), header(1, 10), Buffer.from('abc')]));
    case 'type-after': return void c.end(Buffer.concat([frame(1, 'partial'), frame(7, '')]));
    case 'retry-after': return void c.end(Buffer.concat([frame(1, 'partial'), frame(4, '')]));
    case 'silent': return;
    case 'retry-once': // what a daemon whose code changed does: unlink, refuse, leave
      fs.unlinkSync(sock);
      c.end(frame(4, ''));
      server.close(() => process.exit(0));
      return;
    case 'retry-always': return void c.end(frame(4, ''));
  }
}
const server = net.createServer((c) => {
  let buf = Buffer.alloc(0);
  let done = false;
  c.on('error', () => {});
  c.on('data', (d) => {
    if (done) return;
    buf = Buffer.concat([buf, d]);
    if (buf.length < 12) return;
    if (buf.subarray(0, 8).toString('latin1') !== 'MSTRPL1\n') { done = true; return void c.destroy(); }
    const n = buf.readUInt32LE(8);
    if (buf.length < 12 + n) return;
    done = true;
    const req = parse(buf.subarray(12, 12 + n));
    if (record) fs.appendFileSync(record + '/requests.jsonl', JSON.stringify(req) + '\n');
    serve(c, req);
  });
});
server.listen(sock, () => process.stdout.write('ready\n'));
`;

/** FNV-1a 64 over NODE\0ENTRY\0NODE_OPTIONS\0NODE_EXTRA_CA_CERTS: the daemon key, as launcher.c computes it. */
function daemonKey(node: string, ent: string, nodeOptions = '', ca = ''): string {
  const mask = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(`${node}\0${ent}\0${nodeOptions}\0${ca}`)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & mask;
  return h.toString(16).padStart(16, '0');
}

interface Case {
  xdg: string;
  runDir: string;
  sock: string;
  log: string;
  record: string;
  spawns: string;
  env: NodeJS.ProcessEnv;
}

/** A fresh XDG_RUNTIME_DIR and record directory, and the environment Terraform would give the provider. */
function newCase(extra: NodeJS.ProcessEnv = {}): Case {
  const base = path.join(work, `c${++caseNo}`);
  const xdg = path.join(base, 'xdg');
  const record = path.join(base, 'rec');
  fs.mkdirSync(xdg, { recursive: true, mode: 0o700 });
  fs.mkdirSync(record, { recursive: true });
  const runDir = path.join(xdg, 'mayastor-provider');
  const key = daemonKey(fakeNode, entry);
  const spawns = path.join(record, 'spawns');
  spawnLogs.push(spawns);
  return {
    xdg,
    runDir,
    record,
    spawns,
    sock: path.join(runDir, `${key}.sock`),
    log: path.join(runDir, `${key}.log`),
    env: {
      PATH: process.env.PATH,
      XDG_RUNTIME_DIR: xdg,
      TF_PLUGIN_MAGIC_COOKIE: 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2',
      PLUGIN_PROTOCOL_VERSIONS: '6',
      PLUGIN_MIN_PORT: '10000',
      PLUGIN_MAX_PORT: '25000',
      PLUGIN_CLIENT_CERT: '-----BEGIN CERTIFICATE-----\nSESSIONCERT\n-----END CERTIFICATE-----\n',
      MAYASTOR_TOKEN: 'session-secret',
      FAKE_MARK: `case-${caseNo}`,
      FAKE_RECORD: record,
      FAKE_SPAWNS: spawns,
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1',
      UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
      ...extra,
    },
  };
}

/** Starts a fake daemon ourselves on the case's socket (as if an earlier launch had). */
async function startDaemon(c: Case, behaviour: string): Promise<ChildProcess> {
  fs.mkdirSync(c.runDir, { recursive: true, mode: 0o700 });
  const p = spawn(process.execPath, [path.join(work, 'daemon.js'), c.sock], {
    env: { PATH: process.env.PATH, FAKE_BEHAVIOUR: behaviour, FAKE_RECORD: c.record },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  daemons.push(p);
  await new Promise<void>((resolve, reject) => {
    p.stdout!.once('data', () => resolve());
    p.once('exit', (code) => reject(new Error(`fake daemon exited ${code}`)));
  });
  return p;
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function launch(env: NodeJS.ProcessEnv, args: string[] = [], opts: { cwd?: string; node?: string; onSpawn?: (p: ChildProcess) => void } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(launcher, [opts.node ?? fakeNode, entry, ...args], { env, cwd: opts.cwd ?? work, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => {
      stdout += d;
    });
    p.stdout!.on('error', () => {});
    p.stderr!.on('data', (d) => {
      stderr += d;
    });
    p.on('error', reject);
    p.on('close', (code, signal) => {
      // The sanitizers abort with a report on stderr; any report fails the test whatever else happened.
      expect(stderr).not.toMatch(/AddressSanitizer|LeakSanitizer|runtime error:/);
      resolve({ code, signal, stdout, stderr });
    });
    opts.onSpawn?.(p);
  });
}

const spawnCount = (c: Case) => (fs.existsSync(c.spawns) ? fs.readFileSync(c.spawns, 'utf8').trim().split('\n').filter(Boolean).length : 0);
const requests = (c: Case) =>
  fs
    .readFileSync(path.join(c.record, 'requests.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
const directOut = (...args: string[]) => `direct ${[entry, ...args].join(' ')}\n`;

function expectGoodSession(
  r: Result,
  c: Case,
  exitCode = 0,
): { daemon: number; cwd: string; argc: string; args: string[]; terminated: boolean; env: Record<string, string> } {
  expect(r.signal).toBeNull();
  expect(r.code).toBe(exitCode);
  const lines = r.stdout.split('\n');
  expect(lines[0] + '\n').toBe(HANDSHAKE);
  expect(lines[2]).toBe('x'.repeat(BIG));
  expect(lines).toHaveLength(4);
  expect(r.stderr).toContain('session log line\n');
  expect(r.stderr).not.toContain('terraform-provider-mayastor:');
  const info = JSON.parse(lines[1]);
  expect(info.env.FAKE_MARK).toBe(c.env.FAKE_MARK);
  return info;
}

beforeAll(() => {
  execFileSync('make', ['-C', launcherDir, 'asan'], { stdio: 'pipe' });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mpl-'));
  entry = path.join(work, 'dist', 'provider', 'main.js');
  fs.writeFileSync(path.join(work, 'daemon.js'), DAEMON_JS);
  fakeNode = path.join(work, 'node');
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  fs.writeFileSync(
    fakeNode,
    [
      '#!/bin/sh',
      'if [ "$2" = "--daemon" ]; then',
      '  echo $$ >> "$FAKE_SPAWNS"',
      // The shell's own fds as exec'd.  dash applies `>` in the shell itself (fd 1 is then the listing, the
      // original saved above fd 9), so fd 1 is read separately through a command substitution.
      '  ls -l /proc/$$/fd > "$FAKE_RECORD/fds.$$"',
      '  one=$(readlink /proc/$$/fd/1)',
      '  echo "$one" > "$FAKE_RECORD/fd1.$$"',
      '  grep SigIgn /proc/$$/status > "$FAKE_RECORD/sig.$$"',
      `  exec ${q(process.execPath)} ${q(path.join(work, 'daemon.js'))} "$3"`,
      'fi',
      'printf direct; for a in "$@"; do printf " %s" "$a"; done; printf "\\n"',
      'grep SigIgn /proc/$$/status >&2',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
}, 120_000);

afterAll(() => {
  for (const d of daemons) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
  for (const f of spawnLogs) {
    if (!fs.existsSync(f)) continue;
    for (const pid of fs.readFileSync(f, 'utf8').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('direct mode without touching the daemon', () => {
  test('wrong usage prints a usage line and exits 2', async () => {
    for (const args of [[], [fakeNode]]) {
      const r = await new Promise<Result>((resolve) => {
        const p = spawn(launcher, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        p.stderr!.on('data', (d) => {
          stderr += d;
        });
        p.on('close', (code, signal) => resolve({ code, signal, stdout: '', stderr }));
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^usage: .*NODE ENTRY \[ARGS\.\.\.\]\n$/);
    }
  });

  test.each(['0', 'off', 'OFF', 'false', 'No'])('MAYASTOR_PROVIDER_DAEMON=%s', async (v) => {
    const c = newCase({ MAYASTOR_PROVIDER_DAEMON: v });
    const r = await launch(c.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(directOut());
    expect(fs.existsSync(c.runDir)).toBe(false);
  });

  test('without the magic cookie node runs directly (it prints the go-plugin message)', async () => {
    const c = newCase();
    delete c.env.TF_PLUGIN_MAGIC_COOKIE;
    const r = await launch(c.env);
    expect(r.stdout).toBe(directOut());
    expect(fs.existsSync(c.runDir)).toBe(false);
  });

  test('arguments (e.g. --debug) mean direct mode, passed through', async () => {
    const c = newCase();
    const r = await launch(c.env, ['--debug', 'two words']);
    expect(r.stdout).toBe(directOut('--debug', 'two words'));
    expect(spawnCount(c)).toBe(0);
  });

  test('direct mode restores the signal dispositions the launcher was started with', async () => {
    const c = newCase({ MAYASTOR_PROVIDER_DAEMON: 'off' });
    const r = await launch(c.env);
    expect(r.stderr).toMatch(/^SigIgn:\s+0+$/m); // SIGINT and SIGPIPE are not left ignored for node
  });

  test('a node that cannot be executed is reported, exit 1', async () => {
    const c = newCase({ MAYASTOR_PROVIDER_DAEMON: 'off' });
    const r = await launch(c.env, [], { node: path.join(work, 'no-such-node') });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`terraform-provider-mayastor: cannot run ${path.join(work, 'no-such-node')}: No such file or directory\n`);
  });
});

describe('unsafe runtime directory', () => {
  test('mode 0755 → direct mode with one stderr line', async () => {
    const c = newCase();
    fs.mkdirSync(c.runDir, { mode: 0o755 });
    fs.chmodSync(c.runDir, 0o755);
    const r = await launch(c.env);
    expect(r.stdout).toBe(directOut());
    expect(r.stderr).toMatch(/^terraform-provider-mayastor: runtime directory .*mayastor-provider has mode 755, open to group\/other; running node directly$/m);
    expect(spawnCount(c)).toBe(0);
  });

  test('a symlink → direct mode with one stderr line', async () => {
    const c = newCase();
    const target = path.join(c.xdg, 'elsewhere');
    fs.mkdirSync(target, { mode: 0o700 });
    fs.symlinkSync(target, c.runDir);
    const r = await launch(c.env);
    expect(r.stdout).toBe(directOut());
    expect(r.stderr).toMatch(/runtime directory .* is not a directory \(a symlink\?\); running node directly\n/);
    expect(fs.readdirSync(target)).toEqual([]);
    expect(spawnCount(c)).toBe(0);
  });

  test('a directory owned by someone else → direct mode', async () => {
    if (process.getuid?.() !== 0) return; // only root can hand a directory to another user
    const c = newCase();
    fs.mkdirSync(c.runDir, { mode: 0o700 });
    fs.chownSync(c.runDir, 12345, 12345);
    const r = await launch(c.env);
    expect(r.stdout).toBe(directOut());
    expect(r.stderr).toMatch(/is owned by uid 12345, not 0; running node directly/);
  });

  test('a runtime directory that cannot be created → direct mode', async () => {
    const c = newCase({ XDG_RUNTIME_DIR: path.join(work, 'missing', 'xdg') });
    const r = await launch(c.env);
    expect(r.stdout).toBe(directOut());
    expect(r.stderr).toMatch(/cannot create runtime directory .*: No such file or directory; running node directly/);
  });

  test('a socket path longer than sun_path → direct mode', async () => {
    const deep = path.join(work, 'd'.repeat(100));
    fs.mkdirSync(deep, { mode: 0o700 });
    const c = newCase({ XDG_RUNTIME_DIR: deep });
    const r = await launch(c.env);
    expect(r.stdout).toBe(directOut());
    expect(r.stderr).toMatch(/is longer than a unix socket address allows; running node directly/);
    expect(spawnCount(c)).toBe(0);
  });
});

describe('sessions served by a running daemon', () => {
  test('relays stdout, stderr and the exit status; the request carries cwd, argc and the whole environment', async () => {
    const c = newCase({ FAKE_EXIT: '7' });
    await startDaemon(c, 'good');
    const cwd = fs.mkdtempSync(path.join(work, 'cwd-'));
    const r = await launch(c.env, [], { cwd });
    const info = expectGoodSession(r, c, 7);
    expect(info).toMatchObject({ cwd, argc: '0', args: [], terminated: true });
    expect(info.env).toMatchObject({
      PLUGIN_CLIENT_CERT: c.env.PLUGIN_CLIENT_CERT,
      MAYASTOR_TOKEN: 'session-secret',
      TF_PLUGIN_MAGIC_COOKIE: c.env.TF_PLUGIN_MAGIC_COOKIE,
    });
    const [req] = requests(c);
    for (const [k, v] of Object.entries(c.env)) expect(req.env[k]).toBe(v);
    expect(spawnCount(c)).toBe(0);
  });

  test('SIGINT does not stop a session (Terraform stops providers over gRPC)', async () => {
    const c = newCase();
    await startDaemon(c, 'hold');
    const r = await launch(c.env, [], {
      onSpawn: (p) =>
        p.stdout!.once('data', () => {
          p.kill('SIGINT');
          setTimeout(() => fs.writeFileSync(path.join(c.record, 'release'), ''), 50);
        }),
    });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('holding\n');
  });

  test('Terraform going away (EPIPE on stdout) is exit 1, not a signal death', async () => {
    const c = newCase();
    await startDaemon(c, 'good');
    const r = await launch(c.env, [], { onSpawn: (p) => p.stdout!.destroy() });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
  });

  test('an environment over 1 MiB → direct mode without a request', async () => {
    const big: NodeJS.ProcessEnv = {};
    for (let i = 0; i < 10; i++) big[`BIG_${i}`] = 'b'.repeat(120_000);
    const c = newCase(big);
    await startDaemon(c, 'good');
    const r = await launch(c.env);
    expect(r.stdout).toBe(directOut());
    expect(r.stderr).toMatch(/session request of \d+ bytes \(mostly environment\) exceeds 1 MiB; running node directly/);
  });
});

describe('daemon failures before the first stdout byte fall back to direct mode', () => {
  test.each([
    ['bad-type', /unknown frame type 9/],
    ['oversized', /frame of 1048577 bytes exceeds 1 MiB/],
    ['bad-exit', /exit frame of 2 bytes/],
    ['eof-before', /connection closed before the session ended/],
  ])('%s', async (behaviour, why) => {
    const c = newCase();
    await startDaemon(c, behaviour);
    const r = await launch(c.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(directOut());
    expect(r.stderr).toMatch(new RegExp(`the provider daemon failed \\(${why.source}; see .*\\.log\\); running node directly`));
    expect(spawnCount(c)).toBe(0);
  });

  test('a daemon that never answers → direct after MAYASTOR_PROVIDER_LAUNCH_TIMEOUT_MS', async () => {
    const c = newCase({ MAYASTOR_PROVIDER_LAUNCH_TIMEOUT_MS: '300' });
    await startDaemon(c, 'silent');
    const r = await launch(c.env);
    expect(r.stdout).toBe(directOut());
    expect(r.stderr).toMatch(/no output within the launch timeout/);
  });

  test('a malformed MAYASTOR_PROVIDER_LAUNCH_TIMEOUT_MS is reported and ignored', async () => {
    const c = newCase({ MAYASTOR_PROVIDER_LAUNCH_TIMEOUT_MS: '12abc' });
    await startDaemon(c, 'good');
    const r = await launch(c.env);
    expect(r.stderr).toMatch(/ignoring MAYASTOR_PROVIDER_LAUNCH_TIMEOUT_MS=12abc/);
    expect(r.stdout.startsWith(HANDSHAKE)).toBe(true);
  });

  test('"retry" twice → direct mode', async () => {
    const c = newCase();
    await startDaemon(c, 'retry-always');
    const r = await launch(c.env);
    expect(r.stdout).toBe(directOut());
    expect(r.stderr).toMatch(/asked for a retry twice; running node directly/);
    expect(requests(c)).toHaveLength(2);
    expect(spawnCount(c)).toBe(0);
  });
});

describe('daemon failures after stdout bytes are fatal', () => {
  test.each([
    ['eof-after', 'connection closed before the session ended'],
    ['midframe-after', 'connection closed in the middle of a frame'],
    ['type-after', 'unknown frame type 7'],
    ['retry-after', 'retry frame after the session started'],
  ])('%s', async (behaviour, why) => {
    const c = newCase();
    await startDaemon(c, behaviour);
    const r = await launch(c.env);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('direct');
    expect(r.stderr).toContain(`terraform-provider-mayastor: lost the provider daemon (${why}); see ${c.log}\n`);
  });
});

describe('starting the daemon', () => {
  test('spawns one detached daemon without session secrets, leaked fds or ignored signals; later launches reuse it', async () => {
    const c = newCase({ PLUGIN_CLIENT_CERT: 'cert-1', MAYASTOR_TOKEN: 'token-1' });
    const info1 = expectGoodSession(await launch(c.env), c);
    expect(info1.env).toMatchObject({ PLUGIN_CLIENT_CERT: 'cert-1', MAYASTOR_TOKEN: 'token-1' });
    expect(spawnCount(c)).toBe(1);
    const pid = fs.readFileSync(c.spawns, 'utf8').trim();
    expect(String(info1.daemon)).toBe(pid);
    expect(fs.statSync(c.runDir).mode & 0o777).toBe(0o700);

    // Each session brings its own secrets; the daemon's environment never holds any.
    const info2 = expectGoodSession(await launch({ ...c.env, PLUGIN_CLIENT_CERT: 'cert-2', MAYASTOR_TOKEN: 'token-2' }), c);
    expect(info2.env).toMatchObject({ PLUGIN_CLIENT_CERT: 'cert-2', MAYASTOR_TOKEN: 'token-2' });
    expect(info2.daemon).toBe(info1.daemon);
    expect(spawnCount(c)).toBe(1);

    const d = JSON.parse(fs.readFileSync(path.join(c.record, `daemon.${pid}.json`), 'utf8'));
    for (const k of ['PLUGIN_CLIENT_CERT', 'TF_PLUGIN_MAGIC_COOKIE', 'PLUGIN_PROTOCOL_VERSIONS', 'PLUGIN_MIN_PORT', 'PLUGIN_MAX_PORT', 'MAYASTOR_TOKEN']) {
      expect(d.env[k]).toBeUndefined();
    }
    expect(d.env.FAKE_MARK).toBe(c.env.FAKE_MARK);
    expect(d.cwd).toBe('/');
    expect(d.sock).toBe(c.sock);

    // fds of the daemon as exec'd: /dev/null, /dev/null, the log; nothing of the launcher's (lock, socket, pipes).
    const fds = new Map<number, string>();
    for (const line of fs.readFileSync(path.join(c.record, `fds.${pid}`), 'utf8').split('\n')) {
      const m = / (\d+) -> (.*)$/.exec(line);
      if (m) fds.set(Number(m[1]), m[2]);
    }
    expect(fds.get(0)).toBe('/dev/null');
    expect(fs.readFileSync(path.join(c.record, `fd1.${pid}`), 'utf8')).toBe('/dev/null\n');
    expect(fds.get(2)).toBe(c.log);
    for (const [fd, target] of fds) {
      if (fd > 2) expect([fakeNode, '/dev/null']).toContain(target); // the shell's script and its saved fd 1
    }
    // SIGINT (bit 2) and SIGPIPE (bit 13) are not ignored in the daemon.
    const sigIgn = BigInt('0x' + /SigIgn:\s+([0-9a-f]+)/.exec(fs.readFileSync(path.join(c.record, `sig.${pid}`), 'utf8'))![1]);
    expect(sigIgn & ((1n << 1n) | (1n << 12n))).toBe(0n);
    // Detached: its own session, not a child of the launcher.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = fs.readFileSync('/proc/self/stat', 'utf8');
    expect(fields[3]).not.toBe(own.slice(own.lastIndexOf(')') + 2).split(' ')[3]); // session id: not ours
    expect(fields[3]).not.toBe(pid); // not a session leader (double fork): can never get a terminal
  });

  test('launchers started at the same time spawn exactly one daemon', async () => {
    const c = newCase();
    const results = await Promise.all([1, 2, 3, 4].map(() => launch(c.env)));
    const pids = new Set<number>();
    for (const r of results) pids.add(expectGoodSession(r, c).daemon);
    expect(spawnCount(c)).toBe(1);
    expect(pids.size).toBe(1);
  });

  test('a stale socket file is replaced by a fresh daemon', async () => {
    const c = newCase();
    fs.mkdirSync(c.runDir, { mode: 0o700 });
    fs.writeFileSync(c.sock, 'not a socket');
    expectGoodSession(await launch(c.env), c);
    expect(spawnCount(c)).toBe(1);
  });

  test('"retry" from an outdated daemon → one fresh daemon serves the session', async () => {
    const c = newCase({ FAKE_BEHAVIOUR: 'good' });
    await startDaemon(c, 'retry-once');
    expectGoodSession(await launch(c.env), c);
    expect(spawnCount(c)).toBe(1);
  });

  test('the key covers NODE_OPTIONS and NODE_EXTRA_CA_CERTS; a relative XDG_RUNTIME_DIR falls back to $TMPDIR', async () => {
    const tmp = fs.mkdtempSync(path.join(work, 'tmp-'));
    const c = newCase({ XDG_RUNTIME_DIR: 'relative/dir', TMPDIR: tmp, NODE_OPTIONS: '--no-warnings', NODE_EXTRA_CA_CERTS: '/nonexistent-ca.pem' });
    expectGoodSession(await launch(c.env), c);
    const runDir = path.join(tmp, `mayastor-provider-${process.geteuid!()}`);
    const key = daemonKey(fakeNode, entry, '--no-warnings', '/nonexistent-ca.pem');
    expect(fs.statSync(path.join(runDir, `${key}.sock`)).isSocket()).toBe(true);
    expect(fs.existsSync(path.join(runDir, `${key}.log`))).toBe(true);
    expect(fs.existsSync(path.join(runDir, `${key}.lock`))).toBe(true);
    expect(fs.existsSync(c.runDir)).toBe(false);
  });

  test('a daemon that dies at start-up → direct mode, pointing at its log', async () => {
    const c = newCase({ FAKE_BEHAVIOUR: 'die' });
    const r = await launch(c.env);
    expect(r.stdout).toBe(directOut());
    expect(r.stderr).toContain(`terraform-provider-mayastor: the provider daemon exited at start-up (see ${c.log}); running node directly\n`);
    expect(fs.readFileSync(c.log, 'utf8')).toContain('fake daemon: cannot start\n');
    expect(spawnCount(c)).toBe(1);
  });

  test('a daemon log over 1 MiB is truncated when a daemon starts', async () => {
    const c = newCase();
    fs.mkdirSync(c.runDir, { mode: 0o700 });
    fs.writeFileSync(c.log, 'L'.repeat((1 << 20) + 1));
    expectGoodSession(await launch(c.env), c);
    expect(fs.statSync(c.log).size).toBeLessThan(1 << 20);
  });
});
