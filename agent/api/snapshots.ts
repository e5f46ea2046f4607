/**
 * snapshots.ts - the uuid of a replica's part of a volume snapshot, as the data path derives it
 * (agent/native/src/nexus/snapshot.c): RFC 4122 version 5, SHA-1 over the volume snapshot's 16 uuid bytes and
 * then the replica's identity (its uuid, lower case, as text). A retry of the same volume snapshot names the same
 * parts, and whoever knows the volume snapshot and a replica can find its part.
 */
import { createHash } from 'node:crypto';

export function volumeSnapshotPartUuid(group: string, replica: string): string {
  const g = Buffer.from(group.replace(/-/g, ''), 'hex');
  if (g.length !== 16) throw new Error(`group '${group}' is not a uuid`);
  const h = createHash('sha1').update(g).update(replica, 'utf8').digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
