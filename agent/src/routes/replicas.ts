/**
 * /v1/replicas: PUT creates (201) or confirms (200), PATCH grows or re-shares in place, DELETE 204.
 * Snapshots, clones and revert (routes/snapshots.ts) are registered from here, with their service.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ServerDeps } from '../server';
import { SnapshotService } from '../snapshots';
import { UuidParams, collectionTakesNoWrites } from './common';
import { snapshotRoutes } from './snapshots';

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

  const snapshots = new SnapshotService(deps.ctx, deps.pools, replicas, deps.nexuses, deps.shares);
  replicas.snapshots = snapshots;
  await snapshots.init();
  await app.register(snapshotRoutes, { snapshots, replicas });
};
