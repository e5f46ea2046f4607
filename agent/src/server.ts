/**
 * server.ts - the HTTP API of DESIGN.md on fastify 5: authentication, errors and counters here, the routes
 * as one fastify plugin per resource family in routes/ (node, pools, replicas, nexuses). Every route but
 * /v1/health needs `Authorization: Bearer <token>`.
 * Errors are {"error":{"code","message"}} with 400/401/404/409/422/507/500.
 * Status codes: PUT creating -> 201, PUT of the same spec -> 200, DELETE -> 204.
 * With `tls` the API is HTTPS; with tls.ca every client must present a certificate signed by it (the TLS handshake
 * fails otherwise, before any route or the bearer check runs).
 */
import Fastify, { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { checkBearer } from './auth';
import type { Context } from './context';
import { ApiError, fromStuck } from './errors';
import { HttpCounters } from './metrics';
import type { NexusService } from './nexuses';
import type { PoolService } from './pools';
import type { ReplicaService } from './replicas';
import type { ShareService } from './shares';
import { nexusRoutes } from './routes/nexuses';
import { nodeRoutes } from './routes/node';
import { poolRoutes } from './routes/pools';
import { replicaRoutes } from './routes/replicas';

export interface ServerDeps {
  ctx: Context;
  pools: PoolService;
  replicas: ReplicaService;
  nexuses: NexusService;
  shares: ShareService;
  token: string;
  version: string;
  /** Filled in once listening: { http: "127.0.0.1:9500", ... } */
  listeners: Record<string, string>;
  /** HTTPS: PEM certificate and key; `ca` requires client certificates signed by it. */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
}

function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).type('application/json').send({ error: { code, message } });
}

export function buildServer(deps: ServerDeps): FastifyInstance {
  const { ctx } = deps;
  const http = new HttpCounters();
  const base = { logger: false, routerOptions: { maxParamLength: 2048 }, bodyLimit: 1 << 20, return503OnClosing: true, forceCloseConnections: true };
  const t = deps.tls;
  // one FastifyInstance type for both: the routes never look at the socket
  const app = (
    t
      ? Fastify({
          ...base,
          https: { cert: t.cert, key: t.key, minVersion: 'TLSv1.2', ...(t.ca ? { ca: t.ca, requestCert: true, rejectUnauthorized: true } : {}) },
        })
      : Fastify(base)
  ) as FastifyInstance;

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

  // one plugin per resource family (routes/)
  void app.register(nodeRoutes, { deps, http });
  void app.register(poolRoutes, { deps });
  void app.register(replicaRoutes, { deps });
  void app.register(nexusRoutes, { deps });

  return app;
}
