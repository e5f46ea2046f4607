#!/usr/bin/env node
/**
 * Build step after tsc (`npm run build:ts`): the provider as Terraform starts it cold.
 *  1. dist/provider.bundle.js: dist/provider/main.js and everything it requires (grpc-js, undici, msgpack, ours) in
 *     one file, made by esbuild: no module resolution (hundreds of stat/package.json reads) at start; and
 *     dist/provider.bundle.inputs.json, the sha256 of each of our files in it (the loader's staleness check).
 *  2. dist/provider.bundle.cache: V8's code cache of that file after a training session, so a cold start neither
 *     parses nor compiles what a `terraform plan` runs. The training starts the provider through
 *     bin/terraform-provider-mayastor (MAYASTOR_PROVIDER_CODE_CACHE_OUT) exactly as Terraform does (magic cookie,
 *     AutoMTLS), and plays Terraform's side of a plan over gRPC for every resource and data source against a fake
 *     agent on 127.0.0.1 (reads answer a plausible object, everything else 404); the provider writes the cache at exit.
 * Both are written atomically (temporary file + rename); a provider daemon running the old ones sees them change
 * and retires. The loader (bin/terraform-provider-mayastor) ignores a cache made from another bundle.
 *
 *   node provider/launcher/bundle.js [--no-cache] [--verbose]
 */
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');

const root = path.resolve(__dirname, '..', '..');
const dist = path.join(root, 'dist');
const entry = path.join(dist, 'provider', 'main.js');
const bundle = path.join(dist, 'provider.bundle.js');
const cache = path.join(dist, 'provider.bundle.cache');
const inputsFile = path.join(dist, 'provider.bundle.inputs.json');
const loader = path.join(root, 'bin', 'terraform-provider-mayastor');
const TRAIN_TIMEOUT_MS = 60_000;
const verbose = process.argv.includes('--verbose');

function die(msg) {
  process.stderr.write(`provider bundle: ${msg}\n`);
  process.exit(1);
}

function buildBundle() {
  if (!fs.existsSync(entry)) die(`${entry} is missing: run tsc first`);
  let esbuild;
  try {
    esbuild = require('esbuild');
  } catch {
    // an install without dev dependencies: the provider runs from tsc output (slower cold starts), not stale files
    for (const f of [bundle, cache, inputsFile]) fs.rmSync(f, { force: true });
    process.stderr.write('provider bundle: esbuild is not installed (dev dependency); the provider runs from dist/provider/main.js\n');
    process.exit(0);
  }
  const tmp = `${bundle}.${process.pid}.tmp`;
  const result = esbuild.buildSync({
    entryPoints: [entry],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // grpc-js's optional tracing and undici's optional deps that node lacks stay unresolved requires
    logLevel: 'error',
    legalComments: 'none',
    metafile: true,
  });
  // our own inputs (tsc's output) and their digests: `tsc` rewrites them all, usually unchanged, and the loader
  // then checks these to know whether the bundle is still current
  const inputs = {};
  for (const f of Object.keys(result.metafile.inputs).sort()) {
    const abs = path.resolve(root, f);
    if (abs.startsWith(dist + path.sep)) inputs[path.relative(dist, abs)] = crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
  }
  fs.rmSync(cache, { force: true }); // the old cache belongs to the old bundle
  fs.writeFileSync(`${inputsFile}.${process.pid}.tmp`, JSON.stringify({ inputs }) + '\n');
  fs.renameSync(`${inputsFile}.${process.pid}.tmp`, inputsFile);
  fs.renameSync(tmp, bundle);
}

