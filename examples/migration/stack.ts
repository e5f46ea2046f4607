/**
 * Moving a volume off old storage without downtime.
 *
 * One node has two pools: `legacy` (the disk being retired) and `fresh` (its replacement). The volume is a
 * nexus exported over NBD; its consumers keep using the same nbd:// URI throughout. The move is three states of
 * the same stack, selected by $MIGRATION_PHASE:
 *
 *   legacy  the starting point: the nexus has one child, a replica in the legacy pool
 *   both    a replica in the fresh pool is added as a second child; the nexus rebuilds it from the legacy one
 *           while serving I/O, and `cdktf deploy` returns once the rebuild is complete (the provider waits)
 *   fresh   the legacy child is removed from the nexus, then its replica is deleted: the legacy pool is empty
 *
 * Going legacy → both → fresh is two `cdktf deploy`s after the initial one. The nexus is updated in place (its
 * children change), never replaced, so the volume stays online.
 */
import { Construct } from 'constructs';
import { LocalBackend, TerraformOutput, TerraformStack } from 'cdktf';
import { MayastorProvider, Nexus, Pool, Replica, replicaSizeFor } from '../../constructs';
import type { Cluster } from '../cluster';

export type MigrationPhase = 'legacy' | 'both' | 'fresh';
export const PHASES: readonly MigrationPhase[] = ['legacy', 'both', 'fresh'];

export const VOLUME_SIZE = 32 * 1024 * 1024;
export const NEXUS_UUID = '3c9d2f61-1b7e-4a55-8e0d-6f2a9b8c7d10';
export const LEGACY_REPLICA_UUID = '3c9d2f61-1b7e-4a55-8e0d-000000000001';
export const FRESH_REPLICA_UUID = '3c9d2f61-1b7e-4a55-8e0d-000000000002';

export function parsePhase(v: string | undefined): MigrationPhase {
  const p = (v ?? 'legacy') as MigrationPhase;
  if (!PHASES.includes(p)) throw new Error(`MIGRATION_PHASE: ${JSON.stringify(v)} is not one of ${PHASES.join(', ')}`);
  return p;
}

export class MigrationStack extends TerraformStack {
  public readonly nexus: Nexus;

  constructor(scope: Construct, id: string, cluster: Cluster, phase: MigrationPhase) {
    super(scope, id);
    new LocalBackend(this, { path: cluster.stateFile });
    const node = cluster.nodes[0];
    if (!node.disks.legacy || !node.disks.fresh) throw new Error(`migration: node "${node.name}" needs disks.legacy and disks.fresh in the cluster file`);
    new MayastorProvider(this, 'mayastor', { nodes: { [node.name]: node.url } });

    const legacyPool = new Pool(this, 'legacy-pool', { nodeAttribute: node.name, name: 'legacy', disks: [node.disks.legacy] });
    const freshPool = new Pool(this, 'fresh-pool', { nodeAttribute: node.name, name: 'fresh', disks: [node.disks.fresh] });

    // create_before_destroy flips Terraform's default order for a replica leaving the configuration: the nexus
    // drops the child first, then the replica is deleted (the agent refuses to delete a replica still in use).
    const lifecycle = { createBeforeDestroy: true };
    const children: string[] = [];
    const replicas: Replica[] = [];
    if (phase !== 'fresh') {
      const r = new Replica(this, 'legacy-replica', {
        nodeAttribute: node.name,
        pool: legacyPool.name,
        uuid: LEGACY_REPLICA_UUID,
        sizeBytes: replicaSizeFor(VOLUME_SIZE),
        lifecycle,
      });
      replicas.push(r);
      children.push(r.uri); // bdev:///UUID: the replica is on the nexus's node
    }
    if (phase !== 'legacy') {
      const r = new Replica(this, 'fresh-replica', {
        nodeAttribute: node.name,
        pool: freshPool.name,
        uuid: FRESH_REPLICA_UUID,
        sizeBytes: replicaSizeFor(VOLUME_SIZE),
        lifecycle,
      });
      replicas.push(r);
      children.push(r.uri);
    }

    this.nexus = new Nexus(this, 'volume', {
      nodeAttribute: node.name,
      uuid: NEXUS_UUID,
      sizeBytes: VOLUME_SIZE,
      children,
      share: 'nbd',
    });
    new TerraformOutput(this, 'device_uri', { value: this.nexus.deviceUri });
    new TerraformOutput(this, 'phase', { value: phase });
  }
}
