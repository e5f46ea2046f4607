/** /v1/replicas: PUT creates (201) or confirms (200), PATCH grows or re-shares in place, DELETE 204. */
import type { FastifyPluginAsync } from 'fastify';
import type { ServerDeps } from '../server';
import { UuidParams, collectionTakesNoWrites } from './common';

export const replicaRoutes: FastifyPluginAsync<{ deps: ServerDeps }> = async (app, { deps }) => {
  const { replicas } = deps;
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
  collectionTakesNoWrites(app, '/v1/replicas', 'uuid');
};
