/**
 * The go-plugin side of the provider process, driven by a real grpc-js client over real mTLS:
 * magic cookie, protocol versions, the handshake line, client-certificate verification, UNIMPLEMENTED for
 * optional RPCs, GRPCController.Shutdown — both for node started directly and for the launcher Terraform
 * really runs, whose session the warm provider daemon serves (provider/daemon.ts); and the loader
 * (bin/terraform-provider-mayastor), which runs the bundle with its code cache only when both are current.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateServerCert, ServerCert } from '../../provider/protocol/cert';
import { MAGIC_COOKIE_VALUE } from '../../provider/protocol/server';
import { MessageDesc, decode, encode } from '../../provider/protocol/proto';
import * as pb from '../../provider/protocol/tfplugin6';

const root = path.resolve(__dirname, '..', '..');
const bin = path.join(root, 'bin', 'terraform-provider-mayastor');
const launcher = path.join(root, 'provider', 'launcher', 'build', 'mayastor-provider-launcher');
const launcherArgs = [process.execPath, bin]; // what scripts/install-provider.js's shim runs

beforeAll(() => {
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], {
    encoding: 'utf8',
  });
  if (r.status !== 0 && !/error TS/.test(r.stdout)) throw new Error(r.stdout + r.stderr);
  // the rest of `npm run build:ts`: the bundle and its trained code cache
  const b = spawnSync(process.execPath, [path.join(root, 'provider', 'launcher', 'bundle.js')], { encoding: 'utf8' });
  if (b.status !== 0) throw new Error(b.stdout + b.stderr);
}, 180_000);

// How Terraform's launch reaches the provider: [name, executable, args, extra environment]
const modes: Array<[string, string, string[], NodeJS.ProcessEnv]> = [
  ['node started directly on the bundle', bin, [], { MAYASTOR_PROVIDER_DAEMON: 'off' }],
  ['node started directly on tsc output', process.execPath, [path.join(root, 'dist', 'provider', 'main.js')], {}],
  ['launcher + provider daemon', launcher, launcherArgs, { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR }],
];

function run(env: NodeJS.ProcessEnv, [, exe, args, extra]: (typeof modes)[number]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(exe, args, { env: { PATH: process.env.PATH, ...extra, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.each(modes)('%s', (...mode) => {
  test('without the magic cookie it refuses to run, like go-plugin', () => {
    const r = run({}, mode);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/This binary is a plugin/);
    expect(run({ TF_PLUGIN_MAGIC_COOKIE: 'wrong' }, mode).code).toBe(1);
  });

  test('a host offering only protocol 5 is refused', () => {
    const r = run({ TF_PLUGIN_MAGIC_COOKIE: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '5' }, mode);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/protocol 6 only/);
  });

  test('a malformed PLUGIN_CLIENT_CERT is refused naming it', () => {
    const r = run(
      {
        TF_PLUGIN_MAGIC_COOKIE: MAGIC_COOKIE_VALUE,
        PLUGIN_PROTOCOL_VERSIONS: '5,6',
        PLUGIN_CLIENT_CERT: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
      },
      mode,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/PLUGIN_CLIENT_CERT/);
  });

  describe('served over AutoMTLS', () => {
    let proc: ChildProcess;
    let addr = '';
    let serverDer: Buffer;
    let clientCert: ServerCert;
    let stderr = '';

    beforeAll(async () => {
      clientCert = generateServerCert();
      const [, exe, args, extra] = mode;
      proc = spawn(exe, args, {
        env: {
          PATH: process.env.PATH,
          ...extra,
          TF_PLUGIN_MAGIC_COOKIE: MAGIC_COOKIE_VALUE,
          PLUGIN_PROTOCOL_VERSIONS: '6,5',
          PLUGIN_CLIENT_CERT: clientCert.certPem,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proc.stderr!.on('data', (d) => {
        stderr += d;
      });
      const line = await new Promise<string>((resolve, reject) => {
        let buf = '';
        proc.stdout!.on('data', (d) => {
          buf += d;
          const i = buf.indexOf('\n');
          if (i >= 0) resolve(buf.slice(0, i));
        });
        proc.on('exit', (c) => reject(new Error(`provider exited ${c}`)));
      });
      const parts = line.split('|');
      expect(parts.slice(0, 3)).toEqual(['1', '6', 'tcp']);
      expect(parts[4]).toBe('grpc');
      expect(parts).toHaveLength(6);
      expect(parts[5]).not.toMatch(/=/); // RawStdEncoding: no padding
      addr = parts[3];
      serverDer = Buffer.from(parts[5], 'base64');
    });

    afterAll(() => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    });

    const pemOf = (der: Buffer) =>
      `-----BEGIN CERTIFICATE-----\n${der
        .toString('base64')
        .match(/.{1,64}/g)!
        .join('\n')}\n-----END CERTIFICATE-----\n`;

    function call(creds: grpc.ChannelCredentials, method: string, req: MessageDesc, res: MessageDesc): Promise<Record<string, unknown>> {
      const client = new grpc.Client(addr, creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          method,
          (o: Record<string, unknown>) => encode(req, o),
          (b: Buffer) => decode(res, b),
          {},
          { deadline: Date.now() + 10_000 },
          (err, value) => {
            client.close();
            if (err) {
              err.message += ` [provider exit=${proc.exitCode} stderr=${stderr.slice(-500)}]`;
              reject(err);
            } else resolve(value!);
          },
        );
      });
    }

    test('the host certificate gets the schema; the server certificate verifies as localhost', async () => {
      const creds = grpc.credentials.createSsl(Buffer.from(pemOf(serverDer)), Buffer.from(clientCert.keyPem), Buffer.from(clientCert.certPem));
      const schema = await call(creds, '/tfplugin6.Provider/GetProviderSchema', pb.Empty, pb.GetProviderSchemaResponse);
      expect(Object.keys(schema.resource_schemas as object).sort()).toEqual(expect.arrayContaining(['mayastor_nexus', 'mayastor_pool', 'mayastor_replica']));
    });

    test('a client presenting another certificate, or none, is rejected', async () => {
      const other = generateServerCert();
      const wrong = grpc.credentials.createSsl(Buffer.from(pemOf(serverDer)), Buffer.from(other.keyPem), Buffer.from(other.certPem));
      await expect(call(wrong, '/tfplugin6.Provider/GetProviderSchema', pb.Empty, pb.GetProviderSchemaResponse)).rejects.toMatchObject({
        code: grpc.status.UNAVAILABLE,
      });
      const none = grpc.credentials.createSsl(Buffer.from(pemOf(serverDer)));
      await expect(call(none, '/tfplugin6.Provider/GetProviderSchema', pb.Empty, pb.GetProviderSchemaResponse)).rejects.toMatchObject({
        code: grpc.status.UNAVAILABLE,
      });
    });

    test('optional newer RPCs answer UNIMPLEMENTED, GetFunctions lists the functions; Shutdown exits the process', async () => {
      const creds = grpc.credentials.createSsl(Buffer.from(pemOf(serverDer)), Buffer.from(clientCert.keyPem), Buffer.from(clientCert.certPem));
      await expect(call(creds, '/tfplugin6.Provider/GetResourceIdentitySchemas', pb.Empty, pb.Empty)).rejects.toMatchObject({
        code: grpc.status.UNIMPLEMENTED,
      });
      await expect(call(creds, '/tfplugin6.Provider/MoveResourceState', pb.Empty, pb.Empty)).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
      const fns = (await call(creds, '/tfplugin6.Provider/GetFunctions', pb.Empty, pb.GetFunctionsResponse)) as { functions: Record<string, unknown> };
      expect(Object.keys(fns.functions)).toEqual(['replica_size']);
      const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
      await call(creds, '/plugin.GRPCController/Shutdown', pb.Empty, pb.Empty);
      expect(await exited).toBe(0);
    });
  });
});

describe('the loader (bin/terraform-provider-mayastor)', () => {
  const hostEnv = (extra: NodeJS.ProcessEnv = {}) => ({
    PATH: process.env.PATH,
    TF_PLUGIN_MAGIC_COOKIE: MAGIC_COOKIE_VALUE,
    PLUGIN_PROTOCOL_VERSIONS: '6',
    PLUGIN_CLIENT_CERT: generateServerCert().certPem,
    MAYASTOR_PROVIDER_LOADER_TRACE: '1',
    ...extra,
  });
  /** Starts `exe` as Terraform would, returns its handshake line and what the loader said it runs, and kills it. */
  function handshake(exe: string, extra: NodeJS.ProcessEnv = {}): Promise<{ line: string; running: string }> {
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [exe], { env: hostEnv(extra), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stderr!.on('data', (d) => (err += d));
      p.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('\n')) p.kill('SIGKILL');
      });
      p.on('error', reject);
      p.on('close', () => resolve({ line: out.split('\n')[0], running: /running (.*)/.exec(err)?.[1] ?? `nothing said: ${err}` }));
    });
  }
  const HANDSHAKE = /^1\|6\|tcp\|127\.0\.0\.1:\d+\|grpc\|[A-Za-z0-9+/]+$/;

  test('after the build it runs the bundle with its code cache, which V8 accepts', async () => {
    const r = await handshake(bin);
    expect(r.line).toMatch(HANDSHAKE);
    expect(r.running).toBe('the bundle, code cache accepted');
  });

  test('MAYASTOR_PROVIDER_BUNDLE=off runs tsc output', async () => {
    const r = await handshake(bin, { MAYASTOR_PROVIDER_BUNDLE: 'off' });
    expect(r.line).toMatch(HANDSHAKE);
    expect(r.running).toBe('dist/provider/main.js (MAYASTOR_PROVIDER_BUNDLE=off)');
  });

  describe('in a copy of the build', () => {
    let copy: string;
    let copyBin: string;
    const dist = () => path.join(copy, 'dist');
    beforeEach(() => {
      copy = fs.mkdtempSync(path.join(os.tmpdir(), 'mayastor-loader-'));
      fs.mkdirSync(path.join(copy, 'bin'));
      copyBin = path.join(copy, 'bin', 'terraform-provider-mayastor');
      fs.copyFileSync(bin, copyBin);
      // dist as built (tsc output, bundle, cache); node_modules for tsc's output
      fs.cpSync(path.join(root, 'dist', 'provider'), path.join(dist(), 'provider'), { recursive: true, preserveTimestamps: true });
      fs.cpSync(path.join(root, 'dist', 'agent', 'api'), path.join(dist(), 'agent', 'api'), { recursive: true, preserveTimestamps: true });
      for (const f of ['provider.bundle.js', 'provider.bundle.cache', 'provider.bundle.inputs.json']) {
        fs.cpSync(path.join(root, 'dist', f), path.join(dist(), f), { preserveTimestamps: true });
      }
      fs.symlinkSync(path.join(root, 'node_modules'), path.join(copy, 'node_modules'));
    });
    afterEach(() => fs.rmSync(copy, { recursive: true, force: true }));

    test('tsc rewriting the same files keeps the bundle; a changed file runs tsc output instead', async () => {
      const main = path.join(dist(), 'provider', 'main.js');
      const later = new Date(Date.now() + 60_000);
      fs.utimesSync(main, later, later); // what tsc does: every file rewritten, newer than the bundle
      expect((await handshake(copyBin)).running).toBe('the bundle, code cache accepted');
      fs.appendFileSync(path.join(dist(), 'provider', 'protocol', 'log.js'), '\n// changed\n');
      const r = await handshake(copyBin);
      expect(r.line).toMatch(HANDSHAKE);
      expect(r.running).toBe('dist/provider/main.js (tsc output changed after the bundle was made)');
      fs.rmSync(path.join(dist(), 'provider.bundle.inputs.json'));
      expect((await handshake(copyBin)).running).toBe('dist/provider/main.js (tsc output changed after the bundle was made)');
    });

    test('a damaged, foreign or missing cache is not used and the provider still serves', async () => {
      const cache = path.join(dist(), 'provider.bundle.cache');
      const good = fs.readFileSync(cache);
      const cases: Array<[string, Buffer, string]> = [
        ['empty', Buffer.alloc(0), 'absent'],
        ['garbage', Buffer.from('not a cache at all, just bytes'), 'absent'],
        ['header length past the end', Buffer.concat([good.subarray(0, 8), Buffer.from([0xff, 0xff, 0xff, 0x7f])]), 'absent'],
        ['V8 data cut short', good.subarray(0, good.length >> 1), 'absent'],
        ['V8 data damaged (would crash node)', Buffer.concat([good.subarray(0, good.length - 64), Buffer.alloc(64, 0x5a)]), 'absent'],
      ];
      for (const [what, bytes, verdict] of cases) {
        fs.writeFileSync(cache, bytes);
        const r = await handshake(copyBin);
        expect([what, r.line]).toEqual([what, expect.stringMatching(HANDSHAKE)]);
        expect([what, r.running]).toEqual([what, `the bundle, code cache ${verdict}`]);
      }
      // a cache made for another bundle of the same length: not used, though V8 (which checks the length) would
      fs.writeFileSync(cache, good);
      const b = path.join(dist(), 'provider.bundle.js');
      const text = fs.readFileSync(b, 'utf8');
      const at = text.indexOf('"use strict"');
      fs.writeFileSync(b, text.slice(0, at) + "'use strict'" + text.slice(at + 12));
      expect((await handshake(copyBin)).running).toBe('the bundle, code cache absent');
      fs.rmSync(cache);
      expect((await handshake(copyBin)).running).toBe('the bundle, code cache absent');
    });

    test('without the bundle it runs tsc output; without either it says how to build', async () => {
      fs.rmSync(path.join(dist(), 'provider.bundle.js'));
      expect((await handshake(copyBin)).running).toBe('dist/provider/main.js (no bundle)');
      fs.rmSync(path.join(dist(), 'provider'), { recursive: true });
      const r = spawnSync(process.execPath, [copyBin], { env: hostEnv(), encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('dist/provider/main.js is missing; run `npm run build:ts` first');
    });
  });
});
