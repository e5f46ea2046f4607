/**
 * docs/openapi.json against the server that really runs: an agent started in-process on a temp
 * dir (real data path, nothing mocked). The routes come from fastify itself (printRoutes of the
 * live instance), so a route added to or removed from agent/src/server.ts without the document
 * following fails here. Objects the agent answers are checked against the document's schemas
 * (required fields present, no undocumented field, enums), and the auth rule (401 everywhere but
 * /v1/health) is checked on every documented operation.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import type { Agent } from '../../agent/src/main';
import type { AgentClient } from '../../agent/api/client';
import { MiB, ROOT, cleanup, makeDisk, startInProcess, tempDir } from '../helpers/agent';

type Json = Record<string, unknown>;
const doc = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs/openapi.json'), 'utf8')) as Json & {
  paths: Record<string, Record<string, Json>>;
  components: Json;
};
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/** Resolve a local $ref ("#/components/schemas/Pool"). */
function deref(v: unknown): Json {
  let o = v as Json;
  for (let i = 0; o && typeof o.$ref === 'string'; i++) {
    if (i > 20) throw new Error(`$ref loop at ${String(o.$ref)}`);
    const ref = o.$ref as string;
    if (!ref.startsWith('#/')) throw new Error(`only local $refs: ${ref}`);
    let cur: unknown = doc;
    for (const part of ref.slice(2).split('/')) cur = (cur as Json | undefined)?.[part];
    if (cur === undefined) throw new Error(`unresolved $ref ${ref}`);
    o = cur as Json;
  }
  return o;
}

/** Every $ref anywhere in the document. */
function refs(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) v.forEach((x) => refs(x, out));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string') out.push(x);
      else refs(x, out);
    }
  }
  return out;
}

/** "METHOD /openapi/{path}" for every route of a live fastify instance (HEAD is fastify's automatic twin of GET). */
function liveRoutes(app: FastifyInstance): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│├└─\s]*?)(\/\S*) \(([^)]*)\)\s*$/.exec(line);
    if (!m) continue;
    const level = Math.max(0, Math.round([...m[1]].length / 4) - 1); // "├── " is the top level
    stack.length = level;
    stack[level] = m[2];
    const full = stack.join('');
    for (const meth of m[3].split(',').map((s) => s.trim())) {
      if (meth === '-' || meth === 'HEAD' || meth === '') continue;
      out.add(`${meth} ${full.replace(/:([A-Za-z_]+)/g, '{$1}')}`);
    }
  }
  return out;
}

function docRoutes(): Set<string> {
  const out = new Set<string>();
  for (const [p, item] of Object.entries(doc.paths)) for (const m of Object.keys(item)) if (METHODS.includes(m)) out.add(`${m.toUpperCase()} ${p}`);
  return out;
}

/** A small JSON-schema check: types, required, no undocumented properties, enums, array items. */
function conform(value: unknown, schemaIn: unknown, where: string): string[] {
  const s = deref(schemaIn);
  const errs: string[] = [];
  const t = s.type as string | undefined;
  if (s.enum && !(s.enum as unknown[]).includes(value)) errs.push(`${where}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`);
  if (t === 'object') {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return [`${where}: not an object`];
    const v = value as Json;
    for (const r of (s.required as string[] | undefined) ?? []) if (!(r in v)) errs.push(`${where}: required '${r}' missing`);
    const props = (s.properties ?? {}) as Record<string, unknown>;
    for (const [k, x] of Object.entries(v)) {
      if (k in props) errs.push(...conform(x, props[k], `${where}.${k}`));
      else if (s.additionalProperties && typeof s.additionalProperties === 'object') errs.push(...conform(x, s.additionalProperties, `${where}.${k}`));
      else if (s.properties) errs.push(`${where}: '${k}' is not in the document's schema`);
    }
  } else if (t === 'array') {
    if (!Array.isArray(value)) return [`${where}: not an array`];
    value.forEach((x, i) => errs.push(...conform(x, s.items, `${where}[${i}]`)));
  } else if (t === 'integer') {
    if (!Number.isInteger(value)) errs.push(`${where}: ${JSON.stringify(value)} is not an integer`);
  } else if (t === 'string' || t === 'boolean' || t === 'number') {
    if (typeof value !== t) errs.push(`${where}: ${JSON.stringify(value)} is not a ${t}`);
  }
  return errs;
}

function responseSchema(p: string, method: string, status: number): unknown {
  const op = doc.paths[p]?.[method] as Json | undefined;
  if (!op) throw new Error(`the document has no ${method.toUpperCase()} ${p}`);
  const r = (op.responses as Json)[String(status)];
  if (!r) throw new Error(`${method.toUpperCase()} ${p} documents no ${status} response`);
  return (deref(r).content as Record<string, Json> | undefined)?.['application/json']?.schema;
}

describe('docs/openapi.json', () => {
  test('is an OpenAPI 3 document whose $refs all resolve and whose path parameters are declared', () => {
    expect(String(doc.openapi)).toMatch(/^3\./);
    for (const r of refs(doc)) expect(() => deref({ $ref: r })).not.toThrow();
    for (const [p, item] of Object.entries(doc.paths)) {
      const names = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const m of Object.keys(item).filter((k) => METHODS.includes(k))) {
        const params = [...((item.parameters as unknown[]) ?? []), ...(((item[m] as Json).parameters as unknown[]) ?? [])].map(deref);
        for (const n of names)
          expect({ op: `${m} ${p}`, param: n, declared: params.some((x) => x.name === n && x.in === 'path') }).toMatchObject({ declared: true });
        expect(Object.keys((item[m] as Json).responses as Json).length).toBeGreaterThan(0);
      }
    }
  });
});

