/**
 * go-plugin server side: magic cookie check, AutoMTLS, the gRPC server (tfplugin6.Provider +
 * plugin.GRPCController) and the stdout handshake line `1|6|tcp|ADDR|grpc|CERT`.
 */
import * as grpc from '@grpc/grpc-js';
import { MessageDesc, decode, encode } from './proto';
import * as pb from './tfplugin6';
import { ProviderService } from './framework';
import { checkClientCert, generateServerCert } from './cert';
import { logger } from './log';
import { PluginHost, processHost, withHost } from './host';

export const MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE';
export const MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';

type Handler = (req: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>;

function unary(service: string, name: string, req: MessageDesc, res: MessageDesc): grpc.MethodDefinition<Record<string, unknown>, Record<string, unknown>> {
  return {
    path: `/${service}/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (o: Record<string, unknown>) => encode(req, o),
    requestDeserialize: (b: Buffer) => decode(req, b),
    responseSerialize: (o: Record<string, unknown>) => encode(res, o),
    responseDeserialize: (b: Buffer) => decode(res, b),
  };
}

function wrap(host: PluginHost, name: string, fn: Handler): grpc.handleUnaryCall<Record<string, unknown>, Record<string, unknown>> {
  return (call, callback) =>
    withHost(host, () => {
      const started = Date.now();
      logger.trace(`${name} received`, { tf_rpc: name });
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (res) => {
            logger.trace(`${name} done`, { tf_rpc: name, ms: Date.now() - started });
            callback(null, res);
          },
          (e: Error) => {
            logger.error(`${name} failed`, { tf_rpc: name, error: e?.stack ?? String(e) });
            callback({ code: grpc.status.INTERNAL, details: e?.message ?? String(e) } as grpc.ServiceError, null);
          },
        );
    });
}

export interface ServeOptions {
  /** Serve plaintext and print TF_REATTACH_PROVIDERS instead of the handshake (for debugging). */
  debug?: boolean;
  providerAddress?: string;
  /** The session: this process (the default) or a launcher served by the provider daemon. */
  host?: PluginHost;
}

/** Why this environment is not a go-plugin host we can serve, as the message to print; undefined when it is. */
export function handshakeProblem(env: PluginHost['env']): string | undefined {
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    return (
      'This binary is a plugin. These are not meant to be executed directly.\n' +
      'Please execute the program that consumes these plugins, which will\n' +
      'load any plugins automatically\n'
    );
  }
  const versions = (env.PLUGIN_PROTOCOL_VERSIONS ?? '6').split(',').map((s) => s.trim());
  if (!versions.includes('6')) return `terraform-provider-mayastor speaks plugin protocol 6 only; the host offers ${versions.join(',')}\n`;
  return undefined;
}

export interface Served {
  /** Ends the session now (its launcher went away): in-flight calls are cancelled, the port is closed. */
  abandon(): void;
}

export function serve<C>(service: ProviderService<C>, opts: ServeOptions = {}): Served {
  const host = opts.host ?? processHost;
  const fail = (message: string): Served => {
    host.stderr(message);
    host.exit(1);
    return { abandon: () => undefined };
  };
  if (!opts.debug) {
    const problem = handshakeProblem(host.env);
    if (problem) return fail(problem);
  }

  const server = new grpc.Server({
    // channelz bookkeeping costs time on every call, and nothing reads it in a plugin
    'grpc.enable_channelz': 0,
    'grpc.max_receive_message_length': 256 * 1024 * 1024,
    'grpc.max_send_message_length': 256 * 1024 * 1024,
  });
  const P = 'tfplugin6.Provider';
  const methods: [string, MessageDesc, MessageDesc, Handler][] = [
    ['GetMetadata', pb.Empty, pb.GetMetadataResponse, () => service.getMetadata()],
    ['GetProviderSchema', pb.Empty, pb.GetProviderSchemaResponse, () => service.getProviderSchema()],
    ['ValidateProviderConfig', pb.ValidateProviderConfigRequest, pb.ValidateProviderConfigResponse, (r) => service.validateProviderConfig(r)],
    ['ValidateResourceConfig', pb.ValidateResourceConfigRequest, pb.DiagnosticsOnly, (r) => service.validateResourceConfig(r)],
    ['ValidateDataResourceConfig', pb.ValidateDataResourceConfigRequest, pb.DiagnosticsOnly, (r) => service.validateDataResourceConfig(r)],
    ['UpgradeResourceState', pb.UpgradeResourceStateRequest, pb.UpgradeResourceStateResponse, (r) => service.upgradeResourceState(r)],
    ['ConfigureProvider', pb.ConfigureProviderRequest, pb.DiagnosticsOnly, (r) => service.configureProvider(r)],
    ['ReadResource', pb.ReadResourceRequest, pb.ReadResourceResponse, (r) => service.readResource(r)],
    ['PlanResourceChange', pb.PlanResourceChangeRequest, pb.PlanResourceChangeResponse, (r) => service.planResourceChange(r)],
    ['ApplyResourceChange', pb.ApplyResourceChangeRequest, pb.ApplyResourceChangeResponse, (r) => service.applyResourceChange(r)],
    ['ImportResourceState', pb.ImportResourceStateRequest, pb.ImportResourceStateResponse, (r) => service.importResourceState(r)],
    ['ReadDataSource', pb.ReadDataSourceRequest, pb.ReadDataSourceResponse, (r) => service.readDataSource(r)],
    ['GetFunctions', pb.Empty, pb.GetFunctionsResponse, () => service.getFunctions()],
    ['CallFunction', pb.CallFunctionRequest, pb.CallFunctionResponse, (r) => service.callFunction(r)],
    ['StopProvider', pb.Empty, pb.StopProviderResponse, () => service.stopProvider()],
  ];
  // Methods not registered here (GetResourceIdentitySchemas, ephemeral, ...) answer UNIMPLEMENTED.
  const def: Record<string, grpc.MethodDefinition<Record<string, unknown>, Record<string, unknown>>> = {};
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [name, req, res, fn] of methods) {
    def[name] = unary(P, name, req, res);
    impl[name] = wrap(host, name, fn);
  }
  server.addService(def as grpc.ServiceDefinition, impl);

  server.addService(
    { Shutdown: unary('plugin.GRPCController', 'Shutdown', pb.Empty, pb.Empty) },
    {
      Shutdown: wrap(host, 'Shutdown', () => {
        logger.debug('shutdown requested by host');
        // Reply first, then exit as soon as the host has the reply: tryShutdown completes once this call is done
        // and the connection is closed (Terraform waits for our exit before its next step, so no fixed delay).
        setImmediate(() => {
          const fallback = setTimeout(() => {
            server.forceShutdown();
            finish(0);
          }, 250);
          server.tryShutdown(() => {
            clearTimeout(fallback);
            finish(0);
          });
        });
        return {};
      }),
    },
  );

  let finished = false;
  const finish = (code: number) => {
    if (finished) return;
    finished = true;
    host.exit(code);
  };

  const clientCert = host.env.PLUGIN_CLIENT_CERT;
  let creds: grpc.ServerCredentials;
  let certField = '';
  if (clientCert && !opts.debug) {
    try {
      checkClientCert(clientCert);
    } catch (e) {
      return fail(`terraform-provider-mayastor: ${(e as Error).message}\n`);
    }
    const cert = generateServerCert();
    // checkClientCertificate=true: the host must present the certificate it handed us (RequireAndVerifyClientCert)
    creds = grpc.ServerCredentials.createSsl(Buffer.from(clientCert), [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }], true);
    certField = cert.der.toString('base64').replace(/=+$/, '');
  } else {
    creds = grpc.ServerCredentials.createInsecure();
  }

  server.bindAsync('127.0.0.1:0', creds, (err, port) =>
    withHost(host, () => {
      if (err) {
        host.stderr(`terraform-provider-mayastor: cannot listen: ${err.message}\n`);
        finish(1);
        return;
      }
      if (finished) {
        server.forceShutdown();
        return;
      }
      const addr = `127.0.0.1:${port}`;
      if (opts.debug) {
        const reattach = {
          [opts.providerAddress ?? 'registry.terraform.io/mayastor/mayastor']: {
            Protocol: 'grpc',
            ProtocolVersion: 6,
            Pid: process.pid,
            Test: true,
            Addr: { Network: 'tcp', String: addr },
          },
        };
        host.stdout(`Provider started. To attach Terraform, set:\nTF_REATTACH_PROVIDERS='${JSON.stringify(reattach)}'\n`);
        return;
      }
      host.stdout(`1|6|tcp|${addr}|grpc${certField ? `|${certField}` : ''}\n`);
      logger.debug('plugin started', { address: addr, tls: !!certField });
    }),
  );

  return {
    abandon() {
      if (finished) return;
      finished = true;
      withHost(host, () => service.stopProvider());
      server.forceShutdown();
    },
  };
}
