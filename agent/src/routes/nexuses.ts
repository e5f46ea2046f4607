/**
 * /v1/nexuses: PUT creates (201) or confirms (200), PATCH grows or re-shares in place, DELETE 204 (the
 * children are released); children: POST adds one (rebuilt), DELETE removes one, POST .../online|offline|fault.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ServerDeps } from '../server';
import { UuidParams, collectionTakesNoWrites } from './common';

type ChildQuery = { Params: { uuid: string }; Querystring: { uri?: string } };
type ChildAction = { Params: { uuid: string; action: string }; Querystring: { uri?: string; force?: string } };

export const nexusRoutes: FastifyPluginAsync<{ deps: ServerDeps }> = async (app, { deps }) => {
  const { nexuses } = deps;
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
  app.post<ChildAction>('/v1/nexuses/:uuid/children/:action', async (req) =>
    nexuses.childAction(req.params.uuid, req.params.action, req.query.uri, req.query.force),
  );
  collectionTakesNoWrites(app, '/v1/nexuses', 'uuid');
};
