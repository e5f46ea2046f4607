/** What the route plugins share. */
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../errors';

export type UuidParams = { Params: { uuid: string } };

/** A collection takes no writes: PUT/POST/DELETE/PATCH on it name the missing id. */
export function collectionTakesNoWrites(app: FastifyInstance, path: string, field: 'name' | 'uuid'): void {
  app.route({
    method: ['PUT', 'POST', 'DELETE', 'PATCH'],
    url: path,
    handler: async () => {
      throw badRequest(field, `${path}: name the object in the path (${path}/{id})`);
    },
  });
}
