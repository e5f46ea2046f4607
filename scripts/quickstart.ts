/**
 * npm run quickstart / npm run quickstart:down (through scripts/quickstart.sh).
 *
 *   up:   starts three local agents (detached; they keep running), installs the provider into a local
 *         filesystem mirror, runs `cdktf deploy` of examples/quickstart with the real terraform, writes and
 *         verifies data through the volume's nbd:// URI with qemu-io, shows `mayastorctl nexus list` and prints
 *         the volume URI.
 *   down: `cdktf destroy` of the stack, then stops the agents (SIGTERM, by their recorded pids) and removes the
 *         quickstart directory.
 *
 * Environment: MAYASTOR_QUICKSTART_DIR (default ./.tmp/quickstart), MAYASTOR_QUICKSTART_PORT (first agent's
 * HTTP port, default 9501; NBD ports start at PORT+1310, i.e. 10811), MAYASTOR_QUICKSTART_DISK_MB (default 256),
 * MAYASTOR_QUICKSTART_TLS=1 (`up --tls`): the agents serve their API over HTTPS with a throwaway CA made in DIR/tls
 * (makeTlsFiles); cluster.json gets https:// URLs, terraform's provider gets MAYASTOR_CA_CERT_FILE and mayastorctl
 * --ca-cert. `down` and a later `up` follow the mode recorded in cluster.json (a mismatch with the flag is an error).
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AgentProcess, ROOT, TlsFiles, alive, clientTls, healthy, makeTlsFiles } from './lib/agent-process';

const DIR = path.resolve(process.env.MAYASTOR_QUICKSTART_DIR ?? path.join(ROOT, '.tmp', 'quickstart'));
const BASE_PORT = Number(process.env.MAYASTOR_QUICKSTART_PORT ?? 9501);
const DISK_MB = Number(process.env.MAYASTOR_QUICKSTART_DISK_MB ?? 256);
const NODES = ['node-a', 'node-b', 'node-c'];
const EXAMPLE = path.join(ROOT, 'examples', 'quickstart');
const CLUSTER_FILE = path.join(DIR, 'cluster.json');
const TOKEN_FILE = path.join(DIR, 'token');
const OUTPUTS_FILE = path.join(DIR, 'outputs.json');
const CDKTF_OUT = path.join(DIR, 'cdktf.out');
const TF_CLI_CONFIG = path.join(DIR, 'terraformrc');
const TF_MIRROR = path.join(DIR, 'terraform-mirror');
const STACK = 'quickstart';
const TLS_DIR = path.join(DIR, 'tls');
const CA_FILE = path.join(TLS_DIR, 'ca.pem');

/** HTTPS or not, as recorded by the cluster file of a running quickstart, else as asked (MAYASTOR_QUICKSTART_TLS=1). */
function tlsMode(cmd: string): boolean {
  const asked = process.env.MAYASTOR_QUICKSTART_TLS === '1';
  let recorded: boolean | undefined;
  try {
    const c = JSON.parse(fs.readFileSync(CLUSTER_FILE, 'utf8')) as { nodes?: { url?: string }[] };
    const url = c.nodes?.[0]?.url;
    if (typeof url === 'string') recorded = url.startsWith('https://');
  } catch {
    /* no quickstart yet */
  }
  if (recorded !== undefined && recorded !== asked && cmd === 'up') {
    die(
      `the quickstart in ${DIR} runs ${recorded ? 'with' : 'without'} TLS but \`up\` was asked ${asked ? 'with --tls' : 'without --tls'}: ` +
        `run \`npm run quickstart:down\` first, or ${recorded ? 'add' : 'drop'} --tls`,
    );
  }
  return recorded ?? asked;
}
/** Set by main() (tlsMode). */
let TLS = false;

/** The throwaway CA and agent certificate in DIR/tls (made once; a later `up` reuses them). */
function tlsFiles(): TlsFiles | undefined {
  if (!TLS) return undefined;
  const f = (n: string) => path.join(TLS_DIR, n);
  if (['ca.pem', 'agent.pem', 'agent.key'].every((n) => fs.existsSync(f(n)))) {
    return { ca: f('ca.pem'), cert: f('agent.pem'), key: f('agent.key'), clientCert: f('client.pem'), clientKey: f('client.key') };
  }
  try {
    const t = makeTlsFiles(TLS_DIR, ['127.0.0.1', 'localhost'], 'mayastor quickstart');
    info(`TLS: made a throwaway CA ${t.ca} and an agent certificate for 127.0.0.1 and localhost (openssl)`);
    return t;
  } catch (e) {
    die(`TLS: ${(e as Error).message}`);
  }
}