describe('docs/openapi.json against a live agent', () => {
  let dir: string;
  let agent: Agent;
  let client: AgentClient;

  /** A raw HTTP call to the live agent (over TCP, as clients do). */
  async function http(method: string, url: string, opts: { auth?: boolean; body?: unknown } = {}) {
    const headers: Record<string, string> = {};
    if (opts.auth) headers.authorization = `Bearer ${agent.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await request(agent.url + url, { method: method as 'GET', headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const text = await res.body.text();
    return { statusCode: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as Json & { error: { message: string } } };
  }

  beforeAll(async () => {
    dir = tempDir('mayastor-openapi-');
    makeDisk(path.join(dir, 'disks', 'd0.img'), 64 * MiB);
    ({ agent, client } = await startInProcess(dir));
  });

  afterAll(async () => {
    await agent?.close();
    cleanup(dir);
  });

  test('documents exactly the routes the server registers', () => {
    const live = liveRoutes(agent.server);
    const documented = docRoutes();
    // the parser of printRoutes' tree must see nested routes with their full paths
    expect(live).toContain('POST /v1/nexuses/{uuid}/children/{action}');
    expect(live).toContain('PATCH /v1/replicas/{uuid}');
    expect(live).toContain('GET /metrics');
    expect([...live].filter((r) => !documented.has(r)).sort()).toEqual([]); // registered but undocumented
    expect([...documented].filter((r) => !live.has(r)).sort()).toEqual([]); // documented but not served
    for (const r of documented) {
      const [method, p] = r.split(' ');
      expect({ r, has: agent.server.hasRoute({ method: method as 'GET', url: p.replace(/\{([^}]+)\}/g, ':$1') }) }).toEqual({ r, has: true });
    }
  });

  test('every operation but GET /v1/health answers 401 without a token, in the documented error format', async () => {
    for (const r of docRoutes()) {
      const [method, p] = r.split(' ');
      const url = p.replace('{name}', 'p1').replace('{uuid}', '00000000-0000-4000-8000-000000000001').replace('{action}', 'online');
      const res = await http(method, url);
      const op = doc.paths[p][method.toLowerCase()] as Json;
      if (r === 'GET /v1/health') {
        expect(op.security).toEqual([]);
        expect(res.statusCode).toBe(200);
        continue;
      }
      expect({ r, status: res.statusCode }).toEqual({ r, status: 401 });
      expect(op.responses as Json).toHaveProperty('401');
      expect(conform(res.json(), responseSchema(p, method.toLowerCase(), 401), r)).toEqual([]);
    }
  });

  test('objects the agent answers match the documented schemas', async () => {
    const check = (p: string, m: string, status: number, v: unknown) => expect(conform(v, responseSchema(p, m, status), `${m} ${p}`)).toEqual([]);
    check('/v1/health', 'get', 200, await client.health());
    check('/v1/node', 'get', 200, (await client.call('GET', '/v1/node')).body);

    const pool = await client.call('PUT', '/v1/pools/p1', { disks: [path.join(dir, 'disks', 'd0.img')] });
    expect(pool.status).toBe(201);
    check('/v1/pools/{name}', 'put', 201, pool.body);
    check('/v1/pools', 'get', 200, await client.listPools());

    const R = '00000000-0000-4000-8000-000000000001';
    const R2 = '00000000-0000-4000-8000-000000000002';
    const rep = await client.call('PUT', `/v1/replicas/${R}`, { pool: 'p1', sizeBytes: 8 * MiB, thin: true, share: 'nbd', allowedHosts: ['127.0.0.1'] });
    check('/v1/replicas/{uuid}', 'put', 201, rep.body);
    await client.putReplica(R2, { pool: 'p1', sizeBytes: 8 * MiB, thin: true });
    check('/v1/replicas/{uuid}', 'patch', 200, (await client.call('PATCH', `/v1/replicas/${R}`, { share: 'none' })).body);
    check('/v1/replicas', 'get', 200, await client.listReplicas());

    const NX = 'aaaaaaaa-0000-4000-8000-000000000001';
    const nx = await client.call('PUT', `/v1/nexuses/${NX}`, { sizeBytes: 4 * MiB, children: [`bdev:///${R}`], share: 'nbd' });
    check('/v1/nexuses/{uuid}', 'put', 201, nx.body);
    check('/v1/nexuses/{uuid}/children', 'post', 200, (await client.call('POST', `/v1/nexuses/${NX}/children`, { uri: `bdev:///${R2}` })).body);
    check('/v1/nexuses/{uuid}', 'get', 200, await client.getNexus(NX));
    check('/v1/nexuses', 'get', 200, await client.listNexuses());

    // errors: each documented status that answers here carries {"error":{"code","message"}}
    const bad = await client.call('PUT', `/v1/replicas/${R2}`, { pool: 'p1', sizeBytes: 0 }).catch((e: { status: number }) => e);
    expect(bad).toMatchObject({ status: 400 });
    const raw = await http('GET', '/v1/pools/nope', { auth: true });
    expect(raw.statusCode).toBe(404);
    check('/v1/pools/{name}', 'get', 404, raw.json());
    const refused = await http('POST', '/v1/pools', { auth: true, body: {} });
    expect(refused.statusCode).toBe(400);
    check('/v1/pools', 'post', 400, refused.json());
    expect(refused.json().error.message).toContain('name');

    const metrics = await http('GET', '/metrics', { auth: true });
    expect(metrics.statusCode).toBe(200);
    const op = doc.paths['/metrics'].get as Json;
    const types = Object.keys(((op.responses as Json)['200'] as Json).content as Json);
    expect(types).toContain(String(metrics.headers['content-type']));
  });
});