/** A fake agent: GET of pools/replicas/nexuses (lists and single) and the node answer plausible objects, else 404. */
function fakeAgent() {
  const objects = {
    pools: (k) => ({ name: k, uuid: '00000000-0000-4000-8000-00000000000a', disks: ['/dev/null'], state: 'online', capacityBytes: 1 << 30, usedBytes: 0 }),
    replicas: (k) => ({ uuid: k, pool: 'p', sizeBytes: 1048576, thin: true, share: 'none', allowedHosts: [], uri: `bdev:///${k}`, allocatedBytes: 0 }),
    nexuses: (k) => ({ uuid: k, sizeBytes: 1048576, state: 'online', share: 'none', allowedHosts: [], deviceUri: `bdev:///${k}`, children: [] }),
  };
  const server = http.createServer((req, res) => {
    const m = /^\/v1\/(pools|replicas|nexuses)\/([^/?]+)$/.exec(req.url ?? '');
    let status = 404;
    let body = { error: { code: 'not_found', message: `${req.method} ${req.url}: not here (training)` } };
    if (req.method === 'GET' && m) [status, body] = [200, objects[m[1]](decodeURIComponent(m[2]))];
    else if (req.method === 'GET' && req.url === '/v1/node') {
      [status, body] = [200, { name: 'a', version: '0', datapathVersion: '0', listeners: {}, shares: ['none', 'nbd'], nvmfHostNqn: '', capabilities: [] }];
    } else if (req.method === 'GET' && /^\/v1\/(pools|replicas|nexuses)$/.test(req.url ?? '')) {
      const kind = req.url.slice(4);
      [status, body] = [200, kind === 'pools' ? [objects.pools('p')] : [1, 2, 3].map((i) => objects[kind](sample('uuid', i)))];
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Plausible values by attribute name, for configs and states built from the schema (others null). */
function sample(name, uuidIndex) {
  const values = {
    node: 'a',
    name: 'p',
    pool: 'p',
    uuid: `00000000-0000-4000-8000-${String(uuidIndex).padStart(12, '0')}`,
    size_bytes: 1048576,
    thin: true,
    disks: ['/dev/null'],
    share: 'none',
    allowed_hosts: [],
    children: [],
  };
  return values[name];
}

async function train() {
  const grpc = require('@grpc/grpc-js');
  const { encode, decode } = require(path.join(dist, 'provider', 'protocol', 'proto.js'));
  const pb = require(path.join(dist, 'provider', 'protocol', 'tfplugin6.js'));
  const { generateServerCert } = require(path.join(dist, 'provider', 'protocol', 'cert.js'));
  const cty = require(path.join(dist, 'provider', 'protocol', 'cty.js'));
  const { objectType } = require(path.join(dist, 'provider', 'protocol', 'schema.js'));
  const { makeProvider } = require(path.join(dist, 'provider', 'provider.js'));
  const { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } = require(path.join(dist, 'provider', 'protocol', 'server.js'));

  const agent = await fakeAgent();
  const agentUrl = `http://127.0.0.1:${agent.address().port}`;
  const clientCert = generateServerCert();
  const out = `${cache}.${process.pid}.tmp`;
  const child = spawn(process.execPath, [loader], {
    env: {
      ...process.env,
      [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE,
      PLUGIN_PROTOCOL_VERSIONS: '6',
      PLUGIN_CLIENT_CERT: clientCert.certPem,
      MAYASTOR_PROVIDER_CODE_CACHE_OUT: out,
      MAYASTOR_TOKEN: 'training',
      MAYASTOR_PROVIDER_BUNDLE: '', // the bundle is what we train, whatever this shell says
      TF_LOG: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  const timer = setTimeout(() => {
    child.kill('SIGKILL');
    die(`training session timed out after ${TRAIN_TIMEOUT_MS} ms:\n${stderr}`);
  }, TRAIN_TIMEOUT_MS);

  const line = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    exited.then((c) => reject(new Error(`provider exited (${c}) before its handshake:\n${stderr}`)));
  });
  const m = /^1\|6\|tcp\|([^|]+)\|grpc\|([A-Za-z0-9+/]+)$/.exec(line);
  if (!m) throw new Error(`bad handshake line: ${line}`);
  const der = Buffer.from(m[2], 'base64'); // the handshake drops the base64 padding
  const serverPem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`;
  const creds = grpc.credentials.createSsl(Buffer.from(serverPem), Buffer.from(clientCert.keyPem), Buffer.from(clientCert.certPem));
  const client = new grpc.Client(m[1], creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
  const call = (service, method, reqDesc, resDesc, req) =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(
        `/${service}/${method}`,
        (o) => encode(reqDesc, o),
        (b) => decode(resDesc, b),
        req,
        (err, res) => {
          if (err) return reject(new Error(`${method}: ${err.message}`));
          // --verbose: what the provider said (the training should take the paths a real plan takes)
          if (verbose) console.log(method, req.type_name ?? '', JSON.stringify(res.diagnostics?.map((d) => `${d.summary}: ${d.detail ?? ""}`) ?? []));
          resolve(res);
        },
      ),
    );
  const rpc = (method, reqDesc, resDesc, req = {}) => call('tfplugin6.Provider', method, reqDesc, resDesc, req);

  // Terraform's side of `terraform plan` (schema, validate, configure, then upgrade/read/plan per resource).
  const def = makeProvider({});
  const dv = (t, v) => ({ msgpack: cty.encodeMsgpack(t, v) });
  const filled = (schema, i) => {
    const t = objectType(schema);
    const json = {};
    for (const name of Object.keys(schema.attributes)) json[name] = sample(name, i) ?? null;
    return [t, cty.fromJson(t, json, true)];
  };
  await rpc('GetProviderSchema', pb.Empty, pb.GetProviderSchemaResponse);
  await rpc('GetMetadata', pb.Empty, pb.GetMetadataResponse);
  await rpc('GetFunctions', pb.Empty, pb.GetFunctionsResponse);
  const pt = objectType(def.schema);
  const pjson = Object.fromEntries(Object.keys(def.schema.attributes).map((k) => [k, null]));
  pjson.nodes = { a: agentUrl };
  const pcfg = dv(pt, cty.fromJson(pt, pjson, true));
  await rpc('ValidateProviderConfig', pb.ValidateProviderConfigRequest, pb.ValidateProviderConfigResponse, { config: pcfg });
  for (const r of def.resources) {
    const [t, v] = filled(r.schema, 1);
    await rpc('ValidateResourceConfig', pb.ValidateResourceConfigRequest, pb.DiagnosticsOnly, { type_name: r.typeName, config: dv(t, v) });
  }
  for (const d of def.dataSources) {
    const [t, v] = filled(d.schema, 1);
    await rpc('ValidateDataResourceConfig', pb.ValidateDataResourceConfigRequest, pb.DiagnosticsOnly, { type_name: d.typeName, config: dv(t, v) });
  }
  await rpc('ConfigureProvider', pb.ConfigureProviderRequest, pb.DiagnosticsOnly, { terraform_version: '1.11.4', config: pcfg });
  // a few rounds, several calls in flight as Terraform makes them (its parallelism is 10)
  for (let round = 0; round < 3; round++) {
    await Promise.all(
      def.resources.flatMap((r) =>
        [1, 2, 3].map(async (i) => {
          const [t, v] = filled(r.schema, i);
          const json = Buffer.from(JSON.stringify(cty.toJson(t, v)));
          const up = await rpc('UpgradeResourceState', pb.UpgradeResourceStateRequest, pb.UpgradeResourceStateResponse, {
            type_name: r.typeName,
            version: r.schema.version ?? 0,
            raw_state: { json },
          });
          const read = await rpc('ReadResource', pb.ReadResourceRequest, pb.ReadResourceResponse, { type_name: r.typeName, current_state: up.upgraded_state ?? dv(t, v) });
          const prior = read.new_state ?? dv(t, v);
          await rpc('PlanResourceChange', pb.PlanResourceChangeRequest, pb.PlanResourceChangeResponse, {
            type_name: r.typeName,
            prior_state: prior,
            proposed_new_state: prior,
            config: dv(t, v),
          });
        }),
      ),
    );
    await Promise.all(
      def.dataSources.map((d) => {
        const [t, v] = filled(d.schema, 1);
        return rpc('ReadDataSource', pb.ReadDataSourceRequest, pb.ReadDataSourceResponse, { type_name: d.typeName, config: dv(t, v) });
      }),
    );
  }
  await rpc('StopProvider', pb.Empty, pb.StopProviderResponse);
  await call('plugin.GRPCController', 'Shutdown', pb.Empty, pb.Empty, {});
  const code = await exited;
  clearTimeout(timer);
  client.close();
  agent.close();
  if (code !== 0) throw new Error(`provider exited ${code} after the training session:\n${stderr}`);
  if (!fs.existsSync(out)) throw new Error(`the provider wrote no code cache (${out}):\n${stderr}`);
  fs.renameSync(out, cache);
}

buildBundle();
if (!process.argv.includes('--no-cache')) {
  train().catch((e) => die(`training the code cache failed: ${e.stack ?? e}`));
}