interface NodeInfo {
  name: string;
  httpPort: number;
  nbdPort: number;
  dataDir: string;
  disk: string;
  pidFile: string;
  logFile: string;
  url: string;
  zone: string;
}

function nodes(): NodeInfo[] {
  return NODES.map((name, i) => {
    const dataDir = path.join(DIR, name);
    return {
      name,
      httpPort: BASE_PORT + i,
      nbdPort: BASE_PORT + 1310 + i,
      dataDir,
      disk: path.join(dataDir, 'disks', 'disk0.img'),
      pidFile: path.join(DIR, `${name}.pid`),
      logFile: path.join(DIR, `${name}.log`),
      url: `${TLS ? 'https' : 'http'}://127.0.0.1:${BASE_PORT + i}`,
      zone: `zone-${String.fromCharCode(97 + i)}`,
    };
  });
}

const t0 = Date.now();
function step(msg: string): void {
  process.stdout.write(`\n==> [${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
}
function info(msg: string): void {
  process.stdout.write(`    ${msg}\n`);
}
class QuickstartError extends Error {}
function die(msg: string): never {
  throw new QuickstartError(msg);
}

function which(cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(d, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The recorded pid, if that process is still an agent of ours (the pid may have been reused). */
function agentPid(n: NodeInfo): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(n.pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return undefined;
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmd.includes('mayastor-agent') || !cmd.includes(n.dataDir)) return undefined;
  } catch {
    /* no /proc: trust the pid file */
  }
  return pid;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function checkTools(): void {
  const missing: string[] = [];
  if (!which(process.env.TERRAFORM_BINARY_NAME ?? 'terraform')) missing.push('terraform');
  if (!which('qemu-io')) missing.push('qemu-io (Debian package qemu-utils)');
  if (missing.length) die(`missing tools: ${missing.join(', ')}. Run \`npm run setup\` (it installs the Debian packages), and install terraform >= 1.5.`);
  if (!fs.existsSync(path.join(ROOT, 'dist', 'agent', 'src', 'main.js')) || !fs.existsSync(path.join(ROOT, 'dist', 'provider', 'main.js'))) {
    die('the project is not built: run `npm run build`');
  }
  if (!fs.existsSync(path.join(ROOT, 'node_modules', '.bin', 'cdktf'))) die('cdktf-cli is not installed: run `npm ci` (npm run setup does)');
  if (TLS && !which('openssl')) die('quickstart --tls needs the openssl CLI (Debian: apt-get install openssl)');
}

async function startAgents(): Promise<NodeInfo[]> {
  const ns = nodes();
  const rel = path.relative(process.cwd(), DIR);
  step(`Starting 3 agents under ${rel && !rel.startsWith('..') ? rel : DIR}${TLS ? ' (API over HTTPS)' : ''}`);
  fs.mkdirSync(DIR, { recursive: true });
  const tls = tlsFiles();
  const ctls = clientTls(tls);
  if (!fs.existsSync(TOKEN_FILE)) {
    fs.writeFileSync(TOKEN_FILE, crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    info(`token written to ${TOKEN_FILE} (mode 0600), shared by the three agents`);
  }
  for (const n of ns) {
    fs.mkdirSync(path.dirname(n.disk), { recursive: true });
    if (!fs.existsSync(n.disk)) {
      fs.writeFileSync(n.disk, '');
      fs.truncateSync(n.disk, DISK_MB * 1024 * 1024);
      info(`${n.name}: created sparse ${DISK_MB} MiB disk ${n.disk}`);
    }
    const pid = agentPid(n);
    if (pid !== undefined && (await healthy(n.url, ctls))) {
      info(`${n.name}: already running (pid ${pid}) at ${n.url}`);
      continue;
    }
    if (pid !== undefined) die(`${n.name}: pid ${pid} is running but ${n.url}/v1/health does not answer; stop it (npm run quickstart:down) and retry`);
    for (const port of [n.httpPort, n.nbdPort]) {
      if (!(await portFree(port))) die(`${n.name}: port ${port} on 127.0.0.1 is in use; free it or set MAYASTOR_QUICKSTART_PORT to another base port`);
    }
    const agent = new AgentProcess({
      node: n.name,
      dataDir: n.dataDir,
      listen: `127.0.0.1:${n.httpPort}`,
      extraArgs: ['--nbd-listen', `127.0.0.1:${n.nbdPort}`, '--token-file', TOKEN_FILE],
      logFile: n.logFile,
      ...(tls ? { tls } : {}),
    });
    try {
      await agent.start();
    } catch (e) {
      die(`${n.name}: ${(e as Error).message}`);
    }
    fs.writeFileSync(n.pidFile, `${agent.pid}\n`);
    info(`${n.name}: started pid ${agent.pid}, HTTP ${n.url}, NBD 127.0.0.1:${n.nbdPort}, log ${n.logFile}; healthy`);
  }
  const cluster = {
    nodes: ns.map((n) => ({ name: n.name, url: n.url, zone: n.zone, disks: { data: n.disk } })),
    stateFile: path.join(DIR, 'terraform.quickstart.tfstate'),
  };
  fs.writeFileSync(CLUSTER_FILE, JSON.stringify(cluster, null, 2) + '\n');
  info(`cluster file ${CLUSTER_FILE}`);
  return ns;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; what: string; capture?: boolean }): string {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? process.env,
    stdio: opts.capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) die(`${opts.what}: ${r.error.message}`);
  if (r.status !== 0) {
    const out = opts.capture ? `\n${r.stdout ?? ''}${r.stderr ?? ''}` : '';
    die(`${opts.what} failed (exit ${r.status ?? r.signal})${out}`);
  }
  return opts.capture ? `${r.stdout ?? ''}` : '';
}

