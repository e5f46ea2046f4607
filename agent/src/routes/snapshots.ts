/**
 * Snapshots (issue 13; README "Snapshots", docs/openapi.json). Registered from routes/replicas.ts.
 *
 * Final shapes (agent/api/types.ts: Snapshot, SnapshotSpec, CloneSpec, RevertSpec, VolumeSnapshot, VolumeSnapshotSpec):
 *   PUT    /v1/replicas/{uuid}/snapshots/{snapshotUuid}  body {share?, allowedHosts?} (optional) -> 201 new | 200 same
 *                                                        | 404 no replica | 409 uuid taken (names by what)
 *   GET    /v1/replicas/{uuid}/snapshots/{snapshotUuid}  -> Snapshot | 404
 *   DELETE /v1/replicas/{uuid}/snapshots/{snapshotUuid}  -> 204 | 404 | 409 naming its children (clones) when it has > 1
 *   GET    /v1/replicas/{uuid}/snapshots                 -> Snapshot[] taken of that replica
 *   GET    /v1/snapshots                                 -> Snapshot[] on this node;  GET /v1/snapshots/{uuid} -> Snapshot
 *   PATCH  /v1/snapshots/{uuid}  {share?, allowedHosts?} -> Snapshot (read-only export over nbd or nvmf; "none" removes it)
 *   DELETE /v1/snapshots/{uuid}                          -> 204 | 404 | 409 as under its replica (also once the replica is gone)
 *   PUT    /v1/replicas/{uuid}   {source: {snapshot}, pool?, sizeBytes?, thin?, share?, allowedHosts?} -> a clone (201/200;
 *                                422 naming pool/sizeBytes/thin/source.snapshot)
 *   POST   /v1/replicas/{uuid}/revert {snapshot}         -> Replica | 409 (nexus child, export with connections) | 422
 *   PUT    /v1/nexuses/{uuid}/snapshots/{snapshotUuid}   body {deadlineMs?, skipUnhealthy?} (optional) -> 201 VolumeSnapshot
 *                                                        {uuid, nexus, createdAt, replicas: [{child, replica, snapshot, node?, skipped?}]}
 *                                                        | 200 same again | 404 no nexus | 409 uuid taken
 *                                                        | 422 naming the child (faulted/rebuilding/offline/unreachable/nbd://)
 *   GET    /v1/nexuses/{uuid}/snapshots[/{snapshotUuid}] -> VolumeSnapshot[] | VolumeSnapshot
 *   DELETE /v1/nexuses/{uuid}/snapshots/{snapshotUuid}   -> 204 | 404 | 409 (a part has clones / cannot be reached)
 * Replica snapshot objects: {uuid, sourceReplica, pool, sizeBytes, referencedBytes, createdAt, readyAsSource: true,
 * group, children, share, allowedHosts, uri}. A part of a volume snapshot is a replica snapshot whose uuid is
 * agent/api/snapshots.ts volumeSnapshotPartUuid(volume snapshot uuid, replica uuid) and whose group is the volume
 * snapshot's uuid, on the replica's node.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { SnapshotService } from '../snapshots';
import type { ReplicaService } from '../replicas';
import { UuidParams, collectionTakesNoWrites } from './common';

type SnapParams = { Params: { uuid: string; snapshotUuid: string } };

export const snapshotRoutes: FastifyPluginAsync<{ snapshots: SnapshotService; replicas: ReplicaService }> = async (app, { snapshots, replicas }) => {
  app.get('/v1/snapshots', async () => snapshots.list());
  app.get<UuidParams>('/v1/snapshots/:uuid', async (req) => snapshots.get(req.params.uuid));
  app.patch<UuidParams>('/v1/snapshots/:uuid', async (req) => snapshots.patch(req.params.uuid, req.body));
  app.delete<UuidParams>('/v1/snapshots/:uuid', async (req, reply) => {
    await snapshots.deleteByUuid(req.params.uuid);
    return reply.code(204).send();
  });
  collectionTakesNoWrites(app, '/v1/snapshots', 'uuid');

  app.get<UuidParams>('/v1/replicas/:uuid/snapshots', async (req) => snapshots.listOf(req.params.uuid));
  app.get<SnapParams>('/v1/replicas/:uuid/snapshots/:snapshotUuid', async (req) => snapshots.getOf(req.params.uuid, req.params.snapshotUuid));
  app.put<SnapParams>('/v1/replicas/:uuid/snapshots/:snapshotUuid', async (req, reply) => {
    const r = await snapshots.put(req.params.uuid, req.params.snapshotUuid, req.body);
    return reply.code(r.status).send(r.snapshot);
  });
  app.delete<SnapParams>('/v1/replicas/:uuid/snapshots/:snapshotUuid', async (req, reply) => {
    await snapshots.delete(req.params.uuid, req.params.snapshotUuid);
    return reply.code(204).send();
  });
  app.post<UuidParams>('/v1/replicas/:uuid/revert', async (req) => replicas.revert(req.params.uuid, req.body));

  app.get<UuidParams>('/v1/nexuses/:uuid/snapshots', async (req) => snapshots.listVolume(req.params.uuid));
  app.get<SnapParams>('/v1/nexuses/:uuid/snapshots/:snapshotUuid', async (req) => snapshots.getVolume(req.params.uuid, req.params.snapshotUuid));
  app.put<SnapParams>('/v1/nexuses/:uuid/snapshots/:snapshotUuid', async (req, reply) => {
    const r = await snapshots.putVolume(req.params.uuid, req.params.snapshotUuid, req.body);
    return reply.code(r.status).send(r.snapshot);
  });
  app.delete<SnapParams>('/v1/nexuses/:uuid/snapshots/:snapshotUuid', async (req, reply) => {
    await snapshots.deleteVolume(req.params.uuid, req.params.snapshotUuid);
    return reply.code(204).send();
  });
};
