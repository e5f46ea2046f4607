/**
 * server.ts - the HTTP API of DESIGN.md on fastify 5: /v1/health (open), /v1/node, /v1/pools...,
 * /v1/replicas..., /metrics. Every other route needs `Authorization: Bearer <token>`.
 * Errors are {"error":{"code","message"}} with 400/401/404/409/422/507/500.
 * Status codes: PUT creating -> 201, PUT of the same spec -> 200, DELETE -> 204.
 */
import Fastify, { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { Health, NodeInfo } from './api-types';
import { checkBearer } from './auth';
import type { Context } from './context';
import { ApiError, badRequest, fromStuck } from './errors';
import { HttpCounters, renderMetrics } from './metrics';
import type { NexusService } from './nexuses';
import type { PoolService } from './pools';
import type { ReplicaService } from './replicas';
import type { ShareService } from './shares';

export interface ServerDeps {
  ctx: Context;
  pools: PoolService;
  replicas: ReplicaService;
  nexuses?: NexusService;
  shares?: ShareService;
  token: string;
  version: string;
  /** Filled in once listening: { http: "127.0.0.1:9500", ... } */
  listeners: Record<string, string>;
}

function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).type('application/json').send({ error: { code, message } });
}

export function buildServer(deps: ServerDeps): FastifyInstance {
  const { ctx, pools, replicas, nexuses, shares } = deps;
  const http = new HttpCounters();
  const app = Fastify({ logger: false, routerOptions: { maxParamLength: 2048 }, bodyLimit: 1 << 20, return503OnClosing: true, forceCloseConnections: true });

  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0];
    if (path === '/v1/health') return;
    if (!checkBearer(req.headers.authorization, deps.token)) {
      reply.header('www-authenticate', 'Bearer realm="mayastor"');
      const why = req.headers.authorization ? 'the bearer token is wrong' : 'an Authorization: Bearer <token> header is required';
      ctx.log.warn('http.unauthorized', { method: req.method, url: path, ip: req.ip });
      return sendError(reply, 401, 'unauthorized', why);
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    http.count(req.method, reply.statusCode);
    ctx.log.debug('http.request', { method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) });
  });

  app.setErrorHandler((err: FastifyError | ApiError | Error, req, reply) => {
    if (err instanceof ApiError) {
      if (err.status >= 500) ctx.log.error('http.error', { method: req.method, url: req.url, error: err.message });
      return sendError(reply, err.status, err.code, err.message);
    }
    const fe = err as FastifyError;
    if (fe.code === 'FST_ERR_CTP_INVALID_JSON' || fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || (fe.statusCode === 400 && fe.code?.startsWith('FST_ERR_CTP'))) {
      return sendError(reply, 400, 'bad_request', `body: ${fe.message}`);
    }
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendError(reply, 400, 'bad_request', `body: the request body must be JSON (content-type application/json)`);
    }
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 400, 'bad_request', 'body: larger than 1 MiB');
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return sendError(reply, fe.statusCode, 'bad_request', fe.message);
    }
    // a data-path call past its deadline that no service mapped: still 503/504 naming the operation
    const stuck = fromStuck(err, `${req.method} ${req.url.split('?')[0]}`);
    if (stuck) {
      ctx.log.error('http.error', { method: req.method, url: req.url, error: stuck.message });
      return sendError(reply, stuck.status, stuck.code, stuck.message);
    }
    ctx.log.error('http.error', { method: req.method, url: req.url, error: err.message, stack: err.stack });
    return sendError(reply, 500, 'internal', err.message || 'internal error');
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0];
    // An unencoded '/' inside a name or uuid lands here: name the field rather than answer a bare 404.
    const m = /^\/v1\/(pools|replicas|nexuses)\/(.+)$/.exec(path);
    if (m && m[2].includes('/') && !(m[1] === 'nexuses' && /^[^/]+\/children(\/[^/]+)?$/.test(m[2]))) {
      const field = m[1] === 'pools' ? 'name' : 'uuid';
      let v = m[2];
      try {
        v = decodeURIComponent(v);
      } catch {
        /* keep raw */
      }
      return sendError(reply, 400, 'bad_request', `${field} '${v}' must not contain '/'`);
    }
    return sendError(reply, 404, 'not_found', `no route ${req.method} ${path}`);
  });

  // ---- node ---------------------------------------------------------------------------------

  app.get('/v1/health', async (): Promise<Health> => ({ status: 'ok', node: ctx.config.node, version: deps.version }));

  app.get(
    '/v1/node',
    async (): Promise<NodeInfo> => ({
      name: ctx.config.node,
      version: deps.version,
      datapathVersion: ctx.dp.version(),
      listeners: { ...deps.listeners },
      capabilities: [
        'pools',
        'replicas',
        'multi-disk-pools',
        'thin-provisioning',
        'embedded-block-io',
        'share:none',
        ...(shares ? ['share:nbd', 'child:nbd'] : []),
        ...(nexuses ? ['nexus', 'child:bdev', 'child:uring', 'child:aio', 'child:malloc'] : []),
      ],
    }),
  );

  app.get('/metrics', async (_req, reply) => {
    const text = await renderMetrics(ctx, pools, replicas, http, { nexuses, shares });
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
  });

  // ---- pools --------------------------------------------------------------------------------

  type NameParams = { Params: { name: string } };
  type UuidParams = { Params: { uuid: string } };

  app.get('/v1/pools', async () => pools.list());
  app.get<NameParams>('/v1/pools/:name', async (req) => pools.get(req.params.name));
  app.put<NameParams>('/v1/pools/:name', async (req, reply) => {
    const r = await pools.put(req.params.name, req.body);
    return reply.code(r.status).send(r.pool);
  });
  app.delete<NameParams>('/v1/pools/:name', async (req, reply) => {
    await pools.delete(req.params.name, (p) => replicas.inPool(p));
    return reply.code(204).send();
  });

  // ---- replicas -----------------------------------------------------------------------------

  app.get('/v1/replicas', async () => replicas.list());
  app.get<UuidParams>('/v1/replicas/:uuid', async (req) => replicas.get(req.params.uuid));
  app.put<UuidParams>('/v1/replicas/:uuid', async (req, reply) => {
    const r = await replicas.put(req.params.uuid, req.body);
    return reply.code(r.status).send(r.replica);
  });
  app.patch<UuidParams>('/v1/replicas/:uuid', async (req) => replicas.patch(req.params.uuid, req.body));
  app.delete<UuidParams>('/v1/replicas/:uuid', async (req, reply) => {
    await replicas.delete(req.params.uuid);
    return reply.code(204).send();
  });

  // ---- nexuses ------------------------------------------------------------------------------

  if (nexuses) {
    type ChildQuery = { Params: { uuid: string }; Querystring: { uri?: string } };
    app.get('/v1/nexuses', async () => nexuses.list());
    app.get<UuidParams>('/v1/nexuses/:uuid', async (req) => nexuses.get(req.params.uuid));
    app.put<UuidParams>('/v1/nexuses/:uuid', async (req, reply) => {
      const r = await nexuses.put(req.params.uuid, req.body);
      return reply.code(r.status).send(r.nexus);
    });
    app.patch<UuidParams>('/v1/nexuses/:uuid', async (req) => nexuses.patch(req.params.uuid, req.body));
    app.delete<UuidParams>('/v1/nexuses/:uuid', async (req, reply) => {
      await nexuses.delete(req.params.uuid);
      return reply.code(204).send();
    });
    app.post<UuidParams>('/v1/nexuses/:uuid/children', async (req) => nexuses.addChild(req.params.uuid, req.body));
    app.delete<ChildQuery>('/v1/nexuses/:uuid/children', async (req, reply) => {
      await nexuses.removeChild(req.params.uuid, req.query.uri);
      return reply.code(204).send();
    });
    app.post<{ Params: { uuid: string; action: string }; Querystring: { uri?: string; force?: string } }>(
      '/v1/nexuses/:uuid/children/:action',
      async (req) => nexuses.childAction(req.params.uuid, req.params.action, req.query.uri, req.query.force),
    );
  }

  // Collections take no writes.
  for (const p of ['/v1/pools', '/v1/replicas', ...(nexuses ? ['/v1/nexuses'] : [])]) {
    app.route({
      method: ['PUT', 'POST', 'DELETE', 'PATCH'],
      url: p,
      handler: async () => {
        throw badRequest(p.endsWith('pools') ? 'name' : 'uuid', `${p}: name the object in the path (${p}/{id})`);
      },
    });
  }

  return app;
}