function installProvider(): void {
  step('Installing terraform-provider-mayastor into a local filesystem mirror');
  run(process.execPath, [path.join(ROOT, 'scripts', 'install-provider.js'), '--no-build', '--mirror', TF_MIRROR, '--cli-config', TF_CLI_CONFIG], {
    what: 'npm run install-provider',
  });
}

function token(): string {
  return fs.readFileSync(TOKEN_FILE, 'utf8').trim();
}

function cdktfEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TF_CLI_CONFIG_FILE: TF_CLI_CONFIG,
    MAYASTOR_TOKEN: token(),
    MAYASTOR_CLUSTER_FILE: CLUSTER_FILE,
    // the provider trusts the quickstart's CA (every node URL is https://); without TLS none is set
    ...(TLS ? { MAYASTOR_CA_CERT_FILE: CA_FILE } : { MAYASTOR_CA_CERT_FILE: undefined }),
    CHECKPOINT_DISABLE: '1',
    CDKTF_DISABLE_PLUGIN_CACHE_ENV: 'true',
    DISABLE_VERSION_CHECK: 'true',
    CI: process.env.CI ?? '1',
    FORCE_COLOR: '0',
  };
}

function cdktf(args: string[], what: string): void {
  run(path.join(ROOT, 'node_modules', '.bin', 'cdktf'), [...args, '--output', CDKTF_OUT], { cwd: EXAMPLE, env: cdktfEnv(), what });
}

function deploy(): string {
  step('cdktf deploy of examples/quickstart (terraform init + apply: 3 pools, 3 replicas, 1 nexus)');
  fs.rmSync(OUTPUTS_FILE, { force: true });
  cdktf(
    ['deploy', STACK, '--auto-approve', '--skip-provider-lock', '--outputs-file', OUTPUTS_FILE, '--outputs-file-include-sensitive-outputs'],
    'cdktf deploy',
  );
  let outputs: Record<string, unknown>;
  try {
    outputs = JSON.parse(fs.readFileSync(OUTPUTS_FILE, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    die(`cdktf deploy wrote no readable outputs file ${OUTPUTS_FILE}: ${(e as Error).message}`);
  }
  // cdktf nests outputs by construct path: { quickstart: { volume: { "device-uri": ... } } }
  const stackOut = outputs[STACK] as Record<string, Record<string, unknown>> | undefined;
  const uri = stackOut?.volume?.['device-uri'] ?? (stackOut as Record<string, unknown> | undefined)?.device_uri;
  if (typeof uri !== 'string' || !uri.startsWith('nbd://')) die(`the stack's device_uri output is ${JSON.stringify(uri)}, not an nbd:// URI`);
  return uri;
}

/** Writes two patterns through the volume with one qemu-io process and verifies them with another. */
function verifyData(uri: string): void {
  step(`Writing and verifying data through ${uri} with qemu-io`);
  if (which('nbdinfo')) {
    const size = run('nbdinfo', ['--size', uri], { what: 'nbdinfo --size', capture: true }).trim();
    info(`nbdinfo: export size ${size} bytes`);
  }
  const io = (cmds: string[], what: string): string => {
    const out = run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri], { what, capture: true });
    if (/fail|error|mismatch/i.test(out)) die(`${what}:\n${out}`);
    return out;
  };
  io(['write -P 0x5a 0 1M', 'write -P 0xa5 17M 3M', 'flush'], 'qemu-io write');
  info('wrote 1 MiB of 0x5a at 0 and 3 MiB of 0xa5 at 17 MiB, flushed');
  io(['read -P 0x5a 0 1M', 'read -P 0xa5 17M 3M', 'read -P 0 1M 1M'], 'qemu-io read/verify');
  info('read back and verified both patterns (and zeroes in between) in a new connection');
}

