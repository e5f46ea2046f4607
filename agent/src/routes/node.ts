/** GET /v1/health (no token), GET /v1/node, GET /metrics. */
import type { FastifyPluginAsync } from 'fastify';
import type { Health, NodeInfo } from '../../api/types';
import { renderMetrics } from '../metrics';
import type { ServerDeps } from '../server';
import type { HttpCounters } from '../metrics';

export const nodeRoutes: FastifyPluginAsync<{ deps: ServerDeps; http: HttpCounters }> = async (app, { deps, http }) => {
  const { ctx, pools, replicas, nexuses, shares } = deps;

  app.get('/v1/health', async (): Promise<Health> => ({ status: 'ok', node: ctx.config.node, version: deps.version }));

  app.get('/v1/node', async (): Promise<NodeInfo> => ({
    name: ctx.config.node,
    version: deps.version,
    datapathVersion: ctx.dp.version(),
    listeners: { ...deps.listeners },
    shares: ['none', ...shares.protocols()],
    nvmfHostNqn: ctx.dp.nvmfHostNqn(),
    capabilities: [
      'pools',
      'replicas',
      'multi-disk-pools',
      'thin-provisioning',
      'embedded-block-io',
      'share:none',
      ...shares.protocols().map((p) => `share:${p}`),
      'child:nbd',
      'child:nvmf',
      'nexus',
      'child:bdev',
      'child:uring',
      'child:aio',
      'child:malloc',
    ],
  }));

  app.get('/metrics', async (_req, reply) => {
    const text = await renderMetrics(ctx, pools, replicas, http, { nexuses, shares });
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
  });
};
