/** /v1/pools: PUT creates or imports (201) or confirms (200), DELETE 204 (refused while it holds replicas). */
import type { FastifyPluginAsync } from 'fastify';
import type { ServerDeps } from '../server';
import { collectionTakesNoWrites } from './common';

type NameParams = { Params: { name: string } };

export const poolRoutes: FastifyPluginAsync<{ deps: ServerDeps }> = async (app, { deps }) => {
  const { pools, replicas } = deps;
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
  collectionTakesNoWrites(app, '/v1/pools', 'name');
};