function showNexuses(ns: NodeInfo[]): void {
  step('mayastorctl nexus list');
  for (const n of ns) {
    const tlsArgs = TLS ? ['--ca-cert', CA_FILE] : [];
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'mayastorctl'), '--url', n.url, '--token-file', TOKEN_FILE, ...tlsArgs, 'nexus', 'list'], {
      encoding: 'utf8',
    });
    const out = `${r.stdout ?? ''}`.trimEnd();
    if (r.status !== 0) {
      info(`${n.name}: mayastorctl nexus list failed (exit ${r.status}): ${`${r.stderr ?? ''}`.trim()}`);
      continue;
    }
    const lines = out.split('\n');
    if (lines.length <= 1) process.stdout.write(`  ${n.name} (${n.url}): no nexus\n`);
    else process.stdout.write(`  ${n.name} (${n.url}):\n${lines.map((l) => `    ${l}`).join('\n')}\n`);
  }
}

async function up(): Promise<void> {
  checkTools();
  const ns = await startAgents();
  installProvider();
  const uri = deploy();
  verifyData(uri);
  showNexuses(ns);
  step('Done');
  process.stdout.write(
    `\nVolume (3 replicas on node-a, node-b, node-c; one per zone):\n\n  ${uri}\n\n` +
      `Try:  qemu-io -f raw -c 'read -P 0x5a 0 1M' ${uri}\n` +
      `      nbdinfo ${uri}\n` +
      `      MAYASTOR_TOKEN_FILE=${TOKEN_FILE} bin/mayastorctl --url ${ns[0].url}${TLS ? ` --ca-cert ${CA_FILE}` : ''} nexus list\n` +
      (TLS
        ? `The agents' API is HTTPS, signed by the throwaway CA ${CA_FILE}. Terraform and cdktf (provider block\n` +
          `ca_cert_file, or the environment):  export MAYASTOR_CA_CERT_FILE=${CA_FILE}\n` +
          `curl:  curl --cacert ${CA_FILE} ${ns[0].url}/v1/health\n`
        : '') +
      `The agents keep running (pids in ${DIR}/*.pid). Tear everything down with:  npm run quickstart:down\n`,
  );
}

async function down(): Promise<void> {
  const ns = nodes();
  const running = ns.filter((n) => agentPid(n) !== undefined);
  const state = path.join(DIR, 'terraform.quickstart.tfstate');
  if (fs.existsSync(state) && fs.existsSync(CLUSTER_FILE)) {
    if (running.length < ns.length) {
      info(`only ${running.length} of ${ns.length} agents are running; starting the others so that destroy can reach them`);
      await startAgents();
    }
    if (!fs.existsSync(path.join(TF_MIRROR))) installProvider();
    step('cdktf destroy of examples/quickstart');
    cdktf(['destroy', STACK, '--auto-approve', '--skip-provider-lock'], 'cdktf destroy');
  } else {
    info('no quickstart state: nothing to destroy');
  }
  step('Stopping the agents');
  for (const n of ns) {
    const pid = agentPid(n);
    if (pid === undefined) {
      info(`${n.name}: not running`);
      continue;
    }
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 30_000;
    while (alive(pid) && Date.now() < deadline) await sleep(100);
    if (alive(pid)) {
      info(`${n.name}: pid ${pid} ignored SIGTERM for 30 s; sending SIGKILL`);
      process.kill(pid, 'SIGKILL');
    }
    fs.rmSync(n.pidFile, { force: true });
    info(`${n.name}: stopped (pid ${pid})`);
  }
  if (process.argv.includes('--keep')) {
    info(`kept ${DIR}`);
  } else {
    fs.rmSync(DIR, { recursive: true, force: true });
    info(`removed ${DIR}`);
  }
  step('Done');
}

async function main(): Promise<void> {
  const cmd = process.argv[2] ?? 'up';
  if (!Number.isInteger(BASE_PORT) || BASE_PORT < 1 || BASE_PORT + 1312 > 65535)
    die(`MAYASTOR_QUICKSTART_PORT: ${process.env.MAYASTOR_QUICKSTART_PORT} is not a usable port`);
  if (!Number.isInteger(DISK_MB) || DISK_MB < 64) die(`MAYASTOR_QUICKSTART_DISK_MB: ${process.env.MAYASTOR_QUICKSTART_DISK_MB} must be a whole number >= 64`);
  TLS = tlsMode(cmd);
  if (cmd === 'up') await up();
  else if (cmd === 'down') await down();
  else die(`unknown command "${cmd}": use up or down`);
}

main().catch((e: unknown) => {
  if (e instanceof QuickstartError) process.stderr.write(`\nquickstart: ${e.message}\n`);
  else process.stderr.write(`\nquickstart: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
