/**
 * The go-plugin side of the provider process, driven by a real grpc-js client over real mTLS:
 * magic cookie, protocol versions, the handshake line, client-certificate verification, UNIMPLEMENTED for
 * optional RPCs, GRPCController.Shutdown — both for node started directly and for the launcher Terraform
 * really runs, whose session the warm provider daemon serves (provider/daemon.ts).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateServerCert, ServerCert } from '../../provider/protocol/cert';
import { MAGIC_COOKIE_VALUE } from '../../provider/protocol/server';
import { MessageDesc, decode, encode } from '../../provider/protocol/proto';
import * as pb from '../../provider/protocol/tfplugin6';

const root = path.resolve(__dirname, '..', '..');
const bin = path.join(root, 'bin', 'terraform-provider-mayastor');
const launcher = path.join(root, 'provider', 'launcher', 'build', 'mayastor-provider-launcher');
const launcherArgs = [process.execPath, path.join(root, 'dist', 'provider', 'main.js')];

beforeAll(() => {
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], {
    encoding: 'utf8',
  });
  if (r.status !== 0 && !/error TS/.test(r.stdout)) throw new Error(r.stdout + r.stderr);
}, 120_000);

// How Terraform's launch reaches the provider: [name, executable, args, extra environment]
const modes: Array<[string, string, string[], NodeJS.ProcessEnv]> = [
  ['node started directly', bin, [], { MAYASTOR_PROVIDER_DAEMON: 'off' }],
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
      proc = spawn(bin, [], {
        env: { PATH: process.env.PATH, TF_PLUGIN_MAGIC_COOKIE: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '6,5', PLUGIN_CLIENT_CERT: clientCert.certPem },
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
      expect(Object.keys(schema.resource_schemas as object).sort()).toEqual(['mayastor_nexus', 'mayastor_pool', 'mayastor_replica']);
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
